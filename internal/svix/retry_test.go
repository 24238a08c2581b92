package svix

import (
	"net/http"
	"testing"
	"time"
)

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		name   string
		value  string
		want   time.Duration
		wantOK bool
	}{
		{"seconds", "3", 3 * time.Second, true},
		{"seconds with spaces", " 7 ", 7 * time.Second, true},
		{"zero", "0", 0, true},
		{"long wait, not capped", "120", 120 * time.Second, true},
		{"beyond a day", "99999", maxRetryAfter, true},
		{"out of int64 range", "99999999999999999999", maxRetryAfter, true},
		{"HTTP date", now.Add(2 * time.Second).Format(http.TimeFormat), 2 * time.Second, true},
		{"HTTP date an hour away", now.Add(time.Hour).Format(http.TimeFormat), time.Hour, true},
		{"HTTP date in the past", now.Add(-time.Hour).Format(http.TimeFormat), 0, true},
		{"absent", "", 0, false},
		{"negative", "-1", 0, false},
		{"hugely negative", "-99999999999999999999", 0, false},
		{"fraction", "1.5", 0, false},
		{"garbage", "soon", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := parseRetryAfter(tc.value, now)
			if got != tc.want || ok != tc.wantOK {
				t.Errorf("parseRetryAfter(%q) = %s, %v; want %s, %v", tc.value, got, ok, tc.want, tc.wantOK)
			}
		})
	}
}
