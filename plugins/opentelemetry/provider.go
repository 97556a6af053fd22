package opentelemetry

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// scopeName is the instrumentation scope of every span.
const scopeName = "github.com/sluicegw/sluice/plugins/opentelemetry"

// maxCloseWait bounds how long closing a provider waits for its last
// export: a hanging collector must not hold a configuration reload or a
// shutdown for long.
const maxCloseWait = 5 * time.Second

// provider is one TracerProvider (exporter, batch processor, resource) for
// one set of plugin_attr settings. It lives in plugin.Lasting, so spans
// queued under one configuration are still exported after a reload; it is
// shut down once no configuration uses it.
type provider struct {
	tp     *sdktrace.TracerProvider
	tracer trace.Tracer
	wait   time.Duration // Close's bound
	states sync.Pool     // *reqState
}

// lastingKey names a provider by every setting it is built from.
func lastingKey(a *Attr) (string, error) {
	b, err := json.Marshal(struct {
		Collector Collector                  `json:"collector"`
		Batch     BatchSpanProcessor         `json:"batch"`
		Resource  map[string]json.RawMessage `json:"resource"`
	}{a.Collector, a.BatchSpanProcessor, a.Resource})
	if err != nil {
		return "", err
	}
	return "opentelemetry:" + string(b), nil
}

// newProvider builds a provider. Nothing here blocks: the exporter
// connects on its first export.
func newProvider(a *Attr, log *slog.Logger) (*provider, error) {
	hostport, tls, _ := a.Collector.endpoint()
	opts := []otlptracehttp.Option{
		otlptracehttp.WithEndpoint(hostport),
		otlptracehttp.WithURLPath("/v1/traces"),
		otlptracehttp.WithTimeout(a.Collector.timeout()),
		// A failed batch is dropped, not retried: retrying a dead
		// collector only fills the queue (APISIX does not retry either).
		otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: false}),
	}
	if !tls {
		opts = append(opts, otlptracehttp.WithInsecure())
	}
	if h := a.Collector.headers(); h != nil {
		opts = append(opts, otlptracehttp.WithHeaders(h))
	}
	exp, err := otlptracehttp.New(context.Background(), opts...)
	if err != nil {
		return nil, fmt.Errorf("opentelemetry: building the OTLP exporter: %w", err)
	}
	b := a.BatchSpanProcessor
	// Never WithBlocking: a full queue drops spans rather than making a
	// request wait for the collector.
	bsp := sdktrace.NewBatchSpanProcessor(&loggingExporter{SpanExporter: exp, collector: a.Collector.Address, log: log},
		sdktrace.WithMaxQueueSize(b.MaxQueueSize),
		sdktrace.WithMaxExportBatchSize(b.MaxExportBatchSize),
		sdktrace.WithBatchTimeout(time.Duration(b.BatchTimeout*float64(time.Second))),
		sdktrace.WithExportTimeout(a.Collector.timeout()),
	)
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithSpanProcessor(bsp),
		sdktrace.WithResource(newResource(a)),
		sdktrace.WithSampler(routeSampler{}),
		sdktrace.WithIDGenerator(idGenerator{}),
	)
	p := &provider{tp: tp, tracer: tp.Tracer(scopeName), wait: min(a.Collector.timeout(), maxCloseWait)}
	p.states.New = func() any { return new(reqState) }
	return p, nil
}

// newResource is APISIX's resource: hostname, service.name (default
// "APISIX") and the configured attributes (numbers as doubles, as APISIX).
func newResource(a *Attr) *resource.Resource {
	host, _ := os.Hostname()
	kvs := []attribute.KeyValue{attribute.String("hostname", host)}
	if _, ok := a.Resource["service.name"]; !ok {
		kvs = append(kvs, attribute.String("service.name", "APISIX"))
	}
	for k, raw := range a.Resource {
		v, _ := scalar(raw) // validated
		switch x := v.(type) {
		case string:
			kvs = append(kvs, attribute.String(k, x))
		case float64:
			kvs = append(kvs, attribute.Float64(k, x))
		case bool:
			kvs = append(kvs, attribute.Bool(k, x))
		}
	}
	return resource.NewSchemaless(kvs...)
}

// Close flushes what is queued and stops the exporter, waiting at most the
// collector's request timeout (capped at maxCloseWait).
func (p *provider) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), p.wait)
	defer cancel()
	if err := p.tp.Shutdown(ctx); err != nil {
		return fmt.Errorf("opentelemetry: shutting down the tracer provider: %w", err)
	}
	return nil
}

func (p *provider) getState() *reqState { return p.states.Get().(*reqState) }

func (p *provider) putState(st *reqState) {
	*st = reqState{attrs: st.attrs[:0]}
	p.states.Put(st)
}

// loggingExporter reports failed exports to the log, at most once per
// logEvery, instead of through OpenTelemetry's global error handler. The
// spans of a failed export are dropped.
type loggingExporter struct {
	sdktrace.SpanExporter
	collector string
	log       *slog.Logger
	dropped   atomic.Uint64
	lastLog   atomic.Int64 // unix nanoseconds
}

const logEvery = 30 * time.Second

func (e *loggingExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	err := e.SpanExporter.ExportSpans(ctx, spans)
	if err == nil {
		return nil
	}
	n := e.dropped.Add(uint64(len(spans)))
	now := time.Now().UnixNano()
	if last := e.lastLog.Load(); now-last >= int64(logEvery) && e.lastLog.CompareAndSwap(last, now) {
		e.log.Warn("opentelemetry: exporting spans failed; they are dropped",
			"collector", e.collector, "dropped_total", n, "err", err)
	}
	return nil
}

// reqCtx carries one request's tracing choices to the SDK's sampler and ID
// generator, which only see a context.Context. It is itself the root
// context of the request's spans, so it costs no allocation.
type reqCtx struct {
	// sampler is the route's sampler.
	sampler sdktrace.Sampler
	// traceID, when valid, is the ID of a new trace (from X-Request-Id).
	traceID trace.TraceID
	// spanID, when valid, is the ID the next span gets (the upstream
	// CLIENT span, whose ID was sent upstream before it started).
	spanID trace.SpanID
}

type reqCtxKey struct{}

func (*reqCtx) Deadline() (time.Time, bool) { return time.Time{}, false }
func (*reqCtx) Done() <-chan struct{}       { return nil }
func (*reqCtx) Err() error                  { return nil }
func (rc *reqCtx) Value(key any) any {
	if key == (reqCtxKey{}) {
		return rc
	}
	return nil
}

func fromContext(ctx context.Context) *reqCtx {
	rc, _ := ctx.Value(reqCtxKey{}).(*reqCtx)
	return rc
}

var neverSample = sdktrace.NeverSample()

// routeSampler applies the sampler of the route the span belongs to: one
// provider serves every route, each with its own sampler.
type routeSampler struct{}

func (routeSampler) ShouldSample(p sdktrace.SamplingParameters) sdktrace.SamplingResult {
	if rc := fromContext(p.ParentContext); rc != nil && rc.sampler != nil {
		return rc.sampler.ShouldSample(p)
	}
	return neverSample.ShouldSample(p)
}

func (routeSampler) Description() string { return "RouteSampler" }

// idGenerator makes random IDs (math/rand/v2: per-thread state, no lock),
// except for the trace and span IDs a request fixed in advance.
type idGenerator struct{}

func (idGenerator) NewIDs(ctx context.Context) (trace.TraceID, trace.SpanID) {
	if rc := fromContext(ctx); rc != nil && rc.traceID.IsValid() {
		return rc.traceID, newSpanID(rc)
	}
	return randomTraceID(), randomSpanID()
}

func (idGenerator) NewSpanID(ctx context.Context, _ trace.TraceID) trace.SpanID {
	return newSpanID(fromContext(ctx))
}

// newSpanID takes the preset span ID once, or makes a random one.
func newSpanID(rc *reqCtx) trace.SpanID {
	if rc != nil && rc.spanID.IsValid() {
		id := rc.spanID
		rc.spanID = trace.SpanID{}
		return id
	}
	return randomSpanID()
}

func randomTraceID() trace.TraceID {
	var id trace.TraceID
	for !id.IsValid() {
		hi, lo := rand.Uint64(), rand.Uint64()
		for i := range 8 {
			id[i], id[8+i] = byte(hi>>(56-8*i)), byte(lo>>(56-8*i))
		}
	}
	return id
}

func randomSpanID() trace.SpanID {
	var id trace.SpanID
	for !id.IsValid() {
		v := rand.Uint64()
		for i := range 8 {
			id[i] = byte(v >> (56 - 8*i))
		}
	}
	return id
}
