package limitconn

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
	return fmt.Sprintf(`{"conn":60,"burst":40,"default_conn_delay":0.0000000001,"key":"remote_addr","policy":"redis","redis_host":"127.0.0.1","redis_port":%d%s}`, s.Port(), extra)
}

// zcard reads how many requests Redis counts for key.
func zcard(t *testing.T, s *redistest.Server, key string) int {
	t.Helper()
	r, err := s.Do("ZCARD", key)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(strings.TrimPrefix(r, ":"))
	return n
}

// waitZcard waits for the asynchronous releases to reach Redis.
func waitZcard(t *testing.T, s *redistest.Server, key string, want int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for zcard(t, s, key) != want {
		if time.Now().After(deadline) {
			t.Fatalf("ZCARD %s = %d, want %d", key, zcard(t, s, key), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestRedisTwoGatewaysExact: two independent Lasting registries stand for
// two gateways (separate pools) sharing one redis-server; 200 concurrent
// requests split between them, each held until all have tried, get exactly
// conn+burst = 100 through; released, they leave nothing counted.
func TestRedisTwoGatewaysExact(t *testing.T) {
	t.Parallel()
	s := redistest.Start(t)
	la, lb := ratelimittest.TwoGateways(t)
	cfg := redisCfg(s, "")
	a, b := build(t, la, cfg), build(t, lb, cfg)
	for round, split := range []int{100, 30, 170, 0} {
		ip := "10.9.0." + strconv.Itoa(round)
		var admitted atomic.Int64
		var tried, done sync.WaitGroup
		release := make(chan struct{})
		for i := range 200 {
			p := b
			if i < split {
				p = a
			}
			tried.Add(1)
			done.Add(1)
			go func() {
				defer done.Done()
				c, e := begin(p, "r1", ip)
				tried.Done()
				if e != nil {
					return
				}
				admitted.Add(1)
				<-release
				finish(p, c, time.Millisecond)
			}()
		}
		tried.Wait()
		if n := admitted.Load(); n != 100 {
			t.Errorf("split %d/%d: admitted %d of 200, want exactly 100", split, 200-split, n)
		}
		close(release)
		done.Wait()
		waitZcard(t, s, a.routes.Get("r1").prefix+ip, 0)
	}
}

// TestRedisLeakBound: a request never released (its gateway died) stops
// counting key_ttl after it was counted, even while other requests keep
// the key alive.
func TestRedisLeakBound(t *testing.T) {
	t.Parallel()
	s := redistest.Start(t)
	l := ratelimittest.Lasting(t)
	p := build(t, l, redisCfg(s, `,"conn":1,"burst":0,"key_ttl":1`))
	if _, e := begin(p, "r", "10.0.0.1"); e != nil { // never finished: leaked
		t.Fatal("first request rejected")
	}
	key := p.routes.Get("r").prefix + "10.0.0.1"
	r, _ := s.Do("PTTL", key)
	if ms, _ := strconv.Atoi(strings.TrimPrefix(r, ":")); ms <= 0 || ms > 1000 {
		t.Errorf("PTTL = %q, want within (0, 1000]", r)
	}
	if _, e := begin(p, "r", "10.0.0.1"); e == nil {
		t.Fatal("second request admitted while the first is counted")
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if c, e := begin(p, "r", "10.0.0.1"); e == nil {
			finish(p, c, 0)
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the leaked request still counts 5s after key_ttl 1s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestRedisOutage: with Redis gone, requests get APISIX's bare 500 or,
// with allow_degradation, pass (and hold nothing to release); when Redis is
// back, the same client counts again.
func TestRedisOutage(t *testing.T) {
	t.Parallel()
	s := redistest.Start(t)
	l := ratelimittest.Lasting(t)
	strict := build(t, l, redisCfg(s, `,"conn":1,"burst":0,"redis_timeout":200`))
	lenient := build(t, l, redisCfg(s, `,"conn":1,"burst":0,"redis_timeout":200,"allow_degradation":true`))
	s.Stop()
	for range 3 {
		if _, e := begin(strict, "1", "10.0.0.2"); e != failExit {
			t.Fatalf("Redis down, no degradation: exit = %v, want the 500 failExit", e)
		}
		c, e := begin(lenient, "1", "10.0.0.2")
		if e != nil {
			t.Fatalf("Redis down, allow_degradation: exit = %d, want pass", e.Status)
		}
		if v, ok := c.Get(ctxKey); ok && v != nil {
			t.Fatalf("a degraded request holds %v", v)
		}
	}
	if failExit.Status != 500 || !strings.Contains(string(failExit.Body), "<title>500 Internal Server Error</title>") {
		t.Errorf("failExit = %d %q", failExit.Status, failExit.Body)
	}
	s.Restart()
	deadline := time.Now().Add(5 * time.Second)
	var held *plugin.Ctx
	for {
		c, e := begin(strict, "1", "10.0.0.3")
		if e == nil {
			held = c
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Redis back, but requests still fail")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, e := begin(strict, "1", "10.0.0.3"); e == nil || e.Status != 503 {
		t.Errorf("after Redis came back the limit is not enforced: %+v", e)
	}
	finish(strict, held, 0)
}

// TestRedisCluster counts through a real 3-master Redis Cluster.
func TestRedisCluster(t *testing.T) {
	t.Parallel()
	cl := redistest.StartCluster(t, 3)
	nodes := ratelimittest.NodesJSON(cl)
	cfg := `{"conn":20,"burst":0,"default_conn_delay":0.1,"key":"remote_addr","policy":"redis-cluster","redis_cluster_name":"t","redis_cluster_nodes":` + nodes + `}`
	la, lb := ratelimittest.TwoGateways(t)
	a, b := build(t, la, cfg), build(t, lb, cfg)
	for k := range 6 {
		ip := "10.8.0." + strconv.Itoa(k)
		var admitted atomic.Int64
		var tried, done sync.WaitGroup
		release := make(chan struct{})
		for i := range 40 {
			p := a
			if i%2 == 1 {
				p = b
			}
			tried.Add(1)
			done.Add(1)
			go func() {
				defer done.Done()
				c, e := begin(p, "r", ip)
				tried.Done()
				if e == nil {
					admitted.Add(1)
					<-release
					finish(p, c, 0)
				}
			}()
		}
		tried.Wait()
		close(release)
		done.Wait()
		if n := admitted.Load(); n != 20 {
			t.Errorf("key %s: admitted %d of 40, want exactly 20", ip, n)
		}
	}
}

func BenchmarkRedisAccess(b *testing.B) {
	s := redistest.Start(b)
	l := ratelimittest.Lasting(b)
	p := build(b, l, fmt.Sprintf(`{"conn":1000000000,"burst":0,"default_conn_delay":0.1,"key":"remote_addr","policy":"redis","redis_host":"127.0.0.1","redis_port":%d}`, s.Port()))
	req := plugintest.NewRequest("GET", "/").WithIP("10.0.0.1")
	c := &plugin.Ctx{}
	b.ReportAllocs()
	for b.Loop() {
		c.Reset(req)
		c.RouteID = "1"
		if e := p.Access(c); e != nil {
			b.Fatal(e.Status)
		}
		p.Log(c)
	}
}
