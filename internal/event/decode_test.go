package event_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/gwook/gwook/internal/event"
)

const typicalExample = "../../test/events/event-03.json"

// validFields are the members of a valid event; tests build bodies from them.
func validFields() map[string]any {
	return map[string]any{
		"id":      "evt_01JQ3K5V8M2N4P6R8T0W2Y4A6C",
		"type":    "user.signed_up",
		"source":  "accounts-service",
		"project": "acme-web",
		"user_id": "usr_2xK9mQ4vL7pR",
		"time":    "2026-03-02T08:15:42Z",
		"data":    map[string]any{"plan": "pro"},
	}
}

// eventWith returns a valid event with the given members replaced; a nil
// value (untyped) deletes the member, and null is written as jsonNull.
func eventWith(t *testing.T, changes map[string]any) []byte {
	t.Helper()
	m := validFields()
	for k, v := range changes {
		switch v {
		case nil:
			delete(m, k)
		case jsonNull:
			m[k] = nil
		default:
			m[k] = v
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type nullValue struct{}

// jsonNull stands for a member whose value is JSON null.
var jsonNull = nullValue{}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// rules renders the field and rule of each violation as "field:rule".
func rules(fields []event.FieldError) []string {
	out := make([]string, len(fields))
	for i, f := range fields {
		out[i] = f.Field + ":" + f.Rule
	}
	return out
}

func asInvalid(t *testing.T, err error) *event.InvalidError {
	t.Helper()
	var invalid *event.InvalidError
	if !errors.As(err, &invalid) {
		t.Fatalf("error %v (%T) is not an *event.InvalidError", err, err)
	}
	if invalid.Reason == "" {
		t.Errorf("InvalidError has an empty Reason: %+v", invalid)
	}
	for _, f := range invalid.Fields {
		if f.Field == "" || f.Rule == "" || f.Detail == "" {
			t.Errorf("FieldError %+v has an empty part", f)
		}
	}
	return invalid
}

// TestDecodeFieldRules checks the exact field:rule pairs, in field order,
// for events that are well-formed JSON objects.
func TestDecodeFieldRules(t *testing.T) {
	cases := []struct {
		name    string
		changes map[string]any
		want    []string
	}{
		{"valid", nil, nil},
		{"missing id", map[string]any{"id": nil}, []string{"id:required"}},
		{"missing type", map[string]any{"type": nil}, []string{"type:required"}},
		{"missing source", map[string]any{"source": nil}, []string{"source:required"}},
		{"missing project", map[string]any{"project": nil}, []string{"project:required"}},
		{"missing user_id", map[string]any{"user_id": nil}, []string{"user_id:required"}},
		{"missing time", map[string]any{"time": nil}, []string{"time:required"}},
		{"missing data", map[string]any{"data": nil}, []string{"data:required"}},
		{"empty strings", map[string]any{"id": "", "type": "", "source": "", "project": "", "user_id": "", "time": ""},
			[]string{"id:required", "type:required", "source:required", "project:required", "user_id:required", "time:required"}},
		{"id null", map[string]any{"id": jsonNull}, []string{"id:required"}},

		{"id with space", map[string]any{"id": "evt 1"}, []string{"id:svixid"}},
		{"id with slash", map[string]any{"id": "evt/1"}, []string{"id:svixid"}},
		{"id with unicode", map[string]any{"id": "évt_1"}, []string{"id:svixid"}},
		{"id with emoji", map[string]any{"id": "evt_🎉"}, []string{"id:svixid"}},
		{"id with trailing newline", map[string]any{"id": "evt_1\n"}, []string{"id:svixid"}},
		{"type with space", map[string]any{"type": "user signed_up"}, []string{"type:svixid"}},
		{"type with slash", map[string]any{"type": "user/signed_up"}, []string{"type:svixid"}},
		{"type with unicode", map[string]any{"type": "usér.signed_up"}, []string{"type:svixid"}},
		{"id and type with every allowed character", map[string]any{"id": "AZaz09-_.", "type": "-._"}, nil},
		{"id 256 characters", map[string]any{"id": strings.Repeat("a", 256)}, nil},
		{"id 257 characters", map[string]any{"id": strings.Repeat("a", 257)}, []string{"id:max"}},
		{"type 256 characters", map[string]any{"type": strings.Repeat("t", 256)}, nil},
		{"type 257 characters", map[string]any{"type": strings.Repeat("t", 257)}, []string{"type:max"}},
		{"source 1024 characters", map[string]any{"source": strings.Repeat("s", 1024)}, nil},
		{"source 1024 two-byte characters", map[string]any{"source": strings.Repeat("é", 1024)}, nil},
		{"source 1025 characters", map[string]any{"source": strings.Repeat("s", 1025)}, []string{"source:max"}},
		{"project 1024 characters", map[string]any{"project": strings.Repeat("p", 1024)}, nil},
		{"project 1025 characters", map[string]any{"project": strings.Repeat("p", 1025)}, []string{"project:max"}},
		{"user_id 256 characters", map[string]any{"user_id": strings.Repeat("u", 256)}, nil},
		{"user_id 257 characters", map[string]any{"user_id": strings.Repeat("u", 257)}, []string{"user_id:max"}},

		{"time with space", map[string]any{"time": "2026-01-02 15:04:05"}, []string{"time:rfc3339"}},
		{"time yesterday", map[string]any{"time": "yesterday"}, []string{"time:rfc3339"}},
		{"time without offset", map[string]any{"time": "2026-01-02T15:04:05"}, []string{"time:rfc3339"}},
		{"time without seconds", map[string]any{"time": "2026-01-02T15:04Z"}, []string{"time:rfc3339"}},
		{"time date only", map[string]any{"time": "2026-01-02"}, []string{"time:rfc3339"}},
		{"time unix seconds", map[string]any{"time": "1767366245"}, []string{"time:rfc3339"}},
		{"time one-digit hour", map[string]any{"time": "2026-01-02T5:04:05Z"}, []string{"time:rfc3339"}},
		{"time comma fraction", map[string]any{"time": "2026-01-02T15:04:05,5Z"}, []string{"time:rfc3339"}},
		{"time offset without colon", map[string]any{"time": "2026-01-02T15:04:05+0100"}, []string{"time:rfc3339"}},
		{"time offset hour 24", map[string]any{"time": "2026-01-02T15:04:05+24:00"}, []string{"time:rfc3339"}},
		{"time offset minute 60", map[string]any{"time": "2026-01-02T15:04:05+01:60"}, []string{"time:rfc3339"}},
		{"time lower-case t and z", map[string]any{"time": "2026-01-02t15:04:05z"}, []string{"time:rfc3339"}},
		{"time leap second", map[string]any{"time": "2016-12-31T23:59:60Z"}, []string{"time:rfc3339"}},
		{"time hour 24", map[string]any{"time": "2026-01-02T24:00:00Z"}, []string{"time:rfc3339"}},
		{"time February 30", map[string]any{"time": "2026-02-30T00:00:00Z"}, []string{"time:rfc3339"}},
		{"time February 29 in a common year", map[string]any{"time": "2026-02-29T00:00:00Z"}, []string{"time:rfc3339"}},
		{"time fraction without digits", map[string]any{"time": "2026-01-02T15:04:05.Z"}, []string{"time:rfc3339"}},
		{"time with fraction", map[string]any{"time": "2026-01-02T15:04:05.123456789Z"}, nil},
		{"time with offset", map[string]any{"time": "2026-01-02T15:04:05-07:00"}, nil},
		{"time with fraction and offset", map[string]any{"time": "2026-03-14T09:26:53.589+01:00"}, nil},
		{"time with half-hour offset", map[string]any{"time": "2026-01-02T15:04:05+05:30"}, nil},
		{"time on a leap day", map[string]any{"time": "2024-02-29T23:59:59+14:00"}, nil},

		{"data empty object", map[string]any{"data": map[string]any{}}, nil},
		{"data array", map[string]any{"data": []any{map[string]any{"a": 1}}}, []string{"data:jsonobject"}},
		{"data empty array", map[string]any{"data": []any{}}, []string{"data:jsonobject"}},
		{"data string", map[string]any{"data": `{"a":1}`}, []string{"data:jsonobject"}},
		{"data number", map[string]any{"data": 42}, []string{"data:jsonobject"}},
		{"data boolean", map[string]any{"data": true}, []string{"data:jsonobject"}},
		{"data null", map[string]any{"data": jsonNull}, []string{"data:jsonobject"}},

		{"id number", map[string]any{"id": 42}, []string{"id:type"}},
		{"time boolean", map[string]any{"time": true}, []string{"time:type"}},
		{"every string field of the wrong type", map[string]any{
			"id": 1, "type": []any{"user.signed_up"}, "source": map[string]any{}, "project": false, "user_id": 1.5, "time": true,
		}, []string{"id:type", "type:type", "source:type", "project:type", "user_id:type", "time:type"}},
		{"wrong types mixed with broken rules", map[string]any{
			"id": 42, "type": "user signed up", "user_id": nil, "time": 1767366245, "data": []any{},
		}, []string{"id:type", "type:svixid", "user_id:required", "time:type", "data:jsonobject"}},

		{"unknown fields", map[string]any{"trace_id": "4bf92f35", "meta": map[string]any{"retries": 2, "tags": []any{"a"}}, "ID": 7}, nil},
		{"id spelled ID", map[string]any{"id": nil, "ID": "evt_1"}, []string{"id:required"}},
		{"Type spelled with a capital", map[string]any{"type": nil, "Type": "user.signed_up"}, []string{"type:required"}},
		{"wrongly cased duplicate ignored", map[string]any{"Id": "not an id", "TIME": false}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			body := eventWith(t, tc.changes)
			n, err := event.Decode(body)
			if !bytes.Equal(n.Raw, body) {
				t.Errorf("Raw = %q, want the input %q", n.Raw, body)
			}
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Decode: %v", err)
				}
				return
			}
			invalid := asInvalid(t, err)
			if got := rules(invalid.Fields); !slices.Equal(got, tc.want) {
				t.Errorf("violations = %v, want %v", got, tc.want)
			}
			if invalid.Reason != "event failed validation" {
				t.Errorf("Reason = %q, want %q", invalid.Reason, "event failed validation")
			}
		})
	}
}

func TestDecodeAllFieldsMissing(t *testing.T) {
	want := []string{"id:required", "type:required", "source:required", "project:required", "user_id:required", "time:required", "data:required"}
	for _, body := range []string{`{}`, `{"unrelated": true}`, ` { } `} {
		t.Run(body, func(t *testing.T) {
			_, err := event.Decode([]byte(body))
			if got := rules(asInvalid(t, err).Fields); !slices.Equal(got, want) {
				t.Errorf("violations = %v, want %v", got, want)
			}
		})
	}
}

// TestDecodeUnreadableBody covers bodies that are not a JSON object at all:
// they get a Reason and no field list.
func TestDecodeUnreadableBody(t *testing.T) {
	cases := []struct {
		name   string
		body   string
		reason string
	}{
		{"empty", "", "body is not valid JSON: "},
		{"whitespace", " \n\t", "body is not valid JSON: "},
		{"truncated", `{"id": "evt_1",`, "body is not valid JSON: "},
		{"trailing garbage", `{"id": "evt_1"} x`, "body is not valid JSON: "},
		{"two objects", `{}{}`, "body is not valid JSON: "},
		{"single quotes", `{'id': 'evt_1'}`, "body is not valid JSON: "},
		{"trailing comma", `{"id": "evt_1",}`, "body is not valid JSON: "},
		{"byte order mark", "\ufeff{}", "body is not valid JSON: "},
		{"invalid UTF-8 in data", "{\"data\": {\"name\": \"caf\xe9\"}}", "body is not valid UTF-8"},
		{"invalid UTF-8 in id", "{\"id\": \"evt_\xff\"}", "body is not valid UTF-8"},
		{"array", `[{"id": "evt_1"}]`, "event must be a JSON object"},
		{"empty array", `[]`, "event must be a JSON object"},
		{"string", `"evt_1"`, "event must be a JSON object"},
		{"number", `42`, "event must be a JSON object"},
		{"boolean", `true`, "event must be a JSON object"},
		{"null", `null`, "event must be a JSON object"},
		{"null with spaces", ` null `, "event must be a JSON object"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			body := []byte(tc.body)
			n, err := event.Decode(body)
			if !bytes.Equal(n.Raw, body) {
				t.Errorf("Raw = %q, want the input %q", n.Raw, body)
			}
			invalid := asInvalid(t, err)
			if !strings.HasPrefix(invalid.Reason, tc.reason) {
				t.Errorf("Reason = %q, want it to start with %q", invalid.Reason, tc.reason)
			}
			if strings.HasSuffix(tc.reason, ": ") && len(invalid.Reason) == len(tc.reason) {
				t.Errorf("Reason = %q, want the JSON error after it", invalid.Reason)
			}
			if len(invalid.Fields) > 0 {
				t.Errorf("Fields = %v, want none", rules(invalid.Fields))
			}
		})
	}
}

func TestDecodeExample(t *testing.T) {
	raw := readFile(t, "../../test/events/event-04.json")
	n, err := event.Decode(raw)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	want := event.Notification{
		ID:      "evt_01JQH8C3D5F7G9J1K3M5N7P9QR",
		Type:    "project.member_added",
		Source:  "access-control",
		Project: "北极星-mobile",
		UserID:  "usr_5nB7vC9xZ1aS",
		Time:    "2026-03-18T22:40:07-05:00",
	}
	got := n
	got.Data, got.Raw = nil, nil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Decode = %+v, want %+v", got, want)
	}
	if &n.Raw[0] != &raw[0] || len(n.Raw) != len(raw) {
		t.Errorf("Raw is not the input slice; the payload must be passed on as it arrived")
	}
	var whole struct {
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(raw, &whole); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(n.Data, whole.Data) {
		t.Errorf("Data = %s, want the data member as written: %s", n.Data, whole.Data)
	}
}

func TestValidate(t *testing.T) {
	valid := func() event.Notification {
		return event.Notification{
			ID: "evt_1", Type: "user.signed_up", Source: "accounts", Project: "acme-web",
			UserID: "usr_1", Time: "2026-01-02T15:04:05Z", Data: json.RawMessage(`{}`),
		}
	}
	cases := []struct {
		name string
		edit func(n *event.Notification)
		want []string
	}{
		{"valid", func(*event.Notification) {}, nil},
		{"data with leading whitespace", func(n *event.Notification) { n.Data = json.RawMessage(" \n{}") }, nil},
		{"zero value", func(n *event.Notification) { *n = event.Notification{} },
			[]string{"id:required", "type:required", "source:required", "project:required", "user_id:required", "time:required", "data:required"}},
		{"data empty but not nil", func(n *event.Notification) { n.Data = json.RawMessage{} }, []string{"data:jsonobject"}},
		{"data array", func(n *event.Notification) { n.Data = json.RawMessage(`[]`) }, []string{"data:jsonobject"}},
		{"Raw is not checked", func(n *event.Notification) { n.Raw = []byte("not json") }, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n := valid()
			tc.edit(&n)
			err := event.Validate(&n)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if got := rules(asInvalid(t, err).Fields); !slices.Equal(got, tc.want) {
				t.Errorf("violations = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestInvalidErrorMessage(t *testing.T) {
	cases := []struct {
		name string
		err  *event.InvalidError
		want string
	}{
		{"reason only", &event.InvalidError{Reason: "event must be a JSON object"}, "event must be a JSON object"},
		{"with fields", &event.InvalidError{Reason: "event failed validation", Fields: []event.FieldError{
			{Field: "id", Rule: "required", Detail: "is required"},
			{Field: "data", Rule: "jsonobject", Detail: "must be a JSON object"},
		}}, "event failed validation: id: is required; data: must be a JSON object"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.err.Error(); got != tc.want {
				t.Errorf("Error() = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestValidSvixID(t *testing.T) {
	cases := []struct {
		id   string
		want bool
	}{
		{"evt_01JQ3K5V8M2N4P6R8T0W2Y4A6C", true},
		{"a", true},
		{"-._", true},
		{strings.Repeat("x", event.MaxSvixIDLength), true},
		{strings.Repeat("x", event.MaxSvixIDLength+1), false},
		{"", false},
		{"evt 1", false},
		{"evt/1", false},
		{"evt:1", false},
		{"évt", false},
		{"evt\n", false},
	}
	for _, tc := range cases {
		if got := event.ValidSvixID(tc.id); got != tc.want {
			t.Errorf("ValidSvixID(%.20q) = %v, want %v", tc.id, got, tc.want)
		}
	}
}

func TestInvalidErrorJSON(t *testing.T) {
	_, err := event.Decode(eventWith(t, map[string]any{"id": nil, "data": 1}))
	b, merr := json.Marshal(asInvalid(t, err))
	if merr != nil {
		t.Fatal(merr)
	}
	want := `{"reason":"event failed validation","fields":[` +
		`{"field":"id","rule":"required","detail":"is required"},` +
		`{"field":"data","rule":"jsonobject","detail":"must be a JSON object"}]}`
	if string(b) != want {
		t.Errorf("JSON = %s, want %s", b, want)
	}
}
