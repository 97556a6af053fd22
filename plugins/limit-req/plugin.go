// Package limitreq implements APISIX's limit-req plugin: a leaky bucket per
// key (nginx's limit_req, lua-resty-limit-traffic's resty.limit.req). A key
// may go at rate requests per second; up to burst requests beyond that are
// delayed to the rate (or, with nodelay, let through at once), and the rest
// are rejected. The buckets live in the gateway's memory (policy local) or
// in Redis / Redis Cluster, shared by every gateway using it.
package limitreq

import (
	"net/http"
	"time"

	"github.com/sluicegw/sluice/internal/ratelimit"
	"github.com/sluicegw/sluice/plugin"
)

// Name and Priority are APISIX's.
const (
	Name     = "limit-req"
	Priority = 1001
)

func init() {
	plugin.Register(plugin.Descriptor{
		Name:      Name,
		Priority:  Priority,
		NewConfig: func() plugin.Config { return NewConfig() },
		New:       func(cfg plugin.Config, deps plugin.Deps) (any, error) { return newLimitReq(cfg.(*Config), deps) },
	})
}

// minDelay is the shortest delay worth sleeping, as APISIX's 0.001 s.
const minDelay = time.Millisecond

// failExit is APISIX's answer when Redis fails and allow_degradation is
// off: a bare 500.
var failExit = ratelimit.StatusExit(http.StatusInternalServerError)

// limiter admits or rejects requests per key. Its implementations are the
// local bucket and the Redis script.
type limiter interface {
	// take admits or rejects one request under key at time at (the
	// request's start; zero: now) and returns how long an admitted one
	// should wait. An error means the store could not answer in time.
	take(key string, at time.Time) (delay time.Duration, admitted bool, err error)
}

// scope is where one route's buckets live: a limiter and the prefix that
// separates its keys from other routes' (empty for local buckets, which are
// per route already).
type scope struct {
	lim    limiter
	prefix string
}

// limitReq is a built instance. It is immutable except for its route
// cache; buckets live in the store it points to, which outlives it.
type limitReq struct {
	key     ratelimit.Key
	nodelay bool
	degrade bool
	reject  *plugin.Exit
	// routes are the scopes per route: local buckets kept in Lasting, or
	// Redis prefixes; nil in a validation-only build of a Redis policy,
	// which never serves.
	routes *ratelimit.Routes[scope]
	redis  *redisLimiter
	last   ratelimit.LastRoute[scope]
}

func newLimitReq(c *Config, deps plugin.Deps) (*limitReq, error) {
	p := &limitReq{
		key:     ratelimit.NewKey(c.KeyType, c.Key),
		nodelay: c.NoDelay,
		degrade: c.AllowDegradation,
		reject:  ratelimit.RejectExit(c.RejectedCode, c.RejectedMsg),
	}
	fp := ratelimit.Fingerprint(c)
	rate, burst := *c.Rate, *c.Burst
	if c.Policy == ratelimit.PolicyLocal {
		p.routes = ratelimit.LocalRoutes(deps, Name, fp, func(string) *scope {
			return &scope{lim: newBucket(rate, burst, ratelimit.DefaultMaxKeys)}
		})
		return p, nil
	}
	rc := c.redis()
	b := ratelimit.SharedBackend(deps, &rc, Name)
	if b == nil {
		return p, nil // validation-only compile: never serves, never connects
	}
	p.redis = newRedisLimiter(b, rate, burst)
	// As APISIX, a key is limited per route and configuration version: here
	// the configuration's content, so gateways with the same route share.
	p.routes = &ratelimit.Routes[scope]{New: func(route string) *scope {
		return &scope{lim: p.redis, prefix: keyPrefix + "route:" + route + ":" + fp + ":"}
	}}
	return p, nil
}

// Access admits, delays or rejects the request. A delay sleeps this
// request's goroutine only: other requests, on this connection's route or
// any other, are not held up. It is at most burst/rate.
func (p *limitReq) Access(c *plugin.Ctx) *plugin.Exit {
	if p.routes == nil {
		return failExit // a validation-only build: it cannot limit
	}
	s := p.last.Get(p.routes, c.RouteID)
	// An empty prefix (local buckets) concatenates without allocating.
	delay, ok, err := s.lim.take(s.prefix+p.key.Of(c.Request), c.Served.Start)
	if err != nil {
		p.redis.failed(err, p.degrade)
		if p.degrade {
			return nil
		}
		return failExit
	}
	if !ok {
		return p.reject
	}
	if delay >= minDelay && !p.nodelay {
		// The bucket lets the request out at its start plus delay.
		if !c.Served.Start.IsZero() {
			delay = time.Until(c.Served.Start.Add(delay))
		}
		time.Sleep(delay)
	}
	return nil
}

var (
	_ plugin.Accessor = (*limitReq)(nil)
	_ plugin.Config   = (*Config)(nil)
)
