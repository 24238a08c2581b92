package events_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gwook/gwook/events"
)

// dataTypes gives the generated type of each data schema.
var dataTypes = map[string]func() any{
	"UserSignedUpData":       func() any { return new(events.UserSignedUpData) },
	"InvoicePaidData":        func() any { return new(events.InvoicePaidData) },
	"DeploymentFinishedData": func() any { return new(events.DeploymentFinishedData) },
	"ProjectMemberAddedData": func() any { return new(events.ProjectMemberAddedData) },
	"BuildFailedData":        func() any { return new(events.BuildFailedData) },
	"AlertTriggeredData":     func() any { return new(events.AlertTriggeredData) },
	"ProjectArchivedData":    func() any { return new(events.ProjectArchivedData) },
}

// schema is the part of an OpenAPI schema object that the tests read.
type schema struct {
	Type                 string             `json:"type"`
	Required             []string           `json:"required"`
	Nullable             bool               `json:"nullable"`
	Properties           map[string]*schema `json:"properties"`
	Items                *schema            `json:"items"`
	AdditionalProperties json.RawMessage    `json:"additionalProperties"`
}

// closed tells whether the schema refuses properties it does not name.
func (s *schema) closed() bool { return string(s.AdditionalProperties) == "false" }

type spec struct {
	Components struct {
		Schemas map[string]*schema `json:"schemas"`
	} `json:"components"`
	types map[string]string // event type -> data schema name
}

func readSpec(t *testing.T) spec {
	t.Helper()
	raw, err := os.ReadFile("../test/events/event-spec.json")
	if err != nil {
		t.Fatal(err)
	}
	var s spec
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatal(err)
	}
	var ext struct {
		Components struct {
			Schemas struct {
				Notification struct {
					Types map[string]string `json:"x-gwook-event-types"`
				}
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(raw, &ext); err != nil {
		t.Fatal(err)
	}
	s.types = map[string]string{}
	for typ, ref := range ext.Components.Schemas.Notification.Types {
		s.types[typ] = strings.TrimPrefix(ref, "#/components/schemas/")
	}
	return s
}

// Every data schema of the spec has its generated type here.
func TestEveryEventTypeHasAType(t *testing.T) {
	s := readSpec(t)
	if len(s.types) < 7 {
		t.Fatalf("%d event types in x-gwook-event-types", len(s.types))
	}
	for typ, name := range s.types {
		if _, ok := s.Components.Schemas[name]; !ok {
			t.Errorf("%s: no schema %s", typ, name)
		}
		if _, ok := dataTypes[name]; !ok {
			t.Errorf("%s: no generated type for %s in dataTypes", typ, name)
		}
	}
}

// TestExampleEventsDecode decodes the data of each example event of
// test/events into the generated type of its event type, refusing unknown
// fields where the schema does, checks that every property the schema
// requires is in the example and is a field that is always marshalled, that
// the fields are the schema's properties, and that the value marshals back
// to the same JSON: a field of the wrong type, a missing one or a lost
// null fails.
func TestExampleEventsDecode(t *testing.T) {
	s := readSpec(t)
	paths, err := filepath.Glob("../test/events/event-0*.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) < 7 {
		t.Fatalf("%d example events", len(paths))
	}
	for _, p := range paths {
		t.Run(filepath.Base(p), func(t *testing.T) {
			raw, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			var n events.Notification
			if err := json.Unmarshal(raw, &n); err != nil {
				t.Fatal(err)
			}
			var envelope struct {
				Data json.RawMessage `json:"data"`
			}
			if err := json.Unmarshal(raw, &envelope); err != nil {
				t.Fatal(err)
			}
			name, ok := s.types[n.Type]
			if !ok {
				t.Fatalf("type %s has no data schema", n.Type)
			}
			sch := s.Components.Schemas[name]
			v := dataTypes[name]()
			d := json.NewDecoder(bytes.NewReader(envelope.Data))
			if sch.closed() {
				d.DisallowUnknownFields()
			}
			if err := d.Decode(v); err != nil {
				t.Fatalf("into %T: %v", v, err)
			}

			var data any
			if err := json.Unmarshal(envelope.Data, &data); err != nil {
				t.Fatal(err)
			}
			checkRequired(t, name, sch, data)
			checkFields(t, name, sch, reflect.TypeOf(v).Elem())

			back, err := json.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			if !sameJSON(t, back, envelope.Data) {
				t.Errorf("%T marshals to\n%s\nnot the example's\n%s", v, back, envelope.Data)
			}
		})
	}
}

// checkRequired fails for each property the schema requires that the
// example lacks, at any depth.
func checkRequired(t *testing.T, at string, s *schema, v any) {
	t.Helper()
	switch v := v.(type) {
	case map[string]any:
		for _, r := range s.Required {
			if _, ok := v[r]; !ok {
				t.Errorf("%s: required %s missing from the example", at, r)
			}
		}
		for name, p := range s.Properties {
			if pv, ok := v[name]; ok {
				checkRequired(t, at+"."+name, p, pv)
			}
		}
	case []any:
		if s.Items != nil {
			for _, x := range v {
				checkRequired(t, at+"[]", s.Items, x)
			}
		}
	}
}

// checkFields fails unless the JSON fields of struct type typ are the
// properties of s, a required one without omitempty and a nullable one a
// pointer, at any depth.
func checkFields(t *testing.T, at string, s *schema, typ reflect.Type) {
	t.Helper()
	for typ.Kind() == reflect.Pointer || typ.Kind() == reflect.Slice {
		typ = typ.Elem()
		if s.Items != nil {
			s = s.Items
		}
	}
	if typ.Kind() != reflect.Struct || s.Properties == nil {
		return
	}
	var fields []string
	for f := range typ.Fields() {
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		fields = append(fields, name)
		p, ok := s.Properties[name]
		if !ok {
			t.Errorf("%s: field %s is not in the schema", at, name)
			continue
		}
		required := slices.Contains(s.Required, name)
		if required && strings.Contains(opts, "omitempty") {
			t.Errorf("%s: required %s is omitempty", at, name)
		}
		if (p.Nullable || !required) && f.Type.Kind() != reflect.Pointer && f.Type.Kind() != reflect.Map && f.Type.Kind() != reflect.Slice {
			t.Errorf("%s: %s is nullable or optional but a %s", at, name, f.Type)
		}
		if want, ok := goKinds[p.Type]; ok && !slices.Contains(want, elem(f.Type).Kind()) {
			t.Errorf("%s: %s is a %s in the schema but a %s", at, name, p.Type, f.Type)
		}
		checkFields(t, at+"."+name, p, f.Type)
	}
	for name := range s.Properties {
		if !slices.Contains(fields, name) {
			t.Errorf("%s: property %s has no field", at, name)
		}
	}
}

// goKinds are the kinds of Go type that hold a value of each JSON type
// without loss: float64 for number, since float32 rounds.
var goKinds = map[string][]reflect.Kind{
	"string":  {reflect.String},
	"boolean": {reflect.Bool},
	"integer": {reflect.Int, reflect.Int64},
	"number":  {reflect.Float64},
	"object":  {reflect.Struct, reflect.Map},
	"array":   {reflect.Slice},
}

// elem is typ without pointers; time.Time counts as a string.
func elem(typ reflect.Type) reflect.Type {
	for typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	if typ == reflect.TypeFor[time.Time]() {
		return reflect.TypeFor[string]()
	}
	return typ
}

func sameJSON(t *testing.T, a, b []byte) bool {
	t.Helper()
	var va, vb any
	for _, x := range []struct {
		raw []byte
		v   *any
	}{{a, &va}, {b, &vb}} {
		d := json.NewDecoder(bytes.NewReader(x.raw))
		d.UseNumber()
		if err := d.Decode(x.v); err != nil {
			t.Fatal(err)
		}
	}
	return reflect.DeepEqual(va, vb)
}
