package eventtype

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"

	"github.com/go-json-experiment/json/jsontext"
)

// decode reads one JSON value into the form the validator takes: maps,
// slices, strings, bools, nil, and numbers as json.Number so that none
// loses precision.
func decode(data []byte) (any, error) {
	// A *bytes.Buffer is read in place, without a copy. Duplicate names
	// are let through, the last one winning as with encoding/json: the
	// check costs a tenth of the decode.
	d := jsontext.NewDecoder(bytes.NewBuffer(data), jsontext.AllowDuplicateNames(true))
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
