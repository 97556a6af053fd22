// Package mocking implements APISIX's mocking plugin: it answers requests
// with a fixed or schema-generated body instead of proxying them.
package mocking

import (
	"runtime/debug"
	"time"

	"github.com/sluicegw/sluice/plugin"
	"github.com/sluicegw/sluice/plugin/ngxtmpl"
)

// Name and Priority are APISIX's.
const (
	Name     = "mocking"
	Priority = 10900
)

func init() {
	plugin.Register(plugin.Descriptor{
		Name:      Name,
		Priority:  Priority,
		NewConfig: func() plugin.Config { return NewConfig() },
		New:       newMocking,
	})
}

// mocking is a built instance; it is immutable and shared.
type mocking struct {
	status  int
	delay   time.Duration
	example *ngxtmpl.Template // nil: generate from schema
	schema  map[string]any
	xml     bool
	fixed   []plugin.Header // Content-Type and x-mock-by
	headers []ngxtmpl.Header
}

// mockBy is the x-mock-by value: "sluice", with the module version when
// the binary was built from a tagged module.
func mockBy() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return "sluice/" + bi.Main.Version
	}
	return "sluice"
}

func newMocking(cfg plugin.Config, _ plugin.Deps) (any, error) {
	c := cfg.(*Config)
	p := &mocking{status: c.ResponseStatus, schema: c.ResponseSchema}
	if c.Delay > 0 {
		p.delay = time.Duration(c.Delay) * time.Second
	}
	if c.ResponseExample != nil {
		t := ngxtmpl.Compile(*c.ResponseExample)
		p.example = &t
	}
	switch mediaType(c.ContentType) {
	case "application/xml", "text/xml":
		p.xml = true
	}
	p.fixed = []plugin.Header{{Name: "Content-Type", Value: c.ContentType}}
	if c.WithMockHeader {
		p.fixed = append(p.fixed, plugin.Header{Name: "x-mock-by", Value: mockBy()})
	}
	if c.ResponseHeaders != nil {
		var err error
		if p.headers, err = ngxtmpl.DecodeHeaders("response_headers", c.ResponseHeaders); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// Access answers the request with the mock. The delay sleeps in the
// request's own goroutine: it holds that request only.
func (p *mocking) Access(c *plugin.Ctx) *plugin.Exit {
	r := c.Request
	e := &plugin.Exit{Status: p.status, Headers: make([]plugin.Header, 0, len(p.fixed)+len(p.headers))}
	e.Headers = append(e.Headers, p.fixed...)
	for i := range p.headers {
		e.Headers = append(e.Headers, plugin.Header{Name: p.headers[i].Name, Value: p.headers[i].Value.Render(r)})
	}
	if p.example != nil {
		e.Body = []byte(p.example.Render(r))
	} else {
		e.Body = generate(p.schema, p.xml)
	}
	if p.delay > 0 {
		time.Sleep(p.delay)
	}
	return e
}

var (
	_ plugin.Accessor = (*mocking)(nil)
	_ plugin.Config   = (*Config)(nil)
)
