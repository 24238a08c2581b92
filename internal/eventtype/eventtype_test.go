package eventtype_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gwook/gwook/internal/event"
	"github.com/gwook/gwook/internal/eventtype"
)

func fields(errs []event.FieldError) []string {
	var out []string
	for _, e := range errs {
		out = append(out, e.Field+":"+e.Rule)
	}
	slices.Sort(out)
	return out
}

func TestCompileRefusesInvalidSchemas(t *testing.T) {
	for _, tc := range []struct {
		name, schema, want string
	}{
		{"not an object", `true`, "schema:type"},
		{"not JSON", `{`, "schema:json"},
		{"bad keyword value", `{"type": "objekt"}`, "schema/type:"},
		{"minLength negative", `{"properties": {"a": {"minLength": -1}}}`, "schema/properties/a/minLength:"},
		{"another draft", `{"$schema": "http://json-schema.org/draft-07/schema#"}`, "schema/$schema:draft"},
		{"remote ref", `{"$ref": "https://example.com/s.json"}`, "schema:valid"},
		{"file ref", `{"$ref": "file:///etc/passwd"}`, "schema:valid"},
		{"bad pattern", `{"pattern": "("}`, "schema"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := eventtype.Compile(json.RawMessage(tc.schema))
			se, ok := err.(*eventtype.SchemaError)
			if !ok {
				t.Fatalf("error %v (%T), want a *SchemaError", err, err)
			}
			got := strings.Join(fields(se.Problems), " ")
			if !strings.Contains(got, tc.want) {
				t.Errorf("problems %s, want one with %s (%v)", got, tc.want, err)
			}
		})
	}
	if _, err := eventtype.Compile(json.RawMessage(`{"$schema": "https://json-schema.org/draft/2020-12/schema", "$defs": {"n": {"type": "integer"}}, "properties": {"a": {"$ref": "#/$defs/n"}}}`)); err != nil {
		t.Errorf("a valid schema with a local $ref: %v", err)
	}
}

func TestValidateListsEveryViolation(t *testing.T) {
	s, err := eventtype.Compile(json.RawMessage(`{
		"type": "object",
		"required": ["amount", "currency", "customer"],
		"properties": {
			"amount": {"type": "integer", "minimum": 0},
			"customer": {"type": "string"},
			"currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
			"items": {"type": "array", "items": {"type": "object", "required": ["sku"]}},
			"a/b": {"type": "boolean"},
			"kind": {"oneOf": [{"const": "x"}, {"const": "y"}]}
		},
		"additionalProperties": false
	}`))
	if err != nil {
		t.Fatal(err)
	}
	if v := s.Validate(json.RawMessage(`{"amount": 5, "currency": "EUR", "customer": "c"}`)); v != nil {
		t.Fatalf("a valid object: %v", v)
	}
	got := fields(s.Validate(json.RawMessage(`{"amount": -1, "currency": "eur", "items": [{}, {"sku": 1}, {}], "a/b": 1, "kind": "z", "extra": 1}`)))
	want := []string{"data/a~1b:type", "data/amount:minimum", "data/currency:pattern", "data/customer:required",
		"data/items/0/sku:required", "data/items/2/sku:required", "data/kind:oneOf", "data:additionalProperties"}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("violations\n%v\nwant\n%v", got, want)
	}
}

// exampleSchemas returns the example events of test/events with the data
// schema that test/events/event-spec.json gives their type, made draft
// 2020-12 (OpenAPI 3.0's nullable becomes a "null" type).
func exampleSchemas(t testing.TB) (events []event.Notification, schemas []json.RawMessage) {
	t.Helper()
	raw, err := os.ReadFile("../../test/events/event-spec.json")
	if err != nil {
		t.Fatal(err)
	}
	var spec struct {
		Components struct {
			Schemas map[string]any `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(raw, &spec); err != nil {
		t.Fatal(err)
	}
	notification := spec.Components.Schemas["Notification"].(map[string]any)
	refs := notification["x-gwook-event-types"].(map[string]any)
	paths, err := filepath.Glob("../../test/events/event-*.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range paths {
		if strings.HasSuffix(p, "event-spec.json") {
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var n event.Notification
		if err := json.Unmarshal(b, &n); err != nil {
			t.Fatal(err)
		}
		ref, ok := refs[n.Type].(string)
		if !ok {
			t.Fatalf("%s: the spec has no data schema for %s", p, n.Type)
		}
		schema := withoutNullable(spec.Components.Schemas[strings.TrimPrefix(ref, "#/components/schemas/")])
		sb, err := json.Marshal(schema)
		if err != nil {
			t.Fatal(err)
		}
		events = append(events, n)
		schemas = append(schemas, sb)
	}
	return events, schemas
}

// withoutNullable rewrites OpenAPI 3.0's "nullable": true as JSON Schema's
// type list with "null".
func withoutNullable(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, x := range v {
			if k == "properties" {
				props := map[string]any{}
				for name, p := range x.(map[string]any) {
					props[name] = withoutNullable(p)
				}
				out[k] = props
				continue
			}
			out[k] = withoutNullable(x)
		}
		if out["nullable"] == true {
			delete(out, "nullable")
			if typ, ok := out["type"].(string); ok {
				out["type"] = []any{typ, "null"}
			}
			if enum, ok := out["enum"].([]any); ok {
				out["enum"] = append(enum, nil)
			}
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = withoutNullable(x)
		}
		return out
	}
	return v
}

func TestExampleEventsMatchTheirSchemas(t *testing.T) {
	events, schemas := exampleSchemas(t)
	if len(events) < 7 {
		t.Fatalf("%d example events", len(events))
	}
	for i, n := range events {
		s, err := eventtype.Compile(schemas[i])
		if err != nil {
			t.Fatalf("%s: %v", n.Type, err)
		}
		if v := s.Validate(n.Data); v != nil {
			t.Errorf("%s: %v", n.Type, v)
		}
	}
}

// BenchmarkValidate measures checking the data of each example event
// against its type's schema, compiled once: the cost the pipeline adds to
// an event of a catalogued type with a schema.
func BenchmarkValidate(b *testing.B) {
	events, schemas := exampleSchemas(b)
	compiled := make([]*eventtype.Schema, len(schemas))
	for i, raw := range schemas {
		s, err := eventtype.Compile(raw)
		if err != nil {
			b.Fatal(err)
		}
		compiled[i] = s
	}
	b.Run("decode+validate", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			k := i % len(events)
			if v := compiled[k].Validate(events[k].Data); v != nil {
				b.Fatal(v)
			}
		}
	})
	decoded := make([]any, len(events))
	for i, n := range events {
		v, err := eventtype.Decode(n.Data)
		if err != nil {
			b.Fatal(err)
		}
		decoded[i] = v
	}
	b.Run("check", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			k := i % len(events)
			if _, ok := eventtype.Check(compiled[k], decoded[k]); !ok {
				b.Fatal("the check refuses an example")
			}
		}
	})
	// The library alone, which only data the check does not pass meets.
	b.Run("validate", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			k := i % len(events)
			if err := eventtype.ValidateDecoded(compiled[k], decoded[k]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if _, err := eventtype.Decode(events[i%len(events)].Data); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// decode reads numbers as json.Number (no precision lost) and refuses
// what is not one JSON value.
func TestDecode(t *testing.T) {
	v, err := eventtype.Decode([]byte(` {"a": [1, 12345678901234567890, -1.5e3, "s", true, false, null, {}], "b": {"c": []}} `))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(v)
	if want := `{"a":[1,12345678901234567890,-1.5e3,"s",true,false,null,{}],"b":{"c":[]}}`; string(got) != want {
		t.Errorf("decoded %s, want %s", got, want)
	}
	for _, bad := range []string{`{`, `{} {}`, `{"a": }`, `[1,]`, ``} {
		if _, err := eventtype.Decode([]byte(bad)); err == nil {
			t.Errorf("%q decoded without an error", bad)
		}
	}
}
