package runtime

import (
	"github.com/sluicegw/sluice/internal/config"
	"github.com/sluicegw/sluice/internal/metrics"
	"github.com/sluicegw/sluice/internal/pipeline"
	"github.com/sluicegw/sluice/plugin"
)

// metricsBuilder gives compiled routes their metrics handles: a route gets
// one when its chain (route, plugin config, service or global rules) has a
// plugin whose config implements metrics.Requester (prometheus). Plugins are
// recognised by that interface, not by name.
type metricsBuilder struct {
	reg     *metrics.Registry // nil: validation-only compile, no handles
	plugins *pluginSet
	// requesters are the registered plugins whose config asks for metrics.
	requesters map[string]bool
	// global holds the options of a global rule's requester, if any.
	global *metrics.Options
}

func newMetricsBuilder(reg *metrics.Registry, ps *pluginSet) *metricsBuilder {
	b := &metricsBuilder{reg: reg, plugins: ps}
	if reg == nil {
		return b
	}
	b.requesters = make(map[string]bool)
	for _, d := range plugin.All() {
		if _, ok := d.NewConfig().(metrics.Requester); ok {
			b.requesters[d.Name] = true
		}
	}
	for _, p := range ps.global {
		if rq, ok := p.Instance.(metrics.Requester); ok {
			o := rq.MetricsOptions()
			b.global = &o
		}
	}
	return b
}

// route returns r's handle, or nil when nothing asks for its metrics. uris
// and hosts are the patterns the router matches r with.
func (b *metricsBuilder) route(r *config.Route, svc *config.Service, uris, hosts []string) *metrics.RouteMetrics {
	if b.reg == nil {
		return nil
	}
	opts, ok := b.routeOptions(r, svc)
	if !ok {
		return nil
	}
	spec := metrics.RouteSpec{ID: r.ID, Route: r.ID, Service: r.ServiceID, URIs: uris, Hosts: hosts}
	if opts.PreferName {
		if r.Name != "" {
			spec.Route = r.Name
		}
		if svc != nil && svc.Name != "" {
			spec.Service = svc.Name
		}
	}
	return b.reg.Route(spec)
}

// routeOptions finds the requester's options: the route's own (merged over
// its plugin config and service, APISIX's precedence) over a global rule's.
func (b *metricsBuilder) routeOptions(r *config.Route, svc *config.Service) (metrics.Options, bool) {
	var svcPlugins map[string]any
	if svc != nil {
		svcPlugins = svc.Plugins
	}
	merged := pipeline.Merge(r.Plugins, b.plugins.pluginConfigs[r.PluginConfigID], svcPlugins)
	for name, raw := range merged {
		if !b.requesters[name] {
			continue
		}
		// Already decoded once by the chain build, which reports errors.
		cfg, meta, err := pipeline.Decode(name, raw, b.plugins.enabled)
		if err != nil || meta.Disable {
			continue
		}
		if rq, ok := cfg.(metrics.Requester); ok {
			return rq.MetricsOptions(), true
		}
	}
	if b.global != nil {
		return *b.global, true
	}
	return metrics.Options{}, false
}

// noRoute returns the handle counting requests no route matched, which
// APISIX counts (with empty route labels) when a global rule has the
// prometheus plugin; nil otherwise.
func (b *metricsBuilder) noRoute() *metrics.RouteMetrics {
	if b.reg == nil || b.global == nil {
		return nil
	}
	return b.reg.Route(metrics.RouteSpec{})
}

// newMetricsRegistry uses plugin_attr.prometheus.default_buckets; the
// gateway rejects a bad plugin_attr at start, so errors fall back to
// APISIX's buckets here.
func newMetricsRegistry(attr map[string]map[string]any) *metrics.Registry {
	a, _ := metrics.ParseAttr(attr["prometheus"])
	return metrics.NewRegistry(a.Buckets)
}
