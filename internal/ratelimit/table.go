package ratelimit

import (
	"math"
	"strings"
	"sync"
	"sync/atomic"
)

// DefaultMaxKeys bounds how many keys one table tracks (one table per route
// and configuration). At roughly 100 bytes plus the key per entry, 100k
// keys stay around 10-20 MB in the worst case.
const DefaultMaxKeys = 100_000

// Dead is the value of a slot removed from its table. A request that finds
// it looks the key up again instead of working on state no later request
// would see.
const Dead = math.MinInt64

// Slot is one key's state: a single word changed only by compare-and-swap,
// so concurrent requests on a key never lose an update, plus X, the same
// for every slot of a table (what the plugin needs to get from a held slot
// back to its scope).
type Slot[X any] struct {
	V atomic.Int64
	X X
}

// Table maps keys to slots. Lookups are lock-free (a sync.Map, which looks
// up a string without allocating); only a key's first request allocates.
//
// It is bounded: past MaxKeys a request that adds a key first drops idle
// slots (per Idle), then, if EvictLive, live ones in the map's random
// order, until the table is at 7/8 of the bound. Freeing an eighth at a time
// keeps the cost of a flood of new keys amortized O(1) per key. Evicting a
// live slot forgets its state (its client starts afresh), the same trade
// nginx's shared dicts make when full, chosen over refusing newcomers, which
// would let a flood of junk keys lock out real clients. A table that must
// not forget live state (concurrency counts) leaves EvictLive off and may
// then grow past MaxKeys by the number of keys in use.
type Table[X any] struct {
	// Init is a new slot's value; Idle says whether a slot holding v may be
	// dropped at time now; X is given to every slot.
	Init      int64
	Idle      func(v, now int64) bool
	EvictLive bool
	MaxKeys   int64
	X         X

	m        sync.Map // string -> *Slot[X]
	n        atomic.Int64
	sweeping atomic.Bool
}

// Get returns key's slot, adding one holding Init when the key is new.
// Callers load its value and, on Dead, call Forget and Get again.
func (t *Table[X]) Get(key string, now int64) *Slot[X] {
	if v, ok := t.m.Load(key); ok {
		return v.(*Slot[X])
	}
	if t.n.Load() >= t.MaxKeys {
		t.makeRoom(now)
	}
	// The key may be a view of the connection's buffer: keep a copy.
	key = strings.Clone(key)
	s := &Slot[X]{X: t.X}
	s.V.Store(t.Init)
	v, loaded := t.m.LoadOrStore(key, s)
	if !loaded {
		t.n.Add(1)
	}
	return v.(*Slot[X])
}

// Forget deletes a dead slot from the map; whoever deletes it counts it.
func (t *Table[X]) Forget(key string, s *Slot[X]) {
	if t.m.CompareAndDelete(key, s) {
		t.n.Add(-1)
	}
}

// Len reports how many keys the table tracks.
func (t *Table[X]) Len() int64 { return t.n.Load() }

// makeRoom brings the table back to 7/8 of MaxKeys. One request sweeps at a
// time; others insert meanwhile, so the table can exceed MaxKeys by the
// number of requests in flight.
func (t *Table[X]) makeRoom(now int64) {
	if !t.sweeping.CompareAndSwap(false, true) {
		return
	}
	defer t.sweeping.Store(false)
	target := t.MaxKeys - t.MaxKeys/8
	t.m.Range(func(k, v any) bool {
		s := v.(*Slot[X])
		if w := s.V.Load(); w != Dead && t.Idle(w, now) {
			t.remove(k.(string), s, w)
		}
		return true
	})
	if !t.EvictLive {
		return
	}
	t.m.Range(func(k, v any) bool {
		if t.n.Load() <= target {
			return false
		}
		s := v.(*Slot[X])
		if w := s.V.Load(); w != Dead {
			t.remove(k.(string), s, w)
		}
		return true
	})
}

// remove kills s if it still holds w (a request may have just changed it:
// then it stays) and deletes it from the map.
func (t *Table[X]) remove(k string, s *Slot[X], w int64) {
	if s.V.CompareAndSwap(w, Dead) {
		t.Forget(k, s)
	}
}
