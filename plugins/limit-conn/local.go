package limitconn

import (
	"math"
	"sync/atomic"
	"time"

	"github.com/sluicegw/sluice/internal/ratelimit"
)

// scope is one route's limiter: the settings, the delay unit, and either
// the local counters or the Redis prefix of the route's keys.
type scope struct {
	conn, limit int64 // conn, and conn+burst
	// unit is the delay per conn of excess, in nanoseconds: default_conn_delay,
	// then, unless only_use_default_delay, a running average with the
	// latencies of released requests (resty.limit.conn's unit_delay). It
	// is per route and per gateway, as APISIX's is per worker.
	unit  atomic.Int64
	adapt bool

	// local counts in-flight requests per key (policy local); for the
	// Redis policies, redis and prefix name where they are counted.
	local  *ratelimit.Table[*scope]
	redis  *redisCounter
	prefix string
}

// slot is one key's in-flight count in a local table.
type slot = ratelimit.Slot[*scope]

func newScope(c *Config) *scope {
	s := &scope{conn: *c.Conn, limit: *c.Conn + *c.Burst, adapt: !c.OnlyUseDefaultDelay}
	s.unit.Store(int64(*c.DefaultConnDelay * float64(time.Second)))
	return s
}

// newLocalScope counts locally. A slot holding requests is never dropped
// (forgetting it would let its key past the limit); an idle one is, when
// the table is full. So the table may outgrow its bound by the number of
// keys with requests in flight, which the number of connections bounds.
func newLocalScope(c *Config, maxKeys int64) *scope {
	s := newScope(c)
	s.local = &ratelimit.Table[*scope]{
		Idle:    func(n, _ int64) bool { return n == 0 },
		MaxKeys: maxKeys,
		X:       s,
	}
	return s
}

// incoming counts one request of key when fewer than conn+burst are in
// flight, and returns its slot and the count including it. The check and
// the increment are one compare-and-swap: concurrent requests never
// over-admit, and a rejected request changes nothing.
func (s *scope) incoming(key string) (*slot, int64, bool) {
	for {
		sl := s.local.Get(key, 0)
		n := sl.V.Load()
		if n == ratelimit.Dead {
			s.local.Forget(key, sl) // dropped while idle: look again
			continue
		}
		if n >= s.limit {
			return nil, n, false
		}
		if sl.V.CompareAndSwap(n, n+1) {
			return sl, n + 1, true
		}
	}
}

// delay is how long the nth request in flight waits: nothing up to conn,
// then unit per conn of excess (resty.limit.conn: unit * floor((n-1)/conn)).
func (s *scope) delay(n int64) time.Duration {
	if n <= s.conn {
		return 0
	}
	u, k := s.unit.Load(), (n-1)/s.conn
	if u > 0 && k > math.MaxInt64/u {
		return math.MaxInt64 // saturate rather than wrap
	}
	return time.Duration(u * k)
}

// observe folds a released request's latency into the delay unit.
func (s *scope) observe(latency time.Duration) {
	if !s.adapt || latency < 0 {
		return
	}
	for {
		u := s.unit.Load()
		if s.unit.CompareAndSwap(u, (u+int64(latency))/2) {
			return
		}
	}
}
