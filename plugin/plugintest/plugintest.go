// Package plugintest makes a plugin test short: build a plugin from a JSON
// config exactly as the gateway does, run it over an in-memory request and
// response, and look at what it did.
//
//	inst := plugintest.New(t, "key-auth", `{"header":"apikey"}`)
//	req := plugintest.NewRequest("GET", "/hello").WithHeader("apikey", "k1")
//	res := plugintest.Run(inst, req, nil)
//	if res.Exit == nil || res.Exit.Status != 401 { ... }
package plugintest

import (
	"encoding/json"
	"net/netip"
	"strings"
	"testing"

	"github.com/sluicegw/sluice/internal/pipeline"
	"github.com/sluicegw/sluice/plugin"
)

// New decodes cfg (JSON) for plugin name with the gateway's own decoder and
// builds the instance; it fails the test on error.
func New(t testing.TB, name, cfg string) any {
	t.Helper()
	inst, err := Build(name, cfg)
	if err != nil {
		t.Fatalf("building %s with %s: %v", name, cfg, err)
	}
	return inst
}

// Build is New without a test: it returns the decoding or build error, for
// tests of invalid configs.
func Build(name, cfg string) (any, error) {
	return BuildWithConsumers(name, cfg)
}

// Consumer is a consumer and its credential config (JSON) for the plugin
// under test, for auth plugins.
type Consumer struct {
	Username   string
	Credential string
}

// NewWithConsumers builds an auth plugin that knows the given consumers.
func NewWithConsumers(t testing.TB, name, cfg string, consumers ...Consumer) any {
	t.Helper()
	inst, err := BuildWithConsumers(name, cfg, consumers...)
	if err != nil {
		t.Fatalf("building %s with %s: %v", name, cfg, err)
	}
	return inst
}

// BuildWithConsumers is NewWithConsumers without a test.
func BuildWithConsumers(name, cfg string, consumers ...Consumer) (any, error) {
	var creds []plugin.ConsumerCredential
	for _, c := range consumers {
		var raw any
		if err := json.Unmarshal([]byte(c.Credential), &raw); err != nil {
			return nil, err
		}
		cc, err := pipeline.DecodeConsumer(name, raw)
		if err != nil {
			return nil, err
		}
		creds = append(creds, plugin.ConsumerCredential{Consumer: &plugin.Consumer{Username: c.Username}, Config: cc})
	}
	deps := func(string) plugin.Deps { return plugin.Deps{Consumers: creds} }
	var raw any
	if cfg != "" {
		if err := json.Unmarshal([]byte(cfg), &raw); err != nil {
			return nil, err
		}
	}
	ps, err := pipeline.Build(map[string]any{name: raw}, nil, deps)
	if err != nil {
		return nil, err
	}
	if len(ps) == 0 {
		return nil, nil // disabled by _meta
	}
	return ps[0].Instance, nil
}

// Request is an in-memory plugin.Request.
type Request struct {
	M, H, P, Q string
	IP         netip.Addr
	Headers    []plugin.Header
	Vars       map[string]string
	// Body is the request body; BodySet reports a plugin replaced it.
	Body    []byte
	BodySet bool
}

// WithBody sets the request body and returns r.
func (r *Request) WithBody(b string) *Request {
	r.Body = []byte(b)
	return r
}

// ReadBody returns Body, or ErrBodyTooLarge past max.
func (r *Request) ReadBody(max int64) ([]byte, error) {
	if int64(len(r.Body)) > max {
		return nil, plugin.ErrBodyTooLarge
	}
	return r.Body, nil
}

// SetBody replaces Body.
func (r *Request) SetBody(b []byte) { r.Body, r.BodySet = b, true }

var _ plugin.Request = (*Request)(nil)

// NewRequest returns a request from 127.0.0.1 to host "example.com".
func NewRequest(method, target string) *Request {
	p, q, _ := strings.Cut(target, "?")
	return &Request{M: method, H: "example.com", P: p, Q: q, IP: netip.MustParseAddr("127.0.0.1")}
}

// WithHeader adds a request header and returns r.
func (r *Request) WithHeader(name, value string) *Request {
	r.Headers = append(r.Headers, plugin.Header{Name: name, Value: value})
	return r
}

// WithIP sets the client address and returns r.
func (r *Request) WithIP(ip string) *Request {
	r.IP = netip.MustParseAddr(ip)
	return r
}

func (r *Request) Method() string       { return r.M }
func (r *Request) Host() string         { return r.H }
func (r *Request) Path() string         { return r.P }
func (r *Request) RawQuery() string     { return r.Q }
func (r *Request) RemoteIP() netip.Addr { return r.IP }
func (r *Request) SetPath(p string)     { r.P = p }
func (r *Request) SetRawQuery(q string) { r.Q = q }
func (r *Request) SetMethod(m string)   { r.M = m }
func (r *Request) SetHost(h string)     { r.H = h }

func (r *Request) Header(name string) string { return get(r.Headers, name) }

// HeaderValues returns every value of name, in order.
func (r *Request) HeaderValues(name string) []string {
	var out []string
	for _, h := range r.Headers {
		if strings.EqualFold(h.Name, name) {
			out = append(out, h.Value)
		}
	}
	return out
}
func (r *Request) SetHeader(name, value string) {
	r.Headers = set(r.Headers, name, value)
}
func (r *Request) AddHeader(name, value string) {
	r.Headers = append(r.Headers, plugin.Header{Name: name, Value: value})
}
func (r *Request) DelHeader(name string) { r.Headers = del(r.Headers, name) }

// Var answers the common variables and Vars.
func (r *Request) Var(name string) (string, bool) {
	if v, ok := r.Vars[name]; ok {
		return v, true
	}
	switch {
	case name == "uri":
		return r.P, true
	case name == "host":
		return r.H, true
	case name == "request_method":
		return r.M, true
	case name == "remote_addr":
		return r.IP.String(), true
	case name == "args":
		return r.Q, r.Q != ""
	case strings.HasPrefix(name, "arg_"):
		for _, kv := range strings.Split(r.Q, "&") {
			k, v, _ := strings.Cut(kv, "=")
			if k == name[4:] {
				return v, true
			}
		}
	case strings.HasPrefix(name, "http_"):
		want := strings.ReplaceAll(name[5:], "_", "-")
		for _, h := range r.Headers {
			if strings.EqualFold(h.Name, want) {
				return h.Value, true
			}
		}
	}
	return "", false
}

// Response is an in-memory plugin.Response.
type Response struct {
	Code    int
	Headers []plugin.Header
	Body    []byte
}

var _ plugin.Response = (*Response)(nil)

func (r *Response) Status() int                  { return r.Code }
func (r *Response) SetStatus(code int)           { r.Code = code }
func (r *Response) Header(name string) string    { return get(r.Headers, name) }
func (r *Response) SetHeader(name, value string) { r.Headers = set(r.Headers, name, value) }
func (r *Response) AddHeader(name, value string) {
	r.Headers = append(r.Headers, plugin.Header{Name: name, Value: value})
}
func (r *Response) DelHeader(name string) { r.Headers = del(r.Headers, name) }

func get(hs []plugin.Header, name string) string {
	for _, h := range hs {
		if strings.EqualFold(h.Name, name) {
			return h.Value
		}
	}
	return ""
}

func set(hs []plugin.Header, name, value string) []plugin.Header {
	hs = del(hs, name)
	return append(hs, plugin.Header{Name: name, Value: value})
}

func del(hs []plugin.Header, name string) []plugin.Header {
	out := hs[:0]
	for _, h := range hs {
		if !strings.EqualFold(h.Name, name) {
			out = append(out, h)
		}
	}
	return out
}

// Result is what running the phases did.
type Result struct {
	// Exit is the exit a request phase returned (nil: the request went on).
	Exit *plugin.Exit
	// Ctx is the request context after all phases.
	Ctx *plugin.Ctx
	// Response is resp after header_filter and body_filter; when a phase
	// exited, it is the exit's response after those filters, as the
	// gateway sends it. Nil when neither happened.
	Response *Response
}

// Run runs inst's phases over req like the gateway does: rewrite, access,
// before_proxy; then header_filter and body_filter over resp (its Body given
// as one chunk) or over the exit a phase returned; then log.
func Run(inst any, req *Request, resp *Response) Result {
	c := &plugin.Ctx{}
	c.Reset(req)
	ch := pipeline.NewChain(nil, []pipeline.Plugin{{Name: "under-test", Instance: inst}})
	res := Result{Ctx: c}
	if e := ch.Rewrite(c); e != nil {
		res.Exit = e
	} else if e := ch.Access(c); e != nil {
		res.Exit = e
	} else if e := ch.BeforeProxy(c); e != nil {
		res.Exit = e
	}
	if res.Exit != nil {
		// The gateway sends exits through header_filter and body_filter too.
		resp = &Response{Code: res.Exit.Status, Headers: append([]plugin.Header(nil), res.Exit.Headers...), Body: res.Exit.Body}
	}
	if resp != nil {
		c.Response = resp
		ch.HeaderFilter(c)
		if ch.HasBodyFilter() {
			resp.Body = append([]byte(nil), ch.BodyFilter(c, resp.Body, true)...)
		}
		res.Response = resp
	}
	ch.Log(c)
	return res
}

// DecodeConsumer decodes and validates an auth plugin's consumer credential
// (JSON) with the gateway's own decoder, for tests of credential validation.
func DecodeConsumer(name, credential string) error {
	var raw any
	if err := json.Unmarshal([]byte(credential), &raw); err != nil {
		return err
	}
	_, err := pipeline.DecodeConsumer(name, raw)
	return err
}
