package limitcount

import (
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// defaultMaxKeys bounds how many keys one local counter table tracks (one
// table per route, or per group). At roughly 100 bytes plus the key per
// entry, 100k keys stay around 10-20 MB in the worst case. A flood of
// distinct keys beyond it first drops expired windows and then evicts live
// ones, whose clients start a fresh window: the same trade nginx's shared
// dicts (and so APISIX) make when full, chosen over rejecting newcomers,
// which would let a flood of junk keys lock out real clients.
const defaultMaxKeys = 100_000

// verdict is the answer of a limiter for one request.
type verdict struct {
	admitted bool
	// remaining is what is left in the window after this request (0 when
	// rejected).
	remaining int64
	// reset is the time until the window ends.
	reset time.Duration
}

// table counts requests per key in fixed windows that start with a key's
// first request, as APISIX's local policy (resty.limit.count) does. Reads
// and counting are lock-free: a sync.Map lookup (no allocation for string
// keys) and an atomic add on the key's current window. Only a key's first
// request in a window allocates (its new window).
type table struct {
	limit   int64
	window  int64 // nanoseconds
	maxKeys int64
	// base is the origin of the table's nanosecond clock; now reads that
	// clock (tests set their own).
	base time.Time
	now  func() int64

	m        sync.Map // string -> *entry
	n        atomic.Int64
	sweeping atomic.Bool

	// sliding selects window_type sliding (sliding.go): windows aligned on
	// the Unix epoch, each remembering the previous one's count. off is
	// the base's Unix time modulo the window, which aligns the table's
	// clock; keep is how long a window matters after its end (one more
	// window when sliding, none when fixed), which decides when sweeps
	// may drop it.
	sliding bool
	off     int64
	keep    int64
}

func newTable(limit int64, window time.Duration, maxKeys int64) *table {
	base := time.Now()
	return &table{limit: limit, window: int64(window), maxKeys: maxKeys, base: base,
		now: func() int64 { return int64(time.Since(base)) }}
}

// entry is one key's counter: a pointer to its current window, replaced
// (compare-and-swap) when the window is over.
type entry struct {
	w atomic.Pointer[window]
}

// window is one fixed window: its end and the requests counted in it. n
// keeps growing past the limit while requests are rejected; int64 does not
// overflow at any request rate. A sliding window also carries prev, the
// previous window's count, fixed when the window begins, and its n never
// exceeds the limit (sliding.go).
type window struct {
	end  int64
	prev int64
	n    atomic.Int64
}

// dead marks an entry removed from the map (expired or evicted): a request
// that finds it looks the key up again instead of counting on a window no
// later request would see.
var dead = &window{}

// take implements limiter; a local table never fails. A request's start
// time, when known, saves reading the clock (tens of nanoseconds on some
// virtual machines).
func (t *table) take(key string, cost int64, at time.Time) (verdict, error) {
	if at.IsZero() {
		return t.countAt(key, cost, t.now()), nil
	}
	return t.countAt(key, cost, int64(at.Sub(t.base))), nil
}

func (*table) failed(error, bool) {}

// count counts cost requests against key now and says whether they fit.
func (t *table) count(key string, cost int64) verdict { return t.countAt(key, cost, t.now()) }

func (t *table) countAt(key string, cost int64, now int64) verdict {
	if t.sliding {
		return t.slideAt(key, cost, now)
	}
	for {
		e := t.lookup(key, now)
		w := e.w.Load()
		if w == dead {
			t.forget(key, e) // help the remover; then look again
			continue
		}
		if now >= w.end {
			nw := &window{end: now + t.window}
			nw.n.Store(cost)
			if !e.w.CompareAndSwap(w, nw) {
				continue // another request started the window (or it died)
			}
			return t.verdictFor(cost, nw.end-now)
		}
		return t.verdictFor(w.n.Add(cost), w.end-now)
	}
}

func (t *table) verdictFor(n, left int64) verdict {
	if n > t.limit {
		return verdict{admitted: false, remaining: 0, reset: time.Duration(left)}
	}
	return verdict{admitted: true, remaining: t.limit - n, reset: time.Duration(left)}
}

// lookup returns key's entry, adding one (with an expired window) when the
// key is new.
func (t *table) lookup(key string, now int64) *entry {
	if v, ok := t.m.Load(key); ok {
		return v.(*entry)
	}
	if t.n.Load() >= t.maxKeys {
		t.makeRoom(now)
	}
	// The key may be a view of the connection's buffer (Request.Var does
	// not copy): the map must own its copy.
	key = strings.Clone(key)
	e := &entry{}
	// Already over, whatever the clock reads: a request that started before
	// the table existed has a negative time.
	e.w.Store(&window{end: math.MinInt64})
	v, loaded := t.m.LoadOrStore(key, e)
	if !loaded {
		t.n.Add(1)
	}
	return v.(*entry)
}

// makeRoom brings the table back to 7/8 of maxKeys: expired windows go
// first, then live ones (in the map's random order). Freeing an eighth at a
// time keeps the cost of a flood of new keys amortized O(1) per key. One
// request sweeps at a time; others insert meanwhile, so the table can
// exceed maxKeys by the number of requests in flight.
func (t *table) makeRoom(now int64) {
	if !t.sweeping.CompareAndSwap(false, true) {
		return
	}
	defer t.sweeping.Store(false)
	target := t.maxKeys - t.maxKeys/8
	t.m.Range(func(k, v any) bool {
		e := v.(*entry)
		if w := e.w.Load(); w != dead && now >= w.end+t.keep {
			t.remove(k, e, w)
		}
		return true
	})
	t.m.Range(func(k, v any) bool {
		if t.n.Load() <= target {
			return false
		}
		e := v.(*entry)
		if w := e.w.Load(); w != dead {
			t.remove(k, e, w)
		}
		return true
	})
}

// remove kills e if its window is still w (a request may have just started
// a new one: then e stays) and deletes it from the map.
func (t *table) remove(k any, e *entry, w *window) {
	if e.w.CompareAndSwap(w, dead) {
		t.forget(k, e)
	}
}

// forget deletes a dead entry from the map; whoever deletes it counts it.
func (t *table) forget(k any, e *entry) {
	if t.m.CompareAndDelete(k, e) {
		t.n.Add(-1)
	}
}

// len reports how many keys the table tracks.
func (t *table) len() int64 { return t.n.Load() }
