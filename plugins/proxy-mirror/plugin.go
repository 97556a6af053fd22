// Package proxymirror implements APISIX's proxy-mirror plugin: a copy of
// (a sample of) a route's requests goes to a mirror host, whose answers are
// ignored. The copy is sent from the background, so the mirror never slows
// or fails the client: a slow or dead mirror only costs dropped copies,
// counted and logged.
package proxymirror

import (
	"math/rand/v2"
	"strconv"

	"github.com/sluicegw/sluice/plugin"
)

// Name and Priority are APISIX's.
const (
	Name     = "proxy-mirror"
	Priority = 1010
)

func init() {
	plugin.Register(plugin.Descriptor{
		Name:      Name,
		Priority:  Priority,
		NewConfig: func() plugin.Config { return NewConfig() },
		New:       newMirror,
		Schema:    schema(),
	})
}

// mirror is a built instance; immutable and shared by requests.
type mirror struct {
	s       *sender // nil in validation-only compiles
	ratio   float64
	path    string // "" when unset
	prefix  bool   // path_concat_mode prefix
	maxBody int64
}

func newMirror(cfg plugin.Config, deps plugin.Deps) (any, error) {
	c := cfg.(*Config)
	a, err := ParseAttr(deps.Attr)
	if err != nil {
		return nil, err
	}
	p := &mirror{ratio: c.SampleRatio, prefix: c.PathConcatMode == ModePrefix, maxBody: a.MaxBodyBytes}
	if c.Path != nil {
		p.path = *c.Path
	}
	o, err := deps.Lasting.Get(a.key(c.Host), func() (any, error) {
		return newSender(c.Host, a, deps.Logger(Name))
	})
	if err != nil {
		return nil, err
	}
	if o != nil {
		p.s = o.(*sender)
	}
	return p, nil
}

// BeforeProxy sends a copy of the request as it is about to go upstream.
// Running last among the request phases means a request that a plugin
// rejects (authentication, rate limits) is not mirrored, as with nginx's
// mirror, which fires after the access phase; and the copy carries the
// method, headers and body the upstream gets (credentials hidden, consumer
// headers added, proxy-rewrite's header and method changes). The path and
// query are the client's: see clientTarget.
func (p *mirror) BeforeProxy(c *plugin.Ctx) *plugin.Exit {
	if p.s == nil || !p.sampled() {
		return nil
	}
	body, ok := p.readBody(c.Request)
	if !ok {
		return nil
	}
	j := getJob()
	j.fill(p, c, body)
	p.s.enqueue(j)
	return nil
}

// sampled draws whether this request is mirrored. math/rand/v2's
// top-level functions use a per-thread generator: no lock, no allocation.
func (p *mirror) sampled() bool {
	return p.ratio >= 1 || rand.Float64() < p.ratio
}

// readBody returns the body to mirror, reading it (which also buffers it for
// the upstream) only when its length is declared and within max_body_bytes:
// reading part of a longer or chunked body would leave the upstream without
// the part read. ok is false when the request is not to be mirrored.
func (p *mirror) readBody(r plugin.Request) (body []byte, ok bool) {
	cl := r.Header("Content-Length")
	if cl == "" {
		// No declared length: HTTP/1.1 says no body, unless the body is
		// chunked, which one engine shows (Transfer-Encoding) and the
		// other does not. Methods that carry bodies are therefore only
		// mirrored with a Content-Length.
		if r.Header("Transfer-Encoding") != "" || !bodylessMethod(r.Method()) {
			p.s.skip("request body of unknown length (chunked or HTTP/2 without Content-Length)")
			return nil, false
		}
		return nil, true
	}
	n, err := strconv.ParseInt(cl, 10, 64)
	switch {
	case err != nil || n < 0:
		p.s.skip("invalid Content-Length")
		return nil, false
	case n == 0:
		return nil, true
	case n > p.maxBody:
		p.s.skip("request body larger than max_body_bytes")
		return nil, false
	}
	body, err = r.ReadBody(p.maxBody)
	if err != nil || int64(len(body)) > p.maxBody {
		// The client's body could not be read: the upstream request
		// fails on its own; the copy is not worth sending.
		p.s.skip("request body not read: " + errText(err))
		return nil, false
	}
	return body, true
}

func errText(err error) string {
	if err == nil {
		return "larger than max_body_bytes"
	}
	return err.Error()
}

// bodylessMethod reports methods whose requests carry no body in practice.
func bodylessMethod(m string) bool {
	switch m {
	case "GET", "HEAD", "OPTIONS", "DELETE", "TRACE":
		return true
	}
	return false
}

var (
	_ plugin.BeforeProxier = (*mirror)(nil)
	_ plugin.Config        = (*Config)(nil)
)
