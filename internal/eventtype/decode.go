package eventtype

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"

	"github.com/go-json-experiment/json/jsontext"
)

// allowDuplicates lets duplicate names through, the last one winning as
// with encoding/json: the check costs a tenth of the decode.
var allowDuplicates = jsontext.AllowDuplicateNames(true)

// decode reads one JSON value into the form the validator takes: maps,
// slices, strings, bools, nil, and numbers as json.Number so that none
// loses precision.
//
// jsontext checks the whole value first (grammar, UTF-8, one value only),
// without allocating; the value is then built by a plain scan that can
// trust the syntax. Every string and number of the result is a substring
// of one copy of data, so that building costs one allocation per map,
// slice and boxed value and none per string. A value that is not valid
// JSON goes through the token decoder for its error.
func decode(data []byte) (any, error) {
	if !jsontext.Value(data).IsValid(allowDuplicates) {
		return decodeTokens(data)
	}
	b := builder{s: string(data)}
	return b.value(), nil
}

// builder builds the value of valid JSON text s.
type builder struct {
	s string
	i int
}

func (b *builder) skipSpace() {
	for b.i < len(b.s) {
		switch b.s[b.i] {
		case ' ', '\t', '\n', '\r':
			b.i++
		default:
			return
		}
	}
}

func (b *builder) value() any {
	b.skipSpace()
	switch b.s[b.i] {
	case '{':
		b.i++
		b.skipSpace()
		if b.s[b.i] == '}' {
			b.i++
			return map[string]any{}
		}
		// Eight fit in one group of a map: no growing for small objects.
		obj := make(map[string]any, 8)
		for {
			b.skipSpace()
			name := b.str()
			b.skipSpace()
			b.i++ // ':'
			obj[name] = b.value()
			b.skipSpace()
			c := b.s[b.i]
			b.i++
			if c == '}' {
				return obj
			}
		}
	case '[':
		b.i++
		arr := []any{}
		b.skipSpace()
		if b.s[b.i] == ']' {
			b.i++
			return arr
		}
		for {
			arr = append(arr, b.value())
			b.skipSpace()
			c := b.s[b.i]
			b.i++
			if c == ']' {
				return arr
			}
		}
	case '"':
		return b.str()
	case 't':
		b.i += len("true")
		return true
	case 'f':
		b.i += len("false")
		return false
	case 'n':
		b.i += len("null")
		return nil
	}
	start := b.i
	for b.i < len(b.s) {
		switch b.s[b.i] {
		case '-', '+', '.', 'e', 'E', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
			b.i++
			continue
		}
		break
	}
	return json.Number(b.s[start:b.i])
}

// str reads the string that starts at b.i, its quote included.
func (b *builder) str() string {
	start := b.i
	b.i++
	escaped := false
	for {
		switch b.s[b.i] {
		case '"':
			b.i++
			if !escaped {
				return b.s[start+1 : b.i-1]
			}
			out, err := jsontext.AppendUnquote(nil, b.s[start:b.i])
			if err != nil {
				// Not reached: the text was checked as valid JSON.
				panic(err)
			}
			return string(out)
		case '\\':
			escaped = true
			b.i += 2
		default:
			b.i++
		}
	}
}

// decodeTokens decodes with jsontext's token decoder; it gives the error
// of a value that is not valid JSON.
func decodeTokens(data []byte) (any, error) {
	// A *bytes.Buffer is read in place, without a copy.
	d := jsontext.NewDecoder(bytes.NewBuffer(data), allowDuplicates)
	v, err := decodeValue(d)
	if err != nil {
		return nil, err
	}
	if _, err := d.ReadToken(); err != io.EOF {
		return nil, errors.New("more than one JSON value")
	}
	return v, nil
}

func decodeValue(d *jsontext.Decoder) (any, error) {
	tok, err := d.ReadToken()
	if err != nil {
		return nil, err
	}
	switch tok.Kind() {
	case '{':
		obj := map[string]any{}
		for d.PeekKind() == '"' {
			tok, err := d.ReadToken()
			if err != nil {
				return nil, err
			}
			name := tok.String() // before the next read voids tok
			v, err := decodeValue(d)
			if err != nil {
				return nil, err
			}
			obj[name] = v
		}
		_, err := d.ReadToken()
		return obj, err
	case '[':
		arr := []any{}
		for k := d.PeekKind(); k != ']' && k != 0; k = d.PeekKind() {
			v, err := decodeValue(d)
			if err != nil {
				return nil, err
			}
			arr = append(arr, v)
		}
		_, err := d.ReadToken()
		return arr, err
	case '"':
		return tok.String(), nil
	case '0':
		return json.Number(tok.String()), nil
	case 't', 'f':
		return tok.Bool(), nil
	case 'n':
		return nil, nil
	}
	return nil, errors.New("unexpected JSON token")
}
