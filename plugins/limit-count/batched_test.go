package limitcount

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicegw/sluice/internal/ratelimit/ratelimittest"
	"github.com/sluicegw/sluice/internal/redistest"
	"github.com/sluicegw/sluice/plugin"
	"github.com/sluicegw/sluice/plugin/plugintest"
)

func batchedCfg(s *redistest.Server, count int64, extra string) string {
	return fmt.Sprintf(`{"count":%d,"time_window":60,"policy":"redis","redis_host":"127.0.0.1","redis_port":%d,"sync_interval":0.1%s}`,
		count, s.Port(), extra)
}

// idleStore builds a batched store without its syncer goroutine, on a
// clock the test moves: the test runs the syncer's rounds itself, so every
// step is deterministic. It stands for one gateway.
func idleStore(t *testing.T, cfg string) (*batchStore, *leaseTable, *fakeClock) {
	t.Helper()
	c := NewConfig()
	if err := json.Unmarshal([]byte(cfg), c); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	b := newRedisBackend(c, slog.New(slog.DiscardHandler))
	t.Cleanup(func() { _ = b.Close() })
	s := newBatchStoreIdle(b, slog.New(slog.DiscardHandler), c, c.fingerprint())
	clk := &fakeClock{}
	clk.ns.Store(int64(time.Hour))
	s.now = clk.now
	return s, s.scope("r").lim.(*leaseTable), clk
}

// kick runs one syncer round for the queued leases; tick runs a periodic one.
func kick(s *batchStore) { s.round(s.drain(nil), false) }
func tick(s *batchStore) { s.round(s.drain(nil), true) }

func leaseOf(tb *leaseTable, key string) *lease {
	v, ok := tb.m.Load(key)
	if !ok {
		return nil
	}
	return v.(*leaseEntry).l.Load()
}

// mustTake takes one request that must not need to wait for Redis.
func mustTake(t *testing.T, tb *leaseTable, key string) verdict {
	t.Helper()
	if l := leaseOf(tb, key); l != nil && l.avail.Load() == 0 && !l.exhausted.Load() && tb.s.now() < l.end.Load() {
		t.Fatalf("%s: the lease is empty and not exhausted: the request would wait for a sync", key)
	}
	v, err := tb.take(key, 1, time.Time{})
	if err != nil {
		t.Fatalf("%s: %v", key, err)
	}
	return v
}

func hget(t *testing.T, s *batchStore, key, field string) string {
	t.Helper()
	v, err := s.b.Client.HGet(context.Background(), key, field).Result()
	if err != nil {
		t.Fatalf("HGET %s %s: %v", key, field, err)
	}
	return v
}

// TestBatchedLeaseRounds walks one key through its window on two gateways
// with the syncer driven by hand: the credit is spent without Redis and
// charged at the first sync, leases grow with demand, Redis never grants
// past count, and the only excess is the second gateway's credit, which
// is clawed back when it is not spent yet.
func TestBatchedLeaseRounds(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	for _, tc := range []struct {
		count, credit int64
		// bTakes: requests gateway b sends after a has exhausted the window.
		bTakes   int
		wantOver int64
	}{
		{count: 100, credit: 1, bTakes: 1, wantOver: 1},   // credit 1 is spent by the request that made the lease
		{count: 1000, credit: 10, bTakes: 3, wantOver: 1}, // 9 unspent credit tokens are clawed back
	} {
		t.Run(strconv.FormatInt(tc.count, 10), func(t *testing.T) {
			cfg := batchedCfg(rs, tc.count, "")
			a, ta, _ := idleStore(t, cfg)
			b, tb, _ := idleStore(t, cfg)
			if a.credit != tc.credit {
				t.Fatalf("credit = %d, want %d", a.credit, tc.credit)
			}
			rkey := leasePrefix + "route:r:" + a.fp + ":k"
			for i := range tc.credit {
				if v := mustTake(t, ta, "k"); !v.admitted {
					t.Fatalf("credit request %d rejected", i+1)
				}
			}
			if n, _ := a.b.Client.Exists(context.Background(), rkey).Result(); n != 0 {
				t.Fatal("the credit touched Redis: it must be spent locally")
			}
			kick(a)
			l := leaseOf(ta, "k")
			// Charge the credit, grant twice what was used.
			if got, want := hget(t, a, rkey, "n"), strconv.FormatInt(3*tc.credit, 10); got != want {
				t.Fatalf("after the first sync n = %s, want %s", got, want)
			}
			if l.avail.Load() != 2*tc.credit || l.id == "" || l.exhausted.Load() {
				t.Fatalf("after the first sync: avail %d id %q exhausted %v", l.avail.Load(), l.id, l.exhausted.Load())
			}
			// Spend everything a grants; refill whenever it runs dry.
			admitted := tc.credit
			for rounds := 0; ; rounds++ {
				if rounds > 100 {
					t.Fatal("the window never ran out")
				}
				for l.avail.Load() > 0 {
					if v := mustTake(t, ta, "k"); !v.admitted {
						t.Fatal("rejected with tokens held")
					}
					admitted++
				}
				if l.exhausted.Load() {
					break
				}
				kick(a)
			}
			if admitted != tc.count {
				t.Fatalf("gateway a alone admitted %d, want exactly %d", admitted, tc.count)
			}
			if v := mustTake(t, ta, "k"); v.admitted || v.remaining != 0 {
				t.Fatalf("over the limit: %+v", v)
			}
			// Gateway b sees the key for the first time: its credit admits
			// one request over the limit, the rest of the credit is clawed
			// back at its first sync.
			over := int64(0)
			for i := range tc.bTakes {
				if i == 1 {
					kick(b)
				}
				if mustTake(t, tb, "k").admitted {
					over++
				}
			}
			if tc.bTakes == 1 {
				kick(b)
			}
			lb := leaseOf(tb, "k")
			if over != tc.wantOver || lb.avail.Load() != 0 || !lb.exhausted.Load() || lb.given.Load() != tc.wantOver {
				t.Fatalf("gateway b: admitted %d (want %d), avail %d, given %d, exhausted %v",
					over, tc.wantOver, lb.avail.Load(), lb.given.Load(), lb.exhausted.Load())
			}
			if over > (2-1)*tc.credit {
				t.Fatalf("over-admission %d beyond the bound (N-1)*credit = %d", over, tc.credit)
			}
			// Rejections note demand; a tick asks Redis again and finds
			// nothing, without un-exhausting the lease.
			if v := mustTake(t, tb, "k"); v.admitted || !lb.demand.Load() {
				t.Fatalf("b over the limit: %+v demand %v", v, lb.demand.Load())
			}
			tick(b)
			if lb.demand.Load() || !lb.exhausted.Load() || lb.avail.Load() != 0 {
				t.Fatalf("after a tick: demand %v exhausted %v avail %d", lb.demand.Load(), lb.exhausted.Load(), lb.avail.Load())
			}
		})
	}
}

// TestBatchedIdleReturn: a gateway whose key goes idle for a whole sync
// interval gives its tokens back, and another gateway gets them.
func TestBatchedIdleReturn(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	cfg := batchedCfg(rs, 100, "")
	a, ta, _ := idleStore(t, cfg)
	b, tb, _ := idleStore(t, cfg)
	mustTake(t, ta, "k")
	kick(a)
	la := leaseOf(ta, "k")
	// a asks for nearly all the quota: demand shown by waiting requests.
	la.waiting.Store(99)
	la.queued.Store(false)
	a.enqueue(la)
	kick(a)
	la.waiting.Store(0)
	held := la.avail.Load()
	if held != 99 {
		t.Fatalf("a holds %d tokens, want 99 (all but its one request)", held)
	}
	// b's key is starved: its credit is clawed or spent and Redis is out.
	mustTake(t, tb, "k")
	kick(b)
	lb := leaseOf(tb, "k")
	if !lb.exhausted.Load() {
		t.Fatalf("b: expected an exhausted window, avail %d", lb.avail.Load())
	}
	// a idles through two ticks: the second gives its tokens back.
	tick(a)
	if la.avail.Load() != held {
		t.Fatal("tokens returned after one idle tick; want two")
	}
	tick(a)
	if la.avail.Load() != 0 || la.given.Load() != 1 {
		t.Fatalf("after idling: avail %d given %d, want 0 and 1 (the one request a admitted)", la.avail.Load(), la.given.Load())
	}
	// b's rejected request left demand; its next tick gets the tokens.
	if v := mustTake(t, tb, "k"); v.admitted {
		t.Fatal("b admitted on an exhausted lease")
	}
	tick(b)
	if lb.avail.Load() == 0 || lb.exhausted.Load() {
		t.Fatalf("b did not get a's returned tokens: avail %d exhausted %v", lb.avail.Load(), lb.exhausted.Load())
	}
}

// TestBatchedWindows: a window that ends (the Redis key expires) starts a
// new one with a new id and a fresh credit; a gateway still holding a lease
// on a window Redis has replaced drops that lease at its next sync.
func TestBatchedWindows(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	cfg := batchedCfg(rs, 100, "")
	a, ta, clk := idleStore(t, cfg)
	b, tb, _ := idleStore(t, cfg)
	rkey := leasePrefix + "route:r:" + a.fp + ":k"
	mustTake(t, ta, "k")
	kick(a)
	l1 := leaseOf(ta, "k")
	if reset := l1.end.Load() - a.now(); reset <= 59*int64(time.Second) || reset > 60*int64(time.Second) {
		t.Fatalf("window end in %v, want about 60s", time.Duration(reset))
	}
	id1 := l1.id
	// The window ends: in Redis, and on a's clock.
	if err := a.b.Client.Del(context.Background(), rkey).Err(); err != nil {
		t.Fatal(err)
	}
	clk.advance(61 * time.Second)
	if v := mustTake(t, ta, "k"); !v.admitted || v.remaining != 99 {
		t.Fatalf("first request of the next window: %+v", v)
	}
	l2 := leaseOf(ta, "k")
	if l2 == l1 {
		t.Fatal("no new lease for the new window")
	}
	kick(a)
	if l2.id == "" || l2.id == id1 || hget(t, a, rkey, "w") != l2.id {
		t.Fatalf("new window id %q (old %q, redis %q)", l2.id, id1, hget(t, a, rkey, "w"))
	}
	// Redis replaces the window behind a's back (as when a's view of the
	// end lags): b starts the next one; a's next sync ends its lease.
	if err := a.b.Client.Del(context.Background(), rkey).Err(); err != nil {
		t.Fatal(err)
	}
	mustTake(t, tb, "k")
	kick(b)
	mustTake(t, ta, "k") // a used its lease: the tick syncs it
	tick(a)
	if a.now() < l2.end.Load() {
		t.Fatal("a kept a lease on a window Redis replaced")
	}
	if _, ok := a.active[l2]; ok {
		t.Fatal("the dropped lease is still synced")
	}
	if v := mustTake(t, ta, "k"); !v.admitted {
		t.Fatal("a's first request in b's window rejected")
	}
	kick(a)
	if l3 := leaseOf(ta, "k"); l3.id != leaseOf(tb, "k").id {
		t.Fatalf("a joined window %q, b is in %q", l3.id, leaseOf(tb, "k").id)
	}
}

// TestBatchedLeaseAccounting: many goroutines spend a lease while the
// syncer grants, claws back and takes tokens back concurrently; every
// token is admitted once, clawed once or returned once (run with -race).
func TestBatchedLeaseAccounting(t *testing.T) {
	t.Parallel()
	s := &batchStore{limit: 1 << 40, q: make(chan *lease, 1)}
	for round := range 20 {
		l := s.newLease(&leaseEntry{}, 0)
		l.end.Store(1 << 62)
		var admitted atomic.Int64
		var wg sync.WaitGroup
		stop := make(chan struct{})
		for range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					if _, ok := s.tryTake(l, 1, 0); ok {
						admitted.Add(1)
					}
				}
			}()
		}
		var granted, clawed, returned int64
		for i := range 200 {
			g := int64(i%7 + 1)
			l.given.Add(g)
			l.avail.Add(g)
			granted += g
			if i%10 == 0 {
				before := l.given.Load()
				claw(l, 3)
				clawed += before - l.given.Load()
			}
		}
		r := l.avail.Swap(0)
		l.given.Add(-r)
		returned = r
		close(stop)
		wg.Wait()
		total := s.credit + granted
		if got := admitted.Load() + clawed + returned + l.avail.Load(); got != total {
			t.Fatalf("round %d: admitted %d + clawed %d + returned %d + left %d = %d, want %d given out",
				round, admitted.Load(), clawed, returned, l.avail.Load(), got, total)
		}
		if used := l.given.Load() - l.avail.Load(); used != admitted.Load() {
			t.Fatalf("round %d: given - avail = %d, admitted %d", round, used, admitted.Load())
		}
	}
}

// TestBatchedTwoGatewaysConcurrent: two gateways (two Lastings, two pools,
// their own syncers) hammer one key each from 8 goroutines; per window the
// admitted total is at least count (the quota is used up) and at most
// count + (gateways-1) x credit. Run with -race.
func TestBatchedTwoGatewaysConcurrent(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	for _, count := range []int64{100, 1000} {
		la, lb := plugin.NewLasting(nil), plugin.NewLasting(nil)
		t.Cleanup(la.Close)
		t.Cleanup(lb.Close)
		cfg := batchedCfg(rs, count, "")
		gws := []*limitCount{build(t, la, cfg), build(t, lb, cfg)}
		if gws[0].batch == gws[1].batch {
			t.Fatal("the gateways share a store")
		}
		bound := count + creditFor(count)
		for round := range 3 {
			key := fmt.Sprintf("10.1.%d.%d", count%251, round)
			var admitted, failed atomic.Int64
			var wg sync.WaitGroup
			for _, p := range gws {
				for range 8 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for range int(count) / 2 {
							ok, _ := run(p, "r1", key)
							if ok {
								admitted.Add(1)
							}
						}
					}()
				}
			}
			wg.Wait()
			for _, p := range gws {
				failed.Add(p.batch.b.Failures())
			}
			n := admitted.Load()
			t.Logf("count %d, round %d: admitted %d of %d (bound %d)", count, round, n, 8*count, bound)
			if failed.Load() != 0 {
				t.Fatalf("%d requests failed to count", failed.Load())
			}
			if n < count || n > bound {
				t.Fatalf("count %d: admitted %d, want within [%d, %d]", count, n, count, bound)
			}
		}
	}
}

// TestBatchedRedisDown: with Redis gone, a gateway spends the tokens it
// holds and then degrades like the redis policy (500, or pass with
// allow_degradation); requests never wait on a Redis known to be down.
// When Redis is back, limiting resumes without a restart.
func TestBatchedRedisDown(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	l := ratelimittest.Lasting(t)
	strict := build(t, l, batchedCfg(rs, 1, `,"redis_timeout":200`))
	lenient := build(t, l, batchedCfg(rs, 1, `,"redis_timeout":200,"allow_degradation":true`))
	rs.Stop()
	c := &plugin.Ctx{}
	c.Reset(reqFrom("10.0.0.2"))
	c.RouteID = "1"
	if e := strict.Access(c); e != nil {
		t.Fatalf("first request (the credit) with Redis down: exit %d, want pass", e.Status)
	}
	for range 3 {
		c.Reset(reqFrom("10.0.0.2"))
		c.RouteID = "1"
		if e := strict.Access(c); e != failExit {
			t.Fatalf("Redis down, no tokens, no degradation: exit = %v, want the 500 failExit", e)
		}
		c.Reset(reqFrom("10.0.0.3"))
		c.RouteID = "1"
		if e := lenient.Access(c); e != nil {
			t.Fatalf("Redis down, allow_degradation: exit = %d, want pass", e.Status)
		}
	}
	if !strict.batch.down.Load() {
		t.Error("the store does not know Redis is down")
	}
	if n := strict.batch.b.Failures(); n < 3 {
		t.Errorf("degraded count = %d, want >= 3", n)
	}
	rs.Restart()
	// The syncer retries every sync_interval; the first sync that works
	// clears down.
	deadline := time.Now().Add(5 * time.Second)
	for strict.batch.down.Load() {
		if time.Now().After(deadline) {
			t.Fatal("Redis is back but the store still thinks it down")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if ok, rem := run(strict, "1", "10.0.0.9"); !ok || rem != "0" {
		t.Fatalf("Redis back, first request: passed %v remaining %q, want pass with 0", ok, rem)
	}
	if ok, _ := run(strict, "1", "10.0.0.9"); ok {
		t.Fatal("Redis back, second request over count 1 passed")
	}
}

// TestBatchedReloadKeepsStore: a reload with the same configuration keeps
// the store (and its leases); Lasting closes it once unused.
func TestBatchedReloadKeepsStore(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	l := plugin.NewLasting(nil)
	cfg := batchedCfg(rs, 10, "")
	p1 := build(t, l, cfg)
	l.BeginCompile()
	p2 := build(t, l, cfg)
	l.Sweep()
	if p1.batch != p2.batch {
		t.Fatal("a reload with the same configuration built a new store")
	}
	if ok, rem := run(p2, "1", "10.0.0.1"); !ok || rem != "9" {
		t.Fatalf("first request: %v remaining %q", ok, rem)
	}
	l.BeginCompile()
	l.Sweep()
	l.Close()
	if !p2.batch.closed.Load() {
		t.Fatal("the unused store was not closed")
	}
}

// BenchmarkBatchedTake is a request's cost in the batched mode with a
// lease in hand: one map lookup and one compare-and-swap, as the local
// table (BenchmarkLocalTake).
func BenchmarkBatchedTake(b *testing.B) {
	rs := redistest.Start(b)
	l := ratelimittest.Lasting(b)
	c := NewConfig()
	count, window := int64(1<<50), int64(3600)
	c.Count, c.TimeWindow, c.Policy, c.RedisHost, c.RedisPort, c.SyncInterval = &count, &window, PolicyRedis, "127.0.0.1", rs.Port(), 0.1
	p, err := newLimitCount(c, plugin.Deps{Lasting: l})
	if err != nil {
		b.Fatal(err)
	}
	tb := p.batch.scope("1").lim.(*leaseTable)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if v, err := tb.take("bench", 1, time.Time{}); err != nil || !v.admitted {
				b.Fatal(v, err)
			}
		}
	})
}

// BenchmarkBatchedAccess is the whole plugin in the batched mode, as
// BenchmarkAccess measures the local one.
func BenchmarkBatchedAccess(b *testing.B) {
	rs := redistest.Start(b)
	for _, headers := range []bool{false, true} {
		b.Run(fmt.Sprint("headers=", headers), func(b *testing.B) {
			l := plugin.NewLasting(nil)
			b.Cleanup(l.Close)
			inst := build(b, l, fmt.Sprintf(`{"count":1000000000000,"time_window":3600,"show_limit_quota_header":%t,"policy":"redis","redis_host":"127.0.0.1","redis_port":%d,"sync_interval":0.1}`, headers, rs.Port()))
			req := plugintest.NewRequest("GET", "/")
			req.Vars = map[string]string{"remote_addr": "10.1.2.3"}
			resp := &plugintest.Response{Code: 200}
			c := &plugin.Ctx{}
			b.ReportAllocs()
			for b.Loop() {
				c.Reset(req)
				c.RouteID = "1"
				c.Served.Start = time.Now()
				if inst.Access(c) != nil {
					b.Fatal("rejected")
				}
				resp.Headers = resp.Headers[:0]
				c.Response = resp
				inst.HeaderFilter(c)
			}
		})
	}
}

// TestBatchedRedisCluster: the batched mode through a real 3-master Redis
// Cluster. One sync pipeline carries keys of every master; two gateways
// with 30 keys each stay within count + credit per key and use up the
// quota.
func TestBatchedRedisCluster(t *testing.T) {
	t.Parallel()
	cl := redistest.StartCluster(t, 3)
	nodes := ratelimittest.NodesJSON(cl)
	cfg := `{"count":5,"time_window":60,"policy":"redis-cluster","redis_cluster_name":"test","sync_interval":0.1,"redis_cluster_nodes":` + nodes + `}`
	la, lb := ratelimittest.TwoGateways(t)
	gws := []*limitCount{build(t, la, cfg), build(t, lb, cfg)}
	var wg sync.WaitGroup
	admitted := make([]atomic.Int64, 30)
	for k := range 30 {
		for i := range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if ok, _ := run(gws[i%2], "r", "10.1.0."+strconv.Itoa(k)); ok {
					admitted[k].Add(1)
				}
			}()
		}
	}
	wg.Wait()
	for _, p := range gws {
		if n := p.batch.b.Failures(); n != 0 {
			t.Fatalf("%d requests failed to count", n)
		}
	}
	for k := range admitted {
		if n := admitted[k].Load(); n < 5 || n > 5+creditFor(5) {
			t.Errorf("client %d: admitted %d of 16, want within [5, 6]", k, n)
		}
	}
	used := ratelimittest.MastersUsed(cl)
	if used < 2 {
		t.Errorf("leases on %d masters, want them spread", used)
	}
}
