package apibreaker

import (
	"hash/maphash"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Limits of the table. APISIX keeps its counters in a 10 MB shared dict
// that evicts the least recently used; sluice bounds the entry count
// instead and evicts only entries that no longer matter (not broken, no
// failure for staleAfter), so a flood of failing URIs cannot grow memory
// without bound and cannot push out a breaker that is open.
const (
	defaultMaxEntries = 65536
	staleAfter        = 5 * time.Minute // APISIX's default max_breaker_sec
	sweepEvery        = time.Second     // at most one eviction pass per second when full
)

// table is the breaker state of every (host, uri) that saw an unhealthy
// upstream status since it last recovered: APISIX keys its counters on
// $host..$uri in one shared dict, not on the route. One table serves every
// api-breaker instance of the gateway and lives in plugin.Lasting, so it
// survives configuration changes like APISIX's shared dict does.
//
// Reads (every request) are lock-free: an atomic count of entries, then a
// sync.Map load keyed by a 64-bit hash of host and uri (no string is built).
// Entries are created only on an unhealthy status and deleted when the
// (host, uri) recovers, so a healthy gateway's table is empty and a request
// costs one atomic load per phase.
type table struct {
	seed maphash.Seed
	m    sync.Map // uint64 (hash of host, uri) → *state
	n    atomic.Int64
	max  int64
	// now is a monotonic clock in nanoseconds, never 0; tests replace it.
	now func() int64

	lastSweep atomic.Int64
	sweeping  sync.Mutex
	// untracked counts failures not tracked because the table was full.
	untracked atomic.Int64
	lastWarn  atomic.Int64
	log       *slog.Logger
}

// state is one (host, uri)'s breaker. Every field is atomic: requests
// update it concurrently without a lock. Like APISIX's separate shared-dict
// keys, the fields are not updated together atomically; a status racing a
// recovery may be lost, which is the same approximation APISIX makes.
type state struct {
	host, uri string
	// unhealthy counts unhealthy statuses since the last recovery.
	unhealthy atomic.Int64
	// healthy counts healthy statuses since the last unhealthy one.
	healthy atomic.Int64
	// until is when the current break ends (table clock); 0: none yet.
	until atomic.Int64
	// lastBad is when the last unhealthy status came (for eviction).
	lastBad atomic.Int64
}

// newTable returns an empty table on the real clock.
func newTable(log *slog.Logger) *table {
	epoch := time.Now()
	return newTableWithClock(log, func() int64 { return int64(time.Since(epoch)) + 1 })
}

// newTableWithClock returns an empty table on clock now (nanoseconds,
// monotonic, never 0).
func newTableWithClock(log *slog.Logger, now func() int64) *table {
	if log == nil {
		log = slog.Default()
	}
	return &table{seed: maphash.MakeSeed(), max: defaultMaxEntries, now: now, log: log}
}

// key hashes host and uri without building a string.
func (t *table) key(host, uri string) uint64 {
	return maphash.String(t.seed, uri) ^ (maphash.String(t.seed, host) * 0x9e3779b97f4a7c15)
}

// empty reports whether no (host, uri) is tracked: the common, healthy case.
func (t *table) empty() bool { return t.n.Load() == 0 }

// lookup returns the state of (host, uri), nil when it has none.
func (t *table) lookup(k uint64, host, uri string) *state {
	v, ok := t.m.Load(k)
	if !ok {
		return nil
	}
	s := v.(*state)
	if s.host != host || s.uri != uri {
		return nil // a 64-bit hash collision: that pair goes untracked
	}
	return s
}

// track returns the state of (host, uri), creating it; nil when the table
// is full of entries that still matter.
func (t *table) track(k uint64, host, uri string, now int64) *state {
	if s := t.lookup(k, host, uri); s != nil {
		return s
	}
	if _, taken := t.m.Load(k); taken {
		return nil // collision, see lookup
	}
	if t.n.Load() >= t.max {
		t.evict(now)
		if t.n.Load() >= t.max {
			t.full(now)
			return nil
		}
	}
	// The request's strings may point into a buffer the engine reuses.
	s := &state{host: strings.Clone(host), uri: strings.Clone(uri)}
	s.lastBad.Store(now)
	if _, loaded := t.m.LoadOrStore(k, s); !loaded {
		t.n.Add(1)
		return s
	}
	return t.lookup(k, host, uri)
}

// forget drops s once its (host, uri) recovered.
func (t *table) forget(k uint64, s *state) {
	if t.m.CompareAndDelete(k, s) {
		t.n.Add(-1)
	}
}

// evict drops entries that are not broken and saw no failure for
// staleAfter. It runs at most once per sweepEvery, by one request at a
// time, and only when the table is full.
func (t *table) evict(now int64) {
	last := t.lastSweep.Load()
	if last != 0 && now-last < int64(sweepEvery) {
		return
	}
	if !t.sweeping.TryLock() {
		return
	}
	defer t.sweeping.Unlock()
	t.lastSweep.Store(now)
	t.m.Range(func(k, v any) bool {
		s := v.(*state)
		if now >= s.until.Load() && now-s.lastBad.Load() > int64(staleAfter) && t.m.CompareAndDelete(k, v) {
			t.n.Add(-1)
		}
		return true
	})
}

// full counts an untracked failure and warns, at most once a minute.
func (t *table) full(now int64) {
	n := t.untracked.Add(1)
	last := t.lastWarn.Load()
	if last != 0 && now-last < int64(time.Minute) {
		return
	}
	if t.lastWarn.CompareAndSwap(last, now) {
		t.log.Warn("api-breaker: state table full, failures of new URIs are not tracked",
			"entries", t.n.Load(), "untracked_total", n)
	}
}
