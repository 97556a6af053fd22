// Package requestid implements APISIX's request-id plugin: it gives each
// request an ID in a header, sent upstream and (optionally) back to the
// client.
package requestid

import (
	"github.com/sluicegw/sluice/plugin"
)

// Name and Priority are APISIX's.
const (
	Name     = "request-id"
	Priority = 12015
)

func init() {
	plugin.Register(plugin.Descriptor{
		Name:      Name,
		Priority:  Priority,
		NewConfig: func() plugin.Config { return NewConfig() },
		New:       newRequestID,
	})
}

// requestID is a built instance; it is immutable and shared.
type requestID struct {
	header  string
	key     string // where Rewrite leaves the ID for HeaderFilter
	respond bool
	gen     func() string
}

func newRequestID(cfg plugin.Config, _ plugin.Deps) (any, error) {
	c := cfg.(*Config)
	p := &requestID{header: c.HeaderName, key: "request-id-" + c.HeaderName, respond: c.IncludeInResponse}
	switch c.Algorithm {
	case "uuidv7":
		p.gen = uuidV7
	case "nanoid":
		p.gen = nanoID
	case "range_id":
		p.gen = newRangeID(c.RangeID).next
	case "ksuid":
		p.gen = ksuid
	default:
		p.gen = uuidV4
	}
	return p, nil
}

// Rewrite keeps the request's own ID, or sets a new one on the upstream
// request (APISIX does this in the rewrite phase too).
func (p *requestID) Rewrite(c *plugin.Ctx) *plugin.Exit {
	id := c.Request.Header(p.header)
	if id == "" {
		id = p.gen()
		c.Request.SetHeader(p.header, id)
	}
	if p.respond {
		c.Set(p.key, id)
	}
	return nil
}

// HeaderFilter adds the ID to the response unless it already has the header.
func (p *requestID) HeaderFilter(c *plugin.Ctx) {
	if !p.respond || c.Response.Header(p.header) != "" {
		return
	}
	if id, ok := c.Get(p.key); ok {
		c.Response.SetHeader(p.header, id.(string))
	}
}

var (
	_ plugin.Rewriter       = (*requestID)(nil)
	_ plugin.HeaderFilterer = (*requestID)(nil)
	_ plugin.Config         = (*Config)(nil)
)
