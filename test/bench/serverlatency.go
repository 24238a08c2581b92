package main

import (
	"context"
	"fmt"
	"math"
	"net/http"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// GwookAnswers is what gwook's own histogram of its answers to
// POST /notifications (gwook_http_request_duration_seconds) counted during
// a phase: from when its handler chain took the request to when it
// answered, without the time the request and the answer spent in the
// kernel's queues or in the producer.
type GwookAnswers struct {
	Requests uint64 `json:"requests"`
	// Within10ms is the share of them answered within 10 ms.
	Within10ms float64 `json:"share_within_10ms"`
	// P99 is the 99th percentile in ms, interpolated within its bucket.
	P99 float64 `json:"p99_ms"`
}

// answerHistogram reads gwook's histogram of POST /notifications answer
// times from its /metrics.
func answerHistogram(ctx context.Context, base string) (*dto.Histogram, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("GET /metrics: %w", err)
	}
	if f := families["gwook_http_request_duration_seconds"]; f != nil {
		for _, m := range f.GetMetric() {
			if label(m, "route") == "/notifications" && label(m, "method") == http.MethodPost {
				return m.GetHistogram(), nil
			}
		}
	}
	return nil, fmt.Errorf("GET /metrics: no histogram of POST /notifications")
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// answersBetween summarises the answers counted between two readings of
// the same histogram. A p99 past the last finite bucket is given as that
// bucket's bound.
func answersBetween(before, after *dto.Histogram) GwookAnswers {
	a := GwookAnswers{Requests: after.GetSampleCount() - before.GetSampleCount()}
	bb, ab := before.GetBucket(), after.GetBucket()
	if a.Requests == 0 || len(bb) != len(ab) {
		return a
	}
	total := float64(a.Requests)
	rank := 0.99 * total
	lower, below := 0.0, 0.0
	for i, b := range ab {
		bound := b.GetUpperBound()
		if math.IsInf(bound, 1) {
			break
		}
		n := float64(b.GetCumulativeCount() - bb[i].GetCumulativeCount())
		if bound == 0.01 {
			a.Within10ms = n / total
		}
		if n >= rank && a.P99 == 0 {
			a.P99 = 1000 * (lower + (bound-lower)*(rank-below)/max(n-below, 1))
		}
		lower, below = bound, n
	}
	if a.P99 == 0 {
		a.P99 = 1000 * lower
	}
	return a
}
