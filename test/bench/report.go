package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// Report is what one bench run measured; bench.json holds it as is and
// bench.md renders it.
type Report struct {
	Started time.Time `json:"started"`
	Seconds float64   `json:"seconds"`
	Machine Machine   `json:"machine"`
	Settings
	// LoadBefore and LoadAfter are /proc/loadavg at the start and the end:
	// other work on the machine shows there.
	LoadBefore string   `json:"loadavg_before"`
	LoadAfter  string   `json:"loadavg_after"`
	Rows       []Row    `json:"rows"`
	Memory     Memory   `json:"memory"`
	Targets    []Target `json:"targets"`
	// Tuning compares gwook's tuned http.Client for Svix with the SDK's
	// default one, both with Redis dedup on and raw events.
	Tuning *Tuning `json:"tuning,omitempty"`
}

// Tuning is what gwook's tuned http.Client buys over the SDK's default.
type Tuning struct {
	// ThroughputGain is the tuned client's throughput over the default
	// one's, per concurrency.
	ThroughputGain []float64 `json:"throughput_gain"`
	P99Tuned       float64   `json:"p99_tuned_ms"`
	P99SDKDefault  float64   `json:"p99_sdk_default_ms"`
}

// Machine describes where the run happened.
type Machine struct {
	CPUs      int     `json:"cpus"`
	CPUModel  string  `json:"cpu_model"`
	MemoryGiB float64 `json:"memory_gib"`
	Kernel    string  `json:"kernel"`
	Go        string  `json:"go"`
}

// Settings are the run's parameters.
type Settings struct {
	Concurrency       []int   `json:"concurrency"`
	WarmupSeconds     float64 `json:"warmup_seconds"`
	WindowSeconds     float64 `json:"window_seconds"`
	Rate              int     `json:"rate_per_sec"`
	RateWarmupSeconds float64 `json:"rate_warmup_seconds"`
	RateWindowSeconds float64 `json:"rate_window_seconds"`
	IdleConnections   int     `json:"idle_connections"`
	Rounds            int     `json:"rounds"`
	GwookLogLevel     string  `json:"gwook_log_level"`
}

// Row is every measurement of one configuration and body kind.
type Row struct {
	Configuration string       `json:"configuration"`
	Baseline      bool         `json:"baseline"`
	Dedup         bool         `json:"dedup"`
	SvixClient    string       `json:"svix_http_client,omitempty"`
	Body          string       `json:"body"`
	Throughput    []Throughput `json:"throughput"`
	Latency       Latency      `json:"latency"`
}

// Target is one of the first report's goals and whether it was met.
type Target struct {
	Goal  string  `json:"goal"`
	Value float64 `json:"value"`
	Limit float64 `json:"limit"`
	Unit  string  `json:"unit"`
	Met   bool    `json:"met"`
	Where string  `json:"where"`
}

// Target limits: at least 0.9 × a bare proxy's throughput, at most
// 1 ms added to its p99, at most 20 KiB per idle connection.
const (
	minThroughputRatio = 0.9
	maxAddedP99Millis  = 1.0
	maxRSSPerConnKiB   = 20.0
)

// compare fills in each gwook row's ratios to the baseline with the same
// body kind, and evaluates the targets.
func (r *Report) compare() {
	base := map[string]*Row{}
	for i := range r.Rows {
		if r.Rows[i].Baseline {
			base[r.Rows[i].Body] = &r.Rows[i]
		}
	}
	ratio := Target{Goal: "throughput, gwook with Redis dedup on / baseline", Limit: minThroughputRatio, Unit: "×"}
	added := Target{Goal: fmt.Sprintf("p99 added over the baseline at %d events/s, Redis dedup on", r.Rate),
		Limit: maxAddedP99Millis, Unit: "ms"}
	var haveRatio, haveAdded bool
	for i := range r.Rows {
		row := &r.Rows[i]
		b := base[row.Body]
		if row.Baseline || b == nil {
			continue
		}
		row.Latency.AddedP99 = row.Latency.P99 - b.Latency.P99
		for j := range row.Throughput {
			if j < len(b.Throughput) && b.Throughput[j].EventsPerSec > 0 {
				row.Throughput[j].Ratio = row.Throughput[j].EventsPerSec / b.Throughput[j].EventsPerSec
			}
		}
		if !row.Dedup || row.SvixClient != "tuned" {
			continue
		}
		for _, t := range row.Throughput {
			if !haveRatio || t.Ratio < ratio.Value {
				ratio.Value, ratio.Where = t.Ratio, fmt.Sprintf("lowest: %s body, concurrency %d", row.Body, t.Concurrency)
				haveRatio = true
			}
		}
		if !haveAdded || row.Latency.AddedP99 > added.Value {
			added.Value, added.Where = row.Latency.AddedP99, "highest: "+row.Body+" body"
			haveAdded = true
		}
	}
	ratio.Met = haveRatio && ratio.Value >= ratio.Limit
	added.Met = haveAdded && added.Value <= added.Limit
	r.Tuning = r.tuning()
	mem := Target{Goal: "RSS per idle keep-alive connection", Value: r.Memory.PerConnection / 1024,
		Limit: maxRSSPerConnKiB, Unit: "KiB", Where: fmt.Sprintf("%d connections", r.Memory.Connections)}
	mem.Met = mem.Value <= mem.Limit
	r.Targets = []Target{ratio, added}
	if r.Memory.Connections > 0 {
		r.Targets = append(r.Targets, mem)
	}
}

// tuning compares the tuned and the SDK-default client rows, if both ran.
func (r *Report) tuning() *Tuning {
	var tuned, sdk *Row
	for i := range r.Rows {
		row := &r.Rows[i]
		if row.Dedup && row.Body == bodyRaw {
			switch row.SvixClient {
			case "tuned":
				tuned = row
			case "sdk-default":
				sdk = row
			}
		}
	}
	if tuned == nil || sdk == nil {
		return nil
	}
	t := &Tuning{P99Tuned: tuned.Latency.P99, P99SDKDefault: sdk.Latency.P99}
	for i := range min(len(tuned.Throughput), len(sdk.Throughput)) {
		if sdk.Throughput[i].EventsPerSec > 0 {
			t.ThroughputGain = append(t.ThroughputGain, tuned.Throughput[i].EventsPerSec/sdk.Throughput[i].EventsPerSec)
		}
	}
	return t
}

// write stores the report as dir/bench.json and dir/bench.md.
func (r *Report) write(dir string) error { return writeReport(dir, "bench", r, r.markdown()) }

// writeReport stores report as dir/name.json and markdown as dir/name.md.
func writeReport(dir, name string, report any, markdown string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	js, err := json.MarshalIndent(report, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, name+".json"), append(js, '\n'), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, name+".md"), []byte(markdown), 0o644)
}

// markdown renders the report.
func (r *Report) markdown() string {
	var b bytes.Buffer
	m := r.Machine
	fmt.Fprintf(&b, "# Gwook load test\n\n")
	writeRunLine(&b, r.Started, r.Seconds, m, r.LoadBefore, r.LoadAfter)
	fmt.Fprintf(&b, "Generator -> (gwook | bare reverse proxy) -> Svix-compatible server (fast mode), Redis for dedup; "+
		"each its own process, all on loopback, HTTP/1.1 keep-alive. Every event is unique on id and on the dedup key. "+
		"Throughput: closed loop, %s after %s warm-up. Latency: open loop at %d events/s for %s after %s warm-up, "+
		"measured from when each request was due (no coordinated omission); CPUs busy is the whole machine's load meanwhile. "+
		"Each measurement ran %d time(s), the configurations taking turns; the best round is shown. "+
		"Gwook ran with LOG_LEVEL=%s.\n\n",
		secs(r.WindowSeconds), secs(r.WarmupSeconds), r.Rate, secs(r.RateWindowSeconds), secs(r.RateWarmupSeconds), r.Rounds, r.GwookLogLevel)

	b.WriteString("| configuration | body |")
	for _, n := range r.Concurrency {
		fmt.Fprintf(&b, " events/s at %d (× baseline) |", n)
	}
	b.WriteString(" p50 ms | p90 ms | p99 ms | max ms | p99 added ms | CPUs busy |\n|---|---|")
	b.WriteString(strings.Repeat("--:|", len(r.Concurrency)+6) + "\n")
	for _, row := range r.Rows {
		fmt.Fprintf(&b, "| %s | %s |", row.Configuration, row.Body)
		for _, t := range row.Throughput {
			if row.Baseline {
				fmt.Fprintf(&b, " %.0f |", t.EventsPerSec)
			} else {
				fmt.Fprintf(&b, " %.0f (%.2f) |", t.EventsPerSec, t.Ratio)
			}
		}
		l := row.Latency
		addedP99 := "–"
		if !row.Baseline {
			addedP99 = fmt.Sprintf("%+.2f", l.AddedP99)
		}
		fmt.Fprintf(&b, " %.2f | %.2f | %.2f | %.2f | %s | %.2f |\n", l.P50, l.P90, l.P99, l.Max, addedP99, l.BusyCPUs)
	}

	if r.Memory.Connections > 0 {
		fmt.Fprintf(&b, "\nMemory: %s RSS %.1f MiB idle, %.1f MiB holding %d idle keep-alive connections: "+
			"**%.1f KiB per connection** (opened in %.1f s); the median of %d fresh processes, which read",
			r.Memory.Of, mib(r.Memory.RSSBefore), mib(r.Memory.RSSAfter), r.Memory.Connections, r.Memory.PerConnection/1024, r.Memory.OpenSeconds,
			len(r.Memory.Rounds))
		for _, v := range r.Memory.Rounds {
			fmt.Fprintf(&b, " %.1f", v/1024)
		}
		b.WriteString(" KiB.\n\n")
	}

	if t := r.Tuning; t != nil {
		b.WriteString("Gwook's tuned http.Client for Svix against the SDK's default one (Redis dedup on, raw events): throughput ×")
		for i, g := range t.ThroughputGain {
			if i > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, " %.2f at %d", g, r.Concurrency[i])
		}
		fmt.Fprintf(&b, "; p99 at %d events/s %.2f ms against %.2f ms.\n\n", r.Rate, t.P99Tuned, t.P99SDKDefault)
	}

	b.WriteString("Targets:\n\n| goal | result | limit | met |\n|---|--:|--:|---|\n")
	for _, t := range r.Targets {
		met := "yes"
		if !t.Met {
			met = "**no**"
		}
		fmt.Fprintf(&b, "| %s | %.2f %s (%s) | %.2f %s | %s |\n", t.Goal, t.Value, t.Unit, t.Where, t.Limit, t.Unit, met)
	}

	b.WriteString("\nCPU time per event in the best closed-loop round, µs (user + system; front is gwook or the proxy), " +
		"and the CPUs that other processes on the machine used meanwhile:\n\n")
	b.WriteString("| configuration | body | concurrency | front | svix | redis | generator | all | other load, CPUs | rounds, events/s |\n")
	b.WriteString("|---|---|--:|--:|--:|--:|--:|--:|--:|---|\n")
	for _, row := range r.Rows {
		for _, t := range row.Throughput {
			c := t.CPUMicrosPerEvent
			redis := "–"
			if v, ok := c["redis"]; ok {
				redis = fmt.Sprintf("%.0f", v)
			}
			all := c["front"] + c["svix"] + c["redis"] + c["generator"]
			rounds := make([]string, len(t.Rounds))
			for i, v := range t.Rounds {
				rounds[i] = fmt.Sprintf("%.0f", v)
			}
			fmt.Fprintf(&b, "| %s | %s | %d | %.0f | %.0f | %s | %.0f | %.0f | %.2f | %s |\n", row.Configuration, row.Body,
				t.Concurrency, c["front"], c["svix"], redis, c["generator"], all, t.OtherCPUs, strings.Join(rounds, ", "))
		}
	}
	var errs int64
	for _, row := range r.Rows {
		errs += int64(row.Latency.Errors)
		for _, t := range row.Throughput {
			errs += t.Errors
		}
	}
	var lag float64
	for _, row := range r.Rows {
		lag = max(lag, row.Latency.MaxLag)
	}
	fmt.Fprintf(&b, "\nUnexpected answers or transport errors in the reported rounds: %d. "+
		"In the reported open-loop rounds the generator sent every request within %.2f ms of when it was due "+
		"(that lag is included in the latencies).\n", errs, lag)
	return b.String()
}

func secs(s float64) string { return (time.Duration(s * float64(time.Second))).String() }

// loadAverage returns the first three fields of /proc/loadavg.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}

// machine describes this machine from /proc.
// writeRunLine writes the paragraph saying when the run was, how long it
// took, on what machine and under what load.
func writeRunLine(b *bytes.Buffer, started time.Time, seconds float64, m Machine, loadBefore, loadAfter string) {
	fmt.Fprintf(b, "Run %s, %.0f s. Machine: %d CPUs (%s), %.0f GiB, Linux %s, %s; load average %s before, %s after.\n\n",
		started.Format(time.RFC3339), seconds, m.CPUs, m.CPUModel, m.MemoryGiB, m.Kernel, m.Go, loadBefore, loadAfter)
}

func machine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), Go: runtime.Version()}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if name, value, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(name) == "model name" {
				m.CPUModel = strings.TrimSpace(value)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		if _, err := fmt.Sscanf(string(b), "MemTotal: %d kB", &kb); err == nil {
			m.MemoryGiB = float64(kb) / (1 << 20)
		}
	}
	return m
}
