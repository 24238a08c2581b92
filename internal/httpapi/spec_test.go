package httpapi

import (
	"encoding/json"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/gwook/gwook/internal/filter"
	"github.com/gwook/gwook/internal/ingest"
	"github.com/gwook/gwook/internal/pipeline"
)

// specPath is the OpenAPI document of POST /notifications.
const specPath = "../../test/events/event-spec.json"

// The answers of POST /notifications are those the spec describes: every
// field of a success answer (Accepted), of a problem (Problem), of a
// Firehose request and of its answer is a property of its schema and the
// other way round, and the outcomes and
// filter rules an answer can carry are in the schema's enums.
func TestAnswersMatchSpec(t *testing.T) {
	raw, err := os.ReadFile(specPath)
	if err != nil {
		t.Fatal(err)
	}
	type property struct {
		Enum []string `json:"enum"`
	}
	var spec struct {
		Components struct {
			Schemas map[string]struct {
				Properties map[string]property `json:"properties"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(raw, &spec); err != nil {
		t.Fatalf("%s: %v", specPath, err)
	}
	for name, answer := range map[string]any{"Accepted": accepted{}, "Problem": Problem{}, "FirehoseResponse": firehoseAnswer{},
		"FirehoseRequest": ingest.FirehoseRequest{}} {
		schema, ok := spec.Components.Schemas[name]
		if !ok {
			t.Fatalf("%s has no schema %s", specPath, name)
		}
		fields := jsonFields(reflect.TypeOf(answer))
		for _, f := range fields {
			if _, ok := schema.Properties[f]; !ok {
				t.Errorf("%s: schema %s lacks the answer's field %q", specPath, name, f)
			}
		}
		for p := range schema.Properties {
			if !slices.Contains(fields, p) {
				t.Errorf("%s: schema %s has %q, which the answer never carries", specPath, name, p)
			}
		}
	}
	acceptedProps := spec.Components.Schemas["Accepted"].Properties
	// A dead-lettered event is answered with success whatever its outcome.
	for _, o := range []pipeline.Outcome{pipeline.Forwarded, pipeline.Filtered, pipeline.Duplicate, pipeline.NoApplication,
		pipeline.Invalid, pipeline.Rejected, pipeline.RateLimited, pipeline.Unavailable, pipeline.DedupUnavailable, pipeline.InFlight} {
		if !slices.Contains(acceptedProps["outcome"].Enum, string(o)) {
			t.Errorf("%s: Accepted.outcome lacks %q", specPath, o)
		}
	}
	for _, r := range []filter.Rule{pipeline.RuleArchivedType, pipeline.RuleGlobalTypes, filter.RuleIncludeTypes, filter.RuleExcludeTypes,
		filter.RuleExpression, filter.RuleExpressionError, filter.RuleInvalidFilter} {
		if !slices.Contains(acceptedProps["filter_rule"].Enum, string(r)) {
			t.Errorf("%s: Accepted.filter_rule lacks %q", specPath, r)
		}
	}
}

// jsonFields are the JSON names of the fields of struct type t.
func jsonFields(t reflect.Type) []string {
	var names []string
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name != "" && name != "-" {
			names = append(names, name)
		}
	}
	return names
}
