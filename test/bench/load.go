package main

import (
	"bytes"
	"cmp"
	"context"
	"io"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/gwook/gwook/test/proc"
)

// Throughput is one closed-loop measurement: Concurrency workers, each
// sending its next request as soon as the last one was answered.
type Throughput struct {
	Concurrency  int     `json:"concurrency"`
	EventsPerSec float64 `json:"events_per_sec"`
	// Requests answered with the expected status within the window.
	Requests int64 `json:"requests"`
	// Errors are other answers and transport errors within the window.
	Errors  int64   `json:"errors"`
	Seconds float64 `json:"seconds"`
	// CPUMicrosPerEvent is each process's CPU time (user and system)
	// within the window, divided by Requests.
	CPUMicrosPerEvent map[string]float64 `json:"cpu_us_per_event"`
	// BusyCPUs is how many CPUs the whole machine kept busy on average
	// within the window; OtherCPUs is the part of it that processes
	// outside this measurement used.
	BusyCPUs  float64 `json:"busy_cpus"`
	OtherCPUs float64 `json:"other_cpus"`
	// Ratio is EventsPerSec over the baseline's for the same body kind and
	// concurrency; zero for the baseline itself.
	Ratio float64 `json:"ratio_to_baseline,omitempty"`
	// Rounds is EventsPerSec of every round; the best is reported.
	Rounds []float64 `json:"rounds_events_per_sec"`
}

// newClient returns an HTTP/1.1 keep-alive client for up to conns
// connections to one host.
func newClient(conns int) (*http.Client, *http.Transport) {
	tr := &http.Transport{
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		MaxConnsPerHost:     conns,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}, tr
}

// closedLoop runs n workers against req for warmup plus window and counts
// the answers with status ok that arrive within the window. pids names the
// processes whose CPU time is measured alongside; the generator is added.
func closedLoop(ctx context.Context, req request, ok, n int, warmup, window time.Duration, pids map[string]int) Throughput {
	client, tr := newClient(n)
	defer tr.CloseIdleConnections()
	ctx, cancel := context.WithCancel(ctx)
	var good, bad atomic.Int64
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			for ctx.Err() == nil {
				status, err := post(ctx, client, req)
				switch {
				case err == nil && status == ok:
					good.Add(1)
				case ctx.Err() == nil:
					bad.Add(1)
				}
			}
		})
	}
	sleep(ctx, warmup)
	good0, bad0, cpu0, t0 := good.Load(), bad.Load(), sampleCPU(pids), time.Now()
	sleep(ctx, window)
	good1, bad1, cpu1, t1 := good.Load(), bad.Load(), sampleCPU(pids), time.Now()
	cancel()
	wg.Wait()

	res := Throughput{Concurrency: n, Requests: good1 - good0, Errors: bad1 - bad0, Seconds: t1.Sub(t0).Seconds()}
	res.EventsPerSec = float64(res.Requests) / res.Seconds
	res.CPUMicrosPerEvent = map[string]float64{}
	var ours time.Duration
	for name, before := range cpu0.procs {
		used := cpu1.procs[name] - before
		ours += used
		if res.Requests > 0 {
			res.CPUMicrosPerEvent[name] = float64(used.Microseconds()) / float64(res.Requests)
		}
	}
	busy := cpu1.busy - cpu0.busy
	res.BusyCPUs = busy.Seconds() / res.Seconds
	res.OtherCPUs = max(busy-ours, 0).Seconds() / res.Seconds
	return res
}

// post sends one new event and returns the answer's status.
func post(ctx context.Context, client *http.Client, req request) (int, error) {
	r, err := http.NewRequestWithContext(ctx, http.MethodPost, req.url, bytes.NewReader(req.body()))
	if err != nil {
		return 0, err
	}
	r.Header = req.header
	resp, err := client.Do(r)
	if err != nil {
		return 0, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, err
}

// cpuSample is the CPU time used so far by named processes and by the
// whole machine.
type cpuSample struct {
	procs map[string]time.Duration
	busy  time.Duration // all CPUs together, not idle
}

// sampleCPU reads the CPU time of each named process, of this one
// ("generator") and of the machine; what cannot be read is left out.
func sampleCPU(pids map[string]int) cpuSample {
	s := cpuSample{procs: make(map[string]time.Duration, len(pids)+1)}
	for name, pid := range pids {
		if d, err := proc.CPUTime(pid); err == nil {
			s.procs[name] = d
		}
	}
	if d, err := proc.CPUTime(os.Getpid()); err == nil {
		s.procs["generator"] = d
	}
	s.busy, _ = proc.MachineBusy()
	return s
}

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// Latency is one open-loop measurement at a constant rate. Each latency is
// counted from when the request was due by the schedule, not from when it
// was sent, so a generator that falls behind cannot hide slow answers
// (no coordinated omission).
type Latency struct {
	Rate         int     `json:"rate_per_sec"`
	Seconds      float64 `json:"seconds"`
	Requests     int     `json:"requests"`
	Errors       int     `json:"errors"`
	AchievedRate float64 `json:"achieved_rate_per_sec"`
	P50          float64 `json:"p50_ms"`
	P90          float64 `json:"p90_ms"`
	P99          float64 `json:"p99_ms"`
	Max          float64 `json:"max_ms"`
	// MaxLag is the longest a request was sent after it was due, and
	// LagP99 the 99th percentile of how late requests were sent: the share
	// of the latencies that is the generator's own.
	MaxLag float64 `json:"max_send_lag_ms"`
	LagP99 float64 `json:"p99_send_lag_ms"`
	// BusyCPUs is how many CPUs the whole machine kept busy on average
	// within the window, every process included: at a rate that keeps
	// them busy, answers queue for a CPU, and the tail is that queue.
	BusyCPUs float64 `json:"busy_cpus"`
	// AddedP99 is P99 minus the baseline's for the same body kind; zero for
	// the baseline itself.
	AddedP99 float64 `json:"added_p99_ms,omitempty"`
	// RoundsP99 is P99 of every round; the round with the lowest is
	// reported.
	RoundsP99 []float64 `json:"rounds_p99_ms"`
}

// openLoop warms up for warmup (none when it is zero), then sends req at
// rate per second for window with vegeta's constant pacer (more workers are
// started whenever all are busy, so requests leave on schedule), and
// returns the latency distribution of the answers.
func openLoop(ctx context.Context, req request, ok, rate int, warmup, window time.Duration) Latency {
	client, tr := newClient(1024)
	defer tr.CloseIdleConnections()
	targeter := func(t *vegeta.Target) error {
		t.Method, t.URL, t.Header, t.Body = http.MethodPost, req.url, req.header, req.body()
		return nil
	}
	pacer := vegeta.ConstantPacer{Freq: rate, Per: time.Second}
	attack := func(d time.Duration) []*vegeta.Result {
		atk := vegeta.NewAttacker(vegeta.Client(client), vegeta.Workers(64), vegeta.MaxBody(0))
		stop := context.AfterFunc(ctx, func() { atk.Stop() })
		defer stop()
		var out []*vegeta.Result
		for r := range atk.Attack(targeter, pacer, d, "bench") {
			out = append(out, r)
		}
		return out
	}
	if warmup > 0 {
		attack(warmup) // vegeta takes a zero duration as "forever"
	}
	busy0, _ := proc.MachineBusy()
	started := time.Now()
	results := attack(window)
	busy1, _ := proc.MachineBusy()
	elapsed := time.Since(started)
	l := latencyOf(results, rate, ok)
	l.BusyCPUs = (busy1 - busy0).Seconds() / elapsed.Seconds()
	return l
}

// latencyOf summarises results of an attack at rate per second. A result's
// latency is extended by how late it was sent: request number seq was due
// at the first request's time plus seq/rate.
func latencyOf(results []*vegeta.Result, rate, ok int) Latency {
	l := Latency{Rate: rate, Requests: len(results)}
	if len(results) == 0 {
		return l
	}
	slices.SortFunc(results, func(a, b *vegeta.Result) int { return cmp.Compare(a.Seq, b.Seq) })
	start := results[0].Timestamp
	period := time.Second / time.Duration(rate)
	lat := make([]time.Duration, 0, len(results))
	lags := make([]time.Duration, 0, len(results))
	for _, r := range results {
		if int(r.Code) != ok { // vegeta also sets Error for 4xx, which the baseline expects
			l.Errors++
		}
		due := start.Add(time.Duration(r.Seq-results[0].Seq) * period)
		lag := max(r.Timestamp.Sub(due), 0)
		lags = append(lags, lag)
		lat = append(lat, r.Latency+lag)
	}
	last := results[len(results)-1]
	l.Seconds = last.End().Sub(start).Seconds()
	if span := last.Timestamp.Sub(start).Seconds(); span > 0 {
		l.AchievedRate = float64(len(results)-1) / span
	}
	slices.Sort(lat)
	slices.Sort(lags)
	l.P50, l.P90, l.P99 = ms(quantile(lat, 0.50)), ms(quantile(lat, 0.90)), ms(quantile(lat, 0.99))
	l.Max, l.LagP99, l.MaxLag = ms(lat[len(lat)-1]), ms(quantile(lags, 0.99)), ms(lags[len(lags)-1])
	return l
}

// quantile returns the q-quantile of sorted (nearest rank).
func quantile(sorted []time.Duration, q float64) time.Duration {
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
