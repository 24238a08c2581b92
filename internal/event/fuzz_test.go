package event_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gwook/gwook/internal/event"
)

func FuzzDecode(f *testing.F) {
	paths, err := filepath.Glob("../../test/events/event-[0-9]*.json")
	if err != nil {
		f.Fatal(err)
	}
	if len(paths) == 0 {
		f.Fatal("no example events to seed from")
	}
	for _, p := range paths {
		f.Add(readFile(f, p))
	}
	for _, seed := range []string{
		``,
		`{`,
		`{}`,
		`[]`,
		`null`,
		`"evt_1"`,
		`{"id": 1, "type": [], "source": {}, "project": false, "user_id": 1.5, "time": true, "data": null}`,
		`{"ID": "evt_1", "Type": "a.b", "source": "s", "project": "p", "user_id": "u", "time": "2026-01-02T15:04:05Z", "data": {}}`,
		`{"id": "evt_1", "type": "a.b", "source": "s", "project": "p", "user_id": "u", "time": "2026-01-02T5:04:05Z", "data": {}}`,
		`{"id": "evt_1", "type": "a.b", "source": "s", "project": "p", "user_id": "u", "time": "2026-01-02T15:04:05+24:00", "data": []}`,
		`{"id": "evt 1", "type": "a/b", "source": "", "project": "p", "user_id": "u", "time": "yesterday", "data": "x"}`,
		`{"id": "a", "id": 2, "data": {"data": {}}}`,
		"{\"id\": \"evt_\xff\", \"data\": {}}",
		`{"id": "\u0065vt", "type": "\ud800", "data": {"\u0000": null}}`,
		`{"id": null, "type": "a.b", "source": "s\n", "project": "p", "user_id": "u", "time": "2026-01-02T15:04:05Z", "data": null}`,
		`{"id": "evt_1", "type": "a.b", "source": "s", "project": "p", "user_id": "u", "time": "2026-01-02T15:04:05Z", "data": { "a" : [1, 2.50, "\u00e9"] }, "extra": {"id": 1}}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		input := bytes.Clone(raw)
		n, err := event.Decode(raw)
		if !bytes.Equal(n.Raw, input) {
			t.Fatalf("Raw = %q, want the input %q", n.Raw, input)
		}
		// encoding/json, an independent reader, must agree on what is JSON,
		// but for escaped lone surrogates, which it repairs and Decode refuses.
		notJSON := err != nil && strings.HasPrefix(err.Error(), "body is not valid JSON")
		if utf8.Valid(raw) && notJSON == json.Valid(raw) && !loneSurrogate.Match(raw) {
			t.Fatalf("Decode(%q) = %v, but json.Valid = %v", raw, err, json.Valid(raw))
		}
		if err != nil {
			var invalid *event.InvalidError
			if !errors.As(err, &invalid) {
				t.Fatalf("error %v is a %T, want *event.InvalidError", err, err)
			}
			if invalid.Reason == "" {
				t.Fatalf("InvalidError with an empty Reason: %+v", invalid)
			}
			for _, fe := range invalid.Fields {
				if fe.Field == "" || fe.Rule == "" || fe.Detail == "" {
					t.Fatalf("FieldError with an empty part: %+v", fe)
				}
			}
			return
		}
		checkAccepted(t, raw, n)
	})
}

// loneSurrogate matches an escaped UTF-16 surrogate, which is valid JSON
// syntax but not text when it stands alone. (It also matches a proper pair.)
var loneSurrogate = regexp.MustCompile(`(?i)\\u[d][89a-f]`)

// checkAccepted checks an event that Decode accepted against the rules,
// reading raw independently of Decode.
func checkAccepted(t *testing.T, raw []byte, n event.Notification) {
	t.Helper()
	if !event.ValidSvixID(n.ID) || !event.ValidSvixID(n.Type) {
		t.Fatalf("accepted id %q, type %q", n.ID, n.Type)
	}
	if _, err := time.Parse(time.RFC3339, n.Time); err != nil {
		t.Fatalf("accepted time %q: %v", n.Time, err)
	}
	if !rfc3339Grammar(n.Time) {
		t.Fatalf("accepted time %q, which is not of the RFC 3339 date-time form", n.Time)
	}
	var data map[string]json.RawMessage
	if err := json.Unmarshal(n.Data, &data); err != nil || data == nil {
		t.Fatalf("accepted data %q, which is not a JSON object", n.Data)
	}
	if !utf8.Valid(raw) {
		t.Fatalf("accepted a body that is not UTF-8: %q", raw)
	}
	if err := event.Validate(&n); err != nil {
		t.Fatalf("accepted an event that Validate rejects: %v", err)
	}
	// The members with exactly these names, as the spec reads them, must be
	// what Decode returned.
	var members map[string]any
	if err := json.Unmarshal(raw, &members); err != nil {
		t.Fatalf("accepted a body that is not a JSON object: %v", err)
	}
	for name, got := range map[string]string{
		"id": n.ID, "type": n.Type, "source": n.Source, "project": n.Project, "user_id": n.UserID, "time": n.Time,
	} {
		if want, ok := members[name].(string); !ok || want != got {
			t.Fatalf("member %q is %#v, but Decode returned %q", name, members[name], got)
		}
	}
}

// rfc3339Grammar checks the form of an RFC 3339 date-time with an upper-case
// T and Z, and the ranges of hour, minute, second and offset; time.Parse with
// time.RFC3339 alone accepts, for instance, a one-digit hour and +24:00.
func rfc3339Grammar(s string) bool {
	digits := func(s string) (int, bool) {
		n := 0
		for _, c := range []byte(s) {
			if c < '0' || c > '9' {
				return 0, false
			}
			n = n*10 + int(c-'0')
		}
		return n, s != ""
	}
	in := func(s string, max int) bool {
		n, ok := digits(s)
		return ok && n <= max
	}
	if len(s) < len("2006-01-02T15:04:05Z") || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' {
		return false
	}
	if _, ok := digits(s[0:4]); !ok || !in(s[5:7], 12) || !in(s[8:10], 31) || !in(s[11:13], 23) || !in(s[14:16], 59) || !in(s[17:19], 59) {
		return false
	}
	rest := s[19:]
	if len(rest) > 1 && rest[0] == '.' {
		i := 1
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			i++
		}
		if i == 1 {
			return false
		}
		rest = rest[i:]
	}
	if rest == "Z" {
		return true
	}
	return len(rest) == len("+07:00") && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':' && in(rest[1:3], 23) && in(rest[4:6], 59)
}
