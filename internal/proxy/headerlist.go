package proxy

import (
	"net/http"
	"slices"
)

// EachHeader methods let loggers list every header field of a request or
// response as plugins left it (plugin/logentry.HeaderLister): the original
// fields not removed by a plugin, in order, then the fields plugins added.
// They allocate only what fn does; loggers call them in the log phase.

func (o headerOps) eachWith(orig func(fn func(name, value string)), fn func(name, value string)) {
	orig(func(name, value string) {
		if !o.deletes(name) {
			fn(name, value)
		}
	})
	o.added(fn)
}

// EachHeader lists the request's fields as they went upstream.
func (p *fastPluginRequest) EachHeader(fn func(name, value string)) {
	p.ops.eachWith(func(fn func(name, value string)) {
		for i := range p.v.req.Headers {
			h := &p.v.req.Headers[i]
			fn(bstr(h.Name), bstr(h.Value))
		}
	}, fn)
}

// EachHeader lists the response's fields as they went to the client.
func (p *fastPluginResponse) EachHeader(fn func(name, value string)) {
	p.ops.eachWith(func(fn func(name, value string)) {
		for i := range p.up {
			fn(bstr(p.up[i].Name), bstr(p.up[i].Value))
		}
		for _, h := range p.base {
			fn(h.Name, h.Value)
		}
	}, fn)
}

// EachHeader lists the request's fields as they went upstream; net/http
// keeps Host apart and fields in a map, so Host comes first and the rest in
// name order.
func (p *stdPluginRequest) EachHeader(fn func(name, value string)) {
	p.ops.eachWith(func(fn func(name, value string)) {
		if p.q.r.Host != "" {
			fn("Host", p.q.r.Host)
		}
		eachSorted(p.q.r.Header, fn)
	}, fn)
}

// EachHeader lists the response's fields in name order.
func (p *stdPluginResponse) EachHeader(fn func(name, value string)) { eachSorted(p.h, fn) }

func eachSorted(h http.Header, fn func(name, value string)) {
	names := make([]string, 0, len(h))
	for k := range h {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		for _, v := range h[k] {
			fn(k, v)
		}
	}
}
