package limitreq

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
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
		t.Fatal("limit-req is not registered")
	}
	if d.Priority != 1001 {
		t.Errorf("priority = %d, want APISIX's 1001", d.Priority)
	}
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	c := NewConfig()
	if c.KeyType != "var" || c.Key != "" || c.RejectedCode != 503 || c.Policy != "local" || c.NoDelay ||
		c.AllowDegradation || c.RedisPort != 6379 || c.RedisTimeout != 1000 || c.RedisKeepaliveTimeout != 10000 ||
		c.RedisKeepalivePool != 100 || c.RejectedMsg != nil || c.Rate != nil || c.Burst != nil {
		t.Errorf("defaults = %+v", *c)
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	const p = "plugins.limit-req: "
	tests := []struct {
		desc, cfg, err string
	}{
		{"minimal", `{"rate":1,"burst":0,"key":"remote_addr"}`, ""},
		{"fractional", `{"rate":0.5,"burst":2.5,"key":"remote_addr"}`, ""},
		{"all local fields", `{"rate":10,"burst":5,"key_type":"var_combination","key":"$remote_addr $http_x","rejected_code":429,"rejected_msg":"slow down","nodelay":true,"allow_degradation":true,"policy":"local"}`, ""},
		{"redis", `{"rate":1,"burst":1,"key":"remote_addr","policy":"redis","redis_host":"127.0.0.1","redis_port":6380,"redis_username":"u","redis_password":"p","redis_database":2,"redis_timeout":50,"redis_ssl":true,"redis_ssl_verify":true,"redis_keepalive_timeout":2000,"redis_keepalive_pool":5}`, ""},
		{"redis-cluster", `{"rate":1,"burst":1,"key":"remote_addr","policy":"redis-cluster","redis_cluster_nodes":["127.0.0.1:7000"],"redis_cluster_name":"c"}`, ""},
		{"missing rate", `{"burst":1,"key":"remote_addr"}`, p + "rate: is required"},
		{"zero rate", `{"rate":0,"burst":1,"key":"remote_addr"}`, p + "rate: must be greater than 0, got 0"},
		{"negative rate", `{"rate":-2,"burst":1,"key":"remote_addr"}`, p + "rate: must be greater than 0, got -2"},
		{"rate type", `{"rate":"5","burst":1,"key":"remote_addr"}`, p + "rate: must be a number, got string"},
		{"missing burst", `{"rate":1,"key":"remote_addr"}`, p + "burst: is required"},
		{"negative burst", `{"rate":1,"burst":-1,"key":"remote_addr"}`, p + "burst: must be at least 0, got -1"},
		{"missing key", `{"rate":1,"burst":1}`, p + "key: is required"},
		{"key_type", `{"rate":1,"burst":1,"key":"x","key_type":"constant"}`, p + `key_type: must be one of var, var_combination, got "constant"`},
		{"rejected_code", `{"rate":1,"burst":1,"key":"x","rejected_code":600}`, p + "rejected_code: must be between 200 and 599, got 600"},
		{"empty rejected_msg", `{"rate":1,"burst":1,"key":"x","rejected_msg":""}`, p + "rejected_msg: must not be empty"},
		{"policy", `{"rate":1,"burst":1,"key":"x","policy":"memcached"}`, p + `policy: must be one of local, redis, redis-cluster, got "memcached"`},
		{"redis without host", `{"rate":1,"burst":1,"key":"x","policy":"redis"}`, p + "redis_host: is required when policy is redis"},
		{"redis timeout", `{"rate":1,"burst":1,"key":"x","policy":"redis","redis_host":"rr","redis_timeout":0}`, p + "redis_timeout: must be at least 1 (milliseconds), got 0"},
		{"cluster without name", `{"rate":1,"burst":1,"key":"x","policy":"redis-cluster","redis_cluster_nodes":["127.0.0.1:7000"]}`, p + "redis_cluster_name: is required when policy is redis-cluster"},
		{"unknown field", `{"rate":1,"burst":1,"key":"x","conn":5}`, p + "conn: unknown field"},
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

// fakeClock is a bucket clock the test moves by hand.
type fakeClock struct{ ns atomic.Int64 }

func (c *fakeClock) now() int64              { return c.ns.Load() }
func (c *fakeClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

func testBucket(rate, burst float64, maxKeys int64) (*bucket, *fakeClock) {
	clk := &fakeClock{}
	clk.ns.Store(int64(3 * time.Hour)) // any origin
	b := newBucket(rate, burst, maxKeys)
	b.now = clk.now
	return b, clk
}

func (b *bucket) takeNow(key string) (time.Duration, bool) { return b.takeAt(key, b.now()) }

// TestLeakyBucketMath follows nginx's and resty.limit.req's formula step by
// step: excess' = max(excess - rate*elapsed + 1, 0), rejected above burst,
// delayed by excess'/rate.
func TestLeakyBucketMath(t *testing.T) {
	t.Parallel()
	b, clk := testBucket(2, 3, 100) // 2 r/s: one request leaks per 500ms
	ms := time.Millisecond
	steps := []struct {
		advance time.Duration
		ok      bool
		delay   time.Duration // excess/rate
	}{
		{0, true, 0},                // a new key: excess 0
		{0, true, 500 * ms},         // excess 1
		{0, true, 1000 * ms},        // excess 2
		{0, true, 1500 * ms},        // excess 3 = burst: still in
		{0, false, 0},               // excess 4 > burst: rejected, nothing stored
		{100 * ms, false, 0},        // 4 - 0.2 = 3.8 > 3
		{400 * ms, true, 1500 * ms}, // 500ms leaked one: 3 - 1 + 1 = 3
		{250 * ms, false, 0},        // 3 - 0.5 + 1 = 3.5
		{250 * ms, true, 1500 * ms}, // 3 - 1 + 1 = 3
		{10 * time.Second, true, 0}, // drained: max(3 - 20 + 1, 0) = 0
		{200 * ms, true, 300 * ms},  // 0 - 0.4 + 1 = 0.6 -> 300ms
		{time.Hour, true, 0},
	}
	for i, s := range steps {
		clk.advance(s.advance)
		d, ok := b.takeNow("k")
		if ok != s.ok || d != s.delay {
			t.Errorf("step %d (+%v): admitted=%v delay=%v, want admitted=%v delay=%v", i, s.advance, ok, d, s.ok, s.delay)
		}
	}
	if d, ok := b.takeNow("other"); !ok || d != 0 {
		t.Errorf("another key: admitted=%v delay=%v, want its own empty bucket", ok, d)
	}
}

// TestBurstAtOneInstant: at one instant a key gets exactly burst+1
// requests through (the first finds the bucket empty), for integer and
// fractional bursts and odd rates whose interval does not divide a second.
func TestBurstAtOneInstant(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		rate, burst float64
		want        int
	}{
		{1, 0, 1}, {1, 5, 6}, {3, 7, 8}, {7, 100, 101}, {0.3, 2, 3}, {1000, 0.5, 1}, {2, 1.5, 2}, {1e-6, 3, 4},
	} {
		b, _ := testBucket(tc.rate, tc.burst, 100)
		got := 0
		for range 1000 {
			if _, ok := b.takeNow("k"); ok {
				got++
			}
		}
		if got != tc.want {
			t.Errorf("rate %v burst %v: %d admitted at one instant, want %d", tc.rate, tc.burst, got, tc.want)
		}
	}
}

// TestSustainedRate: requests arriving far faster than the rate over 10
// simulated seconds get rate*10 + burst + 1 through.
func TestSustainedRate(t *testing.T) {
	t.Parallel()
	b, clk := testBucket(5, 2, 100)
	got := 0
	for range 10_001 { // one per millisecond, from 0 to 10s inclusive
		if _, ok := b.takeNow("k"); ok {
			got++
		}
		clk.advance(time.Millisecond)
	}
	if want := 5*10 + 2 + 1; got != want {
		t.Errorf("%d admitted in 10s at rate 5 burst 2, want %d", got, want)
	}
}

// TestConcurrencyExact: 200 goroutines released at once against burst 99
// admit exactly 100, and the delays handed out are 0, 1/rate, ..., each
// once (run with -race).
func TestConcurrencyExact(t *testing.T) {
	t.Parallel()
	for round := range 30 {
		b, _ := testBucket(10, 99, 1000)
		var mu sync.Mutex
		delays := map[time.Duration]int{}
		var start, done sync.WaitGroup
		start.Add(1)
		for range 200 {
			done.Add(1)
			go func() {
				defer done.Done()
				start.Wait()
				if d, ok := b.takeNow("k"); ok {
					mu.Lock()
					delays[d]++
					mu.Unlock()
				}
			}()
		}
		start.Done()
		done.Wait()
		if len(delays) != 100 {
			t.Fatalf("round %d: %d distinct delays admitted, want 100", round, len(delays))
		}
		for i := range 100 {
			if n := delays[time.Duration(i)*100*time.Millisecond]; n != 1 {
				t.Fatalf("round %d: delay %v handed out %d times, want once", round, time.Duration(i)*100*time.Millisecond, n)
			}
		}
	}
}

// TestConcurrencyExactUnderSweeps keeps the table full so sweeps run while
// one hot key is limited: drained junk keys go first, and the hot key's
// count stays exact.
func TestConcurrencyExactUnderSweeps(t *testing.T) {
	t.Parallel()
	b, clk := testBucket(1, 99, 64)
	for i := range 64 {
		b.takeNow(fmt.Sprint("junk-", i))
	}
	clk.advance(time.Minute) // the junk buckets drained
	var admitted atomic.Int64
	var wg sync.WaitGroup
	for g := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, ok := b.takeNow("hot"); ok {
				admitted.Add(1)
			}
			b.takeNow(fmt.Sprint("new-", g%8))
		}()
	}
	wg.Wait()
	if n := admitted.Load(); n != 100 {
		t.Fatalf("hot key admitted %d of 200, want exactly 100", n)
	}
}

// TestMemoryBound floods a bucket table with distinct keys: it never tracks
// many more than its bound, and drained buckets go before full ones.
func TestMemoryBound(t *testing.T) {
	t.Parallel()
	const maxKeys = 1000
	b, clk := testBucket(1, 5, maxKeys)
	for i := range 900 {
		b.takeNow(fmt.Sprint("old-", i))
	}
	clk.advance(time.Minute)
	for i := range 100 {
		b.takeNow(fmt.Sprint("live-", i))
		b.takeNow(fmt.Sprint("live-", i)) // excess 1: not drained
	}
	for i := range 500 {
		b.takeNow(fmt.Sprint("new-", i))
	}
	if n := b.keys.Len(); n > maxKeys {
		t.Fatalf("table holds %d keys, bound %d", n, maxKeys)
	}
	for i := range 100 {
		if d, _ := b.takeNow(fmt.Sprint("live-", i)); d != 2*time.Second {
			t.Fatalf("live key %d lost its state (delay %v, want 2s): evicted before drained keys", i, d)
		}
	}
	for i := range 100_000 {
		b.takeNow(fmt.Sprint("flood-", i))
		if n := b.keys.Len(); n > maxKeys {
			t.Fatalf("after %d flood keys the table holds %d keys, bound %d", i+1, n, maxKeys)
		}
	}
}

// build builds an instance as a live configuration does, with Lasting.
func build(t testing.TB, l *plugin.Lasting, cfg string) *limitReq {
	t.Helper()
	c := NewConfig()
	if err := json.Unmarshal([]byte(cfg), c); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	p, err := newLimitReq(c, plugin.Deps{Lasting: l})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// access runs p's access phase for a request of route from ip.
func access(p *limitReq, route, ip string) *plugin.Exit {
	c := &plugin.Ctx{}
	c.Reset(plugintest.NewRequest("GET", "/").WithIP(ip))
	c.RouteID = route
	return p.Access(c)
}

// TestAccessAndRejection: nodelay lets burst+1 through at once, then the
// configured rejection; without rejected_msg, nginx's page; another key
// and another route have their own buckets; a reload with the same
// configuration keeps the buckets and a changed one starts afresh.
func TestAccessAndRejection(t *testing.T) {
	t.Parallel()
	l := plugin.NewLasting(nil)
	cfg := `{"rate":0.001,"burst":2,"key":"remote_addr","nodelay":true,"rejected_code":429,"rejected_msg":"slow down"}`
	p := build(t, l, cfg)
	for i := range 3 {
		if e := access(p, "r1", "10.0.0.1"); e != nil {
			t.Fatalf("request %d rejected: %d", i+1, e.Status)
		}
	}
	e := access(p, "r1", "10.0.0.1")
	if e == nil || e.Status != 429 || string(e.Body) != `{"error_msg":"slow down"}`+"\n" {
		t.Fatalf("4th request: %+v, want 429 slow down", e)
	}
	if e := access(p, "r1", "10.0.0.2"); e != nil {
		t.Error("another key was limited")
	}
	if e := access(p, "r2", "10.0.0.1"); e != nil {
		t.Error("another route shares the bucket")
	}
	l.BeginCompile()
	p2 := build(t, l, cfg)
	l.Sweep()
	if e := access(p2, "r1", "10.0.0.1"); e == nil {
		t.Error("after a reload with the same config the bucket was reset")
	}
	p3 := build(t, l, `{"rate":0.001,"burst":3,"key":"remote_addr","nodelay":true}`)
	if e := access(p3, "r1", "10.0.0.1"); e != nil {
		t.Error("a changed config kept the old bucket")
	}
	for range 3 {
		access(p3, "r1", "10.0.0.1")
	}
	e = access(p3, "r1", "10.0.0.1")
	if e == nil || e.Status != 503 || string(e.Body) == "" || e.Headers[0].Value != "text/html" {
		t.Errorf("default rejection = %+v, want 503 with nginx's page", e)
	}
}

// TestKeys: the key is a variable or a combination; unresolved, it falls
// back to the client address.
func TestKeys(t *testing.T) {
	t.Parallel()
	p := plugintest.New(t, Name, `{"rate":0.001,"burst":0,"key":"http_x_user","nodelay":true}`).(*limitReq)
	try := func(user, ip string) bool {
		c := &plugin.Ctx{}
		req := plugintest.NewRequest("GET", "/").WithIP(ip)
		if user != "" {
			req = req.WithHeader("X-User", user)
		}
		c.Reset(req)
		return p.Access(c) == nil
	}
	if !try("alice", "10.0.0.1") || try("alice", "10.0.0.2") {
		t.Error("key http_x_user: alice from two addresses should share one bucket")
	}
	if !try("", "10.0.0.1") || try("", "10.0.0.1") || !try("", "10.0.0.3") {
		t.Error("no X-User: the key should fall back to remote_addr")
	}
	pc := plugintest.New(t, Name, `{"rate":0.001,"burst":0,"key_type":"var_combination","key":"$http_x_a-$http_x_b","nodelay":true}`).(*limitReq)
	tryC := func(a, b, ip string) bool {
		c := &plugin.Ctx{}
		req := plugintest.NewRequest("GET", "/").WithIP(ip).WithHeader("X-A", a)
		if b != "" {
			req = req.WithHeader("X-B", b)
		}
		c.Reset(req)
		return pc.Access(c) == nil
	}
	if !tryC("1", "2", "10.0.0.1") || tryC("1", "2", "10.0.0.9") || !tryC("1", "3", "10.0.0.1") {
		t.Error("var_combination: the combined value should be the key")
	}
}

func BenchmarkLocalTake(b *testing.B) {
	bk := newBucket(math.MaxFloat64/4, 0, 100_000) // never limits
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = "10.0." + strconv.Itoa(i/256) + "." + strconv.Itoa(i%256)
		bk.takeNow(keys[i])
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		bk.takeNow(keys[i&1023])
		i++
	}
}

func BenchmarkLocalTakeParallel(b *testing.B) {
	bk := newBucket(math.MaxFloat64/4, 0, 100_000)
	bk.takeNow("hot")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			bk.takeNow("hot")
		}
	})
}

// BenchmarkAccess is the whole plugin on a request: key from remote_addr
// and the bucket.
func BenchmarkAccess(b *testing.B) {
	inst := plugintest.New(b, Name, `{"rate":1e15,"burst":0,"key":"remote_addr"}`).(*limitReq)
	req := plugintest.NewRequest("GET", "/")
	req.Vars = map[string]string{"remote_addr": "10.1.2.3"}
	c := &plugin.Ctx{}
	b.ReportAllocs()
	for b.Loop() {
		c.Reset(req)
		c.RouteID = "1"
		c.Served.Start = time.Now()
		if inst.Access(c) != nil {
			b.Fatal("rejected")
		}
	}
}
