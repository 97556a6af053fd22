package shdict

import (
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

const benchKeys = 1024

func benchDict(b *testing.B, ttl time.Duration) (*Dict, []string) {
	b.Helper()
	d := New("bench", 64<<20)
	keys := make([]string, benchKeys)
	for i := range keys {
		keys[i] = "route:" + strconv.Itoa(i) + ":consumer"
		if _, err := d.Set(keys[i], Number(float64(i)), ttl, 0); err != nil {
			b.Fatal(err)
		}
	}
	return d, keys
}

func TestHotPathAllocations(t *testing.T) {
	d := New("t", 1<<20)
	d.Set("n", Number(1), 0, 0)
	d.Set("s", String("value"), time.Hour, 0)
	for name, f := range map[string]func(){
		"Get":          func() { d.Get("s") },
		"GetStale":     func() { d.GetStale("s") },
		"Incr":         func() { d.Incr("n", 1, nil, 0) },
		"Incr init":    func() { d.Incr("n", 1, ptr(0), time.Minute) },
		"Set existing": func() { d.Set("n", Number(2), time.Minute, 0) },
		"TTL":          func() { d.TTL("s") },
	} {
		if n := testing.AllocsPerRun(100, f); n != 0 {
			t.Errorf("%s allocates %v times", name, n)
		}
	}
}

func BenchmarkGet(b *testing.B) {
	d, keys := benchDict(b, 0)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		d.Get(keys[i&(benchKeys-1)])
		i++
	}
}

func BenchmarkGetTTL(b *testing.B) {
	d, keys := benchDict(b, time.Hour)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		d.Get(keys[i&(benchKeys-1)])
		i++
	}
}

func BenchmarkSet(b *testing.B) {
	d, keys := benchDict(b, 0)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		d.Set(keys[i&(benchKeys-1)], Number(1), 0, 0)
		i++
	}
}

func BenchmarkSetStringTTL(b *testing.B) {
	d, keys := benchDict(b, 0)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		d.Set(keys[i&(benchKeys-1)], String("cached-value"), time.Minute, 0)
		i++
	}
}

func BenchmarkIncr(b *testing.B) {
	d, keys := benchDict(b, 0)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		d.Incr(keys[i&(benchKeys-1)], 1, nil, 0)
		i++
	}
}

// BenchmarkIncrInitTTL is the rate limiter's call: incr(key, 1, 0, window).
func BenchmarkIncrInitTTL(b *testing.B) {
	d, keys := benchDict(b, time.Hour)
	init := 0.0
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		d.Incr(keys[i&(benchKeys-1)], 1, &init, time.Minute)
		i++
	}
}

// parallel runs op from every P, each goroutine on its own key sequence.
func parallel(b *testing.B, keys []string, op func(string)) {
	var seq atomic.Uint32
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(seq.Add(1)) * 7919
		for pb.Next() {
			op(keys[i&(benchKeys-1)])
			i++
		}
	})
}

func BenchmarkGetParallel(b *testing.B) {
	d, keys := benchDict(b, 0)
	parallel(b, keys, func(k string) { d.Get(k) })
}

func BenchmarkSetParallel(b *testing.B) {
	d, keys := benchDict(b, 0)
	parallel(b, keys, func(k string) { d.Set(k, Number(1), 0, 0) })
}

func BenchmarkIncrParallel(b *testing.B) {
	d, keys := benchDict(b, 0)
	parallel(b, keys, func(k string) { d.Incr(k, 1, nil, 0) })
}

// BenchmarkIncrParallelOneKey is the worst case: every goroutine on one
// shard's mutex.
func BenchmarkIncrParallelOneKey(b *testing.B) {
	d, keys := benchDict(b, 0)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			d.Incr(keys[0], 1, nil, 0)
		}
	})
}
