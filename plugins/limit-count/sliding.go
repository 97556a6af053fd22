package limitcount

import (
	"math/bits"
	"time"
)

// Sliding windows (window_type sliding), as APISIX defines them: the
// two-counter estimate of a sliding window. Time is cut into windows of
// time_window seconds aligned on the Unix epoch; a key keeps the count of
// its current window (cur) and of the one before (prev). At time t, with
// rem the time left in the current window of length W, the trailing window
// [t-W, t] is estimated to hold
//
//	cur + prev x rem/W
//
// requests: all of the current window's and the share of the previous
// window's that still lies inside the trailing window, assuming those were
// spread evenly. A request is admitted when the estimate including it stays
// within count:
//
//	cur + cost + prev x rem/W <= count
//
// Only admitted requests are counted (rejections leave the counters alone,
// as in APISIX), so cur <= count always. Both stores (the local table and
// the Redis script) apply this rule atomically; every decision compares
// integers (128-bit products locally), so it is exact, not rounded.
//
// Precision (what the estimate can get wrong, whatever the concurrency):
// over any interval of length L <= W, at most count x (1 + L/W) requests
// are admitted: the interval meets at most two windows, the current window
// holds at most count - prev x rem/W, and the previous window's tail at
// most prev. A fixed window admits up to 2 x count in an instant straddling
// its boundary; the sliding estimate admits next to nothing just after a
// full window, and the excess grows only with L, reaching 2 x count only
// for a whole W and only when the previous window's requests all came at
// its very end. When they came at its start, the estimate over-counts and
// rejects requests the true trailing window would have room for. With
// steady traffic the estimate is the true count.

// slideAt counts cost requests against key at table time now in a sliding
// window (see above). Lock-free: the window's count moves by
// compare-and-swap only while the estimate allows it, and a window is
// sealed when the next one replaces it, so a late request cannot count in
// a window whose count has already been carried over as prev.
func (t *table) slideAt(key string, cost int64, now int64) verdict {
	for {
		e := t.lookup(key, now)
		w := e.w.Load()
		if w == dead {
			t.forget(key, e)
			continue
		}
		if now >= w.end {
			// The first request of a new window: seal the old one and
			// carry its count when it is the window just before.
			start := now - floorMod(now+t.off, t.window)
			prev := int64(0)
			if n := seal(w); w.end == start {
				prev = n
			}
			nw := &window{end: start + t.window, prev: prev}
			v := slideVerdict(t.limit, t.window, 0, cost, prev, nw.end-now)
			if v.admitted {
				nw.n.Store(cost)
			}
			if !e.w.CompareAndSwap(w, nw) {
				continue // another request started the window (or it died)
			}
			return v
		}
		// A request older than the window (its start time was read before
		// a concurrent request moved the key on) counts as of the window's
		// start: the previous window's full weight, the strictest reading.
		if v, ok := t.slideIn(w, cost, min(w.end-now, t.window)); ok {
			return v
		}
		// w was sealed: the key moved on to a new window; look again.
	}
}

// slideIn decides a request in window w, rem before its end, and counts it
// when it fits. It reports false, having counted nothing, when w has been
// sealed.
func (t *table) slideIn(w *window, cost, rem int64) (verdict, bool) {
	for {
		n := w.n.Load()
		if n < 0 {
			return verdict{}, false
		}
		v := slideVerdict(t.limit, t.window, n, cost, w.prev, rem)
		if !v.admitted || w.n.CompareAndSwap(n, n+cost) {
			return v, true
		}
	}
}

// seal stops w's count for good and returns it. A sealed count is stored
// as its bitwise complement, negative since counts never are.
func seal(w *window) int64 {
	for {
		n := w.n.Load()
		if n < 0 {
			return ^n
		}
		if w.n.CompareAndSwap(n, ^n) {
			return n
		}
	}
}

// floorMod is a mod b in [0, b) for b > 0, negative a included (requests
// may start before the table's base).
func floorMod(a, b int64) int64 {
	m := a % b
	if m < 0 {
		m += b
	}
	return m
}

// slideVerdict decides a request of cost against a window of length w
// nanoseconds holding cur, with prev in the window before and rem
// nanoseconds before its end, and says what the headers show, as APISIX
// does:
//   - admitted: Remaining is what the estimate leaves, floored
//     (count - cur - cost - ceil(prev x rem/w)); Reset is the time to the
//     window's end.
//   - rejected because the current window alone is full: Reset is the time
//     to the window's end (the next window still weighs this one, so the
//     wait can be longer).
//   - rejected because of the previous window's weight: Reset is the time
//     until that weight has decayed enough for this request to fit.
func slideVerdict(limit, w, cur, cost, prev, rem int64) verdict {
	free := limit - cur - cost // room left in the current window after this request
	if free < 0 {
		return verdict{reset: time.Duration(rem)}
	}
	if prev == 0 {
		return verdict{admitted: true, remaining: free, reset: time.Duration(rem)}
	}
	// Admit when prev x rem <= free x w, compared in 128 bits.
	ph, pl := bits.Mul64(uint64(prev), uint64(rem))
	fh, fl := bits.Mul64(uint64(free), uint64(w))
	if ph < fh || (ph == fh && pl <= fl) {
		// ceil(prev x rem / w) <= prev: the quotient fits in 64 bits.
		q, r := bits.Div64(ph, pl, uint64(w))
		if r != 0 {
			q++
		}
		return verdict{admitted: true, remaining: free - int64(q), reset: time.Duration(rem)}
	}
	// The request fits once prev x rem' <= free x w, that is after
	// rem - floor(free x w / prev); that quotient is below rem, so it fits
	// in 64 bits.
	q, _ := bits.Div64(fh, fl, uint64(prev))
	return verdict{reset: time.Duration(rem - int64(q))}
}

// newSlidingTable is newTable for window_type sliding.
func newSlidingTable(limit int64, window time.Duration, maxKeys int64) *table {
	t := newTable(limit, window, maxKeys)
	t.sliding = true
	t.keep = int64(window)
	t.off = floorMod(t.base.UnixNano(), int64(window))
	return t
}
