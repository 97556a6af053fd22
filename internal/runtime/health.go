package runtime

import (
	"github.com/sluicegw/sluice/internal/balancer"
	"github.com/sluicegw/sluice/internal/config"
	"github.com/sluicegw/sluice/internal/health"
)

// HealthStatus reports every checked upstream of the configuration being
// served, in APISIX's control API shape (GET /v1/healthcheck): name, check
// type, and per node its status and counters.
func (r *Runtime) HealthStatus() []health.UpstreamStatus { return r.health.Status() }

// health binds an upstream with checks to its checker, for a compile meant
// to go live; the checker starts (or keeps running) only when the runtime
// commits that compile. It returns nil, not a typed nil, when there is
// nothing to check, so the picker skips health entirely.
func (c *compiler) health(key string, u *config.Upstream, nodes []balancer.Node) balancer.Health {
	if c.deps.Health == nil || u.Checks == nil || u.Checks.Active == nil {
		return nil
	}
	spec := health.Spec{Key: key, Checks: u.Checks, Nodes: nodes}
	if u.PassHost == "rewrite" {
		spec.HostHeader = u.UpstreamHost
	}
	return c.deps.Health.Bind(spec)
}
