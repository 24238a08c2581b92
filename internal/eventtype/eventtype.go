// Package eventtype compiles the JSON Schemas of the catalogue of event types
// (draft 2020-12) and checks an event's data against them.
//
// The library is github.com/santhosh-tekuri/jsonschema/v6: it passes the
// whole official JSON Schema test suite for draft 2020-12, validates a
// schema against the draft's meta-schema when it compiles it (so an invalid
// schema is refused with every problem listed), uses Go's regexp (RE2:
// linear time, so a schema's pattern cannot stall a replica), and reports
// each violation with its instance location and keyword. It is the only
// JSON Schema validator for draft 2020-12 among the modules this project
// draws on (github.com/xeipuuv/gojsonschema stops at draft 7, and
// github.com/invopop/jsonschema generates schemas rather than checking
// them). github.com/kaptinlin/jsonschema (v0.9.8) and
// github.com/google/jsonschema-go (v0.4.3) were measured beside it on the
// example events: 3.6 and 1.7 times as many allocations (203 and 96 against
// 56) and slower, and google's stops at the first violation.
//
// Validate decodes the data (see decode), then runs the schema's quick
// check (see check), which passes valid data of a plain schema without the
// library and without allocating. Only data the check does not pass, or a
// schema with keywords the check does not cover, goes to the library, which
// lists the violations: the answers are the library's in every case.
// BenchmarkValidate measures it on the seven example events of test/events
// with the data schemas of test/events/event-spec.json: 15 allocations per
// event (14 of them the decode), against 92 when every event went through
// the library (36 to decode with jsontext's token decoder, 56 to validate,
// much of it big.Rat arithmetic for numbers and the bookkeeping of
// evaluated properties); README.md gives the times.
//
// A schema is compiled once, when the catalog loads or reloads its type;
// Validate then only walks the compiled form. A schema never loads anything:
// a $ref that points outside the schema itself (another URL, a file) is a
// compile error, so a schema cannot make Gwook read files or call out.
package eventtype

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"github.com/gwook/gwook/internal/event"
)

// Draft is the $schema of draft 2020-12, the only draft a schema may name.
const Draft = "https://json-schema.org/draft/2020-12/schema"

// schemaURL is the base URL of every compiled schema; it is never fetched.
const schemaURL = "urn:gwook:event-type-schema"

// printer writes the violations' details in English.
var printer = message.NewPrinter(language.English)

// Schema is a compiled JSON Schema of an event type's data. It is immutable
// and safe for concurrent use.
type Schema struct {
	compiled *jsonschema.Schema
	// check passes valid data without the library; nil when the schema
	// uses keywords it does not cover.
	check *check
}

// Type is what the pipeline needs of a catalogued event type.
type Type struct {
	// Archived types are dropped as filtered.
	Archived bool
	// Schema checks the events' data; nil when the type has none.
	Schema *Schema
	// Err is set when the stored schema no longer compiles: the type's
	// events are then invalid until the schema is replaced, since a schema
	// exists to keep malformed data out.
	Err error
}

// SchemaError lists every problem that stops a schema from compiling, each
// with a field "schema" followed by the JSON Pointer of the problem within
// the schema.
type SchemaError struct {
	Problems []event.FieldError
}

func (e *SchemaError) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.Field + ": " + p.Detail
	}
	return "not a valid JSON Schema (draft 2020-12): " + strings.Join(parts, "; ")
}

// refusingLoader loads no URL: schemas are self-contained.
type refusingLoader struct{}

func (refusingLoader) Load(url string) (any, error) {
	return nil, fmt.Errorf("a schema can only refer to itself, not to %s", url)
}

// Compile checks raw as a JSON Schema of draft 2020-12 and compiles it. A
// schema that is not valid is a *SchemaError.
func Compile(raw json.RawMessage) (*Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, &SchemaError{Problems: []event.FieldError{{Field: "schema", Rule: "json", Detail: "not JSON: " + err.Error()}}}
	}
	obj, ok := doc.(map[string]any)
	if !ok {
		return nil, &SchemaError{Problems: []event.FieldError{{Field: "schema", Rule: "type", Detail: "a schema of event data is a JSON object"}}}
	}
	if d, ok := obj["$schema"]; ok && d != Draft {
		return nil, &SchemaError{Problems: []event.FieldError{{Field: "schema/$schema", Rule: "draft",
			Detail: "must be " + Draft + " or absent: Gwook takes draft 2020-12 only"}}}
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.UseLoader(refusingLoader{})
	if err := c.AddResource(schemaURL, doc); err != nil {
		return nil, &SchemaError{Problems: []event.FieldError{{Field: "schema", Rule: "valid", Detail: err.Error()}}}
	}
	compiled, err := c.Compile(schemaURL)
	if err != nil {
		return nil, compileError(err)
	}
	return &Schema{compiled: compiled, check: compileCheck(doc)}, nil
}

// compileError turns the library's error into a *SchemaError: one problem
// per violation of the meta-schema, or one for anything else (a $ref that
// cannot be resolved, a pattern that is not a regular expression).
func compileError(err error) *SchemaError {
	var meta *jsonschema.SchemaValidationError
	var verr *jsonschema.ValidationError
	if errors.As(err, &meta) && errors.As(meta.Err, &verr) {
		return &SchemaError{Problems: violations(verr, "schema")}
	}
	detail := err.Error()
	// The library names the internal base URL; the caller knows the schema
	// as "schema".
	detail = strings.ReplaceAll(detail, schemaURL, "schema")
	return &SchemaError{Problems: []event.FieldError{{Field: "schema", Rule: "valid", Detail: detail}}}
}

// Validate checks data, a JSON object, against s and returns every
// violation, each with a field "data" followed by the JSON Pointer of the
// offending value within data, and a rule naming the schema keyword that it
// breaks; none when data is valid.
func (s *Schema) Validate(data json.RawMessage) []event.FieldError {
	v, err := decode(data)
	if err != nil {
		return []event.FieldError{{Field: "data", Rule: "json", Detail: "not JSON: " + err.Error()}}
	}
	if s.check != nil && s.check.ok(v) {
		return nil
	}
	err = s.compiled.Validate(v)
	if err == nil {
		return nil
	}
	var verr *jsonschema.ValidationError
	if !errors.As(err, &verr) {
		return []event.FieldError{{Field: "data", Rule: "schema", Detail: err.Error()}}
	}
	return violations(verr, "data")
}

// violations flattens the tree of a validation error into its leaves: each
// one broken rule. A failed anyOf or oneOf is one violation (none of its
// branches is the one that should have held), and a missing required
// property is one violation per property.
func violations(root *jsonschema.ValidationError, field string) []event.FieldError {
	var out []event.FieldError
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		switch k := e.ErrorKind.(type) {
		case *kind.AnyOf, *kind.OneOf:
			out = append(out, violation(e, field))
			return
		case *kind.Required:
			for _, name := range k.Missing {
				out = append(out, event.FieldError{Field: field + pointer(append(slices.Clone(e.InstanceLocation), name)),
					Rule: "required", Detail: "missing property"})
			}
			return
		}
		if len(e.Causes) == 0 {
			out = append(out, violation(e, field))
			return
		}
		for _, c := range e.Causes {
			walk(c)
		}
	}
	walk(root)
	return out
}

func violation(e *jsonschema.ValidationError, field string) event.FieldError {
	rule := "schema" // a false schema, or a whole-schema failure
	if kw := e.ErrorKind.KeywordPath(); len(kw) > 0 {
		rule = kw[len(kw)-1]
	}
	return event.FieldError{Field: field + pointer(e.InstanceLocation), Rule: rule, Detail: e.ErrorKind.LocalizedString(printer)}
}

// pointer is the JSON Pointer of a location, "" for the root.
func pointer(tokens []string) string {
	var b strings.Builder
	for _, t := range tokens {
		b.WriteByte('/')
		t = strings.ReplaceAll(t, "~", "~0")
		b.WriteString(strings.ReplaceAll(t, "/", "~1"))
	}
	return b.String()
}
