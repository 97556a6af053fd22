package limitreq

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
	return fmt.Sprintf(`{"rate":0.001,"burst":99,"key":"remote_addr","nodelay":true,"policy":"redis","redis_host":"127.0.0.1","redis_port":%d%s}`, s.Port(), extra)
}

// TestRedisTwoGatewaysExact: two independent Lasting registries stand for
// two gateways (separate pools) sharing one redis-server; 200 concurrent
// requests split between them get exactly burst+1 = 100 through.
func TestRedisTwoGatewaysExact(t *testing.T) {
	t.Parallel()
	s := redistest.Start(t)
	la, lb := ratelimittest.TwoGateways(t)
	cfg := redisCfg(s, "")
	a, b := build(t, la, cfg), build(t, lb, cfg)
	if a.redis.b == b.redis.b {
		t.Fatal("the two gateways share a client: the test would prove nothing")
	}
	for round, split := range []int{100, 30, 170, 0} {
		ip := "10.9.0." + strconv.Itoa(round)
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
				if access(p, "r1", ip) == nil {
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

// TestRedisBucketState looks at Redis itself: one hash per route and
// client with the excess and the last update, expiring once the bucket has
// surely drained; and the delays the script hands out are excess/rate.
func TestRedisBucketState(t *testing.T) {
	t.Parallel()
	s := redistest.Start(t)
	l := ratelimittest.Lasting(t)
	p := build(t, l, `{"rate":0.5,"burst":2,"key":"remote_addr","policy":"redis","redis_host":"127.0.0.1","redis_port":`+strconv.Itoa(s.Port())+`}`)
	sc := p.routes.Get("7")
	for i, want := range []time.Duration{0, 2 * time.Second, 4 * time.Second} {
		d, ok, err := sc.lim.take(sc.prefix+"10.0.0.1", time.Time{})
		// A few milliseconds leak between the calls: the delay is a bit less.
		if err != nil || !ok || d > want || d < want-200*time.Millisecond {
			t.Fatalf("request %d: delay %v ok=%v err=%v, want about %v", i+1, d, ok, err, want)
		}
	}
	if _, ok, err := sc.lim.take(sc.prefix+"10.0.0.1", time.Time{}); ok || err != nil {
		t.Fatalf("4th request: ok=%v err=%v, want rejected", ok, err)
	}
	key := keyPrefix + "route:7:" + ratelimitFingerprint(t, p) + ":10.0.0.1"
	r, err := s.Do("HGET", key, "excess")
	if err != nil || !strings.HasPrefix(r, "$") {
		t.Fatalf("HGET %s excess = %q, %v", key, r, err)
	}
	r, err = s.Do("PTTL", key)
	if err != nil {
		t.Fatal(err)
	}
	// (burst+1)/rate + 1s = 7s.
	if ms, _ := strconv.Atoi(strings.TrimPrefix(r, ":")); ms <= 6000 || ms > 7000 {
		t.Errorf("PTTL = %q, want within (6000, 7000]", r)
	}
	if r, _ := s.Do("DBSIZE"); r != ":1" {
		t.Errorf("DBSIZE = %q, want :1 (one bucket)", r)
	}
}

// ratelimitFingerprint recovers the configuration digest from the route's
// prefix.
func ratelimitFingerprint(t *testing.T, p *limitReq) string {
	t.Helper()
	prefix := p.routes.Get("x").prefix
	parts := strings.Split(strings.TrimSuffix(prefix, ":"), ":")
	return parts[len(parts)-1]
}

// TestRedisOutage: with Redis gone, requests get APISIX's bare 500 or,
// with allow_degradation, pass; both are counted. When Redis is back, the
// same client limits again.
func TestRedisOutage(t *testing.T) {
	t.Parallel()
	s := redistest.Start(t)
	l := ratelimittest.Lasting(t)
	strict := build(t, l, redisCfg(s, `,"burst":0,"redis_timeout":200`))
	lenient := build(t, l, redisCfg(s, `,"burst":0,"redis_timeout":200,"allow_degradation":true`))
	if e := access(strict, "1", "10.0.0.1"); e != nil {
		t.Fatal("first request rejected with Redis up")
	}
	s.Stop()
	for range 3 {
		if e := access(strict, "1", "10.0.0.2"); e != failExit {
			t.Fatalf("Redis down, no degradation: exit = %v, want the 500 failExit", e)
		}
		if e := access(lenient, "1", "10.0.0.2"); e != nil {
			t.Fatalf("Redis down, allow_degradation: exit = %d, want pass", e.Status)
		}
	}
	if n := strict.redis.b.Failures(); n < 6 {
		t.Errorf("failure count = %d, want >= 6", n)
	}
	if failExit.Status != 500 || !strings.Contains(string(failExit.Body), "<title>500 Internal Server Error</title>") {
		t.Errorf("failExit = %d %q", failExit.Status, failExit.Body)
	}
	s.Restart()
	deadline := time.Now().Add(5 * time.Second)
	for access(strict, "1", "10.0.0.3") != nil {
		if time.Now().After(deadline) {
			t.Fatal("Redis back, but requests still fail")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if e := access(strict, "1", "10.0.0.3"); e == nil || e.Status != 503 {
		t.Errorf("after Redis came back the limit is not enforced: %+v", e)
	}
}

// TestRedisCluster limits through a real 3-master Redis Cluster: two
// gateways still admit exactly burst+1 per key, for keys on every master.
func TestRedisCluster(t *testing.T) {
	t.Parallel()
	cl := redistest.StartCluster(t, 3)
	nodes := ratelimittest.NodesJSON(cl)
	cfg := `{"rate":0.001,"burst":19,"key":"remote_addr","nodelay":true,"policy":"redis-cluster","redis_cluster_name":"t","redis_cluster_nodes":` + nodes + `}`
	la, lb := ratelimittest.TwoGateways(t)
	a, b := build(t, la, cfg), build(t, lb, cfg)
	for k := range 6 {
		ip := "10.8.0." + strconv.Itoa(k)
		var admitted atomic.Int64
		var wg sync.WaitGroup
		for i := range 40 {
			p := a
			if i%2 == 1 {
				p = b
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				if access(p, "r", ip) == nil {
					admitted.Add(1)
				}
			}()
		}
		wg.Wait()
		if n := admitted.Load(); n != 20 {
			t.Errorf("key %s: admitted %d of 40, want exactly 20", ip, n)
		}
	}
	masters := ratelimittest.MastersUsed(cl)
	if masters < 2 {
		t.Errorf("keys landed on %d masters, want them spread", masters)
	}
}

func BenchmarkRedisTake(b *testing.B) {
	s := redistest.Start(b)
	l := ratelimittest.Lasting(b)
	p := build(b, l, fmt.Sprintf(`{"rate":1e9,"burst":0,"key":"remote_addr","policy":"redis","redis_host":"127.0.0.1","redis_port":%d}`, s.Port()))
	req := plugintest.NewRequest("GET", "/").WithIP("10.0.0.1")
	c := &plugin.Ctx{}
	b.ReportAllocs()
	for b.Loop() {
		c.Reset(req)
		c.RouteID = "1"
		if e := p.Access(c); e != nil {
			b.Fatal(e.Status)
		}
	}
}
