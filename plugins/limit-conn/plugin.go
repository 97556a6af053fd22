// Package limitconn implements APISIX's limit-conn plugin: at most conn
// requests of a key in flight at once (lua-resty-limit-traffic's
// resty.limit.conn); up to burst more are admitted after a delay, and the
// rest are rejected. A request is counted in the access phase and released
// in the log phase. Counts live in the gateway's memory (policy local) or in
// Redis / Redis Cluster, shared by every gateway using it.
package limitconn

import (
	"net/http"
	"time"

	"github.com/sluicegw/sluice/internal/ratelimit"
	"github.com/sluicegw/sluice/plugin"
)

// Name and Priority are APISIX's.
const (
	Name     = "limit-conn"
	Priority = 1003
)

func init() {
	plugin.Register(plugin.Descriptor{
		Name:      Name,
		Priority:  Priority,
		NewConfig: func() plugin.Config { return NewConfig() },
		New:       func(cfg plugin.Config, deps plugin.Deps) (any, error) { return newLimitConn(cfg.(*Config), deps) },
	})
}

// ctxKey carries what a request holds from Access to Log: a *slot (the
// common case: one local count, no delay; storing a pointer allocates
// nothing) or a *held list.
const ctxKey = "limit-conn.held"

// minDelay is the shortest delay worth sleeping, as APISIX's 0.001 s.
const minDelay = time.Millisecond

// failExit is APISIX's answer when Redis fails and allow_degradation is
// off: a bare 500.
var failExit = ratelimit.StatusExit(http.StatusInternalServerError)

// limitConn is a built instance. It is immutable except for its route
// cache; counts live in the scopes it points to, which outlive it.
type limitConn struct {
	key     ratelimit.Key
	degrade bool
	reject  *plugin.Exit
	// routes are the scopes per route, kept in Lasting (local) or per
	// instance (Redis); nil in a validation-only build of a Redis policy,
	// which never serves.
	routes *ratelimit.Routes[scope]
	last   ratelimit.LastRoute[scope]
}

func newLimitConn(c *Config, deps plugin.Deps) (*limitConn, error) {
	p := &limitConn{
		key:     ratelimit.NewKey(c.KeyType, c.Key),
		degrade: c.AllowDegradation,
		reject:  ratelimit.RejectExit(c.RejectedCode, c.RejectedMsg),
	}
	fp := ratelimit.Fingerprint(c)
	if c.Policy == ratelimit.PolicyLocal {
		// Kept across reloads under the configuration's content: requests
		// in flight during a reload are released into the counts that the
		// next configuration (if unchanged) keeps using.
		p.routes = ratelimit.LocalRoutes(deps, Name, fp, func(string) *scope {
			return newLocalScope(c, ratelimit.DefaultMaxKeys)
		})
		return p, nil
	}
	rc := c.redis()
	b := ratelimit.SharedBackend(deps, &rc, Name)
	if b == nil {
		return p, nil // validation-only compile: never serves, never connects
	}
	counter := newRedisCounter(b, c)
	p.routes = &ratelimit.Routes[scope]{New: func(route string) *scope {
		s := newScope(c)
		s.redis = counter
		s.prefix = keyPrefix + "route:" + route + ":" + fp + ":"
		return s
	}}
	return p, nil
}

// held is a request's count when the plain *slot does not say enough: a
// delayed request (its delay is taken off its latency), a Redis count, or
// more than one limit-conn on the request (a global rule and the route).
type held struct {
	s     *scope
	slot  *slot  // policy local
	key   string // Redis: the scoped key and the request's member
	mem   string
	delay time.Duration
	next  *held
}

// Access counts the request, rejects it past conn+burst, and delays it past
// conn. A delay sleeps this request's goroutine only; the request is counted
// while it waits, as in APISIX.
func (p *limitConn) Access(c *plugin.Ctx) *plugin.Exit {
	if p.routes == nil {
		return failExit // a validation-only build: it cannot count
	}
	s := p.last.Get(p.routes, c.RouteID)
	key := p.key.Of(c.Request)
	var (
		h *held
		n int64
	)
	if s.local != nil {
		sl, count, ok := s.incoming(key)
		if !ok {
			return p.reject
		}
		n = count
		if d := s.delay(n); d > 0 || p.holding(c) {
			h = &held{s: s, slot: sl, delay: d}
		} else {
			c.Set(ctxKey, sl) // the common case: no allocation
			return nil
		}
	} else {
		k, m := s.prefix+key, s.redis.member()
		count, ok, err := s.redis.incoming(k, m)
		if err != nil {
			s.redis.b.FailedRequest(err, p.degrade)
			if p.degrade {
				return nil
			}
			return failExit
		}
		if !ok {
			return p.reject
		}
		n = count
		h = &held{s: s, key: k, mem: m, delay: s.delay(n)}
	}
	p.hold(c, h)
	if h.delay >= minDelay {
		time.Sleep(h.delay)
	}
	return nil
}

// holding reports whether the request already holds a count (another
// limit-conn ran before this one).
func (p *limitConn) holding(c *plugin.Ctx) bool {
	v, ok := c.Get(ctxKey)
	return ok && v != nil
}

// hold records h for Log, after what the request already holds.
func (p *limitConn) hold(c *plugin.Ctx, h *held) {
	if v, ok := c.Get(ctxKey); ok {
		switch prev := v.(type) {
		case *slot:
			h.next = &held{s: prev.X, slot: prev}
		case *held:
			h.next = prev
		}
	}
	c.Set(ctxKey, h)
}

// Log releases what the request holds. The engines run the log phase on
// every path once the access phase has run: a rejection by a later plugin,
// an upstream error, a client gone mid-response. The first limit-conn to
// log releases everything, so a second one finds nothing.
func (p *limitConn) Log(c *plugin.Ctx) {
	v, ok := c.Get(ctxKey)
	if !ok || v == nil {
		return
	}
	c.Set(ctxKey, nil)
	switch h := v.(type) {
	case *slot:
		h.V.Add(-1) // a held slot is never dropped: a plain decrement is safe
		h.X.observe(latency(c, 0))
	case *held:
		for ; h != nil; h = h.next {
			if h.slot != nil {
				h.slot.V.Add(-1)
			} else {
				go h.s.redis.leaving(h.key, h.mem) // off the request path, bounded by redis_timeout
			}
			h.s.observe(latency(c, h.delay))
		}
	}
}

// latency is what resty.limit.conn averages into its delay unit, as APISIX
// measures it: the upstream's response time when the request was proxied,
// else the request's time without the delay it served.
func latency(c *plugin.Ctx, delay time.Duration) time.Duration {
	if c.Served.UpstreamAddr != "" {
		return c.Served.UpstreamLatency
	}
	return c.Served.Latency - delay
}

var (
	_ plugin.Accessor = (*limitConn)(nil)
	_ plugin.Logger   = (*limitConn)(nil)
	_ plugin.Config   = (*Config)(nil)
)
