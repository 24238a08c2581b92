package eventtype_test

import (
	"encoding/json"
	"testing"

	"github.com/gwook/gwook/internal/eventtype"
)

// richSchema uses every keyword the quick check covers.
const richSchema = `{
	"$schema": "https://json-schema.org/draft/2020-12/schema",
	"title": "t", "description": "d", "x-note": 1,
	"type": "object",
	"required": ["n", "s"],
	"properties": {
		"n": {"type": "integer", "minimum": 0, "maximum": 100},
		"f": {"type": "number", "exclusiveMinimum": 0.1, "exclusiveMaximum": 1e3},
		"big": {"type": "integer", "minimum": -9007199254740993},
		"s": {"type": "string", "minLength": 2, "maxLength": 3, "pattern": "^[a-zé]+$", "format": "email"},
		"e": {"enum": ["a", "b", null, true]},
		"c": {"const": "x"},
		"nul": {"type": ["string", "null"]},
		"a": {"type": "array", "minItems": 1, "maxItems": 2, "items": {"type": "boolean"}},
		"o": {"type": "object", "additionalProperties": false, "properties": {"k": true, "never": false}},
		"m": {"type": "object", "additionalProperties": {"type": "string"}},
		"any": {}
	}
}`

// TestCheckAgreesWithTheLibrary checks the quick check on the edge of each
// keyword: it never passes data that the library finds invalid, and it
// passes the plain valid cases, so that they skip the library.
func TestCheckAgreesWithTheLibrary(t *testing.T) {
	s, err := eventtype.Compile(json.RawMessage(richSchema))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		data string
		fast bool // the check passes it (else it leaves it to the library)
	}{
		{`{"n": 0, "s": "ab"}`, true},
		{`{"n": 100, "s": "abé"}`, true},
		{`{"n": 101, "s": "ab"}`, false},
		{`{"n": -1, "s": "ab"}`, false},
		{`{"n": 1.0, "s": "ab"}`, false}, // an integer, left to the library
		{`{"n": 1e1, "s": "ab"}`, false}, // an integer, left to the library
		{`{"n": 1.5, "s": "ab"}`, false}, // not an integer
		{`{"n": "1", "s": "ab"}`, false}, // not a number
		{`{"s": "ab"}`, false},           // n missing
		{`{"n": 1, "s": "a"}`, false},    // too short
		{`{"n": 1, "s": "abcd"}`, false}, // too long
		{`{"n": 1, "s": "ééé"}`, true},   // three characters, six bytes
		{`{"n": 1, "s": "AB"}`, false},   // pattern
		{`{"n": 1, "s": "ab", "f": 0.5}`, true},
		{`{"n": 1, "s": "ab", "f": 0.1}`, false},                 // exclusiveMinimum
		{`{"n": 1, "s": "ab", "f": 0.10000000000000001}`, false}, // 0.1 as float64, but more than 0.1
		{`{"n": 1, "s": "ab", "f": 1000}`, false},                // exclusiveMaximum
		{`{"n": 1, "s": "ab", "f": 999.9999999999999999}`, false},
		{`{"n": 1, "s": "ab", "f": 1e400}`, false},
		{`{"n": 1, "s": "ab", "big": -9007199254740993}`, true},
		{`{"n": 1, "s": "ab", "big": -9007199254740994}`, false}, // the same float64
		{`{"n": 1, "s": "ab", "big": 123456789012345678901234567890}`, true},
		{`{"n": 1, "s": "ab", "e": "a"}`, true},
		{`{"n": 1, "s": "ab", "e": null}`, true},
		{`{"n": 1, "s": "ab", "e": true}`, true},
		{`{"n": 1, "s": "ab", "e": false}`, false},
		{`{"n": 1, "s": "ab", "e": "c"}`, false},
		{`{"n": 1, "s": "ab", "e": {}}`, false},
		{`{"n": 1, "s": "ab", "c": "x"}`, true},
		{`{"n": 1, "s": "ab", "c": "y"}`, false},
		{`{"n": 1, "s": "ab", "nul": null}`, true},
		{`{"n": 1, "s": "ab", "nul": 1}`, false},
		{`{"n": 1, "s": "ab", "a": [true]}`, true},
		{`{"n": 1, "s": "ab", "a": []}`, false},
		{`{"n": 1, "s": "ab", "a": [true, false, true]}`, false},
		{`{"n": 1, "s": "ab", "a": [1]}`, false},
		{`{"n": 1, "s": "ab", "o": {"k": [1, {}]}}`, true},
		{`{"n": 1, "s": "ab", "o": {"never": 1}}`, false},
		{`{"n": 1, "s": "ab", "o": {"other": 1}}`, false},
		{`{"n": 1, "s": "ab", "m": {"x": "y"}}`, true},
		{`{"n": 1, "s": "ab", "m": {"x": 1}}`, false},
		{`{"n": 1, "s": "ab", "any": [{"x": null}], "extra": 1}`, true},
		{`{"n": 1, "s": "ab", "s": 5}`, false}, // the last of duplicate names counts
		{`[]`, false},
	} {
		v, err := eventtype.Decode([]byte(tc.data))
		if err != nil {
			t.Fatalf("%s: %v", tc.data, err)
		}
		has, fast := eventtype.Check(s, v)
		if !has {
			t.Fatal("the rich schema has no quick check")
		}
		valid := eventtype.ValidateDecoded(s, v) == nil
		if fast && !valid {
			t.Errorf("%s: the check passes what the library refuses", tc.data)
		}
		if fast != tc.fast {
			t.Errorf("%s: the check passes %v, want %v (the library: valid %v)", tc.data, fast, tc.fast, valid)
		}
	}
}

// The schemas of the example events all have a quick check, which passes
// their examples: valid events skip the library.
func TestExamplesTakeTheCheck(t *testing.T) {
	events, schemas := exampleSchemas(t)
	for i, n := range events {
		s, err := eventtype.Compile(schemas[i])
		if err != nil {
			t.Fatal(err)
		}
		v, err := eventtype.Decode(n.Data)
		if err != nil {
			t.Fatal(err)
		}
		if has, ok := eventtype.Check(s, v); !has || !ok {
			t.Errorf("%s: check %v, passed %v", n.Type, has, ok)
		}
	}
}

// Schemas with keywords beyond the check's have none, and are left to the
// library whole.
func TestCheckLeavesOtherKeywords(t *testing.T) {
	for _, schema := range []string{
		`{"oneOf": [{"type": "string"}]}`,
		`{"properties": {"a": {"$ref": "#/$defs/x"}}, "$defs": {"x": {}}}`,
		`{"patternProperties": {"^a": {}}}`,
		`{"enum": [1, 2]}`,
		`{"multipleOf": 2}`,
		`{"minItems": 1.0}`,
		`{"unevaluatedProperties": false}`,
		`{"properties": {"a": {"nullable": true}}}`,
	} {
		s, err := eventtype.Compile(json.RawMessage(schema))
		if err != nil {
			t.Fatalf("%s: %v", schema, err)
		}
		if has, _ := eventtype.Check(s, map[string]any{}); has {
			t.Errorf("%s has a quick check", schema)
		}
	}
}

// FuzzCheck: whatever the data, the check never passes what the library
// refuses, on the rich schema and on the example schemas.
func FuzzCheck(f *testing.F) {
	events, raws := exampleSchemas(f)
	schemas := []*eventtype.Schema{}
	for _, raw := range append(raws, json.RawMessage(richSchema)) {
		s, err := eventtype.Compile(raw)
		if err != nil {
			f.Fatal(err)
		}
		schemas = append(schemas, s)
	}
	for _, n := range events {
		f.Add([]byte(n.Data))
	}
	f.Add([]byte(`{"n": 100, "s": "abé", "f": 0.5, "e": null, "a": [true], "o": {"k": 1}, "m": {"x": "y"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := eventtype.Decode(data)
		if err != nil {
			return
		}
		for i, s := range schemas {
			if _, ok := eventtype.Check(s, v); ok && eventtype.ValidateDecoded(s, v) != nil {
				t.Fatalf("schema %d: the check passes %q, which the library refuses", i, data)
			}
		}
	})
}
