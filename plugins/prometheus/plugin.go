// Package prometheus implements APISIX's prometheus plugin: a route (or
// service, plugin config, global rule) carrying it has its requests counted
// and exported in APISIX's metric names (apisix_http_status,
// apisix_http_latency, apisix_bandwidth...).
//
// The plugin runs no phase. Counting happens outside the chain, in
// internal/metrics: the runtime sees a config implementing
// metrics.Requester in a route's chain, attaches the route's lock-free
// counter handle to the compiled route, and the engines call its Observe once
// per request after the log phase. A plugin instance cannot do it itself: it
// does not know which route it serves (a global rule's instance serves them
// all), and finding the route's counters from the request would cost a map
// lookup per request. The exporter is configured by the gateway config's
// plugin_attr.prometheus and started by the gateway.
package prometheus

import (
	"github.com/sluicegw/sluice/internal/metrics"
	"github.com/sluicegw/sluice/plugin"
)

// Name and Priority are APISIX's (apisix/plugins/prometheus.lua).
const (
	Name     = "prometheus"
	Priority = 500
)

func init() {
	plugin.Register(plugin.Descriptor{
		Name:      Name,
		Priority:  Priority,
		NewConfig: func() plugin.Config { return NewConfig() },
		New:       newPrometheus,
	})
}

// instance is the built plugin: only its options matter to the runtime.
type instance struct{ opts metrics.Options }

func newPrometheus(cfg plugin.Config, _ plugin.Deps) (any, error) {
	return &instance{opts: cfg.(*Config).MetricsOptions()}, nil
}

// MetricsOptions marks the chain for counting.
func (p *instance) MetricsOptions() metrics.Options { return p.opts }

var (
	_ metrics.Requester = (*instance)(nil)
	_ metrics.Requester = (*Config)(nil)
)
