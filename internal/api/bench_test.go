package api_test

import (
	"io"
	"net/http"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"
)

// BenchmarkListEndpoints lists the 50 endpoints of one application over
// HTTP, 64 requests at once (on 2 cores), on each database, and reports
// requests per second and the 99th percentile latency.
func BenchmarkListEndpoints(b *testing.B) {
	for _, db := range databases {
		b.Run(db.name, func(b *testing.B) {
			h := newHarness(b, db.open(b), harnessOptions{})
			h.createApp("acme")
			for range 50 {
				h.createEndpoint("acme", nil)
			}
			url := h.url + "/api/v1/applications/acme/endpoints?limit=50"
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
			var mu sync.Mutex
			var took []time.Duration
			b.SetParallelism(max(1, 64/runtime.GOMAXPROCS(0)))
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				var mine []time.Duration
				for pb.Next() {
					req, _ := http.NewRequest(http.MethodGet, url, nil)
					req.Header.Set("Authorization", "Bearer "+h.admin)
					t0 := time.Now()
					resp, err := client.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						b.Errorf("status %d", resp.StatusCode)
						return
					}
					mine = append(mine, time.Since(t0))
				}
				mu.Lock()
				took = append(took, mine...)
				mu.Unlock()
			})
			elapsed := time.Since(start)
			b.StopTimer()
			if len(took) > 0 {
				slices.Sort(took)
				b.ReportMetric(float64(len(took))/elapsed.Seconds(), "req/s")
				b.ReportMetric(float64(took[len(took)*99/100].Microseconds())/1000, "p99-ms")
			}
		})
	}
}
