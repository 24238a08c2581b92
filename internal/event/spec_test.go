package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	"github.com/pb33f/libopenapi-validator/config"
	valerrors "github.com/pb33f/libopenapi-validator/errors"
	"github.com/pb33f/libopenapi-validator/schema_validation"
	v3 "github.com/pb33f/libopenapi/datamodel/high/v3"
)

const (
	specPath      = "../../test/events/event-spec.json"
	examplesGlob  = "../../test/events/event-[0-9]*.json"
	eventTypesExt = "x-gwook-event-types"
	schemaRefBase = "#/components/schemas/"
)

// specProperty holds the keywords of a Notification property that the Go
// validation rules correspond to.
type specProperty struct {
	Type      string `json:"type"`
	MinLength *int   `json:"minLength"`
	MaxLength *int   `json:"maxLength"`
	Pattern   string `json:"pattern"`
	Format    string `json:"format"`
}

type specNotification struct {
	Type                 string                  `json:"type"`
	Required             []string                `json:"required"`
	AdditionalProperties *bool                   `json:"additionalProperties"`
	Properties           map[string]specProperty `json:"properties"`
	EventTypes           map[string]string       `json:"x-gwook-event-types"`
}

// spec is the event spec, read both as plain JSON for its keywords and as an
// OpenAPI model for validation.
type spec struct {
	notification specNotification
	schemaNames  []string
	plainSchemas map[string]docSchema
	model        *v3.Document
	requests     validator.Validator
	schemas      schema_validation.SchemaValidator
}

func loadSpec(t *testing.T) *spec {
	t.Helper()
	raw, err := os.ReadFile(specPath)
	if err != nil {
		t.Fatal(err)
	}
	var plain struct {
		Components struct {
			Schemas map[string]json.RawMessage `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(raw, &plain); err != nil {
		t.Fatalf("%s: %v", specPath, err)
	}
	s := &spec{schemaNames: slices.Sorted(maps.Keys(plain.Components.Schemas)), plainSchemas: map[string]docSchema{}}
	for name, schema := range plain.Components.Schemas {
		var d docSchema
		if err := json.Unmarshal(schema, &d); err != nil {
			t.Fatalf("%s: components.schemas.%s: %v", specPath, name, err)
		}
		s.plainSchemas[name] = d
	}
	if err := json.Unmarshal(plain.Components.Schemas["Notification"], &s.notification); err != nil {
		t.Fatalf("%s: components.schemas.Notification: %v", specPath, err)
	}
	doc, err := libopenapi.NewDocument(raw)
	if err != nil {
		t.Fatalf("%s: %v", specPath, err)
	}
	model, err := doc.BuildV3Model()
	if err != nil {
		t.Fatalf("%s: %v", specPath, err)
	}
	s.model = &model.Model
	// Format assertions make format: date-time and format: email count, as
	// they do for the time field's rfc3339 rule in Go. Credentials are not
	// what these tests are about.
	requests, errs := validator.NewValidator(doc, config.WithFormatAssertions(), config.WithoutSecurityValidation())
	if len(errs) > 0 {
		t.Fatalf("%s: %v", specPath, errors.Join(errs...))
	}
	s.requests = requests
	s.schemas = schema_validation.NewSchemaValidator(config.WithFormatAssertions())
	return s
}

// validateRequest validates body as the request body of POST /notifications.
func (s *spec) validateRequest(t *testing.T, body []byte) []*valerrors.ValidationError {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "/notifications", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	_, errs := s.requests.ValidateHttpRequestSync(req)
	return errs
}

// dataSchema returns the name of the schema that x-gwook-event-types names
// for eventType.
func (s *spec) dataSchema(t *testing.T, eventType string) string {
	t.Helper()
	ref, ok := s.notification.EventTypes[eventType]
	if !ok {
		t.Fatalf("%s has no entry for event type %q", eventTypesExt, eventType)
	}
	name, ok := strings.CutPrefix(ref, schemaRefBase)
	if !ok || !slices.Contains(s.schemaNames, name) {
		t.Fatalf("%s[%q] = %q, want %s<one of %v>", eventTypesExt, eventType, ref, schemaRefBase, s.schemaNames)
	}
	return name
}

// validateSchema validates payload against components.schemas.name.
func (s *spec) validateSchema(t *testing.T, name string, payload []byte) []*valerrors.ValidationError {
	t.Helper()
	proxy := s.model.Components.Schemas.GetOrZero(name)
	if proxy == nil {
		t.Fatalf("components.schemas has no %s", name)
	}
	_, errs := s.schemas.ValidateSchemaBytesWithVersion(proxy.Schema(), payload, 3.0)
	return errs
}

// docSchema is the part of a schema that says which members it documents.
type docSchema struct {
	Ref                  string               `json:"$ref"`
	Description          string               `json:"description"`
	Properties           map[string]docSchema `json:"properties"`
	Items                *docSchema           `json:"items"`
	AdditionalProperties json.RawMessage      `json:"additionalProperties"`
}

// undocumented returns the paths of the members of value that schema does
// not describe, or describes without a description.
func undocumented(schema docSchema, value any, path string) []string {
	var missing []string
	switch v := value.(type) {
	case map[string]any:
		if schema.Properties == nil {
			return nil // a map keyed by name, e.g. labels
		}
		for _, key := range slices.Sorted(maps.Keys(v)) {
			prop, ok := schema.Properties[key]
			if !ok || prop.Description == "" {
				missing = append(missing, path+"."+key)
				continue
			}
			missing = append(missing, undocumented(prop, v[key], path+"."+key)...)
		}
	case []any:
		if schema.Items != nil {
			for i, item := range v {
				missing = append(missing, undocumented(*schema.Items, item, path+"["+strconv.Itoa(i)+"]")...)
			}
		}
	}
	return missing
}

// validateData validates data against the schema that x-gwook-event-types
// names for eventType.
func (s *spec) validateData(t *testing.T, eventType string, data []byte) []*valerrors.ValidationError {
	t.Helper()
	return s.validateSchema(t, s.dataSchema(t, eventType), data)
}

func describe(errs []*valerrors.ValidationError) string {
	var b strings.Builder
	for _, e := range errs {
		b.WriteString("\n\t" + e.Message + ": " + e.Reason)
		for _, f := range e.SchemaValidationErrors {
			b.WriteString("\n\t\t" + f.FieldPath + ": " + f.Reason)
		}
	}
	return b.String()
}

type example struct {
	name string
	raw  []byte
}

func loadExamples(t *testing.T) []example {
	t.Helper()
	paths, err := filepath.Glob(examplesGlob)
	if err != nil {
		t.Fatal(err)
	}
	var examples []example
	for _, p := range paths {
		raw, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		examples = append(examples, example{name: filepath.Base(p), raw: raw})
	}
	if len(examples) < 6 {
		t.Fatalf("found %d examples matching %s, want at least 6", len(examples), examplesGlob)
	}
	return examples
}

// jsonFields returns the JSON names of Notification's fields with their
// struct fields, leaving out those tagged json:"-".
func jsonFields(t *testing.T) map[string]reflect.StructField {
	t.Helper()
	fields := map[string]reflect.StructField{}
	for f := range reflect.TypeFor[Notification]().Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch name {
		case "-":
			continue
		case "":
			t.Errorf("Notification.%s has no json name", f.Name)
			continue
		}
		fields[name] = f
	}
	return fields
}

func TestSpecRequiredMatchesModel(t *testing.T) {
	s := loadSpec(t)
	want := slices.Sorted(maps.Keys(jsonFields(t)))
	if got := slices.Sorted(slices.Values(s.notification.Required)); !slices.Equal(got, want) {
		t.Errorf("Notification.required = %v, want the JSON fields of the Go type %v", got, want)
	}
	if got := slices.Sorted(maps.Keys(s.notification.Properties)); !slices.Equal(got, want) {
		t.Errorf("Notification.properties = %v, want the JSON fields of the Go type %v", got, want)
	}
	if s.notification.Type != "object" {
		t.Errorf("Notification.type = %q, want object", s.notification.Type)
	}
	if ap := s.notification.AdditionalProperties; ap == nil || !*ap {
		t.Errorf("Notification.additionalProperties is not true; unknown fields are forwarded, so the spec must allow them")
	}
}

// TestSpecPropertiesMatchRules derives, from each field's validate tag, the
// keywords the spec must give that property, and compares them.
func TestSpecPropertiesMatchRules(t *testing.T) {
	s := loadSpec(t)
	for name, f := range jsonFields(t) {
		t.Run(name, func(t *testing.T) {
			want := specPropertyFor(t, f)
			got, ok := s.notification.Properties[name]
			if !ok {
				t.Fatalf("Notification.properties has no %q", name)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Notification.properties.%s = %s, want %s (from validate:%q)", name, show(got), show(want), f.Tag.Get("validate"))
			}
		})
	}
}

func specPropertyFor(t *testing.T, f reflect.StructField) specProperty {
	t.Helper()
	var p specProperty
	if f.Type.Kind() == reflect.String {
		p.Type = "string"
	}
	one := 1
	for rule := range strings.SplitSeq(f.Tag.Get("validate"), ",") {
		name, param, _ := strings.Cut(rule, "=")
		switch name {
		case "required":
			if p.Type == "string" {
				p.MinLength = &one
			}
		case "max":
			n, err := strconv.Atoi(param)
			if err != nil {
				t.Fatalf("%s: rule %q: %v", f.Name, rule, err)
			}
			p.MaxLength = &n
		case "svixid":
			p.Pattern = svixIDPattern
			if p.MaxLength == nil || *p.MaxLength != MaxSvixIDLength {
				t.Errorf("%s: svixid needs max=%d before it, as Svix's limit", f.Name, MaxSvixIDLength)
			}
		case "rfc3339":
			p.Format = "date-time"
			p.Pattern = rfc3339Pattern.String()
		case "jsonobject":
			p.Type = "object"
		default:
			t.Fatalf("%s: rule %q has no counterpart in the spec; teach this test about it", f.Name, rule)
		}
	}
	return p
}

func show(p specProperty) string {
	b, err := json.Marshal(p)
	if err != nil {
		return err.Error()
	}
	return string(b)
}

func TestSpecDocumentValid(t *testing.T) {
	s := loadSpec(t)
	if ok, errs := s.requests.ValidateDocument(); !ok {
		t.Errorf("%s is not a valid OpenAPI document:%s", specPath, describe(errs))
	}
}

func TestSpecEventTypesResolve(t *testing.T) {
	s := loadSpec(t)
	if len(s.notification.EventTypes) == 0 {
		t.Fatalf("Notification has no %s", eventTypesExt)
	}
	for eventType, ref := range s.notification.EventTypes {
		if !ValidSvixID(eventType) {
			t.Errorf("%s key %q is not a valid event type", eventTypesExt, eventType)
		}
		name, ok := strings.CutPrefix(ref, schemaRefBase)
		if !ok || !slices.Contains(s.schemaNames, name) {
			t.Errorf("%s[%q] = %q, want %s<one of %v>", eventTypesExt, eventType, ref, schemaRefBase, s.schemaNames)
		}
	}
}

func TestExamplesValid(t *testing.T) {
	s := loadSpec(t)
	ids := map[string]string{}
	types := map[string]string{}
	for _, ex := range loadExamples(t) {
		t.Run(ex.name, func(t *testing.T) {
			if errs := s.validateRequest(t, ex.raw); len(errs) > 0 {
				t.Errorf("spec rejects the example:%s", describe(errs))
			}
			n, err := Decode(ex.raw)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if errs := s.validateData(t, n.Type, n.Data); len(errs) > 0 {
				t.Errorf("data does not match the schema for %s:%s", n.Type, describe(errs))
			}
			var data any
			if err := json.Unmarshal(n.Data, &data); err != nil {
				t.Fatal(err)
			}
			if missing := undocumented(s.plainSchemas[s.dataSchema(t, n.Type)], data, "data"); len(missing) > 0 {
				t.Errorf("members not described in the schema for %s: %v", n.Type, missing)
			}
			if other, dup := ids[n.ID]; dup {
				t.Errorf("id %s is also used by %s", n.ID, other)
			}
			ids[n.ID] = ex.name
			if other, dup := types[n.Type]; dup {
				t.Errorf("type %s is also used by %s", n.Type, other)
			}
			types[n.Type] = ex.name
			if !ValidSvixID(n.UserID) {
				t.Errorf("user_id %q is not a valid Svix application UID", n.UserID)
			}
		})
	}
	for eventType := range s.notification.EventTypes {
		if _, ok := types[eventType]; !ok {
			t.Errorf("%s documents %s but no example has that type", eventTypesExt, eventType)
		}
	}
}

// TestSpecAndDecodeAgree changes one thing in a valid event at a time and
// checks that the spec and Decode both accept or both reject the result.
func TestSpecAndDecodeAgree(t *testing.T) {
	s := loadSpec(t)
	base := loadExamples(t)[0].raw
	// field is the field both must blame; "" means the event is valid.
	cases := []struct {
		name  string
		edit  func(m map[string]any)
		field string
	}{
		{"unchanged", func(map[string]any) {}, ""},
		{"extra field", func(m map[string]any) { m["trace_id"] = "4bf92f35"; m["meta"] = map[string]any{"n": 1} }, ""},
		{"id 256 characters", set("id", strings.Repeat("a", 256)), ""},
		{"type with every allowed character", set("type", "Ab-9_z.x"), ""},
		{"source with 1024 two-byte characters", set("source", strings.Repeat("é", 1024)), ""},
		{"time with fraction and offset", set("time", "2026-01-02T15:04:05.999999999-07:30"), ""},
		{"time on a leap day", set("time", "2024-02-29T23:59:59+14:00"), ""},
		{"data empty object", set("data", map[string]any{}), ""},
		{"data nested", set("data", map[string]any{"a": []any{1, nil, map[string]any{}}}), ""},
		{"missing id", del("id"), "id"},
		{"missing type", del("type"), "type"},
		{"missing source", del("source"), "source"},
		{"missing project", del("project"), "project"},
		{"missing user_id", del("user_id"), "user_id"},
		{"missing time", del("time"), "time"},
		{"missing data", del("data"), "data"},
		{"id spelled ID", rename("id", "ID"), "id"},
		{"empty id", set("id", ""), "id"},
		{"empty source", set("source", ""), "source"},
		{"empty user_id", set("user_id", ""), "user_id"},
		{"id with space", set("id", "evt 1"), "id"},
		{"id with slash", set("id", "evt/1"), "id"},
		{"id with unicode", set("id", "évt_1"), "id"},
		{"id with trailing newline", set("id", "evt_1\n"), "id"},
		{"id 257 characters", set("id", strings.Repeat("a", 257)), "id"},
		{"type with colon", set("type", "user:signed_up"), "type"},
		{"type 257 characters", set("type", strings.Repeat("t", 257)), "type"},
		{"source 1025 characters", set("source", strings.Repeat("s", 1025)), "source"},
		{"project 1025 characters", set("project", strings.Repeat("p", 1025)), "project"},
		{"user_id 257 characters", set("user_id", strings.Repeat("u", 257)), "user_id"},
		{"time with space", set("time", "2026-01-02 15:04:05Z"), "time"},
		{"time without offset", set("time", "2026-01-02T15:04:05"), "time"},
		{"time yesterday", set("time", "yesterday"), "time"},
		{"time one-digit hour", set("time", "2026-01-02T5:04:05Z"), "time"},
		{"time comma fraction", set("time", "2026-01-02T15:04:05,5Z"), "time"},
		{"time offset hour 24", set("time", "2026-01-02T15:04:05+24:00"), "time"},
		{"time offset minute 60", set("time", "2026-01-02T15:04:05+01:60"), "time"},
		{"time lower-case t", set("time", "2026-01-02t15:04:05Z"), "time"},
		{"time leap second", set("time", "2016-12-31T23:59:60Z"), "time"},
		{"time February 30", set("time", "2026-02-30T00:00:00Z"), "time"},
		{"time as number", set("time", 1767366245), "time"},
		{"id as number", set("id", 42), "id"},
		{"id null", set("id", nil), "id"},
		{"data array", set("data", []any{}), "data"},
		{"data string", set("data", "{}"), "data"},
		{"data number", set("data", 1), "data"},
		{"data null", set("data", nil), "data"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			body := editJSON(t, base, tc.edit)
			specErrs := s.validateRequest(t, body)
			_, decodeErr := Decode(body)
			if tc.field == "" {
				if len(specErrs) > 0 {
					t.Errorf("spec rejects a valid event:%s", describe(specErrs))
				}
				if decodeErr != nil {
					t.Errorf("Decode rejects a valid event: %v", decodeErr)
				}
				return
			}
			if !specBlames(specErrs, tc.field) {
				t.Errorf("spec does not reject %s:%s", tc.field, describe(specErrs))
			}
			var invalid *InvalidError
			if !errors.As(decodeErr, &invalid) || !slices.ContainsFunc(invalid.Fields, func(f FieldError) bool { return f.Field == tc.field }) {
				t.Errorf("Decode does not reject %s: %v", tc.field, decodeErr)
			}
		})
	}
}

// specBlames reports whether errs include a schema failure of field: a value
// at $.field, or field missing from the object.
func specBlames(errs []*valerrors.ValidationError, field string) bool {
	for _, e := range errs {
		for _, f := range e.SchemaValidationErrors {
			if f.FieldPath == "$."+field || strings.Contains(f.Reason, "missing property '"+field+"'") {
				return true
			}
		}
	}
	return false
}

func set(key string, value any) func(map[string]any) {
	return func(m map[string]any) { m[key] = value }
}

func del(key string) func(map[string]any) {
	return func(m map[string]any) { delete(m, key) }
}

func rename(from, to string) func(map[string]any) {
	return func(m map[string]any) { m[to] = m[from]; delete(m, from) }
}

func editJSON(t *testing.T, raw []byte, edit func(map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestSpecFieldErrorMatchesModel checks the spec's FieldError, the entries of
// a 400's errors, against event.FieldError and real Decode output.
func TestSpecFieldErrorMatchesModel(t *testing.T) {
	s := loadSpec(t)
	var want []string
	for f := range reflect.TypeFor[FieldError]().Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		want = append(want, name)
	}
	slices.Sort(want)
	if got := slices.Sorted(maps.Keys(s.plainSchemas["FieldError"].Properties)); !slices.Equal(got, want) {
		t.Errorf("FieldError.properties = %v, want the JSON fields of event.FieldError %v", got, want)
	}
	_, err := Decode([]byte(`{"id": 1, "type": "a b", "time": "yesterday", "data": []}`))
	var invalid *InvalidError
	if !errors.As(err, &invalid) || len(invalid.Fields) == 0 {
		t.Fatalf("Decode error %v lists no fields", err)
	}
	for _, fe := range invalid.Fields {
		b, err := json.Marshal(fe)
		if err != nil {
			t.Fatal(err)
		}
		if errs := s.validateSchema(t, "FieldError", b); len(errs) > 0 {
			t.Errorf("%s does not match FieldError:%s", b, describe(errs))
		}
	}
}

func TestSpecDescribesEveryField(t *testing.T) {
	s := loadSpec(t)
	for _, name := range s.schemaNames {
		for _, path := range undescribed(t, s.plainSchemas[name], name) {
			t.Errorf("%s has no description", path)
		}
	}
}

// undescribed returns the paths of schema and of the schemas inside it that
// have no description; a $ref is described where it points.
func undescribed(t *testing.T, schema docSchema, path string) []string {
	t.Helper()
	if schema.Ref != "" {
		return nil
	}
	var missing []string
	if schema.Description == "" {
		missing = append(missing, path)
	}
	for _, key := range slices.Sorted(maps.Keys(schema.Properties)) {
		missing = append(missing, undescribed(t, schema.Properties[key], path+"."+key)...)
	}
	if schema.Items != nil {
		missing = append(missing, undescribed(t, *schema.Items, path+"[]")...)
	}
	if bytes.HasPrefix(schema.AdditionalProperties, []byte("{")) {
		var values docSchema
		if err := json.Unmarshal(schema.AdditionalProperties, &values); err != nil {
			t.Fatalf("%s.additionalProperties: %v", path, err)
		}
		missing = append(missing, undescribed(t, values, path+".*")...)
	}
	return missing
}

// TestSvixIDCharsMatchPattern checks the byte table ValidSvixID uses against
// the pattern the spec states, for every byte.
func TestSvixIDCharsMatchPattern(t *testing.T) {
	pattern := regexp.MustCompile(svixIDPattern)
	for b := range 256 {
		s := string([]byte{byte(b)})
		if want := pattern.MatchString(s); ValidSvixID(s) != want {
			t.Errorf("ValidSvixID(%q) = %v, the pattern says %v", s, !want, want)
		}
	}
	if !ValidSvixID("evt_01J.Q-3") || ValidSvixID("evt 1") || ValidSvixID(strings.Repeat("a", MaxSvixIDLength+1)) {
		t.Error("ValidSvixID disagrees with the pattern and the length limit on whole ids")
	}
}
