package opentelemetry

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"strconv"
	"strings"
	"time"
)

// Sampler names, as APISIX has them.
const (
	AlwaysOn     = "always_on"
	AlwaysOff    = "always_off"
	TraceIDRatio = "trace_id_ratio"
	ParentBase   = "parent_base"
)

// Config is the plugin's per-route configuration, with APISIX's field
// names. Where spans go (collector, batching, resource) is gateway-wide:
// see Attr.
type Config struct {
	// Sampler decides which requests are traced.
	Sampler Sampler `json:"sampler"`
	// AdditionalAttributes names request variables (nginx/APISIX style:
	// http_x_user, arg_page, route_id...) added to the server span as
	// attributes named after the variable.
	AdditionalAttributes []string `json:"additional_attributes"`
	// AdditionalHeaderPrefixAttributes names request headers added to the
	// server span as attributes named after the header; "x-my-*" takes every
	// header with the prefix "x-my-" (see the documentation's limits).
	AdditionalHeaderPrefixAttributes []string `json:"additional_header_prefix_attributes"`
}

// Sampler is APISIX's sampler object.
type Sampler struct {
	// Name is always_on, always_off (default), trace_id_ratio or
	// parent_base.
	Name    string         `json:"name"`
	Options SamplerOptions `json:"options"`
}

// SamplerOptions are the sampler's parameters.
type SamplerOptions struct {
	// Fraction is trace_id_ratio's sampling probability, 0 to 1.
	Fraction float64 `json:"fraction"`
	// Root decides for parent_base when the request has no parent.
	Root RootSampler `json:"root"`
}

// RootSampler is parent_base's sampler for requests without a parent.
type RootSampler struct {
	// Name is always_on, always_off (default) or trace_id_ratio.
	Name    string `json:"name"`
	Options struct {
		Fraction float64 `json:"fraction"`
	} `json:"options"`
}

// NewConfig returns a Config with APISIX's defaults: nothing is sampled.
func NewConfig() *Config {
	c := &Config{Sampler: Sampler{Name: AlwaysOff}}
	c.Sampler.Options.Root.Name = AlwaysOff
	return c
}

// Validate checks the config as APISIX's schema does, and the documented
// ranges of the fractions.
func (c *Config) Validate() error {
	switch c.Sampler.Name {
	case AlwaysOn, AlwaysOff, TraceIDRatio, ParentBase:
	default:
		return fmt.Errorf("sampler.name: must be one of always_on, always_off, trace_id_ratio, parent_base, got %q", c.Sampler.Name)
	}
	if f := c.Sampler.Options.Fraction; !(f >= 0 && f <= 1) {
		return fmt.Errorf("sampler.options.fraction: must be between 0 and 1, got %v", f)
	}
	switch c.Sampler.Options.Root.Name {
	case AlwaysOn, AlwaysOff, TraceIDRatio:
	default:
		return fmt.Errorf("sampler.options.root.name: must be one of always_on, always_off, trace_id_ratio, got %q", c.Sampler.Options.Root.Name)
	}
	if f := c.Sampler.Options.Root.Options.Fraction; !(f >= 0 && f <= 1) {
		return fmt.Errorf("sampler.options.root.options.fraction: must be between 0 and 1, got %v", f)
	}
	for i, a := range c.AdditionalAttributes {
		if a == "" {
			return fmt.Errorf("additional_attributes[%d]: must not be empty", i)
		}
	}
	for i, a := range c.AdditionalHeaderPrefixAttributes {
		if a == "" {
			return fmt.Errorf("additional_header_prefix_attributes[%d]: must not be empty", i)
		}
	}
	return nil
}

// Attr is the gateway config's plugin_attr.opentelemetry section: where
// spans go and how they are batched. It is shared by every route; routes
// only choose their sampler.
type Attr struct {
	// TraceIDSource is "x-request-id" (default, as APISIX's
	// config-default.yaml): a new trace takes its ID from the request's
	// X-Request-Id header when that is a valid trace ID, else a random one;
	// or "random".
	TraceIDSource string `json:"trace_id_source"`
	// Resource adds attributes (string, number or boolean) to the resource
	// every span carries; service.name defaults to "APISIX".
	Resource map[string]json.RawMessage `json:"resource"`
	// Collector is the OTLP/HTTP receiver.
	Collector Collector `json:"collector"`
	// BatchSpanProcessor bounds the queue and sets how spans are batched.
	BatchSpanProcessor BatchSpanProcessor `json:"batch_span_processor"`
	// SetNgxVar stores the request's trace context as per-request values
	// (see the documentation).
	SetNgxVar bool `json:"set_ngx_var"`
}

// Collector is where spans are sent.
type Collector struct {
	// Address is "host:port" (plain HTTP) or "http(s)://host:port"; spans
	// are POSTed to its /v1/traces.
	Address string `json:"address"`
	// RequestTimeout bounds one export, in seconds.
	RequestTimeout int `json:"request_timeout"`
	// RequestHeaders are added to every export request (authorization...).
	RequestHeaders map[string]json.RawMessage `json:"request_headers"`
}

// BatchSpanProcessor configures the queue between requests and the
// exporter.
type BatchSpanProcessor struct {
	// DropOnQueueFull is accepted for compatibility: sluice always drops
	// when the queue is full, so a slow collector never slows requests.
	DropOnQueueFull bool `json:"drop_on_queue_full"`
	// MaxQueueSize is how many ended spans may wait for export.
	MaxQueueSize int `json:"max_queue_size"`
	// BatchTimeout is the longest a span waits before its batch is sent,
	// in seconds.
	BatchTimeout float64 `json:"batch_timeout"`
	// InactiveTimeout is APISIX's timer period, in seconds; accepted and
	// validated, the SDK's single timer follows BatchTimeout.
	InactiveTimeout float64 `json:"inactive_timeout"`
	// MaxExportBatchSize is the most spans one export request carries.
	MaxExportBatchSize int `json:"max_export_batch_size"`
}

// DefaultAttr returns APISIX's config-default.yaml values.
func DefaultAttr() *Attr {
	return &Attr{
		TraceIDSource: "x-request-id",
		Collector:     Collector{Address: "127.0.0.1:4318", RequestTimeout: 3},
		BatchSpanProcessor: BatchSpanProcessor{
			MaxQueueSize:       1024,
			BatchTimeout:       2,
			InactiveTimeout:    1,
			MaxExportBatchSize: 16,
		},
	}
}

// attrPath prefixes errors about the plugin_attr section.
const attrPath = "plugin_attr.opentelemetry"

// ParseAttr decodes and validates the plugin_attr section (nil: defaults).
// Errors carry the full field path, e.g.
// "plugin_attr.opentelemetry.collector.request_timeout: must be > 0, got 0".
func ParseAttr(raw map[string]any) (*Attr, error) {
	return parseSettings(raw, attrPath)
}

func parseSettings(raw map[string]any, attrPath string) (*Attr, error) {
	a := DefaultAttr()
	if raw != nil {
		b, err := json.Marshal(raw)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", attrPath, err)
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(a); err != nil {
			return nil, fmt.Errorf("%s.%w", attrPath, describeJSONError(err))
		}
	}
	if err := a.validate(); err != nil {
		return nil, fmt.Errorf("%s.%w", attrPath, err)
	}
	return a, nil
}

func (a *Attr) validate() error {
	switch a.TraceIDSource {
	case "x-request-id", "random":
	default:
		return fmt.Errorf("trace_id_source: must be one of x-request-id, random, got %q", a.TraceIDSource)
	}
	for k, v := range a.Resource {
		if k == "" {
			return errors.New("resource: attribute names must not be empty")
		}
		if _, err := scalar(v); err != nil {
			return fmt.Errorf("resource.%s: %w", k, err)
		}
	}
	if _, _, err := a.Collector.endpoint(); err != nil {
		return fmt.Errorf("collector.address: %w", err)
	}
	if a.Collector.RequestTimeout <= 0 {
		return fmt.Errorf("collector.request_timeout: must be > 0, got %d", a.Collector.RequestTimeout)
	}
	for k, v := range a.Collector.RequestHeaders {
		if !validHeaderName(k) {
			return fmt.Errorf("collector.request_headers: invalid header name %q", k)
		}
		if _, err := scalar(v); err != nil {
			return fmt.Errorf("collector.request_headers.%s: %w", k, err)
		}
	}
	b := &a.BatchSpanProcessor
	if b.MaxQueueSize < 1 {
		return fmt.Errorf("batch_span_processor.max_queue_size: must be >= 1, got %d", b.MaxQueueSize)
	}
	if b.MaxExportBatchSize < 1 {
		return fmt.Errorf("batch_span_processor.max_export_batch_size: must be >= 1, got %d", b.MaxExportBatchSize)
	}
	if b.MaxExportBatchSize > b.MaxQueueSize {
		return fmt.Errorf("batch_span_processor.max_export_batch_size: must be <= max_queue_size (%d), got %d", b.MaxQueueSize, b.MaxExportBatchSize)
	}
	if !(b.BatchTimeout > 0) || b.BatchTimeout > 3600 {
		return fmt.Errorf("batch_span_processor.batch_timeout: must be > 0 and <= 3600 seconds, got %v", b.BatchTimeout)
	}
	if !(b.InactiveTimeout > 0) || b.InactiveTimeout > 3600 {
		return fmt.Errorf("batch_span_processor.inactive_timeout: must be > 0 and <= 3600 seconds, got %v", b.InactiveTimeout)
	}
	return nil
}

// endpoint splits Address into host:port and whether to use TLS.
func (c *Collector) endpoint() (hostport string, tls bool, err error) {
	addr := c.Address
	if rest, ok := strings.CutPrefix(addr, "https://"); ok {
		addr, tls = rest, true
	} else if rest, ok := strings.CutPrefix(addr, "http://"); ok {
		addr = rest
	}
	addr = strings.TrimSuffix(addr, "/")
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return "", false, fmt.Errorf("must be host:port or http(s)://host:port, got %q", c.Address)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", false, fmt.Errorf("invalid port in %q", c.Address)
	}
	return addr, tls, nil
}

// timeout is request_timeout as a duration.
func (c *Collector) timeout() time.Duration {
	return time.Duration(c.RequestTimeout) * time.Second
}

// headers returns request_headers as strings (numbers and booleans in
// their JSON form, as APISIX sends them).
func (c *Collector) headers() map[string]string {
	if len(c.RequestHeaders) == 0 {
		return nil
	}
	out := make(map[string]string, len(c.RequestHeaders))
	for k, v := range c.RequestHeaders {
		s, _ := scalar(v)
		out[k] = fmt.Sprint(s)
	}
	return out
}

// scalar decodes a string, number (float64) or boolean.
func scalar(raw json.RawMessage) (any, error) {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, err
	}
	switch x := v.(type) {
	case string, bool:
		return x, nil
	case float64:
		if math.IsInf(x, 0) || math.IsNaN(x) {
			return nil, errors.New("must be a finite number")
		}
		return x, nil
	}
	return nil, errors.New("must be a string, number or boolean")
}

func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if b := s[i]; b <= ' ' || b >= 0x7f || b == ':' {
			return false
		}
	}
	return true
}

// describeJSONError turns encoding/json's messages into "field: problem",
// as the gateway's plugin decoder does.
func describeJSONError(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Errorf("%s: must be %s, got %s", te.Field, jsonKind(te.Type.Kind().String()), te.Value)
	}
	if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return fmt.Errorf("%s: unknown field", strings.Trim(f, `"`))
	}
	return err
}

func jsonKind(k string) string {
	switch k {
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "slice", "array":
		return "an array"
	case "map", "struct", "ptr":
		return "an object"
	case "int", "int64", "int32":
		return "an integer"
	}
	return "a number"
}
