package limitreq

import (
	"math"
	"time"

	"github.com/sluicegw/sluice/internal/ratelimit"
)

// maxSpan caps the nanosecond spans of a bucket (one request's interval,
// the burst) at about 36 years, so that adding them to a time never
// overflows: rates below one request per 36 years behave as that.
const maxSpan = 1 << 60

// bucket is the local leaky bucket of one route, per key: nginx's limit_req
// and lua-resty-limit-traffic's resty.limit.req. Their state is an excess
// (requests waiting in the bucket, leaking at rate) and the time it was
// last updated; a request finds excess' = max(excess - rate*elapsed + 1, 0)
// and is rejected when excess' > burst, else admitted with a delay of
// excess'/rate.
//
// The same state fits in one word: tat = last + excess/rate, the time the
// bucket will be empty. Then a request at now finds
// tat' = max(tat + 1/rate, now), is rejected when tat' - now > burst/rate,
// and is delayed by tat' - now, which is the formula above multiplied by
// 1/rate. One word means a key is updated with a single compare-and-swap:
// concurrent requests never both see the same state, so the count is exact
// without a lock. A rejected request changes nothing, as in nginx.
type bucket struct {
	// interval is 1/rate and burst is burst/rate, in nanoseconds.
	interval, burst int64
	// base is the origin of the bucket's nanosecond clock; now reads that
	// clock (tests set their own).
	base time.Time
	now  func() int64
	keys ratelimit.Table[struct{}]
}

func newBucket(rate, burst float64, maxKeys int64) *bucket {
	interval := int64(math.Max(1, math.Round(math.Min(1e9/rate, maxSpan))))
	base := time.Now()
	b := &bucket{
		interval: interval,
		// From the rounded interval, so that an integer burst of n is
		// exactly n intervals: the nth request at one instant fits, the
		// next does not.
		burst: int64(math.Min(burst*float64(interval), maxSpan)),
		base:  base,
		now:   func() int64 { return int64(time.Since(base)) },
	}
	// A new key's bucket is empty long ago; a slot whose bucket has
	// drained (tat <= now) holds nothing worth keeping.
	b.keys = ratelimit.Table[struct{}]{
		Init:      math.MinInt64 + 1,
		Idle:      func(tat, now int64) bool { return tat <= now },
		EvictLive: true,
		MaxKeys:   maxKeys,
	}
	return b
}

// take implements limiter; a local bucket never fails. A request's start
// time, when known, saves reading the clock.
func (b *bucket) take(key string, at time.Time) (time.Duration, bool, error) {
	if at.IsZero() {
		d, ok := b.takeAt(key, b.now())
		return d, ok, nil
	}
	d, ok := b.takeAt(key, int64(at.Sub(b.base)))
	return d, ok, nil
}

// takeAt admits or rejects one request for key at time now and returns its
// delay.
func (b *bucket) takeAt(key string, now int64) (time.Duration, bool) {
	for {
		s := b.keys.Get(key, now)
		tat := s.V.Load()
		if tat == ratelimit.Dead {
			b.keys.Forget(key, s) // evicted meanwhile: look again
			continue
		}
		next := max(tat+b.interval, now)
		if next-now > b.burst {
			return 0, false
		}
		if s.V.CompareAndSwap(tat, next) {
			return time.Duration(next - now), true
		}
	}
}
