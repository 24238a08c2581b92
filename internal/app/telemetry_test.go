package app_test

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/gwook/gwook/internal/app"
	"github.com/gwook/gwook/test/gwooktest"
	"github.com/gwook/gwook/test/svixserver"
)

// spansUntil polls the exporter until a span named name has ended.
func spansUntil(t *testing.T, exp *tracetest.InMemoryExporter, name string) tracetest.SpanStubs {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		spans := exp.GetSpans()
		for _, s := range spans {
			if s.Name == name {
				return spans
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q span among %d", name, len(spans))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func byName(t *testing.T, spans tracetest.SpanStubs, name string) tracetest.SpanStub {
	t.Helper()
	for _, s := range spans {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no span %q", name)
	return tracetest.SpanStub{}
}

func childOf(t *testing.T, child, parent tracetest.SpanStub) {
	t.Helper()
	if child.Parent.SpanID() != parent.SpanContext.SpanID() || child.SpanContext.TraceID() != parent.SpanContext.TraceID() {
		t.Errorf("span %q is not a child of %q", child.Name, parent.Name)
	}
}

func TestTraceOfAForwardedEvent(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	g := gwooktest.Start(t, nil, app.Options{Tracing: tp})
	tag := uniqueTag(t)

	const traceID, callerSpan = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	h := http.Header{}
	h.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(gwooktest.Username+":"+gwooktest.Password)))
	h.Set("traceparent", "00-"+traceID+"-"+callerSpan+"-01")
	if r := g.Post(t, "/notifications", h, eventWithKey(tag, "evt_t1")); r.Status != http.StatusAccepted {
		t.Fatalf("status %d", r.Status)
	}
	spans := spansUntil(t, exp, "POST /notifications")

	server := byName(t, spans, "POST /notifications")
	if server.SpanContext.TraceID().String() != traceID || server.Parent.SpanID().String() != callerSpan {
		t.Fatalf("server span does not continue the caller's trace: %s / parent %s", server.SpanContext.TraceID(), server.Parent.SpanID())
	}
	if server.SpanKind != trace.SpanKindServer {
		t.Errorf("server span kind %v", server.SpanKind)
	}
	pipeline := byName(t, spans, "gwook.pipeline")
	childOf(t, pipeline, server)
	childOf(t, byName(t, spans, "gwook.dedup.claim"), pipeline)
	childOf(t, byName(t, spans, "gwook.dedup.commit"), pipeline)
	send := byName(t, spans, "svix.send")
	childOf(t, send, pipeline)
	attempt := byName(t, spans, "svix.attempt")
	childOf(t, attempt, send)
	var client tracetest.SpanStub
	for _, s := range spans {
		if s.SpanKind == trace.SpanKindClient {
			client = s
		}
	}
	childOf(t, client, attempt)

	lines := g.Logs.Lines("request")
	if len(lines) != 1 || lines[0]["trace_id"] != traceID {
		t.Errorf("request log trace_id: %v", lines)
	}
}

func TestPushContinuesTheProducersTrace(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	g := gwooktest.Start(t, nil, app.Options{Tracing: tp})

	const producerTrace, producerSpan = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
	body := eventWithKey(uniqueTag(t), "evt_t2")
	env := fmt.Sprintf(`{"message":{"data":%q,"messageId":"m-77","attributes":{"googclient_traceparent":"00-%s-%s-01"}},"subscription":"projects/p/subscriptions/s"}`,
		base64.StdEncoding.EncodeToString(body), producerTrace, producerSpan)
	if r := g.Post(t, g.PushURL()[len(g.URL):], nil, []byte(env)); r.Status != http.StatusOK {
		t.Fatalf("status %d %s", r.Status, r.Body)
	}
	spans := spansUntil(t, exp, "POST /notifications")
	pipeline := byName(t, spans, "gwook.pipeline")
	if pipeline.SpanContext.TraceID().String() != producerTrace || pipeline.Parent.SpanID().String() != producerSpan {
		t.Fatalf("pipeline span is in trace %s under %s, want the producer's %s under %s",
			pipeline.SpanContext.TraceID(), pipeline.Parent.SpanID(), producerTrace, producerSpan)
	}
	server := byName(t, spans, "POST /notifications")
	if len(pipeline.Links) != 1 || pipeline.Links[0].SpanContext.SpanID() != server.SpanContext.SpanID() {
		t.Errorf("pipeline span does not link the push's server span: %v", pipeline.Links)
	}
	childOf(t, byName(t, spans, "svix.send"), pipeline)
	if lines := g.Logs.Lines("request"); len(lines) != 1 || lines[0]["trace_id"] != producerTrace {
		t.Errorf("request log trace_id: %v", lines)
	}
}

// sentryIngest stands in for Sentry's ingest endpoint and keeps the bodies
// it receives.
type sentryIngest struct {
	mu     sync.Mutex
	bodies []string
}

func (s *sentryIngest) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var reader io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		reader = zr
	}
	b, _ := io.ReadAll(reader)
	s.mu.Lock()
	s.bodies = append(s.bodies, string(b))
	s.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

func (s *sentryIngest) received() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.bodies...)
}

func TestSentryReportForExhaustedRateLimit(t *testing.T) {
	ingest := &sentryIngest{}
	srv := httptest.NewServer(ingest)
	defer srv.Close()
	dsn := "http://examplepublickey@" + strings.TrimPrefix(srv.URL, "http://") + "/42"
	g := gwooktest.Start(t, map[string]string{"SENTRY_DSN": dsn, "SENTRY_ENVIRONMENT": "test",
		"SVIX_RETRY_MAX_ATTEMPTS": "2", "DEDUP_TTL": "0"}, app.Options{Version: "v1.2.3"})

	// Bad credentials are counted, not reported.
	g.Post(t, "/notifications?token=wrong", nil, []byte(`{}`))

	g.Svix.SetDefault(svixserver.Response{Status: 429})
	const marker = "payload-marker-never-reported"
	body := []byte(`{"id":"evt_s1","type":"invoice.paid","source":"billing","project":"p1","user_id":"usr_9","time":"2026-01-02T15:04:05Z","data":{"secret":"` + marker + `"}}`)
	if r := g.Push(t, body); r.Status != http.StatusTooManyRequests {
		t.Fatalf("status %d %s", r.Status, r.Body)
	}

	deadline := time.Now().Add(10 * time.Second)
	var reports []string
	for len(reports) == 0 && time.Now().Before(deadline) {
		reports = ingest.received()
		time.Sleep(20 * time.Millisecond)
	}
	if len(reports) != 1 {
		t.Fatalf("Sentry got %d reports, want 1 (the 401 must not be reported)", len(reports))
	}
	report := reports[0]
	for _, want := range []string{`"kind":"rate_limited"`, `"event_type":"invoice.paid"`, `"application":"usr_9"`,
		`"reason":"rate_limited"`, `"push_subscription":"projects/p/subscriptions/gwook"`, `"svix_status":"429"`,
		`"environment":"test"`, `"release":"v1.2.3"`} {
		if !strings.Contains(report, want) {
			t.Errorf("report lacks %s:\n%s", want, report)
		}
	}
	for _, leak := range []string{marker, gwooktest.Password, gwooktest.SvixToken, gwooktest.PushToken} {
		if strings.Contains(report, leak) {
			t.Errorf("report contains %q", leak)
		}
	}
	if bytes.Contains([]byte(report), []byte(`"request"`)) {
		t.Errorf("report carries request data:\n%s", report)
	}
}

func TestTraceContextPassesThroughWithTracingOff(t *testing.T) {
	g := gwooktest.Start(t, nil, app.Options{})
	const traceID = "5bf92f3577b34da6a3ce929d0e0e4736"
	h := http.Header{}
	h.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(gwooktest.Username+":"+gwooktest.Password)))
	h.Set("traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")
	if r := g.Post(t, "/notifications", h, eventWithKey(uniqueTag(t), "evt_t3")); r.Status != http.StatusAccepted {
		t.Fatalf("status %d", r.Status)
	}
	if lines := g.Logs.Lines("request"); len(lines) != 1 || lines[0]["trace_id"] != traceID {
		t.Errorf("request log trace_id: %v", lines)
	}
}
