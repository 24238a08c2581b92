package httpapi

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestReady(t *testing.T) {
	up := func(context.Context) error { return nil }
	down := func(context.Context) error { return errors.New("connection refused") }
	for _, tc := range []struct {
		name     string
		checks   []Check
		draining bool
		want     int
		wantBody []string
	}{
		{"all up", []Check{{Name: "svix", Check: up}, {Name: "redis", Check: up, Degrades: true}}, false, 200,
			[]string{`"status":"ready"`, `"svix":"ok"`, `"redis":"ok"`}},
		{"a dependency it works around is down", []Check{{Name: "svix", Check: down, Degrades: true}, {Name: "dead_letter_topic", Check: up}}, false, 200,
			[]string{`"status":"degraded"`, `"svix":"down: connection refused"`}},
		{"a dependency it needs is down", []Check{{Name: "svix", Check: up}, {Name: "redis", Check: down}}, false, 503,
			[]string{`"status":"unavailable"`, `"redis":"down: connection refused"`}},
		{"both kinds down", []Check{{Name: "svix", Check: down, Degrades: true}, {Name: "dead_letter_topic", Check: down}}, false, 503,
			[]string{`"status":"unavailable"`, `"svix":"down`, `"dead_letter_topic":"down`}},
		{"draining", []Check{{Name: "svix", Check: up}}, true, 503, []string{`"status":"draining"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := NewHealth(time.Second, tc.checks...)
			if tc.draining {
				h.StartDraining()
			}
			rec := httptest.NewRecorder()
			h.ready(rec, httptest.NewRequest(http.MethodGet, "/ready", nil))
			if rec.Code != tc.want {
				t.Errorf("status %d, want %d", rec.Code, tc.want)
			}
			for _, want := range tc.wantBody {
				if !strings.Contains(rec.Body.String(), want) {
					t.Errorf("body %s lacks %s", rec.Body, want)
				}
			}
		})
	}
}
