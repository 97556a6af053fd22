package shdict

import (
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock is a manual time source for TTL tests.
type fakeClock struct{ t atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.t.Store(int64(time.Hour))
	return c
}

func (c *fakeClock) now() int64              { return c.t.Load() }
func (c *fakeClock) advance(d time.Duration) { c.t.Add(int64(d)) }

// newTestDict returns a one-shard dictionary (exact LRU) on a fake clock.
func newTestDict(capacity int) (*Dict, *fakeClock) {
	c := newFakeClock()
	return newDict("test", capacity, withClock(c.now), withShards(1)), c
}

// entrySize is what an entry with this key and value is charged.
func entrySize(key string, v Value) int { return len(key) + v.size() + EntryOverhead }

// checkInvariants verifies every shard's internal bookkeeping.
func checkInvariants(t *testing.T, d *Dict) {
	t.Helper()
	for i := range d.shards {
		s := &d.shards[i]
		s.mu.Lock()
		n, sum := 0, 0
		var prev *entry
		for e := s.head; e != nil; e = e.next {
			if e.prev != prev {
				t.Errorf("shard %d: broken prev link at %q", i, e.key)
			}
			if s.m[e.key] != e {
				t.Errorf("shard %d: %q in LRU but not in map", i, e.key)
			}
			if (e.expires != 0) != (e.hidx >= 0) {
				t.Errorf("shard %d: %q expires=%d hidx=%d", i, e.key, e.expires, e.hidx)
			}
			want := len(e.key) + EntryOverhead + e.val.size()
			if e.list != nil {
				for _, v := range append(append([]Value(nil), e.list.front...), e.list.back...) {
					want += v.size() + ListNodeOverhead
				}
			}
			if e.size != want {
				t.Errorf("shard %d: %q size %d, want %d", i, e.key, e.size, want)
			}
			sum += e.size
			n++
			prev = e
		}
		if prev != s.tail {
			t.Errorf("shard %d: tail mismatch", i)
		}
		if n != len(s.m) {
			t.Errorf("shard %d: %d entries in LRU, %d in map", i, n, len(s.m))
		}
		if sum != s.used {
			t.Errorf("shard %d: used %d, entries sum to %d", i, s.used, sum)
		}
		if s.used > s.capacity {
			t.Errorf("shard %d: used %d > capacity %d", i, s.used, s.capacity)
		}
		for j, e := range s.heap {
			if int(e.hidx) != j {
				t.Errorf("shard %d: heap[%d].hidx = %d", i, j, e.hidx)
			}
			if j > 0 && s.heap[(j-1)/2].expires > e.expires {
				t.Errorf("shard %d: heap order broken at %d", i, j)
			}
		}
		s.mu.Unlock()
	}
}
