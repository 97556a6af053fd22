package plugin

import (
	"encoding/json"
	"errors"
)

// UpstreamRef is an upstream the gateway compiled for a plugin: its node
// picker, keepalive pools, retries, timeouts and health checks, all built
// when the configuration was compiled. A plugin gets refs in New, from
// Deps.Upstream (an upstream object by id) or Deps.InlineUpstream (an
// upstream object in its own config), and hands one to Ctx.SetUpstream per
// request (traffic-split). What it holds is opaque to plugins; the zero
// UpstreamRef stands for the route's own upstream.
type UpstreamRef struct {
	key  string
	impl any
}

// NewUpstreamRef wraps an upstream the gateway compiled. It is for the
// gateway's runtime, and for plugin tests that only need distinct refs.
func NewUpstreamRef(key string, impl any) UpstreamRef { return UpstreamRef{key: key, impl: impl} }

// Key is the upstream's identity in the gateway ("upstreams/1" for an
// upstream object, "plugins/<plugin>/<digest>/upstream" for an inline one).
func (r UpstreamRef) Key() string { return r.key }

// IsZero reports the zero ref: the route's own upstream.
func (r UpstreamRef) IsZero() bool { return r.impl == nil }

// Impl is what NewUpstreamRef wrapped, for the gateway's engines.
func (r UpstreamRef) Impl() any { return r.impl }

// UpstreamSource compiles and resolves upstreams for plugins while a
// configuration is compiled. The gateway's runtime implements it; plugin
// tests may implement it with NewUpstreamRef.
type UpstreamSource interface {
	// Upstream returns the upstream object with this id (APISIX's
	// upstream_id), already compiled with the configuration.
	Upstream(id string) (UpstreamRef, error)
	// InlineUpstream decodes, validates and compiles an upstream object
	// given as JSON (APISIX's upstream schema, defaults applied). Errors
	// carry field paths relative to that object ("nodes[0].port: ...").
	// Identical objects yield the same upstream, whose balancer, pool and
	// health state survive configuration changes that leave it as it is.
	InlineUpstream(raw json.RawMessage) (UpstreamRef, error)
}

// ErrNoUpstreamSource is returned by Deps.Upstream and Deps.InlineUpstream
// when the Deps were built without an UpstreamSource (by hand, in a test).
var ErrNoUpstreamSource = errors.New("no upstream source: upstreams can only be resolved while the gateway compiles a configuration")

// Upstream resolves an upstream object by id. Call it in New, never per
// request.
func (d Deps) Upstream(id string) (UpstreamRef, error) {
	if d.Upstreams == nil {
		return UpstreamRef{}, ErrNoUpstreamSource
	}
	return d.Upstreams.Upstream(id)
}

// InlineUpstream compiles an upstream object from a plugin's config. Call it
// in New, never per request.
func (d Deps) InlineUpstream(raw json.RawMessage) (UpstreamRef, error) {
	if d.Upstreams == nil {
		return UpstreamRef{}, ErrNoUpstreamSource
	}
	return d.Upstreams.InlineUpstream(raw)
}

// SetUpstream sends the current request to ref's upstream instead of the
// route's: its nodes, balancer, retries, timeouts (under route.timeout),
// scheme and pass_host apply. The zero ref goes back to the route's. It may
// be called from the rewrite, access and before_proxy phases; the last call
// wins.
func (c *Ctx) SetUpstream(ref UpstreamRef) { c.upstream = ref }

// Upstream returns what SetUpstream set for this request; the zero ref when
// the route's own upstream applies.
func (c *Ctx) Upstream() UpstreamRef { return c.upstream }
