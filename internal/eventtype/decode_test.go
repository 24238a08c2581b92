package eventtype_test

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/gwook/gwook/internal/eventtype"
)

// decodeCases are JSON texts, valid and not, on which decode must give
// what the token decoder gives.
var decodeCases = []string{
	`{}`, `[]`, `{"a":{}}`, `{"a":[]}`, ` { "a" : [ 1 , 2 ] , "b" : { } } `,
	"\t\r\n{\"a\":\n1}\n",
	`0`, `-0`, `1`, `-1.5e3`, `1E+2`, `2.50`, `1.0`, `12345678901234567890`,
	`123456789012345678901234567890.123456789e-400`, `{"n": -0.0, "m": 1e999}`,
	`"s"`, `""`, `true`, `false`, `null`, `[true,false,null,"x",1]`,
	`{"a":1,"a":2}`, `{"a":{"b":1},"a":[3]}`,
	`{"e":"a\"b\\c\/d\b\f\n\r\t"}`, `{"u":"\u00e9\u4e2d\ud83c\udf89"}`, `{"\u0061":"\u0000"}`,
	`{"k\"ey":1}`, `{"María":"北极星 🎉"}`,
	`{"a":[1,[2,[3,[4]]],{"b":{"c":{"d":null}}}]}`,
	// Not valid JSON.
	``, ` `, `{`, `}`, `{} {}`, `{"a": }`, `[1,]`, `{"a":1,}`, `01`, `1.`, `.5`, `+1`,
	`NaN`, `tru`, `"abc`, `{"a" 1}`, `{a:1}`, `'a'`, `"\x"`, `"\u12"`,
	"\"\xff\"", "{\"a\xc3\":1}", "\"\xed\xa0\x80\"", `"\ud800"`, "\"a\tb\"", "[1]\x00",
}

func TestDecodeAsTheTokenDecoder(t *testing.T) {
	for _, c := range decodeCases {
		sameDecode(t, []byte(c))
	}
}

func sameDecode(t *testing.T, data []byte) {
	t.Helper()
	got, gotErr := eventtype.Decode(data)
	want, wantErr := eventtype.DecodeTokens(data)
	if (gotErr == nil) != (wantErr == nil) || gotErr != nil && gotErr.Error() != wantErr.Error() {
		t.Fatalf("%q: error %v, the token decoder's %v", data, gotErr, wantErr)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%q: decoded %#v, the token decoder %#v", data, got, want)
	}
}

// Numbers stay exact, as json.Number with their literal text; duplicate
// names keep the last value; escapes are resolved.
func TestDecodeValues(t *testing.T) {
	v, err := eventtype.Decode([]byte(`{"big": 12345678901234567890, "f": -1.50e3, "d": 1, "d": 2, "s": "\u00e9\n"}`))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"big": json.Number("12345678901234567890"), "f": json.Number("-1.50e3"), "d": json.Number("2"), "s": "é\n"}
	if !reflect.DeepEqual(v, want) {
		t.Errorf("decoded %#v, want %#v", v, want)
	}
	for _, bad := range []string{"{\"a\": \"\xff\"}", `{"a": 1} x`, `{"a": 01}`} {
		if _, err := eventtype.Decode([]byte(bad)); err == nil {
			t.Errorf("%q decoded without an error", bad)
		}
	}
}

func FuzzDecode(f *testing.F) {
	for _, c := range decodeCases {
		f.Add([]byte(c))
	}
	f.Fuzz(sameDecode)
}
