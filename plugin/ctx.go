package plugin

import (
	"errors"
	"net/netip"
)

// Request is the request as plugins see it. Reads reflect earlier changes;
// changes apply to what is sent upstream. Each HTTP engine implements it
// without allocating for reads.
type Request interface {
	// Method is the request method, e.g. "GET".
	Method() string
	// Host is the request host, lower case, without port (nginx's $host).
	Host() string
	// Path is the normalized path (nginx's $uri).
	Path() string
	// RawQuery is the query string without '?', not decoded.
	RawQuery() string
	// RemoteIP is the client address.
	RemoteIP() netip.Addr
	// Var returns an nginx/APISIX variable (uri, arg_x, http_x, cookie_x,
	// remote_addr, ...).
	Var(name string) (string, bool)
	// Header returns the first value of a header, "" when absent.
	Header(name string) string
	// HeaderValues returns every value of a header, in order (nil when
	// absent), for checks that must see repeated fields. It allocates.
	HeaderValues(name string) []string
	// SetHeader replaces a header on the upstream request; AddHeader adds a
	// value; DelHeader removes it.
	SetHeader(name, value string)
	AddHeader(name, value string)
	DelHeader(name string)
	// SetPath, SetRawQuery, SetMethod and SetHost change what is sent
	// upstream (proxy-rewrite). SetPath takes a path as it goes on the
	// request line (already escaped).
	SetPath(path string)
	SetRawQuery(query string)
	SetMethod(method string)
	SetHost(host string)
	// ReadBody reads the whole request body into memory (OpenResty's
	// ngx.req.read_body + get_body_data) and returns it; later calls return
	// the same bytes. A body longer than max is not read: ErrBodyTooLarge.
	// Reading is opt-in: a plugin that never calls it leaves the body
	// streaming to the upstream.
	ReadBody(max int64) ([]byte, error)
	// SetBody replaces the body sent upstream; its length frames the request.
	SetBody(body []byte)
}

// ErrBodyTooLarge is ReadBody's answer for a body over its limit; plugins
// usually answer 413.
var ErrBodyTooLarge = errors.New("request body too large")

// Response is the upstream response (or the gateway's own) in HeaderFilter.
type Response interface {
	Status() int
	SetStatus(code int)
	Header(name string) string
	SetHeader(name, value string)
	AddHeader(name, value string)
	DelHeader(name string)
}

// Consumer is an identified API client. Auth plugins set Ctx.Consumer.
type Consumer struct {
	Username string
	// CredentialID identifies the credential used, when the consumer has
	// several; empty otherwise.
	CredentialID string
	// GroupID is the consumer's consumer group, if any.
	GroupID string
	// Labels are the consumer's labels.
	Labels map[string]string
}

// Ctx is one request as it goes through the phases. The gateway reuses it
// between requests: plugins must not keep it, or anything from it, after the
// phase returns.
type Ctx struct {
	Request Request
	// Response is set from the header_filter phase on.
	Response Response
	// RouteID and ServiceID name what matched; RouteName is the route's
	// name, if it has one.
	RouteID, ServiceID, RouteName string
	// Consumer is set by the auth plugin that identified the client.
	Consumer *Consumer
	// Served describes the answer; complete from the log phase on.
	Served Served
	// vals carry per-request values between phases and plugins (ngx.ctx).
	vals []kv
	// upstream overrides the route's upstream for this request
	// (SetUpstream); zero: the route's.
	upstream UpstreamRef
}

type kv struct {
	key string
	val any
}

// Set stores a per-request value, visible to later phases and plugins.
func (c *Ctx) Set(key string, val any) {
	for i := range c.vals {
		if c.vals[i].key == key {
			c.vals[i].val = val
			return
		}
	}
	c.vals = append(c.vals, kv{key, val})
}

// Get returns a value stored with Set.
func (c *Ctx) Get(key string) (any, bool) {
	for i := range c.vals {
		if c.vals[i].key == key {
			return c.vals[i].val, true
		}
	}
	return nil, false
}

// Finisher is a per-request value (stored with Set) holding something to
// give back when the request is over, such as a pooled Lua VM.
type Finisher interface{ Finish() }

// Finish calls Finish on every value stored with Set that is a Finisher,
// and forgets it. The gateway calls it after the log phase (Chain.Log);
// calling it again does nothing.
func (c *Ctx) Finish() {
	for i := range c.vals {
		if f, ok := c.vals[i].val.(Finisher); ok {
			c.vals[i].val = nil
			f.Finish()
		}
	}
}

// Reset clears c for the next request, keeping its storage.
func (c *Ctx) Reset(req Request) {
	c.Finish() // in case the log phase did not run
	clear(c.vals)
	*c = Ctx{Request: req, vals: c.vals[:0]}
}
