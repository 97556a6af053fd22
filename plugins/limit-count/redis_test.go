package limitcount

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicegw/sluice/internal/ratelimit/ratelimittest"
	"github.com/sluicegw/sluice/internal/redistest"
	"github.com/sluicegw/sluice/plugin"
	"github.com/sluicegw/sluice/plugin/plugintest"
)

func redisCfg(s *redistest.Server, extra string) string {
	return fmt.Sprintf(`{"count":100,"time_window":60,"policy":"redis","redis_host":"127.0.0.1","redis_port":%d%s}`, s.Port(), extra)
}

// TestRedisTwoGatewaysExact: two independent Lasting registries stand for
// two gateways (separate pools) sharing one redis-server; 200 concurrent
// requests split between them admit exactly 100.
func TestRedisTwoGatewaysExact(t *testing.T) {
	t.Parallel()
	s := redistest.Start(t)
	la, lb := ratelimittest.TwoGateways(t)
	cfg := redisCfg(s, "")
	a, b := build(t, la, cfg), build(t, lb, cfg)
	if a.redis.b == b.redis.b {
		t.Fatal("the two gateways share a client: the test would prove nothing")
	}
	for round, split := range []int{100, 30, 170, 0} { // requests through a; the rest through b
		key := "10.9.0." + strconv.Itoa(round)
		var admitted atomic.Int64
		var wg sync.WaitGroup
		for i := range 200 {
			p := b
			if i < split {
				p = a
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				if ok, _ := run(p, "r1", key); ok {
					admitted.Add(1)
				}
			}()
		}
		wg.Wait()
		if n := admitted.Load(); n != 100 {
			t.Errorf("split %d/%d: admitted %d of 200, want exactly 100", split, 200-split, n)
		}
	}
}

// TestRedisCounterKey looks at Redis itself: one key per route and client,
// counting all requests, expiring with the window.
func TestRedisCounterKey(t *testing.T) {
	t.Parallel()
	s := redistest.Start(t)
	l := ratelimittest.Lasting(t)
	p := build(t, l, `{"count":2,"time_window":30,"policy":"redis","redis_host":"127.0.0.1","redis_port":`+strconv.Itoa(s.Port())+`}`)
	for i, want := range []bool{true, true, false} {
		if ok, _ := run(p, "7", "10.0.0.1"); ok != want {
			t.Fatalf("request %d: passed = %v, want %v", i+1, ok, want)
		}
	}
	key := keyPrefix + "route:7:" + p.fp + ":10.0.0.1"
	if r, err := s.Do("GET", key); err != nil || !strings.HasPrefix(r, "$1") {
		t.Fatalf("GET %s = %q, %v", key, r, err)
	}
	r, err := s.Do("PTTL", key)
	if err != nil {
		t.Fatal(err)
	}
	if ms, _ := strconv.Atoi(strings.TrimPrefix(r, ":")); ms <= 0 || ms > 30000 {
		t.Errorf("PTTL = %q, want within (0, 30000]", r)
	}
	if r, _ := s.Do("DBSIZE"); r != ":1" {
		t.Errorf("DBSIZE = %q, want :1 (one counter)", r)
	}
}

// TestRedisOutage: with Redis gone, requests get APISIX's 500 or, with
// allow_degradation, pass; both are counted. When Redis is back, the same
// client counts again.
func TestRedisOutage(t *testing.T) {
	t.Parallel()
	s := redistest.Start(t)
	l := ratelimittest.Lasting(t)
	strict := build(t, l, redisCfg(s, `,"count":1,"redis_timeout":200`))
	lenient := build(t, l, redisCfg(s, `,"count":1,"redis_timeout":200,"allow_degradation":true`))
	if ok, _ := run(strict, "1", "10.0.0.1"); !ok {
		t.Fatal("first request rejected with Redis up")
	}
	s.Stop()
	c := &plugin.Ctx{}
	for range 3 {
		c.Reset(reqFrom("10.0.0.2"))
		if e := strict.Access(c); e != failExit {
			t.Fatalf("Redis down, no degradation: exit = %v, want the 500 failExit", e)
		}
		c.Reset(reqFrom("10.0.0.2"))
		if e := lenient.Access(c); e != nil {
			t.Fatalf("Redis down, allow_degradation: exit = %d, want pass", e.Status)
		}
	}
	if n := strict.redis.b.Failures(); n < 6 {
		t.Errorf("degraded count = %d, want >= 6", n)
	}
	if string(failExit.Body) != `{"error_msg":"failed to limit count"}`+"\n" || failExit.Status != 500 {
		t.Errorf("failExit = %d %q", failExit.Status, failExit.Body)
	}
	s.Restart()
	deadline := time.Now().Add(5 * time.Second)
	for {
		ok, rem := run(strict, "1", "10.0.0.3")
		if ok && rem == "0" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Redis back, but requests still fail (passed %v, remaining %q)", ok, rem)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if ok, _ := run(strict, "1", "10.0.0.3"); ok {
		t.Error("after Redis came back the limit is not enforced")
	}
}

// TestRedisCluster counts through a real 3-master Redis Cluster: keys of
// many clients spread over the masters, each counter on one slot, and two
// gateways still admit exactly count per key.
func TestRedisCluster(t *testing.T) {
	t.Parallel()
	cl := redistest.StartCluster(t, 3)
	nodes := ratelimittest.NodesJSON(cl)
	cfg := `{"count":5,"time_window":60,"policy":"redis-cluster","redis_cluster_name":"test","redis_cluster_nodes":` + nodes + `}`
	la, lb := ratelimittest.TwoGateways(t)
	a, b := build(t, la, cfg), build(t, lb, cfg)
	var wg sync.WaitGroup
	admitted := make([]atomic.Int64, 30)
	for k := range 30 {
		for i := range 12 {
			p := a
			if i%2 == 1 {
				p = b
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				if ok, _ := run(p, "r", "10.1.0."+strconv.Itoa(k)); ok {
					admitted[k].Add(1)
				}
			}()
		}
	}
	wg.Wait()
	for k := range admitted {
		if n := admitted[k].Load(); n != 5 {
			t.Errorf("client %d: admitted %d of 12, want exactly 5", k, n)
		}
	}
	// The counters are spread over the masters (30 keys on 3 masters).
	used := ratelimittest.MastersUsed(cl)
	if used < 2 {
		t.Errorf("counters on %d masters, want them spread", used)
	}
}

func reqFrom(ip string) plugin.Request {
	return plugintest.NewRequest("GET", "/").WithIP(ip)
}

// BenchmarkRedisTake is one request's round trip to a real redis-server on
// loopback: the script call through the pooled client.
func BenchmarkRedisTake(b *testing.B) {
	s := redistest.Start(b)
	l := ratelimittest.Lasting(b)
	c := NewConfig()
	count, window := int64(1<<62), int64(3600)
	c.Count, c.TimeWindow, c.Policy, c.RedisHost, c.RedisPort = &count, &window, PolicyRedis, "127.0.0.1", s.Port()
	p, err := newLimitCount(c, plugin.Deps{Lasting: l})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := p.redis.take(keyPrefix+"bench", 1, time.Time{}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
