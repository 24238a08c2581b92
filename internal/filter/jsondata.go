package filter

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/buger/jsonparser"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/common/types/traits"
)

// JSON values of event.data as CEL values: an object is a map with string
// keys, an array a list, a number a double, a string a string, true and
// false bools, and null is null. When a key repeats, the last value counts.
//
// Two representations give the same values. decodeJSON decodes a whole
// document at once; jsonObject and jsonArray read a document lazily, finding
// a key or an index without decoding anything else, and decode themselves
// whole only for operations that need all of their elements (size, equality,
// iteration, conversion).

// maxJSONDepth bounds the nesting that decodeJSON follows, as encoding/json
// does (json.Valid refuses deeper documents).
const maxJSONDepth = 10000

var (
	errTooDeep   = errors.New("event data nests deeper than 10000 levels")
	errMalformed = errors.New("event data is not valid JSON")
)

// isObject reports whether raw holds a JSON object. It looks at the first
// token only: event validation has made sure that Data is valid JSON, and a
// malformation met while reading is an evaluation error.
func isObject(raw []byte) bool {
	for _, c := range raw {
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		}
		return c == '{'
	}
	return false
}

// decodeJSON decodes a JSON value whole, in one pass over raw. Anything after
// the value is ignored, as lazy reads do.
func decodeJSON(raw []byte) (ref.Val, error) {
	d := decoder{data: raw}
	return d.value()
}

// decoder decodes JSON into CEL values.
type decoder struct {
	data  []byte
	pos   int
	depth int
}

func (d *decoder) skipSpace() {
	for d.pos < len(d.data) {
		switch d.data[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return
		}
	}
}

// next skips spaces and returns the next byte, or 0 at the end.
func (d *decoder) next() byte {
	d.skipSpace()
	if d.pos < len(d.data) {
		return d.data[d.pos]
	}
	return 0
}

func (d *decoder) value() (ref.Val, error) {
	switch c := d.next(); {
	case c == '{':
		return d.object()
	case c == '[':
		return d.array()
	case c == '"':
		s, err := d.string()
		if err != nil {
			return nil, err
		}
		return types.String(s), nil
	case c == 't':
		return d.literal("true", types.True)
	case c == 'f':
		return d.literal("false", types.False)
	case c == 'n':
		return d.literal("null", types.NullValue)
	case c == '-' || '0' <= c && c <= '9':
		start := d.pos
		for d.pos < len(d.data) && strings.IndexByte("+-0123456789.eE", d.data[d.pos]) >= 0 {
			d.pos++
		}
		v := scalarValue(d.data[start:d.pos], jsonparser.Number)
		if err, ok := v.(*types.Err); ok {
			return nil, err
		}
		return v, nil
	}
	return nil, errMalformed
}

func (d *decoder) literal(word string, v ref.Val) (ref.Val, error) {
	if !bytes.HasPrefix(d.data[d.pos:], []byte(word)) {
		return nil, errMalformed
	}
	d.pos += len(word)
	return v, nil
}

// string decodes the string at d.pos, which is at its opening quote.
func (d *decoder) string() (string, error) {
	d.pos++
	start, escaped := d.pos, false
	for ; d.pos < len(d.data); d.pos++ {
		switch d.data[d.pos] {
		case '\\':
			escaped = true
			d.pos++
		case '"':
			raw := d.data[start:d.pos]
			d.pos++
			if !escaped {
				return validUTF8(string(raw)), nil
			}
			s, err := jsonparser.ParseString(raw)
			if err != nil {
				return "", errMalformed
			}
			return validUTF8(s), nil
		}
	}
	return "", errMalformed
}

func (d *decoder) enter() error {
	d.depth++
	if d.depth > maxJSONDepth {
		return errTooDeep
	}
	d.pos++ // the opening bracket
	return nil
}

func (d *decoder) object() (ref.Val, error) {
	if err := d.enter(); err != nil {
		return nil, err
	}
	m := map[string]any{}
	if d.next() == '}' {
		d.pos++
		d.depth--
		return types.NewStringInterfaceMap(types.DefaultTypeAdapter, m), nil
	}
	for {
		if d.next() != '"' {
			return nil, errMalformed
		}
		key, err := d.string()
		if err != nil {
			return nil, err
		}
		if d.next() != ':' {
			return nil, errMalformed
		}
		d.pos++
		v, err := d.value()
		if err != nil {
			return nil, err
		}
		m[key] = v
		switch d.next() {
		case ',':
			d.pos++
		case '}':
			d.pos++
			d.depth--
			return types.NewStringInterfaceMap(types.DefaultTypeAdapter, m), nil
		default:
			return nil, errMalformed
		}
	}
}

func (d *decoder) array() (ref.Val, error) {
	if err := d.enter(); err != nil {
		return nil, err
	}
	var elems []ref.Val
	if d.next() == ']' {
		d.pos++
		d.depth--
		return types.NewRefValList(types.DefaultTypeAdapter, elems), nil
	}
	for {
		v, err := d.value()
		if err != nil {
			return nil, err
		}
		elems = append(elems, v)
		switch d.next() {
		case ',':
			d.pos++
		case ']':
			d.pos++
			d.depth--
			return types.NewRefValList(types.DefaultTypeAdapter, elems), nil
		default:
			return nil, errMalformed
		}
	}
}

// lazyValue returns the value raw holds: a lazy object or array, or a scalar.
func lazyValue(raw []byte, t jsonparser.ValueType) ref.Val {
	switch t {
	case jsonparser.Object:
		return &jsonObject{raw: raw}
	case jsonparser.Array:
		return &jsonArray{raw: raw}
	}
	return scalarValue(raw, t)
}

// scalarValue converts a JSON string, number, bool or null.
func scalarValue(raw []byte, t jsonparser.ValueType) ref.Val {
	switch t {
	case jsonparser.String:
		if s, ok := plainString(raw); ok {
			return types.String(s)
		}
		s, err := jsonparser.ParseString(raw)
		if err != nil {
			return types.WrapErr(errMalformed)
		}
		return types.String(validUTF8(s))
	case jsonparser.Number:
		// A number too large for a double becomes ±Inf, one too small 0.
		f, err := strconv.ParseFloat(string(raw), 64)
		if err != nil && !errors.Is(err, strconv.ErrRange) {
			return types.WrapErr(errMalformed)
		}
		return types.Double(f)
	case jsonparser.Boolean:
		return types.Bool(len(raw) > 0 && raw[0] == 't')
	case jsonparser.Null:
		return types.NullValue
	}
	return types.WrapErr(errMalformed)
}

// plainString returns the string of raw (the inside of a JSON string) when
// it needs no unescaping and is valid UTF-8.
func plainString(raw []byte) (string, bool) {
	if b, ok := plainBytes(raw); ok {
		return string(b), true
	}
	return "", false
}

// plainBytes returns raw when it needs no unescaping and is valid UTF-8.
func plainBytes(raw []byte) ([]byte, bool) {
	if bytes.IndexByte(raw, '\\') >= 0 || !utf8.Valid(raw) {
		return nil, false
	}
	return raw, true
}

// validUTF8 replaces invalid UTF-8 in s, as CEL strings are text.
func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// sameKey reports whether the unescaped object key k is key.
func sameKey(k []byte, key string) bool {
	if utf8.Valid(k) {
		return string(k) == key
	}
	return validUTF8(string(k)) == key
}

// jsonObject is a JSON object read lazily.
type jsonObject struct {
	raw  []byte
	full traits.Mapper // the object decoded whole, once needed
	err  error
}

// whole returns the object decoded whole.
func (o *jsonObject) whole() (traits.Mapper, error) {
	if o.full == nil && o.err == nil {
		v, err := decodeJSON(o.raw)
		if err != nil {
			o.err = err
		} else {
			o.full = v.(traits.Mapper)
		}
	}
	return o.full, o.err
}

// lookup finds the last value of key.
func (o *jsonObject) lookup(key string) (ref.Val, bool) {
	var (
		found bool
		value []byte
		vtype jsonparser.ValueType
	)
	err := jsonparser.ObjectEach(o.raw, func(k, v []byte, t jsonparser.ValueType, _ int) error {
		if sameKey(k, key) {
			found, value, vtype = true, v, t
		}
		return nil
	})
	if err != nil {
		return types.WrapErr(errMalformed), true
	}
	if !found {
		return nil, false
	}
	return lazyValue(value, vtype), true
}

// Find implements traits.Mapper.
func (o *jsonObject) Find(key ref.Val) (ref.Val, bool) {
	if s, ok := key.(types.String); ok {
		return o.lookup(string(s))
	}
	full, err := o.whole()
	if err != nil {
		return types.WrapErr(err), true
	}
	return full.Find(key)
}

// Get implements traits.Indexer.
func (o *jsonObject) Get(key ref.Val) ref.Val {
	v, found := o.Find(key)
	if !found {
		return types.ValOrErr(v, "no such key: %v", key)
	}
	return v
}

// Contains implements traits.Container.
func (o *jsonObject) Contains(key ref.Val) ref.Val {
	v, found := o.Find(key)
	if found && types.IsError(v) {
		return v
	}
	return types.Bool(found)
}

// Size implements traits.Sizer.
func (o *jsonObject) Size() ref.Val {
	full, err := o.whole()
	if err != nil {
		return types.WrapErr(err)
	}
	return full.Size()
}

// Iterator implements traits.Iterable.
func (o *jsonObject) Iterator() traits.Iterator {
	full, err := o.whole()
	if err != nil {
		return errorIterator{err: err}
	}
	return full.Iterator()
}

// ConvertToNative implements ref.Val.
func (o *jsonObject) ConvertToNative(typeDesc reflect.Type) (any, error) {
	full, err := o.whole()
	if err != nil {
		return nil, err
	}
	return full.ConvertToNative(typeDesc)
}

// ConvertToType implements ref.Val.
func (o *jsonObject) ConvertToType(typeVal ref.Type) ref.Val {
	switch typeVal {
	case types.MapType:
		return o
	case types.TypeType:
		return types.MapType
	}
	full, err := o.whole()
	if err != nil {
		return types.WrapErr(err)
	}
	return full.ConvertToType(typeVal)
}

// Equal implements ref.Val.
func (o *jsonObject) Equal(other ref.Val) ref.Val {
	full, err := o.whole()
	if err != nil {
		return types.WrapErr(err)
	}
	return full.Equal(other)
}

// Type implements ref.Val.
func (o *jsonObject) Type() ref.Type { return types.MapType }

// Value implements ref.Val.
func (o *jsonObject) Value() any {
	full, err := o.whole()
	if err != nil {
		return nil
	}
	return full.Value()
}

// jsonArray is a JSON array read lazily.
type jsonArray struct {
	raw   []byte
	full  traits.Lister // the array decoded whole, once needed
	err   error
	count int // number of elements; -1 until counted
}

func (a *jsonArray) whole() (traits.Lister, error) {
	if a.full == nil && a.err == nil {
		v, err := decodeJSON(a.raw)
		if err != nil {
			a.err = err
		} else {
			a.full = v.(traits.Lister)
		}
	}
	return a.full, a.err
}

// size counts the elements without decoding them.
func (a *jsonArray) size() (int, error) {
	if a.full != nil {
		return int(a.full.Size().(types.Int)), nil
	}
	if a.count == 0 && a.err == nil {
		n, err := jsonparser.ArrayEachErr(a.raw, func([]byte, jsonparser.ValueType, int, error) error { return nil })
		if err != nil {
			a.err = errMalformed
		}
		a.count = n + 1 // stored off by one so that zero means "not counted"
	}
	return a.count - 1, a.err
}

// Size implements traits.Sizer.
func (a *jsonArray) Size() ref.Val {
	n, err := a.size()
	if err != nil {
		return types.WrapErr(err)
	}
	return types.Int(n)
}

// Get implements traits.Indexer: it finds one element without decoding the
// others.
func (a *jsonArray) Get(index ref.Val) ref.Val {
	if a.full != nil {
		return a.full.Get(index)
	}
	i, err := types.IndexOrError(index)
	if err != nil {
		return types.WrapErr(err)
	}
	n, err := a.size()
	if err != nil {
		return types.WrapErr(err)
	}
	if i < 0 || i >= n {
		return types.NewErr("index out of bounds: %d", i)
	}
	var (
		seen  int
		found bool
		value []byte
		vtype jsonparser.ValueType
	)
	_, err = jsonparser.ArrayEachErr(a.raw, func(v []byte, t jsonparser.ValueType, _ int, err error) error {
		if err != nil {
			return err
		}
		if seen == i {
			found, value, vtype = true, v, t
			return io.EOF // stops the walk
		}
		seen++
		return nil
	})
	if !found || err != nil {
		return types.WrapErr(errMalformed)
	}
	return lazyValue(value, vtype)
}

// Contains implements traits.Container. It compares scalars in place and
// decodes only the elements that are objects or arrays.
func (a *jsonArray) Contains(value ref.Val) ref.Val {
	if a.full != nil {
		return a.full.Contains(value)
	}
	var found bool
	_, err := jsonparser.ArrayEachErr(a.raw, func(v []byte, t jsonparser.ValueType, _ int, err error) error {
		if err != nil {
			return err
		}
		if elementEquals(v, t, value) {
			found = true
			return io.EOF // stops the walk
		}
		return nil
	})
	if err != nil {
		return types.WrapErr(errMalformed)
	}
	return types.Bool(found)
}

// elementEquals reports whether the JSON value raw of type t equals v.
func elementEquals(raw []byte, t jsonparser.ValueType, v ref.Val) bool {
	switch t {
	case jsonparser.String:
		if s, ok := v.(types.String); ok {
			if plain, ok := plainBytes(raw); ok {
				return string(plain) == string(s)
			}
		} else {
			return false
		}
	case jsonparser.Number:
		switch v.(type) {
		case types.Double, types.Int, types.Uint:
		default:
			return false
		}
	case jsonparser.Boolean:
		b, ok := v.(types.Bool)
		return ok && bool(b) == (len(raw) > 0 && raw[0] == 't')
	case jsonparser.Null:
		return v == types.NullValue
	}
	return lazyValue(raw, t).Equal(v) == types.True
}

// Add implements traits.Adder.
func (a *jsonArray) Add(other ref.Val) ref.Val {
	full, err := a.whole()
	if err != nil {
		return types.WrapErr(err)
	}
	return full.Add(other)
}

// Iterator implements traits.Iterable.
func (a *jsonArray) Iterator() traits.Iterator {
	full, err := a.whole()
	if err != nil {
		return errorIterator{err: err}
	}
	return full.Iterator()
}

// ConvertToNative implements ref.Val.
func (a *jsonArray) ConvertToNative(typeDesc reflect.Type) (any, error) {
	full, err := a.whole()
	if err != nil {
		return nil, err
	}
	return full.ConvertToNative(typeDesc)
}

// ConvertToType implements ref.Val.
func (a *jsonArray) ConvertToType(typeVal ref.Type) ref.Val {
	switch typeVal {
	case types.ListType:
		return a
	case types.TypeType:
		return types.ListType
	}
	full, err := a.whole()
	if err != nil {
		return types.WrapErr(err)
	}
	return full.ConvertToType(typeVal)
}

// Equal implements ref.Val.
func (a *jsonArray) Equal(other ref.Val) ref.Val {
	full, err := a.whole()
	if err != nil {
		return types.WrapErr(err)
	}
	return full.Equal(other)
}

// Type implements ref.Val.
func (a *jsonArray) Type() ref.Type { return types.ListType }

// Value implements ref.Val.
func (a *jsonArray) Value() any {
	full, err := a.whole()
	if err != nil {
		return nil
	}
	return full.Value()
}

// errorIterator is the iterator of a value that failed to decode: it yields
// the error once.
type errorIterator struct {
	err error
}

func (it errorIterator) HasNext() ref.Val { return types.WrapErr(it.err) }
func (it errorIterator) Next() ref.Val    { return types.WrapErr(it.err) }

// ConvertToNative implements ref.Val.
func (it errorIterator) ConvertToNative(reflect.Type) (any, error) { return nil, it.err }

// ConvertToType implements ref.Val.
func (it errorIterator) ConvertToType(ref.Type) ref.Val { return types.WrapErr(it.err) }

// Equal implements ref.Val.
func (it errorIterator) Equal(ref.Val) ref.Val { return types.WrapErr(it.err) }

// Type implements ref.Val.
func (it errorIterator) Type() ref.Type { return types.IteratorType }

// Value implements ref.Val.
func (it errorIterator) Value() any { return nil }
