package delivery

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

func TestParseSchedule(t *testing.T) {
	s, err := ParseSchedule(DefaultSchedule)
	if err != nil {
		t.Fatal(err)
	}
	want := []time.Duration{5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 10 * time.Hour}
	if len(s.steps) != len(want) {
		t.Fatalf("steps = %v, want %v", s.steps, want)
	}
	for i := range want {
		if s.steps[i] != want[i] {
			t.Errorf("step %d = %v, want %v", i+1, s.steps[i], want[i])
		}
	}
	if s.Attempts() != 8 || s.Longest() != 10*time.Hour {
		t.Errorf("Attempts = %d, Longest = %v; want 8 and 10h", s.Attempts(), s.Longest())
	}

	s, err = ParseSchedule(" 1m , 90s,1h30m ")
	if err != nil || s.String() != "1m0s,1m30s,1h30m0s" || s.Longest() != 90*time.Minute || s.Attempts() != 4 {
		t.Errorf("ParseSchedule with spaces = %v, %v", s, err)
	}
	if again, err := ParseSchedule(s.String()); err != nil || again.String() != s.String() {
		t.Errorf("ParseSchedule(String()) = %v, %v", again, err)
	}

	for _, tc := range []struct{ in, want string }{
		{"", "empty"},
		{"  ", "empty"},
		{"5s,", `step 2 ("") is not a duration`},
		{",5s", `step 1 ("") is not a duration`},
		{"5s,5", `step 2 ("5") is not a duration`},
		{"5s;5m", `step 1 ("5s;5m") is not a duration`},
		{"5m,0s", `step 2 ("0s") is not positive`},
		{"-1s", `step 1 ("-1s") is not positive`},
		{"1d", `step 1 ("1d") is not a duration`},
	} {
		if _, err := ParseSchedule(tc.in); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseSchedule(%q) = %v, want an error containing %q", tc.in, err, tc.want)
		}
	}
}

func TestNext(t *testing.T) {
	s, err := ParseSchedule("5s,5m,30m")
	if err != nil {
		t.Fatal(err)
	}
	middle := func() float64 { return 0.5 }
	for _, tc := range []struct {
		name    string
		attempt int
		r       Result
		verdict Verdict
		delay   time.Duration
	}{
		{"200", 1, Result{Status: 200}, Delivered, 0},
		{"204 on the last attempt", 4, Result{Status: 204}, Delivered, 0},
		{"410", 1, Result{Status: 410}, Gone, 0},
		{"410 on the last attempt", 4, Result{Status: 410}, Gone, 0},
		{"500 after the first attempt", 1, Result{Status: 500}, Retry, 5 * time.Second},
		{"no response after the second", 2, Result{}, Retry, 5 * time.Minute},
		{"302 after the third", 3, Result{Status: 302}, Retry, 30 * time.Minute},
		{"attempt 0 counts as the first", 0, Result{Status: 500}, Retry, 5 * time.Second},
		{"500 after the last attempt", 4, Result{Status: 500}, Failed, 0},
		{"past the last attempt", 9, Result{}, Failed, 0},
		{"429 with Retry-After", 1, Result{Status: 429, RetryAfter: 90 * time.Second}, Retry, 90 * time.Second},
		{"503 with Retry-After", 2, Result{Status: 503, RetryAfter: 7 * time.Second}, Retry, 7 * time.Second},
		{"Retry-After capped by the longest step", 1, Result{Status: 429, RetryAfter: 5 * time.Hour}, Retry, 30 * time.Minute},
		{"Retry-After on the last attempt", 4, Result{Status: 429, RetryAfter: time.Second}, Failed, 0},
		{"Retry-After ignored on a 400", 1, Result{Status: 400, RetryAfter: time.Minute}, Retry, 5 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			verdict, delay := s.Next(tc.attempt, tc.r, middle)
			if verdict != tc.verdict || delay != tc.delay {
				t.Errorf("Next(%d, %+v) = %v, %v; want %v, %v", tc.attempt, tc.r, verdict, delay, tc.verdict, tc.delay)
			}
		})
	}

	if v, d := (Schedule{}).Next(1, Result{Status: 500}, middle); v != Failed || d != 0 {
		t.Errorf("the zero Schedule's Next = %v, %v; want failed", v, d)
	}
}

func TestNextJitter(t *testing.T) {
	s, err := ParseSchedule(DefaultSchedule)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		rnd  float64
		want time.Duration
	}{
		{0, 4 * time.Minute},
		{0.25, 4*time.Minute + 30*time.Second},
		{0.5, 5 * time.Minute},
		{1, 6 * time.Minute},
		{-3, 4 * time.Minute}, // a broken source is clamped
		{7, 6 * time.Minute},
	} {
		if v, d := s.Next(2, Result{Status: 500}, func() float64 { return tc.rnd }); v != Retry || d != tc.want {
			t.Errorf("Next with rnd %v = %v, %v; want retry after %v", tc.rnd, v, d, tc.want)
		}
	}

	rng := rand.New(rand.NewPCG(1, 2))
	for attempt := 1; attempt < s.Attempts(); attempt++ {
		step := s.steps[attempt-1]
		low, high := step, step
		for range 1000 {
			v, d := s.Next(attempt, Result{Status: 500}, rng.Float64)
			if v != Retry || d < step*8/10 || d > step*12/10 {
				t.Fatalf("Next(%d) = %v, %v; want a retry within 20%% of %v", attempt, v, d, step)
			}
			low, high = min(low, d), max(high, d)
		}
		// The jitter spreads the delays over most of the range.
		if low > step*82/100 || high < step*118/100 {
			t.Errorf("1000 delays after attempt %d ranged over [%v, %v], want about [%v, %v]", attempt, low, high, step*8/10, step*12/10)
		}
	}

	if v, d := s.Next(1, Result{Status: 503, RetryAfter: 42 * time.Second}, rng.Float64); v != Retry || d != 42*time.Second {
		t.Errorf("Next with Retry-After = %v, %v; want retry after exactly 42s", v, d)
	}
}

func TestVerdictString(t *testing.T) {
	for v, want := range map[Verdict]string{Delivered: "delivered", Retry: "retry", Gone: "gone", Failed: "failed", 0: "Verdict(0)"} {
		if v.String() != want {
			t.Errorf("Verdict(%d).String() = %q, want %q", int(v), v.String(), want)
		}
	}
}
