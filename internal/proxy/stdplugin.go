package proxy

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"time"

	"github.com/sluicegw/sluice/internal/pipeline"
	"github.com/sluicegw/sluice/internal/runtime"
	"github.com/sluicegw/sluice/plugin"
)

// stdPlugins is the plugin state of one request on the net/http engine; nil
// when the route runs no plugin.
type stdPlugins struct {
	chain     *pipeline.Chain
	consumers *runtime.ConsumerChains
	ctx       plugin.Ctx
	req       stdPluginRequest
	resp      stdPluginResponse
	// upStart is when the last upstream attempt began (Served.UpstreamStart).
	upStart time.Time
}

// stdPluginRequest is plugin.Request over a net/http request. Like the fast
// engine's, it records changes and forwardStd applies them to the outgoing
// request, so both engines give plugins the same view.
type stdPluginRequest struct {
	q *stdRequest
	// body is the buffered request body once a plugin read or replaced it.
	body                                  []byte
	buffered                              bool
	ops                                   headerOps
	path, query, method, host             string
	setPath, setQuery, setMethod, setHost bool
}

func (p *stdPluginRequest) Method() string {
	if p.setMethod {
		return p.method
	}
	return p.q.r.Method
}
func (p *stdPluginRequest) Host() string         { return p.q.host }
func (p *stdPluginRequest) Path() string         { return p.q.path }
func (p *stdPluginRequest) RemoteIP() netip.Addr { return p.q.remoteIP }
func (p *stdPluginRequest) RawQuery() string {
	if p.setQuery {
		return p.query
	}
	return p.q.query
}
func (p *stdPluginRequest) Var(name string) (string, bool) { return p.q.Var(name) }
func (p *stdPluginRequest) Header(name string) string {
	vv := p.q.r.Header.Values(name)
	orig := ""
	if len(vv) > 0 {
		orig = vv[0]
	}
	return p.ops.value(name, orig, len(vv) > 0)
}
func (p *stdPluginRequest) HeaderValues(name string) []string {
	return p.ops.values(name, append([]string(nil), p.q.r.Header.Values(name)...))
}
func (p *stdPluginRequest) SetHeader(name, value string) { p.ops.set(name, value) }
func (p *stdPluginRequest) AddHeader(name, value string) { p.ops.add(name, value) }
func (p *stdPluginRequest) DelHeader(name string)        { p.ops.remove(name) }
func (p *stdPluginRequest) SetPath(path string)          { p.path, p.setPath = path, true }
func (p *stdPluginRequest) SetRawQuery(q string)         { p.query, p.setQuery = q, true }
func (p *stdPluginRequest) SetMethod(m string)           { p.method, p.setMethod = m, true }
func (p *stdPluginRequest) SetHost(h string)             { p.host, p.setHost = h, true }

// ReadBody reads the client's body into memory.
func (p *stdPluginRequest) ReadBody(max int64) ([]byte, error) {
	if p.buffered {
		return p.body, nil
	}
	r := p.q.r
	if r.Body == nil || r.Body == http.NoBody {
		p.buffered = true
		return nil, nil
	}
	if r.ContentLength > max {
		return nil, plugin.ErrBodyTooLarge
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, max+1))
	if err != nil {
		return nil, fmt.Errorf("reading request body: %w", err)
	}
	if int64(len(b)) > max {
		return nil, plugin.ErrBodyTooLarge
	}
	p.body, p.buffered = b, true
	return b, nil
}

// SetBody replaces the body sent upstream.
func (p *stdPluginRequest) SetBody(b []byte) { p.body, p.buffered = b, true }

// apply writes the recorded changes into the outgoing request.
func (p *stdPluginRequest) apply(out *http.Request) {
	for _, op := range p.ops {
		if op.del {
			out.Header.Del(op.name)
		}
		if op.add {
			out.Header.Add(op.name, op.value)
		}
	}
	if p.setMethod {
		out.Method = p.method
	}
	if p.setPath {
		if dec, err := url.PathUnescape(p.path); err == nil {
			out.URL.Path, out.URL.RawPath = dec, p.path
		}
	}
	if p.setQuery {
		out.URL.RawQuery = p.query
	}
	if p.setHost {
		out.Host = p.host
	}
	if p.buffered {
		out.Body, out.ContentLength = http.NoBody, int64(len(p.body))
		out.TransferEncoding = nil
		out.Header.Del("Content-Length")
		if len(p.body) > 0 {
			body := p.body
			out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
			out.Body, _ = out.GetBody()
		}
	}
}

// stdPluginResponse is plugin.Response over the response headers about to be
// written.
type stdPluginResponse struct {
	h      http.Header
	status int
}

func (p *stdPluginResponse) Status() int                  { return p.status }
func (p *stdPluginResponse) SetStatus(code int)           { p.status = code }
func (p *stdPluginResponse) Header(name string) string    { return p.h.Get(name) }
func (p *stdPluginResponse) SetHeader(name, value string) { p.h.Set(name, value) }
func (p *stdPluginResponse) AddHeader(name, value string) { p.h.Add(name, value) }
func (p *stdPluginResponse) DelHeader(name string)        { p.h.Del(name) }

// runRequestPhases runs rewrite, access and before_proxy.
func (sp *stdPlugins) runRequestPhases() *plugin.Exit {
	if e := sp.chain.Rewrite(&sp.ctx); e != nil {
		return e
	}
	var e *plugin.Exit
	if sp.chain, e = consumerChain(sp.chain, sp.consumers, &sp.ctx, true); e != nil {
		return e
	}
	if ip, port, ok := realIP(&sp.ctx); ok {
		q := sp.req.q
		q.remoteIP, q.remoteAddr = ip, ip.String()
		if port != "" {
			q.remotePort = port
		}
	}
	if e := sp.chain.Access(&sp.ctx); e != nil {
		return e
	}
	sp.chain, _ = consumerChain(sp.chain, sp.consumers, &sp.ctx, false)
	if cons := sp.ctx.Consumer; cons != nil {
		sp.req.SetHeader("X-Consumer-Username", cons.Username)
		if cons.CredentialID != "" {
			sp.req.SetHeader("X-Credential-Identifier", cons.CredentialID)
		}
	}
	return sp.chain.BeforeProxy(&sp.ctx)
}

// headerFilter runs header_filter over h and returns the status to send.
func (sp *stdPlugins) headerFilter(h http.Header, status int) int {
	sp.resp = stdPluginResponse{h: h, status: status}
	sp.ctx.Response = &sp.resp
	if sp.chain.HasHeaderFilter() {
		sp.chain.HeaderFilter(&sp.ctx)
	}
	return sp.resp.status
}

// writeExit answers a request a plugin ended, through header_filter.
func (sp *stdPlugins) writeExit(w http.ResponseWriter, e *plugin.Exit) (int, int64) {
	h := w.Header()
	for _, f := range e.Headers {
		h.Add(f.Name, f.Value)
	}
	h.Set("Server", "sluice")
	status := sp.headerFilter(h, e.Status)
	body := e.Body
	if sp.chain.FiltersBody(&sp.ctx) {
		body = sp.chain.BodyFilter(&sp.ctx, body, true)
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	n, _ := w.Write(body)
	return status, int64(n)
}

var (
	_ plugin.Request  = (*stdPluginRequest)(nil)
	_ plugin.Response = (*stdPluginResponse)(nil)
)
