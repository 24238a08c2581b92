package main

import (
	"math"
	"testing"

	dto "github.com/prometheus/client_model/go"
)

// histogram builds a cumulative histogram with the given bounds (seconds)
// and counts, and a +Inf bucket holding every sample.
func histogram(bounds []float64, cumulative []uint64, samples uint64) *dto.Histogram {
	h := &dto.Histogram{SampleCount: &samples}
	for i := range bounds {
		h.Bucket = append(h.Bucket, &dto.Bucket{UpperBound: &bounds[i], CumulativeCount: &cumulative[i]})
	}
	inf := math.Inf(1)
	h.Bucket = append(h.Bucket, &dto.Bucket{UpperBound: &inf, CumulativeCount: &samples})
	return h
}

func TestAnswersBetween(t *testing.T) {
	bounds := []float64{0.001, 0.005, 0.01, 0.025}
	before := histogram(bounds, []uint64{10, 20, 30, 40}, 40)
	// 1,000 answers since: 500 within 1 ms, 400 in (1, 5], 95 in (5, 10],
	// 5 in (10, 25].
	after := histogram(bounds, []uint64{510, 920, 1025, 1040}, 1040)
	got := answersBetween(before, after)
	if got.Requests != 1000 {
		t.Errorf("requests: %d, want 1000", got.Requests)
	}
	if got.Within10ms != 0.995 {
		t.Errorf("within 10 ms: %v, want 0.995", got.Within10ms)
	}
	// The 990th answer is the 90th of the 95 in (5, 10] ms.
	if want := 5 + 5*90.0/95; math.Abs(got.P99-want) > 1e-9 {
		t.Errorf("p99: %v ms, want %v", got.P99, want)
	}
}

func TestAnswersBetweenPastTheLastBucket(t *testing.T) {
	bounds := []float64{0.001, 0.01}
	before := histogram(bounds, []uint64{0, 0}, 0)
	after := histogram(bounds, []uint64{50, 90}, 100)
	got := answersBetween(before, after)
	if got.P99 != 10 || got.Within10ms != 0.9 {
		t.Errorf("got p99 %v ms and %v within 10 ms, want the last bound, 10 ms, and 0.9", got.P99, got.Within10ms)
	}
}

func TestAnswersBetweenNoAnswers(t *testing.T) {
	h := histogram([]float64{0.01}, []uint64{5}, 5)
	if got := answersBetween(h, h); got != (GwookAnswers{}) {
		t.Errorf("got %+v, want nothing", got)
	}
}
