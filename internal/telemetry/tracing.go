package telemetry

import (
	"context"
	"errors"
	"net/http"
	"os"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// TracerName names the spans Gwook creates itself.
const TracerName = "github.com/gwook/gwook"

// PushTraceParentAttribute is the message attribute in which the Pub/Sub
// client libraries carry the producer's W3C traceparent.
const PushTraceParentAttribute = "googclient_traceparent"

// Propagator reads and writes W3C trace context and baggage.
var Propagator = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})

// SetupTracing returns the tracer provider for the service: spans exported
// over OTLP/HTTP when OTEL_EXPORTER_OTLP_ENDPOINT (or its traces variant) is
// set, configured by the standard OTEL_* variables; a no-op provider
// otherwise. shutdown flushes what is buffered.
func SetupTracing(ctx context.Context, version string) (tp trace.TracerProvider, shutdown func(context.Context) error, err error) {
	otel.SetTextMapPropagator(Propagator)
	if os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") == "" && os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "" {
		return noop.NewTracerProvider(), func(context.Context) error { return nil }, nil
	}
	exporter, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, nil, err
	}
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(
		semconv.ServiceName(serviceName()), semconv.ServiceVersion(version)))
	if err != nil && !errors.Is(err, resource.ErrSchemaURLConflict) {
		return nil, nil, err
	}
	provider := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exporter), sdktrace.WithResource(res))
	return provider, provider.Shutdown, nil
}

// serviceName is OTEL_SERVICE_NAME, or gwook.
func serviceName() string {
	if name := os.Getenv("OTEL_SERVICE_NAME"); name != "" {
		return name
	}
	return "gwook"
}

// ServerHandler wraps h with a server span per request, continuing the
// caller's W3C traceparent. With tracing off (a no-op provider) it only
// continues the caller's trace context: otelhttp would still compute span
// and metric attributes for every request, to throw them away.
func ServerHandler(h http.Handler, tp trace.TracerProvider) http.Handler {
	if _, off := tp.(noop.TracerProvider); off {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// A request without trace headers is passed on as it came,
			// without a copy.
			if ctx := Propagator.Extract(r.Context(), propagation.HeaderCarrier(r.Header)); ctx != r.Context() {
				r = r.WithContext(ctx)
			}
			h.ServeHTTP(w, r)
		})
	}
	return otelhttp.NewHandler(h, "http.server",
		otelhttp.WithTracerProvider(tp), otelhttp.WithPropagators(Propagator),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return r.Method + " " + r.URL.Path }))
}

// ClientTransport wraps rt with a client span per outgoing request, which
// also sends traceparent on. With tracing off it only sends the trace
// context it has on.
func ClientTransport(rt http.RoundTripper, tp trace.TracerProvider) http.RoundTripper {
	if _, off := tp.(noop.TracerProvider); off {
		return propagatingTransport{next: rt}
	}
	return otelhttp.NewTransport(rt, otelhttp.WithTracerProvider(tp), otelhttp.WithPropagators(Propagator))
}

// propagatingTransport sends the trace context of each request's context
// on, as traceparent (and baggage) headers.
type propagatingTransport struct{ next http.RoundTripper }

func (t propagatingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	ctx := r.Context()
	if trace.SpanContextFromContext(ctx).IsValid() || baggage.FromContext(ctx).Len() > 0 {
		r = r.Clone(ctx) // a RoundTripper must not modify the caller's request
		Propagator.Inject(ctx, propagation.HeaderCarrier(r.Header))
	}
	return t.next.RoundTrip(r)
}

// PushContext returns ctx carrying the producer's trace when a Pub/Sub
// message brought one in its googclient_traceparent attribute, so the
// spans Gwook starts next continue the producer's trace. The current span
// (the HTTP server span of the push) is kept as a link.
func PushContext(ctx context.Context, attributes map[string]string) (context.Context, []trace.Link) {
	traceparent := attributes[PushTraceParentAttribute]
	if traceparent == "" {
		return ctx, nil
	}
	carrier := propagation.MapCarrier{"traceparent": traceparent}
	if state := attributes["googclient_tracestate"]; state != "" {
		carrier["tracestate"] = state
	}
	producer := Propagator.Extract(context.Background(), carrier)
	sc := trace.SpanContextFromContext(producer)
	if !sc.IsValid() {
		return ctx, nil
	}
	var links []trace.Link
	if server := trace.SpanContextFromContext(ctx); server.IsValid() {
		links = append(links, trace.Link{SpanContext: server})
	}
	return trace.ContextWithRemoteSpanContext(ctx, sc), links
}
