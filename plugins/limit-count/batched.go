package limitcount

import (
	"errors"
	"log/slog"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicegw/sluice/internal/ratelimit"
)

// The batched cluster mode (policy redis or redis-cluster with
// sync_interval > 0) counts in memory against leases of the quota taken
// from Redis ahead of time:
//
//   - Redis holds, per key and window, how many requests have been granted
//     to gateways (not served): a gateway reserves tokens there with one
//     atomic script, and only ever admits requests it holds tokens for.
//     Reservations never exceed count, so leases alone never over-admit.
//   - A request takes a token from its gateway's lease with one
//     compare-and-swap: no Redis round trip, no lock.
//   - A background syncer per configuration tops leases up before they run
//     out (when half the last grant is left, and every sync_interval sized
//     to twice the last interval's use), returns the tokens of keys that
//     went idle, and learns the window's end and the global count.
//   - The one source of over-admission is the credit: a gateway seeing a
//     key for the first time in a window admits up to
//     credit = max(1, floor(count/100)) requests before its first lease
//     arrives, and charges them to Redis unconditionally. Over the limit
//     that is at most gateways x credit requests per key and window, and
//     less in practice: credit that finds the window already full and is
//     not yet spent is clawed back. With count >= 100 that is at most 1%
//     over per gateway. (The tighter (gateways-1) x credit assumed the
//     first charge of a window always fits; a CI run contradicted it.)
//
// The cost of exactness is under-use: tokens a gateway holds but no longer
// needs are unusable elsewhere until it returns them (after one idle
// sync_interval) or the window ends.

// leaseEntry is one key of a batched table: its Redis key and its current
// lease (this gateway's share of the key's current window).
type leaseEntry struct {
	rkey string
	l    atomic.Pointer[lease]
}

// lease is this gateway's view of one key's window. The request path
// touches only the atomics; the fields below them belong to the syncer.
type lease struct {
	e *leaseEntry
	// end is when the window ends (batchStore clock). Until the first
	// sync it is provisional: a full window from the key's first request.
	end atomic.Int64
	// avail is the tokens this gateway may still spend; given is how many
	// it was given in this window (credit + grants - clawbacks - returns),
	// so given - avail is what it admitted.
	avail atomic.Int64
	given atomic.Int64
	// global is the window's Redis count (reserved and charged) as of the
	// last sync; lowWater is the avail below which a request asks the
	// syncer for more.
	global   atomic.Int64
	lowWater atomic.Int64
	// exhausted: the last sync found no quota left in Redis, so a request
	// without tokens is rejected at once instead of waiting for a sync.
	exhausted atomic.Bool
	// demand: a request was rejected since the last sync (the syncer asks
	// Redis again: other gateways may have returned tokens).
	demand atomic.Bool
	// queued: the lease is in the syncer's queue (deduplicates kicks).
	queued atomic.Bool
	// waiting is the cost of requests waiting for this lease's next sync.
	waiting atomic.Int64
	// sig is closed after each sync of the lease (and replaced).
	sig atomic.Pointer[chan struct{}]

	// Syncer-only.
	id         string // Redis window id; "" before the first sync
	charged    bool   // the credit is charged to Redis
	usedAtSync int64  // admitted as of the last sync
	lastGrant  int64
	idle       int // syncs since a request used the lease
}

// deadLease marks an entry removed from its table.
var deadLease = &lease{}

// errBatchedUnavailable is the error of a request that needed Redis
// (its gateway holds no tokens for the key) while Redis is down or slow.
var errBatchedUnavailable = errors.New("redis: batched sync unavailable")

// batchStore is the batched mode of one configuration: its tables (one per
// route, or the group's) and their syncer. It is kept in Deps.Lasting under
// the configuration's fingerprint, so leases survive reloads that leave the
// configuration unchanged.
type batchStore struct {
	b        *ratelimit.Backend
	log      *slog.Logger
	limit    int64
	credit   int64
	window   int64 // nanoseconds
	windowMS int64
	interval time.Duration
	maxKeys  int64
	// fp is the configuration's fingerprint, part of every Redis key.
	fp    string
	group string // non-empty: one table for every route of the group

	// base is the origin of the store's nanosecond clock; now reads it
	// (tests set their own).
	base time.Time
	now  func() int64

	scopes sync.Map // route id ("" for a group) -> *scope

	// down is set when a sync failed and cleared by the next one that
	// works: meanwhile a request that needs Redis degrades at once.
	down   atomic.Bool
	closed atomic.Bool

	q       chan *lease
	stop    chan struct{}
	done    chan struct{}
	stopped sync.Once
	// active are the leases the syncer keeps in sync (syncer-only).
	active map[*lease]struct{}
	// node and seq make window ids unique across gateways (syncer-only).
	node string
	seq  uint64
	// lastLog rate-limits the syncer's failure log (syncer-only).
	lastLog time.Time
}

// creditFor is the requests a gateway admits for a key before its first
// lease of the window arrives: 1% of count, at least 1.
func creditFor(count int64) int64 { return max(1, count/100) }

// queueLen bounds the syncer's queue of kicked leases; a lease that finds
// it full is picked up by its next request or the next tick.
const queueLen = 4096

func (s *batchStore) scope(route string) *scope {
	if s.group != "" {
		route = ""
	}
	if v, ok := s.scopes.Load(route); ok {
		return v.(*scope)
	}
	route = strings.Clone(route) // kept: must not be a view of request memory
	part := "route:" + route
	if s.group != "" {
		part = "group:" + s.group
	}
	t := &leaseTable{s: s, prefix: leasePrefix + part + ":" + s.fp + ":", maxKeys: s.maxKeys}
	v, _ := s.scopes.LoadOrStore(route, &scope{route: route, lim: t})
	return v.(*scope)
}

// clock converts a request's start time to the store's clock.
func (s *batchStore) clock(at time.Time) int64 {
	if at.IsZero() {
		return s.now()
	}
	return int64(at.Sub(s.base))
}

func (s *batchStore) newLease(e *leaseEntry, now int64) *lease {
	l := &lease{e: e}
	l.end.Store(now + s.window)
	l.avail.Store(s.credit)
	l.given.Store(s.credit)
	ch := make(chan struct{})
	l.sig.Store(&ch)
	return l
}

// enqueue asks the syncer to sync l soon. It never blocks.
func (s *batchStore) enqueue(l *lease) {
	if l.queued.Load() || !l.queued.CompareAndSwap(false, true) {
		return
	}
	select {
	case s.q <- l:
	default:
		l.queued.Store(false)
	}
}

// tryTake spends cost tokens of l if it holds them.
func (s *batchStore) tryTake(l *lease, cost, now int64) (verdict, bool) {
	for {
		v := l.avail.Load()
		if v < cost {
			return verdict{}, false
		}
		if l.avail.CompareAndSwap(v, v-cost) {
			left := v - cost
			if left < l.lowWater.Load() && !l.exhausted.Load() {
				s.enqueue(l)
			}
			return verdict{admitted: true, remaining: s.remaining(l, left), reset: time.Duration(l.end.Load() - now)}, true
		}
	}
}

// remaining estimates what is left in the window: the quota no gateway has
// reserved (as of the last sync) plus this gateway's unspent tokens, and
// never more than count minus what this gateway admitted.
func (s *batchStore) remaining(l *lease, avail int64) int64 {
	r := max(0, s.limit-l.global.Load()) + avail
	return max(0, min(r, s.limit-(l.given.Load()-avail)))
}

// rejected answers a request over the limit. It notes the demand, which
// the syncer's next tick (not sooner: a flood of rejections must not turn
// into a flood of Redis calls) takes to Redis, in case tokens came back.
func (s *batchStore) rejected(l *lease, now int64) verdict {
	if !l.demand.Load() {
		l.demand.Store(true)
	}
	return verdict{admitted: false, remaining: 0, reset: time.Duration(l.end.Load() - now)}
}

// takeFrom admits a request on l's tokens. Without tokens it is rejected
// when Redis had no quota left at the last sync; fails at once when Redis
// is down; and otherwise waits (at most redis_timeout) for the lease the
// syncer is fetching: only a gateway's first requests of a window beyond
// its credit, or a burst that outruns the top-ups, ever wait.
func (s *batchStore) takeFrom(l *lease, cost, now int64) (verdict, error) {
	if v, ok := s.tryTake(l, cost, now); ok {
		return v, nil
	}
	if l.exhausted.Load() {
		return s.rejected(l, now), nil
	}
	if s.down.Load() || s.closed.Load() {
		return verdict{}, errBatchedUnavailable
	}
	l.waiting.Add(cost)
	defer l.waiting.Add(-cost)
	var timer *time.Timer
	for {
		ch := l.sig.Load()
		// A sync may have landed between the last try and loading ch.
		if v, ok := s.tryTake(l, cost, now); ok {
			return v, nil
		}
		s.enqueue(l)
		if timer == nil {
			timer = time.NewTimer(s.b.Timeout)
			defer timer.Stop()
		}
		select {
		case <-*ch:
		case <-timer.C:
			return verdict{}, errBatchedUnavailable
		}
		if v, ok := s.tryTake(l, cost, now); ok {
			return v, nil
		}
		switch {
		case l.exhausted.Load():
			return s.rejected(l, now), nil
		case s.down.Load() || s.closed.Load():
			return verdict{}, errBatchedUnavailable
		case now >= l.end.Load():
			// The window ended under us (Redis says it is over): count
			// the request in the next one, as a fresh request would.
			return verdict{}, errLeaseEnded
		}
	}
}

// errLeaseEnded makes leaseTable.take look the key up again.
var errLeaseEnded = errors.New("lease ended")

// leaseTable is one route's (or group's) keys in the batched mode, bounded
// like the local table: a full table drops ended windows first, then live
// ones (their unspent tokens are lost for the window: under-use, never
// over-admission beyond one more credit).
type leaseTable struct {
	s        *batchStore
	prefix   string
	maxKeys  int64
	m        sync.Map // string -> *leaseEntry
	n        atomic.Int64
	sweeping atomic.Bool
}

// take implements limiter.
func (t *leaseTable) take(key string, cost int64, at time.Time) (verdict, error) {
	now := t.s.clock(at)
	for {
		e := t.lookup(key, now)
		l := e.l.Load()
		if l == deadLease {
			t.forget(key, e)
			continue
		}
		if now >= l.end.Load() {
			nl := t.s.newLease(e, now)
			if !e.l.CompareAndSwap(l, nl) {
				continue
			}
			t.s.enqueue(nl)
			l = nl
		}
		v, err := t.s.takeFrom(l, cost, now)
		if errors.Is(err, errLeaseEnded) {
			now = max(now, t.s.now())
			continue
		}
		return v, err
	}
}

// failed implements limiter.
func (t *leaseTable) failed(err error, passed bool) { t.s.b.FailedRequest(err, passed) }

func (t *leaseTable) lookup(key string, now int64) *leaseEntry {
	if v, ok := t.m.Load(key); ok {
		return v.(*leaseEntry)
	}
	if t.n.Load() >= t.maxKeys {
		t.makeRoom(now)
	}
	key = strings.Clone(key) // may be a view of the connection's buffer
	e := &leaseEntry{rkey: t.prefix + key}
	l := &lease{e: e}
	l.end.Store(math.MinInt64) // over: the first request starts a window
	e.l.Store(l)
	v, loaded := t.m.LoadOrStore(key, e)
	if !loaded {
		t.n.Add(1)
	}
	return v.(*leaseEntry)
}

// makeRoom brings the table back to 7/8 of maxKeys, as the local table
// does (see table.makeRoom).
func (t *leaseTable) makeRoom(now int64) {
	if !t.sweeping.CompareAndSwap(false, true) {
		return
	}
	defer t.sweeping.Store(false)
	target := t.maxKeys - t.maxKeys/8
	t.m.Range(func(k, v any) bool {
		e := v.(*leaseEntry)
		if l := e.l.Load(); l != deadLease && now >= l.end.Load() {
			t.remove(k, e, l)
		}
		return true
	})
	t.m.Range(func(k, v any) bool {
		if t.n.Load() <= target {
			return false
		}
		e := v.(*leaseEntry)
		if l := e.l.Load(); l != deadLease {
			t.remove(k, e, l)
		}
		return true
	})
}

func (t *leaseTable) remove(k any, e *leaseEntry, l *lease) {
	if e.l.CompareAndSwap(l, deadLease) {
		t.forget(k, e)
	}
}

func (t *leaseTable) forget(k any, e *leaseEntry) {
	if t.m.CompareAndDelete(k, e) {
		t.n.Add(-1)
	}
}
