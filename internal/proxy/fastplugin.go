package proxy

import (
	"io"
	"net/netip"
	"time"

	"github.com/sluicegw/sluice/internal/h1"
	"github.com/sluicegw/sluice/internal/pipeline"
	"github.com/sluicegw/sluice/internal/runtime"
	"github.com/sluicegw/sluice/plugin"
)

// fastPluginRequest is plugin.Request over the fast engine's parsed request:
// reads see the original head plus the plugins' changes; changes are
// recorded and applied when the upstream head is written.
type fastPluginRequest struct {
	c *fastConn
	v *fastRequest
	// body is the buffered request body once a plugin read or replaced it
	// (buffered); it then goes upstream with a Content-Length.
	body                                  []byte
	buffered                              bool
	ops                                   headerOps
	path                                  string // escaped, for the request line
	query                                 string
	method                                string
	host                                  string
	setPath, setQuery, setMethod, setHost bool
}

func (p *fastPluginRequest) reset(c *fastConn) {
	clear(p.ops)
	*p = fastPluginRequest{c: c, v: &c.view, ops: p.ops[:0]}
}

// ReadBody reads the client's body into memory, answering its 100-continue
// first.
func (p *fastPluginRequest) ReadBody(max int64) ([]byte, error) {
	if p.buffered {
		return p.body, nil
	}
	c := p.c
	if c.reqHasNoBody() {
		p.buffered = true
		return nil, nil
	}
	if c.req.ContentLength > max {
		return nil, plugin.ErrBodyTooLarge
	}
	c.sendContinue()
	var body []byte
	if c.req.ContentLength > 0 {
		body = make([]byte, 0, c.req.ContentLength)
	}
	for {
		if len(body) == cap(body) {
			body = append(body, 0)[:len(body)]
		}
		if c.opts.BodyTimeout > 0 && c.br.Buffered() == 0 {
			_ = c.nc.SetReadDeadline(time.Now().Add(c.opts.BodyTimeout))
		}
		n, err := c.reqBody.Read(body[len(body):cap(body)])
		body = body[:len(body)+n]
		if int64(len(body)) > max {
			return nil, plugin.ErrBodyTooLarge
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, &clientBodyError{err}
		}
	}
	p.body, p.buffered = body, true
	return body, nil
}

// SetBody replaces the body sent upstream.
func (p *fastPluginRequest) SetBody(b []byte) { p.body, p.buffered = b, true }

func (p *fastPluginRequest) Method() string {
	if p.setMethod {
		return p.method
	}
	return p.v.method
}
func (p *fastPluginRequest) Host() string         { return p.v.host }
func (p *fastPluginRequest) Path() string         { return p.v.path }
func (p *fastPluginRequest) RemoteIP() netip.Addr { return p.v.remoteIP }
func (p *fastPluginRequest) RawQuery() string {
	if p.setQuery {
		return p.query
	}
	return p.v.query
}
func (p *fastPluginRequest) Var(name string) (string, bool) { return p.v.Var(name) }

func (p *fastPluginRequest) Header(name string) string {
	orig := p.v.req.Header(name)
	if len(p.ops) == 0 {
		return bstr(orig)
	}
	return p.ops.value(name, bstr(orig), orig != nil)
}
func (p *fastPluginRequest) HeaderValues(name string) []string {
	var orig []string
	for i := range p.v.req.Headers {
		if h1.EqualFold(p.v.req.Headers[i].Name, name) {
			orig = append(orig, string(p.v.req.Headers[i].Value))
		}
	}
	return p.ops.values(name, orig)
}
func (p *fastPluginRequest) SetHeader(name, value string) { p.ops.set(name, value) }
func (p *fastPluginRequest) AddHeader(name, value string) { p.ops.add(name, value) }
func (p *fastPluginRequest) DelHeader(name string)        { p.ops.remove(name) }
func (p *fastPluginRequest) SetPath(path string)          { p.path, p.setPath = path, true }
func (p *fastPluginRequest) SetRawQuery(q string)         { p.query, p.setQuery = q, true }
func (p *fastPluginRequest) SetMethod(m string)           { p.method, p.setMethod = m, true }
func (p *fastPluginRequest) SetHost(h string)             { p.host, p.setHost = h, true }

// fastPluginResponse is plugin.Response over an upstream response head (or a
// plugin's Exit), with recorded changes.
type fastPluginResponse struct {
	status int
	up     []h1.Header     // upstream head fields, or nil
	base   []plugin.Header // an Exit's fields, or nil
	ops    headerOps
}

func (p *fastPluginResponse) reset(status int, up []h1.Header, base []plugin.Header) {
	clear(p.ops)
	*p = fastPluginResponse{status: status, up: up, base: base, ops: p.ops[:0]}
}

func (p *fastPluginResponse) Status() int        { return p.status }
func (p *fastPluginResponse) SetStatus(code int) { p.status = code }
func (p *fastPluginResponse) Header(name string) string {
	orig, has := "", false
	for i := range p.up {
		if h1.EqualFold(p.up[i].Name, name) {
			orig, has = bstr(p.up[i].Value), true
			break
		}
	}
	for _, h := range p.base {
		if !has && equalFoldString(h.Name, name) {
			orig, has = h.Value, true
		}
	}
	return p.ops.value(name, orig, has)
}
func (p *fastPluginResponse) SetHeader(name, value string) { p.ops.set(name, value) }
func (p *fastPluginResponse) AddHeader(name, value string) { p.ops.add(name, value) }
func (p *fastPluginResponse) DelHeader(name string)        { p.ops.remove(name) }

func equalFoldString(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// appendOps writes the headers the ops add.
func appendOps(h []byte, ops headerOps) []byte {
	ops.added(func(name, value string) {
		h = h1.AppendHeaderString(h, name, value)
	})
	return h
}

var (
	_ plugin.Request  = (*fastPluginRequest)(nil)
	_ plugin.Response = (*fastPluginResponse)(nil)
)

// realIP returns the client address a plugin (real-ip) established for this
// request, stored as "real_ip" (netip.Addr) and "real_port" (uint16).
func realIP(c *plugin.Ctx) (netip.Addr, string, bool) {
	v, ok := c.Get("real_ip")
	if !ok {
		return netip.Addr{}, "", false
	}
	ip, ok := v.(netip.Addr)
	if !ok || !ip.IsValid() {
		return netip.Addr{}, "", false
	}
	port := ""
	if p, ok := c.Get("real_port"); ok {
		if n, ok := p.(uint16); ok && n != 0 {
			port = itoa(int(n))
		}
	}
	return ip, port, true
}

// consumerChain switches to the chain of the consumer an auth plugin just
// identified, when that consumer (or its group) carries plugins of its own.
// Phases already run are not run again, except that after the rewrite phase
// (afterRewrite) the consumer's own plugins run theirs, as APISIX does.
func consumerChain(cur *pipeline.Chain, cc *runtime.ConsumerChains, c *plugin.Ctx, afterRewrite bool) (*pipeline.Chain, *plugin.Exit) {
	if cc == nil || c.Consumer == nil {
		return cur, nil
	}
	ch := cc.For(c.Consumer.Username)
	if ch == nil || ch.Chain == cur {
		return cur, nil
	}
	if afterRewrite {
		if e := ch.Rewrite.Rewrite(c); e != nil {
			return ch.Chain, e
		}
	}
	return ch.Chain, nil
}
