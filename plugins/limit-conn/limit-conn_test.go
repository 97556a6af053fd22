package limitconn

import (
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicegw/sluice/plugin"
	"github.com/sluicegw/sluice/plugin/plugintest"
)

func TestRegistered(t *testing.T) {
	t.Parallel()
	d, ok := plugin.Lookup(Name)
	if !ok {
		t.Fatal("limit-conn is not registered")
	}
	if d.Priority != 1003 {
		t.Errorf("priority = %d, want APISIX's 1003", d.Priority)
	}
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	c := NewConfig()
	if c.KeyType != "var" || c.Key != "" || c.RejectedCode != 503 || c.Policy != "local" || c.OnlyUseDefaultDelay ||
		c.AllowDegradation || c.KeyTTL != 3600 || c.RedisPort != 6379 || c.RedisTimeout != 1000 ||
		c.RedisKeepaliveTimeout != 10000 || c.RedisKeepalivePool != 100 || c.Conn != nil || c.Burst != nil ||
		c.DefaultConnDelay != nil || c.Rules != nil {
		t.Errorf("defaults = %+v", *c)
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	const p = "plugins.limit-conn: "
	const ok = `"conn":1,"burst":0,"default_conn_delay":0.1,"key":"remote_addr"`
	tests := []struct {
		desc, cfg, err string
	}{
		{"minimal", `{` + ok + `}`, ""},
		{"all local fields", `{"conn":5,"burst":3,"default_conn_delay":1.5,"only_use_default_delay":true,"key_type":"var_combination","key":"$remote_addr $http_x","rejected_code":429,"rejected_msg":"busy","allow_degradation":true,"policy":"local","key_ttl":60}`, ""},
		{"redis", `{` + ok + `,"policy":"redis","redis_host":"127.0.0.1","redis_port":6380,"redis_username":"u","redis_password":"p","redis_database":2,"redis_timeout":50,"redis_ssl":true,"redis_ssl_verify":true,"redis_keepalive_timeout":2000,"redis_keepalive_pool":5,"key_ttl":30}`, ""},
		{"redis-cluster", `{` + ok + `,"policy":"redis-cluster","redis_cluster_nodes":["127.0.0.1:7000"],"redis_cluster_name":"c"}`, ""},
		{"missing conn", `{"burst":0,"default_conn_delay":0.1,"key":"k"}`, p + "conn: is required"},
		{"zero conn", `{"conn":0,"burst":0,"default_conn_delay":0.1,"key":"k"}`, p + "conn: must be greater than 0, got 0"},
		{"conn expression", `{"conn":"$http_n","burst":0,"default_conn_delay":0.1,"key":"k"}`, p + "conn: must be a number, got string"},
		{"fractional conn", `{"conn":1.5,"burst":0,"default_conn_delay":0.1,"key":"k"}`, p + "conn: must be a number, got number 1.5"},
		{"missing burst", `{"conn":1,"default_conn_delay":0.1,"key":"k"}`, p + "burst: is required"},
		{"negative burst", `{"conn":1,"burst":-1,"default_conn_delay":0.1,"key":"k"}`, p + "burst: must be at least 0, got -1"},
		{"huge burst", `{"conn":10000,"burst":9223372036854769664,"default_conn_delay":0.1,"key":"k"}`, p + "burst: conn+burst must fit in 64 bits, got 9223372036854770000"},
		{"missing delay", `{"conn":1,"burst":0,"key":"k"}`, p + "default_conn_delay: is required"},
		{"zero delay", `{"conn":1,"burst":0,"default_conn_delay":0,"key":"k"}`, p + "default_conn_delay: must be greater than 0 (seconds) and at most 86400, got 0"},
		{"missing key", `{"conn":1,"burst":0,"default_conn_delay":0.1}`, p + "key: is required"},
		{"key_type", `{` + ok + `,"key_type":"constant"}`, p + `key_type: must be one of var, var_combination, got "constant"`},
		{"rejected_code", `{` + ok + `,"rejected_code":199}`, p + "rejected_code: must be between 200 and 599, got 199"},
		{"empty rejected_msg", `{` + ok + `,"rejected_msg":""}`, p + "rejected_msg: must not be empty"},
		{"key_ttl", `{` + ok + `,"key_ttl":0}`, p + "key_ttl: must be at least 1 (seconds), got 0"},
		{"rules", `{"default_conn_delay":0.1,"rules":[{"conn":1,"burst":0,"key":"$remote_addr"}]}`, p + "rules: not supported yet; use conn, burst and key"},
		{"policy", `{` + ok + `,"policy":"memcached"}`, p + `policy: must be one of local, redis, redis-cluster, got "memcached"`},
		{"redis without host", `{` + ok + `,"policy":"redis"}`, p + "redis_host: is required when policy is redis"},
		{"redis pool", `{` + ok + `,"policy":"redis","redis_host":"rr","redis_keepalive_pool":0}`, p + "redis_keepalive_pool: must be at least 1, got 0"},
		{"cluster without nodes", `{` + ok + `,"policy":"redis-cluster","redis_cluster_name":"c"}`, p + "redis_cluster_nodes: is required when policy is redis-cluster (at least one host:port)"},
		{"unknown field", `{` + ok + `,"rate":5}`, p + "rate: unknown field"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			_, err := plugintest.Build(Name, tt.cfg)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tt.err {
				t.Errorf("error = %q, want %q", got, tt.err)
			}
		})
	}
}

// build builds an instance as a live configuration does, with Lasting.
func build(t testing.TB, l *plugin.Lasting, cfg string) *limitConn {
	t.Helper()
	c := NewConfig()
	if err := json.Unmarshal([]byte(cfg), c); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	p, err := newLimitConn(c, plugin.Deps{Lasting: l})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// begin runs p's access phase for a request of route from ip and returns
// its context, for finish.
func begin(p *limitConn, route, ip string) (*plugin.Ctx, *plugin.Exit) {
	c := &plugin.Ctx{}
	c.Reset(plugintest.NewRequest("GET", "/").WithIP(ip))
	c.RouteID = route
	return c, p.Access(c)
}

// finish runs the log phase of a request that took latency upstream.
func finish(p *limitConn, c *plugin.Ctx, latency time.Duration) {
	c.Served.UpstreamAddr = "10.0.0.100:80"
	c.Served.UpstreamLatency = latency
	c.Served.Latency = latency
	p.Log(c)
}

// inFlight is the local count of key on route.
func inFlight(p *limitConn, route, key string) int64 {
	return p.routes.Get(route).local.Get(key, 0).V.Load()
}

// TestCountAndRelease: conn+burst requests are admitted, the next is
// rejected with the configured answer; releasing one admits one more;
// releasing all brings the count to zero; another key and another route
// count apart.
func TestCountAndRelease(t *testing.T) {
	t.Parallel()
	p := build(t, plugin.NewLasting(nil), `{"conn":2,"burst":0,"default_conn_delay":0.1,"key":"remote_addr","rejected_code":429,"rejected_msg":"busy"}`)
	c1, e1 := begin(p, "r", "10.0.0.1")
	c2, e2 := begin(p, "r", "10.0.0.1")
	if e1 != nil || e2 != nil {
		t.Fatal("the first two requests were rejected")
	}
	_, e := begin(p, "r", "10.0.0.1")
	if e == nil || e.Status != 429 || string(e.Body) != `{"error_msg":"busy"}`+"\n" {
		t.Fatalf("third request: %+v, want 429 busy", e)
	}
	if n := inFlight(p, "r", "10.0.0.1"); n != 2 {
		t.Fatalf("in flight = %d, want 2 (a rejection must not count)", n)
	}
	if _, e := begin(p, "r", "10.0.0.2"); e != nil {
		t.Error("another key was limited")
	}
	if _, e := begin(p, "other", "10.0.0.1"); e != nil {
		t.Error("another route shares the count")
	}
	finish(p, c1, time.Millisecond)
	c3, e := begin(p, "r", "10.0.0.1")
	if e != nil {
		t.Fatal("a released slot was not reusable")
	}
	finish(p, c2, time.Millisecond)
	finish(p, c3, time.Millisecond)
	finish(p, c3, time.Millisecond) // a second log of the same request releases nothing
	if n := inFlight(p, "r", "10.0.0.1"); n != 0 {
		t.Fatalf("in flight after every release = %d, want 0", n)
	}
}

// TestNoAccessNoRelease: a request whose access phase never ran (an
// earlier plugin answered) or was rejected releases nothing in the log
// phase.
func TestNoAccessNoRelease(t *testing.T) {
	t.Parallel()
	p := build(t, plugin.NewLasting(nil), `{"conn":1,"burst":0,"default_conn_delay":0.1,"key":"remote_addr"}`)
	held, _ := begin(p, "r", "10.0.0.1")
	rejected, e := begin(p, "r", "10.0.0.1")
	if e == nil {
		t.Fatal("second request admitted over conn 1")
	}
	finish(p, rejected, 0)
	never := &plugin.Ctx{}
	never.Reset(plugintest.NewRequest("GET", "/").WithIP("10.0.0.1"))
	finish(p, never, 0)
	if n := inFlight(p, "r", "10.0.0.1"); n != 1 {
		t.Fatalf("in flight = %d, want 1: a request that holds nothing released a count", n)
	}
	finish(p, held, 0)
	if n := inFlight(p, "r", "10.0.0.1"); n != 0 {
		t.Fatalf("in flight = %d, want 0", n)
	}
}

// TestDelayMath: resty.limit.conn's delay, unit * floor((n-1)/conn), and
// its unit following released requests' latency unless
// only_use_default_delay.
func TestDelayMath(t *testing.T) {
	t.Parallel()
	c := NewConfig()
	json.Unmarshal([]byte(`{"conn":3,"burst":10,"default_conn_delay":0.5,"key":"k"}`), c)
	s := newLocalScope(c, 100)
	for n, want := range map[int64]time.Duration{1: 0, 3: 0, 4: 500 * time.Millisecond, 6: 500 * time.Millisecond,
		7: time.Second, 10: 1500 * time.Millisecond, 13: 2 * time.Second} {
		if d := s.delay(n); d != want {
			t.Errorf("delay(%d) = %v, want %v", n, d, want)
		}
	}
	s.observe(100 * time.Millisecond) // (500 + 100) / 2
	if d := s.delay(4); d != 300*time.Millisecond {
		t.Errorf("after a 100ms request the unit is %v, want 300ms", d)
	}
	s.observe(100 * time.Millisecond) // (300 + 100) / 2
	if d := s.delay(7); d != 400*time.Millisecond {
		t.Errorf("after two 100ms requests delay(7) = %v, want 2 x 200ms", d)
	}
	c.OnlyUseDefaultDelay = true
	fixed := newLocalScope(c, 100)
	fixed.observe(time.Millisecond)
	if d := fixed.delay(4); d != 500*time.Millisecond {
		t.Errorf("only_use_default_delay: delay(4) = %v, want default_conn_delay 500ms", d)
	}
	c.Burst = new(int64)
	*c.Burst = 1 << 62
	c.DefaultConnDelay = new(float64)
	*c.DefaultConnDelay = 86400
	huge := newLocalScope(c, 100)
	if d := huge.delay(1 << 61); d <= 0 {
		t.Errorf("a huge excess overflowed the delay: %v", d)
	}
}

// TestLatencyObserved: the log phase feeds the upstream's response time
// into the unit when the request was proxied, and the request time minus
// its delay otherwise.
func TestLatencyObserved(t *testing.T) {
	t.Parallel()
	p := build(t, plugin.NewLasting(nil), `{"conn":1,"burst":5,"default_conn_delay":0.001,"key":"remote_addr"}`)
	s := p.routes.Get("r")
	c, _ := begin(p, "r", "10.0.0.1")
	finish(p, c, 9*time.Millisecond) // (1 + 9) / 2
	if u := s.unit.Load(); u != int64(5*time.Millisecond) {
		t.Errorf("unit after a proxied 9ms request = %v, want 5ms", time.Duration(u))
	}
	c, _ = begin(p, "r", "10.0.0.1")
	c.Served.Latency = 25 * time.Millisecond // answered by the gateway: no upstream
	p.Log(c)
	if u := s.unit.Load(); u != int64(15*time.Millisecond) {
		t.Errorf("unit after a 25ms request without upstream = %v, want 15ms", time.Duration(u))
	}
}

// TestDelayedRequestHeld: a request past conn is delayed, counted while it
// waits, and released with its delay taken off its latency.
func TestDelayedRequestHeld(t *testing.T) {
	t.Parallel()
	p := build(t, plugin.NewLasting(nil), `{"conn":1,"burst":1,"default_conn_delay":0.002,"key":"remote_addr","only_use_default_delay":true}`)
	c1, _ := begin(p, "r", "10.0.0.1")
	c2, e := begin(p, "r", "10.0.0.1") // sleeps 2ms
	if e != nil {
		t.Fatal("a request within burst was rejected")
	}
	v, _ := c2.Get(ctxKey)
	if h, ok := v.(*held); !ok || h.delay != 2*time.Millisecond || h.slot == nil {
		t.Fatalf("the delayed request holds %#v, want its slot and 2ms delay", v)
	}
	if _, e := begin(p, "r", "10.0.0.1"); e == nil {
		t.Fatal("a request past conn+burst was admitted")
	}
	finish(p, c2, 0)
	finish(p, c1, 0)
	if n := inFlight(p, "r", "10.0.0.1"); n != 0 {
		t.Fatalf("in flight = %d, want 0", n)
	}
}

// TestTwoInstancesOneRequest: limit-conn both on a global rule and on the
// route: each counts the request, and the first log phase releases both.
func TestTwoInstancesOneRequest(t *testing.T) {
	t.Parallel()
	l := plugin.NewLasting(nil)
	g := build(t, l, `{"conn":10,"burst":0,"default_conn_delay":0.1,"key":"remote_addr"}`)
	r := build(t, l, `{"conn":5,"burst":0,"default_conn_delay":0.1,"key":"remote_addr"}`)
	c, _ := begin(g, "r", "10.0.0.1")
	if e := r.Access(c); e != nil {
		t.Fatal("route limit rejected the first request")
	}
	if inFlight(g, "r", "10.0.0.1") != 1 || inFlight(r, "r", "10.0.0.1") != 1 {
		t.Fatal("each instance should count the request once")
	}
	finish(g, c, 0)
	finish(r, c, 0)
	if a, b := inFlight(g, "r", "10.0.0.1"), inFlight(r, "r", "10.0.0.1"); a != 0 || b != 0 {
		t.Fatalf("in flight after the log phase: global %d, route %d, want 0 and 0", a, b)
	}
}

// TestStateSurvivesReload: a request admitted before a reload that leaves
// the configuration alone is released into the counts the new instance
// uses.
func TestStateSurvivesReload(t *testing.T) {
	t.Parallel()
	l := plugin.NewLasting(nil)
	cfg := `{"conn":1,"burst":0,"default_conn_delay":0.1,"key":"remote_addr"}`
	p1 := build(t, l, cfg)
	c, _ := begin(p1, "r", "10.0.0.1")
	l.BeginCompile()
	p2 := build(t, l, cfg)
	l.Sweep()
	if _, e := begin(p2, "r", "10.0.0.1"); e == nil {
		t.Fatal("after a reload the in-flight request no longer counts")
	}
	finish(p1, c, 0) // the old instance logs the old request
	if _, e := begin(p2, "r", "10.0.0.1"); e != nil {
		t.Fatal("the release of the old request did not reach the new instance's counts")
	}
}

// TestConcurrencyExact: 200 goroutines at once against conn 60 + burst 40
// (delays of 1ns, not slept) admit exactly 100; they hold their counts
// until all have tried, then release them all (run with -race).
func TestConcurrencyExact(t *testing.T) {
	t.Parallel()
	for round := range 20 {
		p := build(t, plugin.NewLasting(nil), `{"conn":60,"burst":40,"default_conn_delay":0.0000000001,"key":"remote_addr"}`)
		var admitted atomic.Int64
		var start, tried, done sync.WaitGroup
		start.Add(1)
		release := make(chan struct{})
		for range 200 {
			tried.Add(1)
			done.Add(1)
			go func() {
				defer done.Done()
				start.Wait()
				c, e := begin(p, "r", "10.0.0.1")
				tried.Done()
				if e != nil {
					return
				}
				admitted.Add(1)
				<-release
				finish(p, c, time.Millisecond)
			}()
		}
		start.Done()
		tried.Wait()
		if n := admitted.Load(); n != 100 {
			t.Fatalf("round %d: admitted %d of 200, want exactly 100", round, n)
		}
		close(release)
		done.Wait()
		if n := inFlight(p, "r", "10.0.0.1"); n != 0 {
			t.Fatalf("round %d: in flight after every release = %d, want 0", round, n)
		}
	}
}

// TestMemoryBound: idle keys are dropped when the table is full; keys with
// requests in flight never are, and still release correctly.
func TestMemoryBound(t *testing.T) {
	t.Parallel()
	c := NewConfig()
	json.Unmarshal([]byte(`{"conn":1,"burst":0,"default_conn_delay":0.1,"key":"k"}`), c)
	const maxKeys = 1000
	s := newLocalScope(c, maxKeys)
	var live []*slot
	for i := range 100 {
		sl, _, _ := s.incoming(fmt.Sprint("live-", i))
		live = append(live, sl)
	}
	for i := range 100_000 {
		sl, _, ok := s.incoming(fmt.Sprint("idle-", i))
		if !ok {
			t.Fatalf("idle key %d rejected", i)
		}
		sl.V.Add(-1)
		if n := s.local.Len(); n > maxKeys {
			t.Fatalf("after %d keys the table holds %d, bound %d", i+1, n, maxKeys)
		}
	}
	for i := range 100 {
		if _, _, ok := s.incoming(fmt.Sprint("live-", i)); ok {
			t.Fatalf("live key %d was dropped: a second request got past conn 1", i)
		}
		live[i].V.Add(-1)
		if _, _, ok := s.incoming(fmt.Sprint("live-", i)); !ok {
			t.Fatalf("live key %d: released, but still full", i)
		}
	}
}

func BenchmarkLocalIncomingLeaving(b *testing.B) {
	c := NewConfig()
	json.Unmarshal([]byte(`{"conn":1000000,"burst":0,"default_conn_delay":0.1,"key":"k"}`), c)
	s := newLocalScope(c, 100_000)
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = fmt.Sprint("10.0.", i/256, ".", i%256)
		sl, _, _ := s.incoming(keys[i])
		sl.V.Add(-1)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		sl, _, _ := s.incoming(keys[i&1023])
		sl.V.Add(-1)
		i++
	}
}

func BenchmarkLocalIncomingParallel(b *testing.B) {
	c := NewConfig()
	json.Unmarshal([]byte(`{"conn":1000000,"burst":0,"default_conn_delay":0.1,"key":"k"}`), c)
	s := newLocalScope(c, 100_000)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			sl, _, _ := s.incoming("hot")
			sl.V.Add(-1)
		}
	})
}

// BenchmarkAccessLog is the whole plugin on a request: key from
// remote_addr, count in access, release (and latency average) in log.
func BenchmarkAccessLog(b *testing.B) {
	inst := plugintest.New(b, Name, `{"conn":1000000,"burst":0,"default_conn_delay":0.1,"key":"remote_addr"}`).(*limitConn)
	req := plugintest.NewRequest("GET", "/")
	req.Vars = map[string]string{"remote_addr": "10.1.2.3"}
	c := &plugin.Ctx{}
	b.ReportAllocs()
	for b.Loop() {
		c.Reset(req)
		c.RouteID = "1"
		if inst.Access(c) != nil {
			b.Fatal("rejected")
		}
		c.Served.UpstreamAddr = "10.0.0.1:80"
		c.Served.UpstreamLatency = time.Millisecond
		inst.Log(c)
	}
}
