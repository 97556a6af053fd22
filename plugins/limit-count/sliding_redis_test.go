package limitcount

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sluicegw/sluice/internal/ratelimit/ratelimittest"
	"github.com/sluicegw/sluice/internal/redistest"
	"github.com/sluicegw/sluice/plugin"
)

// redisTimeMs reads Redis's clock, the one the sliding script uses.
func redisTimeMs(t *testing.T, rc *redis.Client) int64 {
	t.Helper()
	tm, err := rc.Time(context.Background()).Result()
	if err != nil {
		t.Fatal(err)
	}
	return tm.UnixMilli()
}

// hash reads a sliding counter's fields.
func hash(t *testing.T, rc *redis.Client, key string) map[string]string {
	t.Helper()
	h, err := rc.HGetAll(context.Background(), key).Result()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// burst sends n concurrent requests for key, alternating between the
// instances, and returns how many passed and the Remaining values of the
// admitted ones.
func burst(ps []*limitCount, route, key string, n int) (int, []string) {
	var admitted atomic.Int64
	var mu sync.Mutex
	var rems []string
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, rem := run(ps[i%len(ps)], route, key)
			if ok {
				admitted.Add(1)
				mu.Lock()
				rems = append(rems, rem)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return int(admitted.Load()), rems
}

// TestRedisSlidingTwoGatewaysExact: two gateways (separate pools) sharing a
// redis-server admit exactly count of 200 concurrent requests in a fresh
// sliding window, each Remaining value handed out once.
func TestRedisSlidingTwoGatewaysExact(t *testing.T) {
	t.Parallel()
	s := redistest.Start(t)
	la, lb := ratelimittest.TwoGateways(t)
	cfg := redisCfg(s, `,"time_window":86400,"window_type":"sliding"`)
	a, b := build(t, la, cfg), build(t, lb, cfg)
	if a.redis.b == b.redis.b || !a.redis.sliding {
		t.Fatal("want two sliding limiters on separate clients")
	}
	for round := range 3 {
		n, rems := burst([]*limitCount{a, b}, "r1", "10.9.1."+strconv.Itoa(round), 200)
		if n != 100 {
			t.Fatalf("round %d: admitted %d of 200, want exactly 100", round, n)
		}
		seen := map[string]bool{}
		for _, r := range rems {
			seen[r] = true
		}
		if len(seen) != 100 || !seen["0"] || !seen["99"] {
			t.Errorf("round %d: %d distinct Remaining values (want 100, from 99 to 0)", round, len(seen))
		}
	}
}

// TestRedisSlidingKey looks at Redis: one hash per route and client with
// the window's number, its count and the previous count; it expires once
// it no longer weighs; rejections write nothing.
func TestRedisSlidingKey(t *testing.T) {
	t.Parallel()
	s := redistest.Start(t)
	l := ratelimittest.Lasting(t)
	p := build(t, l, redisCfg(s, `,"count":2,"time_window":30,"window_type":"sliding"`))
	for i, want := range []bool{true, true, false, false} {
		if ok, _ := run(p, "7", "10.0.0.1"); ok != want {
			t.Fatalf("request %d: passed = %v, want %v", i+1, ok, want)
		}
	}
	rc := ratelimittest.Client(t, s)
	key := keyPrefix + "sliding:route:7:" + p.fp + ":10.0.0.1"
	h := hash(t, rc, key)
	now := redisTimeMs(t, rc)
	if h["n"] != "2" || h["p"] != "0" {
		t.Errorf("%s = %v; want n 2 (rejections not counted), p 0", key, h)
	}
	if id, _ := strconv.ParseInt(h["w"], 10, 64); id != now/30000 && id != now/30000-1 {
		t.Errorf("window number %q, want %d (Redis time / 30 s)", h["w"], now/30000)
	}
	// The key lives until the end of the next window: between 30 and 60 s.
	ttl, err := rc.PTTL(context.Background(), key).Result()
	if err != nil || ttl <= 29*time.Second || ttl > 60*time.Second {
		t.Errorf("PTTL = %v (%v), want within (29s, 60s]", ttl, err)
	}
	if n, _ := rc.DBSize(context.Background()).Result(); n != 1 {
		t.Errorf("DBSIZE = %d, want 1", n)
	}
}

// TestRedisSlidingWeight: the previous window weighs in Redis as it does
// locally. The test writes a full previous window into the key, places
// itself in the middle of the current window (choosing time_window from
// Redis's clock), and sends 200 requests through two gateways: exactly
// floor(count - prev x rem/W) pass, with rem read before and after.
func TestRedisSlidingWeight(t *testing.T) {
	t.Parallel()
	s := redistest.Start(t)
	la, lb := ratelimittest.TwoGateways(t)
	rc := ratelimittest.Client(t, s)
	now := redisTimeMs(t, rc)
	win := int64(1000) // seconds; grown until now sits 30-70% into a window
	for f := now % (win * 1000); f < win*300 || f > win*700; f = now % (win * 1000) {
		win++
	}
	cfg := redisCfg(s, fmt.Sprintf(`,"time_window":%d,"window_type":"sliding"`, win))
	a, b := build(t, la, cfg), build(t, lb, cfg)
	key := keyPrefix + "sliding:route:r:" + a.fp + ":10.0.0.5"
	w := win * 1000
	before := redisTimeMs(t, rc)
	id := before / w
	if err := rc.HSet(context.Background(), key, "w", id-1, "n", 100, "p", 0).Err(); err != nil {
		t.Fatal(err)
	}
	n, _ := burst([]*limitCount{a, b}, "r", "10.0.0.5", 200)
	after := redisTimeMs(t, rc)
	// Admitted requests c = 0, 1, ... while c + 1 + 100 x rem/W <= 100.
	fits := func(at int64) int {
		rem := (id+1)*w - at
		return int((100*w - 100*rem) / w) // floor(100 - 100 x rem/W)
	}
	lo, hi := fits(before), fits(after)
	if n < lo || n > hi {
		t.Fatalf("admitted %d, want %d..%d (floor(100 - 100 x rem/W) over the burst)", n, lo, hi)
	}
	t.Logf("time_window %d s, %.0f%% into the window: admitted %d (expected %d..%d)", win, 100*float64(before%w)/float64(w), n, lo, hi)
	if lo < 25 || hi > 75 {
		t.Fatalf("the test did not place itself mid-window (%d..%d)", lo, hi)
	}
	// The window moved on, carrying 100 as prev; rejections were not
	// counted: n holds what was admitted.
	if h := hash(t, rc, key); h["w"] != strconv.FormatInt(id, 10) || h["n"] != strconv.Itoa(n) || h["p"] != "100" {
		t.Errorf("%s = %v, want w %d, n %d, p 100", key, h, id, n)
	}
}

// TestRedisSlidingCluster: sliding counters through a real 3-master Redis
// Cluster, two gateways, exactly count per key.
func TestRedisSlidingCluster(t *testing.T) {
	t.Parallel()
	cl := redistest.StartCluster(t, 3)
	nodes := ratelimittest.NodesJSON(cl)
	cfg := `{"count":5,"time_window":86400,"window_type":"sliding","policy":"redis-cluster","redis_cluster_name":"test","redis_cluster_nodes":` + nodes + `}`
	la, lb := ratelimittest.TwoGateways(t)
	a, b := build(t, la, cfg), build(t, lb, cfg)
	var wg sync.WaitGroup
	admitted := make([]int, 30)
	for k := range admitted {
		wg.Add(1)
		go func() {
			defer wg.Done()
			admitted[k], _ = burst([]*limitCount{a, b}, "r", "10.2.0."+strconv.Itoa(k), 12)
		}()
	}
	wg.Wait()
	for k, n := range admitted {
		if n != 5 {
			t.Errorf("client %d: admitted %d of 12, want exactly 5", k, n)
		}
	}
	used := ratelimittest.MastersUsed(cl)
	if used < 2 {
		t.Errorf("counters on %d masters, want them spread", used)
	}
}

// BenchmarkRedisSlidingTake is one sliding check's round trip to a real
// redis-server on loopback.
func BenchmarkRedisSlidingTake(b *testing.B) {
	s := redistest.Start(b)
	l := ratelimittest.Lasting(b)
	c := NewConfig()
	count, window := int64(1<<40), int64(3600)
	c.Count, c.TimeWindow, c.Policy, c.RedisHost, c.RedisPort = &count, &window, PolicyRedis, "127.0.0.1", s.Port()
	c.WindowType = windowSliding
	p, err := newLimitCount(c, plugin.Deps{Lasting: l})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := p.redis.take(keyPrefix+"sliding:bench", 1, time.Time{}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
