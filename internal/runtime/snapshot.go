// Package runtime turns store listings into validated, compiled, immutable
// Snapshots and swaps them in atomically. The data plane reads only the current
// Snapshot; it never reads the store.
package runtime

import (
	"time"

	"github.com/sluicegw/sluice/internal/config"
	"github.com/sluicegw/sluice/internal/metrics"
	"github.com/sluicegw/sluice/internal/pipeline"
	"github.com/sluicegw/sluice/internal/router"
	"github.com/sluicegw/sluice/internal/upstream"
	"github.com/sluicegw/sluice/plugin"
)

// Snapshot is the compiled form of every resource at one store revision.
type Snapshot struct {
	Revision int64
	Router   *router.Router[*Route]
	// Routes lists every compiled route, in id order, for introspection.
	Routes []*Route
	// NoRouteMetrics counts requests no route matched, when a global rule
	// has the prometheus plugin (APISIX does); nil otherwise.
	NoRouteMetrics *metrics.RouteMetrics

	upstreamKeys []string
}

// Route is a compiled route: what to run once it matched.
type Route struct {
	ID              string
	Name            string
	ServiceID       string
	EnableWebsocket bool
	Upstream        *upstream.Upstream
	// Chain is the route's compiled plugins (global rules included); nil
	// when nothing runs.
	Chain *pipeline.Chain
	// ConsumerChains replace Chain after authentication for consumers with
	// plugins of their own; nil when no consumer has any.
	ConsumerChains *ConsumerChains
	// Timeouts already resolves route.timeout over upstream.timeout over the
	// gateway defaults.
	Timeouts upstream.Timeouts
	// Metrics counts the route's requests when its chain has the prometheus
	// plugin; nil otherwise. The engines call Observe after the log phase.
	Metrics *metrics.RouteMetrics
	// timeout is the route's own timeout, applied over the timeouts of an
	// upstream a plugin chose (TimeoutsFor); nil when unset.
	timeout *config.Timeout
}

// UpstreamFor returns the upstream a request goes to: the one a plugin set
// with plugin.Ctx.SetUpstream (traffic-split), else the route's own (nil
// when the route has none).
func (r *Route) UpstreamFor(c *plugin.Ctx) *upstream.Upstream {
	if u, ok := c.Upstream().Impl().(*upstream.Upstream); ok {
		return u
	}
	return r.Upstream
}

// TimeoutsFor returns the timeouts of a request sent to up: Timeouts for
// the route's own upstream; for one a plugin chose, the route's timeout
// over that upstream's (which already includes the gateway defaults).
func (r *Route) TimeoutsFor(up *upstream.Upstream) upstream.Timeouts {
	if up == r.Upstream || up == nil {
		return r.Timeouts
	}
	if r.timeout != nil {
		return timeouts(r.timeout, up.Timeouts)
	}
	return up.Timeouts
}

// Defaults are the gateway-level values a resource may leave unset.
type Defaults struct {
	Timeouts upstream.Timeouts
	// PluginAttr is the gateway config's plugin_attr, by plugin name
	// (plugin.Deps.Attr).
	PluginAttr map[string]map[string]any
}

// DefaultTimeouts are APISIX's (nginx's) proxy timeouts: 60 s each.
func DefaultTimeouts() upstream.Timeouts {
	return upstream.Timeouts{Connect: 60 * time.Second, Send: 60 * time.Second, Read: 60 * time.Second}
}
