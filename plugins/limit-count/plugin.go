// Package limitcount implements APISIX's limit-count plugin: at most count
// requests per key in each time_window, counted in the gateway's memory
// (policy local) or in Redis / Redis Cluster, shared by every gateway that
// uses it.
//
// The counters sit behind the limiter interface: a request costs one
// take(key). The batched cluster mode (a redis policy with sync_interval:
// leases of the quota reserved in Redis in the background, batched.go) is
// a third implementation.
package limitcount

import (
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sluicegw/sluice/internal/ratelimit"
	"github.com/sluicegw/sluice/plugin"
)

// Name and Priority are APISIX's.
const (
	Name     = "limit-count"
	Priority = 1002
)

func init() {
	plugin.Register(plugin.Descriptor{
		Name:      Name,
		Priority:  Priority,
		NewConfig: func() plugin.Config { return NewConfig() },
		New:       func(cfg plugin.Config, deps plugin.Deps) (any, error) { return newLimitCount(cfg.(*Config), deps) },
	})
}

// Response headers, as APISIX names them by default.
const (
	headerLimit     = "X-RateLimit-Limit"
	headerRemaining = "X-RateLimit-Remaining"
	headerReset     = "X-RateLimit-Reset"
)

// ctxKey carries a request's quota from Access to HeaderFilter.
const ctxKey = "limit-count.quota"

// failExit is APISIX's answer when the counter store fails and
// allow_degradation is off.
var failExit = plugin.JSONExit(http.StatusInternalServerError, `{"error_msg":"failed to limit count"}`)

// limitCount is a built instance. It is immutable except for its scope
// cache; counters live in the store it points to, which outlives it.
type limitCount struct {
	key         ratelimit.Key
	showHeaders bool
	degrade     bool
	limitStr    string
	reject      *plugin.Exit

	// local holds the local tables of every route (policy local), kept
	// in Lasting under the configuration's fingerprint; redis is the Redis
	// limiter (policies redis and redis-cluster; nil in a validation-only
	// build, which never serves).
	local *ratelimit.Routes[scope]
	redis *redisLimiter
	// batch is the batched cluster mode (a redis policy with
	// sync_interval; batched.go), used instead of redis.
	batch *batchStore

	// group, when set, is the only scope: routes of a group share it.
	group *scope
	// fp is the configuration's fingerprint (Config.fingerprint).
	fp string
	// sliding: window_type sliding (sliding.go).
	sliding bool
	// last caches the scope of the route seen last: an instance nearly
	// always serves one route, so a request usually skips the map.
	last atomic.Pointer[scope]
}

// limiter counts requests per key. Its implementations are the local table,
// the Redis script and the batched mode's lease table, chosen in
// newLimitCount.
type limiter interface {
	// take counts cost requests under key at time at (the request's
	// start; zero: now). An error means the counter store could not
	// answer in time; the plugin then degrades or rejects.
	take(key string, cost int64, at time.Time) (verdict, error)
	// failed records a request take could not count.
	failed(err error, passed bool)
}

// scope is where one route's (or one group's) counters live: a limiter and
// the prefix that separates its keys from other routes' (empty for local
// tables, which are per route already).
type scope struct {
	route  string
	lim    limiter
	prefix string
}

func newLimitCount(c *Config, deps plugin.Deps) (*limitCount, error) {
	p := &limitCount{
		key:         ratelimit.NewKey(c.KeyType, c.Key),
		showHeaders: c.ShowLimitQuotaHeader,
		degrade:     c.AllowDegradation,
		limitStr:    strconv.FormatInt(*c.Count, 10),
		reject:      ratelimit.RejectExit(c.RejectedCode, c.RejectedMsg),
		fp:          c.fingerprint(),
		sliding:     c.WindowType == windowSliding,
	}
	if c.Policy == PolicyLocal {
		limit, window := *c.Count, time.Duration(*c.TimeWindow)*time.Second
		newT := newTable
		if p.sliding {
			newT = newSlidingTable
		}
		p.local = ratelimit.LocalRoutes(deps, Name, p.fp, func(route string) *scope {
			return &scope{route: route, lim: newT(limit, window, defaultMaxKeys)}
		})
		if c.Group != nil {
			p.group = p.local.Get("")
		}
		return p, nil
	}
	rc := c.redis()
	b := ratelimit.SharedBackend(deps, &rc, Name)
	if b == nil {
		return p, nil // validation-only compile: never serves, never connects
	}
	if c.batched() {
		bs, err := deps.Lasting.Get("limit-count/batched/"+p.fp, func() (any, error) {
			return newBatchStore(b, deps.Logger("limit-count"), c, p.fp), nil
		})
		if err != nil {
			return nil, err
		}
		p.batch = bs.(*batchStore)
		if c.Group != nil {
			p.group = p.batch.scope("")
		}
		return p, nil
	}
	p.redis = &redisLimiter{b: b, limit: *c.Count, window: *c.TimeWindow * 1000, sliding: p.sliding}
	if c.Group != nil {
		p.group = &scope{lim: p.redis, prefix: p.redisPrefix() + "group:" + *c.Group + ":" + p.fp + ":"}
	}
	return p, nil
}

// redisPrefix starts the Redis keys of p's counters. Sliding counters are
// hashes (redis.go), kept apart from the fixed windows' strings.
func (p *limitCount) redisPrefix() string {
	if p.sliding {
		return keyPrefix + "sliding:"
	}
	return keyPrefix
}

// scopeFor returns the counters of route (or of the group).
func (p *limitCount) scopeFor(route string) *scope {
	if p.group != nil {
		return p.group
	}
	if s := p.last.Load(); s != nil && s.route == route {
		return s
	}
	var s *scope
	switch {
	case p.local != nil:
		s = p.local.Get(route)
	case p.batch != nil:
		s = p.batch.scope(route)
	default:
		route = strings.Clone(route)
		s = &scope{route: route, lim: p.redis, prefix: p.redisPrefix() + "route:" + route + ":" + p.fp + ":"}
	}
	p.last.Store(s)
	return s
}

// quota is what HeaderFilter shows.
type quota struct {
	remaining int64
	reset     time.Duration
}

// Access counts the request and rejects it past the limit. The headers go
// on in HeaderFilter, on the upstream's response or on the rejection.
func (p *limitCount) Access(c *plugin.Ctx) *plugin.Exit {
	if p.local == nil && p.redis == nil && p.batch == nil {
		return failExit // a validation-only build: it cannot count
	}
	s := p.scopeFor(c.RouteID)
	// An empty prefix (local tables) concatenates without allocating.
	v, err := s.lim.take(s.prefix+p.key.Of(c.Request), 1, c.Served.Start)
	if err != nil {
		s.lim.failed(err, p.degrade)
		if p.degrade {
			return nil
		}
		return failExit
	}
	if p.showHeaders {
		c.Set(ctxKey, &quota{remaining: v.remaining, reset: v.reset})
	}
	if !v.admitted {
		return p.reject
	}
	return nil
}

// HeaderFilter shows the quota as APISIX does: X-RateLimit-Reset in seconds,
// floored to hundredths for fixed windows and rounded up to hundredths for
// sliding ones (APISIX's two code paths differ; rounding up never
// announces a wait shorter than the real one).
func (p *limitCount) HeaderFilter(c *plugin.Ctx) {
	v, ok := c.Get(ctxKey)
	if !ok {
		return
	}
	q, ok := v.(*quota)
	if !ok || q == nil {
		return
	}
	c.Response.SetHeader(headerLimit, p.limitStr)
	c.Response.SetHeader(headerRemaining, itoa(q.remaining))
	if p.sliding {
		c.Response.SetHeader(headerReset, formatResetUp(q.reset))
		return
	}
	c.Response.SetHeader(headerReset, formatReset(q.reset))
}

// smallInts are the decimal strings of 0..1023, made once: most remaining
// counts are small, and formatting them would allocate per request.
var smallInts = func() (s [1024]string) {
	for i := range s {
		s[i] = strconv.Itoa(i)
	}
	return s
}()

func itoa(n int64) string {
	if n >= 0 && n < int64(len(smallInts)) {
		return smallInts[n]
	}
	return strconv.FormatInt(n, 10)
}

// formatReset renders d in seconds as Lua prints math.floor(s*100)/100.
func formatReset(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	s := math.Floor(d.Seconds()*100) / 100
	return strconv.FormatFloat(s, 'g', 14, 64)
}

// formatResetUp renders d in seconds as Lua prints math.ceil(s*100)/100.
func formatResetUp(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	// Whole milliseconds first, so that float noise cannot add a
	// hundredth (2.3 s is 2.3, not 2.31).
	ms := (d + time.Millisecond - 1) / time.Millisecond
	s := float64((ms+9)/10) / 100
	return strconv.FormatFloat(s, 'g', 14, 64)
}

var (
	_ plugin.Accessor       = (*limitCount)(nil)
	_ plugin.HeaderFilterer = (*limitCount)(nil)
	_ plugin.Config         = (*Config)(nil)
)
