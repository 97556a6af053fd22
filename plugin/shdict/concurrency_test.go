package shdict

import (
	"errors"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestConcurrentIncrIsExact(t *testing.T) {
	t.Parallel()
	const goroutines, perG = 200, 500
	d := New("t", 1<<20)
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for range perG {
				if _, _, err := d.Incr("counter", 1, ptr(0), 0); err != nil {
					t.Error(err)
					return
				}
				d.Incr("other-"+strconv.Itoa(rand.IntN(8)), 1, ptr(0), 0)
			}
		})
	}
	wg.Wait()
	if v, _, _ := d.Get("counter"); v != Number(goroutines*perG) {
		t.Fatalf("counter = %v, want %d", v.Num, goroutines*perG)
	}
	checkInvariants(t, d)
}

func TestConcurrentAddHasOneWinner(t *testing.T) {
	t.Parallel()
	const goroutines, keys = 50, 200
	d := New("t", 1<<20)
	var wins [keys]atomic.Int32
	var wg sync.WaitGroup
	start := make(chan struct{})
	for g := range goroutines {
		wg.Go(func() {
			<-start
			for k := range keys {
				_, err := d.Add("lock-"+strconv.Itoa(k), Number(float64(g)), time.Minute, 0)
				switch {
				case err == nil:
					wins[k].Add(1)
				case !errors.Is(err, ErrExists):
					t.Error(err)
				}
			}
		})
	}
	close(start)
	wg.Wait()
	for k := range keys {
		if n := wins[k].Load(); n != 1 {
			t.Errorf("key %d: %d winners", k, n)
		}
	}
}

// TestConcurrentMixed hammers a small dictionary, so that evictions, expiry
// and list operations interleave, then checks the bookkeeping (run with
// -race).
func TestConcurrentMixed(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	d := newDict("t", 256<<10, withClock(clock.now))
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(g), 1))
			for range 3000 {
				k := "k" + strconv.Itoa(r.IntN(3000))
				ttl := time.Duration(r.IntN(3)) * time.Millisecond
				switch r.IntN(12) {
				case 0:
					d.Set(k, String(string(make([]byte, r.IntN(512)))), ttl, 1)
				case 1:
					d.SafeSet(k, Number(1), ttl, 0)
				case 2:
					d.Add(k, Bool(true), ttl, 0)
				case 3:
					d.Replace(k, Number(2), ttl, 0)
				case 4:
					d.Incr(k, 1, ptr(0), ttl)
				case 5:
					d.Delete(k)
				case 6:
					d.Get(k)
					d.GetStale(k)
				case 7:
					d.Expire(k, ttl)
					d.TTL(k)
				case 8:
					d.RPush("l"+k, Number(1))
					d.LPop("l" + k)
				case 9:
					clock.advance(time.Millisecond)
				case 10:
					d.FlushExpired(5)
				case 11:
					if r.IntN(50) == 0 {
						d.FlushAll()
					}
					d.Keys(10)
				}
			}
		})
	}
	wg.Wait()
	checkInvariants(t, d)
}
