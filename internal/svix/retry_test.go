package svix

import (
	"net/http"
	"testing"
	"time"
)

func TestRetryAfter(t *testing.T) {
	p := RetryPolicy{RetryAfterMax: 5 * time.Second}
	now := time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		name   string
		value  string
		want   time.Duration
		wantOK bool
	}{
		{"seconds", "3", 3 * time.Second, true},
		{"zero", "0", 0, true},
		{"seconds over the cap", "120", 5 * time.Second, true},
		{"huge seconds", "99999999999999999", 5 * time.Second, true},
		{"HTTP date", now.Add(2 * time.Second).Format(http.TimeFormat), 2 * time.Second, true},
		{"HTTP date over the cap", now.Add(time.Hour).Format(http.TimeFormat), 5 * time.Second, true},
		{"HTTP date in the past", now.Add(-time.Hour).Format(http.TimeFormat), 0, true},
		{"absent", "", 0, false},
		{"negative", "-1", 0, false},
		{"garbage", "soon", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := p.retryAfter(tc.value, now)
			if got != tc.want || ok != tc.wantOK {
				t.Errorf("retryAfter(%q) = %s, %v; want %s, %v", tc.value, got, ok, tc.want, tc.wantOK)
			}
		})
	}
}
