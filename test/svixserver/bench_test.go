package svixserver

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// BenchmarkCreateMessage measures the non-validating handler, as used by
// load tests.
func BenchmarkCreateMessage(b *testing.B) {
	s, err := NewServer(Options{})
	if err != nil {
		b.Fatal(err)
	}
	bodies := make([]string, 1024)
	for i := range bodies {
		bodies[i] = fmt.Sprintf(`{"eventType":"user.signup","eventId":"evt-%d","payload":{},"transformationsParams":{"rawPayload":"{\"a\":1}"}}`, i)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if i%len(bodies) == 0 {
			s.Reset()
		}
		req := httptest.NewRequest(http.MethodPost, "/api/v1/app/app_1/msg?with_content=false",
			strings.NewReader(bodies[i%len(bodies)]))
		req.Header.Set("Authorization", "Bearer t")
		req.Header.Set("idempotency-key", bodies[i%len(bodies)][40:60])
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		if rec.Code != http.StatusAccepted {
			b.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
		i++
	}
}
