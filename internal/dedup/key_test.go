package dedup

import (
	"strings"
	"testing"

	"github.com/gwook/gwook/internal/event"
)

var allKeyFields = []string{"id", "type", "project", "source", "user_id"}

func sampleEvent() *event.Notification {
	return &event.Notification{
		ID:      "evt_1",
		Type:    "invoice.paid",
		Project: "billing",
		Source:  "ledger",
		UserID:  "user_42",
	}
}

// sampleApp is the application sampleEvent is for in the tests of Key.
const sampleApp = "app_billing"

// TestKeyGolden pins the v2 key format: replicas running different releases
// must derive the same key from the same event. A format change needs a new
// KeyPrefix version. The expected value was computed outside Go (Python's
// hashlib over the length-prefixed pairs).
func TestKeyGolden(t *testing.T) {
	const want = "gwook:dedup:v2:4bb3d9e8aeebe875a93ed748f98b76fbdc4d913cb635c8249fa47a153d3e1dd6"
	if got := Key(sampleApp, sampleEvent(), DefaultKeyFields); got != want {
		t.Errorf("Key = %q, want %q", got, want)
	}
}

func TestKeyLengthIsBounded(t *testing.T) {
	huge := strings.Repeat("x", 1<<20)
	tests := []struct {
		name string
		n    *event.Notification
	}{
		{"empty", &event.Notification{}},
		{"sample", sampleEvent()},
		{"huge values", &event.Notification{ID: huge, Type: huge, Project: huge, Source: huge, UserID: huge}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, app := range []string{"", sampleApp, huge} {
				got := Key(app, tt.n, allKeyFields)
				if !strings.HasPrefix(got, KeyPrefix) || len(got) != len(KeyPrefix)+64 {
					t.Errorf("Key = %q, want KeyPrefix and 64 hex digits", got)
				}
				if again := Key(app, tt.n, allKeyFields); again != got {
					t.Errorf("Key is not deterministic: %q, then %q", got, again)
				}
			}
		})
	}
}

func TestKeyDependsOnChosenFieldsOnly(t *testing.T) {
	tests := []struct {
		field  string
		change func(*event.Notification)
	}{
		{"id", func(n *event.Notification) { n.ID += "x" }},
		{"type", func(n *event.Notification) { n.Type += "x" }},
		{"project", func(n *event.Notification) { n.Project += "x" }},
		{"source", func(n *event.Notification) { n.Source += "x" }},
		{"user_id", func(n *event.Notification) { n.UserID += "x" }},
	}
	for _, tt := range tests {
		t.Run(tt.field, func(t *testing.T) {
			changed := sampleEvent()
			tt.change(changed)
			if Key(sampleApp, sampleEvent(), []string{tt.field}) == Key(sampleApp, changed, []string{tt.field}) {
				t.Errorf("changing %s does not change a key made of %s", tt.field, tt.field)
			}
			if Key(sampleApp, sampleEvent(), allKeyFields) == Key(sampleApp, changed, allKeyFields) {
				t.Errorf("changing %s does not change a key made of every field", tt.field)
			}
			var others []string
			for _, f := range allKeyFields {
				if f != tt.field {
					others = append(others, f)
				}
			}
			if Key(sampleApp, sampleEvent(), others) != Key(sampleApp, changed, others) {
				t.Errorf("changing %s changes a key made of %v", tt.field, others)
			}
		})
	}
}

func TestKeyFraming(t *testing.T) {
	tp := []string{"type", "project"}
	tests := []struct {
		name    string
		a       event.Notification
		aFields []string
		b       event.Notification
		bFields []string
	}{
		{"separator shifted", event.Notification{Type: "a|b", Project: "c"}, tp, event.Notification{Type: "a", Project: "b|c"}, tp},
		{"byte shifted", event.Notification{Type: "ab"}, tp, event.Notification{Type: "a", Project: "b"}, tp},
		{"length-like bytes", event.Notification{Type: "\x01a"}, tp, event.Notification{Project: "\x01a"}, tp},
		{"next field in a value", event.Notification{Type: "x\x07project"}, tp, event.Notification{Type: "x", Project: "\x07project"}, tp},
		{"framing in a value", event.Notification{Type: "\x07projectx"}, []string{"type"}, event.Notification{Project: "x"}, tp},
		{"same value, other field", event.Notification{Type: "x"}, []string{"type"}, event.Notification{Project: "x"}, []string{"project"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if ka, kb := Key(sampleApp, &tt.a, tt.aFields), Key(sampleApp, &tt.b, tt.bFields); ka == kb {
				t.Errorf("%+v by %v and %+v by %v share the key %s", tt.a, tt.aFields, tt.b, tt.bFields, ka)
			}
		})
	}
}

func TestKeyApplicationScope(t *testing.T) {
	n := sampleEvent()
	if Key("app_a", n, DefaultKeyFields) == Key("app_b", n, DefaultKeyFields) {
		t.Error("two applications share a key for the same event")
	}
	if Key("app_a", n, allKeyFields) == Key("app_b", n, allKeyFields) {
		t.Error("two applications share a key for the same event, every field chosen")
	}
	tp := []string{"type"}
	tests := []struct {
		name   string
		appA   string
		a      event.Notification
		appB   string
		b      event.Notification
		fields []string
	}{
		{"value moved from application to field", "x", event.Notification{}, "", event.Notification{Type: "x"}, tp},
		{"value split between application and field", "ab", event.Notification{Type: "c"}, "a", event.Notification{Type: "bc"}, tp},
		{"framing in the application", "a\x04type\x01x", event.Notification{}, "a", event.Notification{Type: "x"}, tp},
		{"application named like a field", "user_1", event.Notification{}, "", event.Notification{UserID: "user_1"}, []string{"user_id"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if ka, kb := Key(tt.appA, &tt.a, tt.fields), Key(tt.appB, &tt.b, tt.fields); ka == kb {
				t.Errorf("(%q, %+v) and (%q, %+v) share the key %s", tt.appA, tt.a, tt.appB, tt.b, ka)
			}
		})
	}
}

func TestKeyFieldOrder(t *testing.T) {
	n := &event.Notification{Type: "x", Project: "x"}
	if Key(sampleApp, n, []string{"type", "project"}) == Key(sampleApp, n, []string{"project", "type"}) {
		t.Error("[type project] and [project type] give the same key")
	}
}

func TestKeyUnknownFieldPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("Key with an unknown field did not panic")
		}
	}()
	Key(sampleApp, sampleEvent(), []string{"time"})
}

func TestKeyAllocs(t *testing.T) {
	huge := strings.Repeat("x", 4096)
	tests := []struct {
		name string
		n    *event.Notification
		max  float64
	}{
		{"sample", sampleEvent(), 1},
		{"huge values", &event.Notification{Type: huge, Project: huge, Source: huge}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := testing.AllocsPerRun(100, func() { Key(sampleApp, tt.n, DefaultKeyFields) }); got > tt.max {
				t.Errorf("Key allocates %v times per call, want at most %v", got, tt.max)
			}
		})
	}
}

func BenchmarkKey(b *testing.B) {
	huge := strings.Repeat("x", 4096)
	benchmarks := []struct {
		name   string
		n      *event.Notification
		fields []string
	}{
		{"default fields", sampleEvent(), DefaultKeyFields},
		{"all fields", sampleEvent(), allKeyFields},
		{"4KiB values", &event.Notification{Type: huge, Project: huge, Source: huge}, DefaultKeyFields},
	}
	for _, bm := range benchmarks {
		b.Run(bm.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				Key(sampleApp, bm.n, bm.fields)
			}
		})
	}
}

func TestParseKeyFields(t *testing.T) {
	tests := []struct {
		name    string
		in      []string
		want    []string
		wantErr string // a part of the error message; "" when no error is wanted
	}{
		{"default", []string{"type", "project", "source"}, []string{"type", "project", "source"}, ""},
		{"every field", []string{"user_id", "source", "project", "type", "id"}, []string{"user_id", "source", "project", "type", "id"}, ""},
		{"one field", []string{"id"}, []string{"id"}, ""},
		{"spaces trimmed", []string{" type", "project "}, []string{"type", "project"}, ""},
		{"nil", nil, nil, "no key fields"},
		{"empty", []string{}, nil, "no key fields"},
		{"unknown", []string{"type", "time"}, nil, `unknown key field "time"`},
		{"upper case", []string{"Type"}, nil, `unknown key field "Type"`},
		{"duplicate", []string{"type", "project", "type"}, nil, `key field "type" is listed twice`},
		{"duplicate after trim", []string{"type", " type"}, nil, `key field "type" is listed twice`},
		{"empty entry", []string{"type", " ", "project"}, nil, "key field 2 is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseKeyFields(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseKeyFields(%q) = %q, %v; want an error containing %q", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseKeyFields(%q): %v", tt.in, err)
			}
			if strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Errorf("ParseKeyFields(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseKeyFieldsCopies(t *testing.T) {
	in := []string{"type", "project"}
	got, err := ParseKeyFields(in)
	if err != nil {
		t.Fatal(err)
	}
	in[0] = "id"
	if got[0] != "type" {
		t.Errorf("ParseKeyFields returned its argument: changing the input changed the result to %q", got)
	}
}

func TestDefaultKeyFieldsAreValid(t *testing.T) {
	if _, err := ParseKeyFields(DefaultKeyFields); err != nil {
		t.Errorf("ParseKeyFields(DefaultKeyFields): %v", err)
	}
}
