package limitcount

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/sluicegw/sluice/plugin"
	"github.com/sluicegw/sluice/plugin/plugintest"
)

func TestRegistered(t *testing.T) {
	t.Parallel()
	d, ok := plugin.Lookup(Name)
	if !ok {
		t.Fatal("limit-count is not registered")
	}
	if d.Priority != 1002 {
		t.Errorf("priority = %d, want APISIX's 1002", d.Priority)
	}
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	c := NewConfig()
	if c.KeyType != "var" || c.Key != "remote_addr" || c.RejectedCode != 503 || c.Policy != "local" ||
		c.AllowDegradation || !c.ShowLimitQuotaHeader || c.RedisPort != 6379 || c.RedisTimeout != 1000 ||
		c.RedisDatabase != 0 || c.RedisSSL || c.RedisSSLVerify || c.WindowType != "fixed" || c.SyncInterval != -1 ||
		c.RedisKeepaliveTimeout != 10000 || c.RedisKeepalivePool != 100 || c.RejectedMsg != nil || c.Group != nil {
		t.Errorf("defaults = %+v", *c)
	}
	if err := c.Validate(); err == nil || err.Error() != "count: is required" {
		t.Errorf("defaults without count: %v, want count: is required", err)
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	const p = "plugins.limit-count: "
	tests := []struct {
		desc, cfg, err string
	}{
		{"minimal", `{"count":1,"time_window":1}`, ""},
		{"all local fields", `{"count":10,"time_window":60,"key_type":"var_combination","key":"$remote_addr $http_x","rejected_code":429,"rejected_msg":"slow down","policy":"local","allow_degradation":true,"show_limit_quota_header":false,"group":"g1","window_type":"fixed","sync_interval":-1}`, ""},
		{"redis", `{"count":1,"time_window":1,"policy":"redis","redis_host":"127.0.0.1","redis_port":6380,"redis_username":"u","redis_password":"p","redis_database":2,"redis_timeout":50,"redis_ssl":true,"redis_ssl_verify":true,"redis_keepalive_timeout":2000,"redis_keepalive_pool":5}`, ""},
		{"redis-cluster", `{"count":1,"time_window":1,"policy":"redis-cluster","redis_cluster_nodes":["127.0.0.1:7000"],"redis_cluster_name":"c","redis_cluster_ssl":true,"redis_cluster_ssl_verify":false}`, ""},
		{"missing count", `{"time_window":1}`, p + "count: is required"},
		{"missing window", `{"count":1}`, p + "time_window: is required"},
		{"zero count", `{"count":0,"time_window":1}`, p + "count: must be greater than 0, got 0"},
		{"negative window", `{"count":1,"time_window":-5}`, p + "time_window: must be greater than 0, got -5"},
		{"count type", `{"count":"10","time_window":1}`, p + "count: must be a number, got string"},
		{"fractional count", `{"count":1.5,"time_window":1}`, p + "count: must be a number, got number 1.5"},
		{"key_type", `{"count":1,"time_window":1,"key_type":"header"}`, p + `key_type: must be one of var, var_combination, constant, got "header"`},
		{"rejected_code low", `{"count":1,"time_window":1,"rejected_code":199}`, p + "rejected_code: must be between 200 and 599, got 199"},
		{"rejected_code high", `{"count":1,"time_window":1,"rejected_code":600}`, p + "rejected_code: must be between 200 and 599, got 600"},
		{"empty rejected_msg", `{"count":1,"time_window":1,"rejected_msg":""}`, p + "rejected_msg: must not be empty"},
		{"empty group", `{"count":1,"time_window":1,"group":""}`, p + "group: must not be empty"},
		{"policy", `{"count":1,"time_window":1,"policy":"memcached"}`, p + `policy: must be one of local, redis, redis-cluster, got "memcached"`},
		{"sentinel", `{"count":1,"time_window":1,"policy":"redis-sentinel"}`, p + "policy: redis-sentinel is not supported yet; use redis or redis-cluster"},
		{"sliding", `{"count":1,"time_window":1,"window_type":"sliding"}`, ""},
		{"sliding redis", `{"count":1,"time_window":1,"window_type":"sliding","policy":"redis","redis_host":"rr"}`, ""},
		{"sliding redis-cluster", `{"count":1,"time_window":1,"window_type":"sliding","policy":"redis-cluster","redis_cluster_nodes":["127.0.0.1:7000"],"redis_cluster_name":"c"}`, ""},
		{"sliding local sync_interval ignored", `{"count":1,"time_window":10,"window_type":"sliding","sync_interval":0.5}`, ""},
		{"sliding batched", `{"count":1,"time_window":10,"window_type":"sliding","sync_interval":0.5,"policy":"redis","redis_host":"rr"}`, p + "window_type: sliding is not supported with sync_interval (the batched mode) yet; use sync_interval -1 or window_type fixed"},
		{"sliding batched cluster", `{"count":1,"time_window":10,"window_type":"sliding","sync_interval":1,"policy":"redis-cluster","redis_cluster_nodes":["127.0.0.1:7000"],"redis_cluster_name":"c"}`, p + "window_type: sliding is not supported with sync_interval (the batched mode) yet; use sync_interval -1 or window_type fixed"},
		{"window_type type", `{"count":1,"time_window":1,"window_type":1}`, p + "window_type: must be a string, got number"},
		{"window_type", `{"count":1,"time_window":1,"window_type":"rolling"}`, p + `window_type: must be one of fixed, sliding, got "rolling"`},
		{"sync_interval local ignored", `{"count":1,"time_window":10,"sync_interval":0.01}`, ""},
		{"sync_interval batched", `{"count":1,"time_window":10,"sync_interval":0.5,"policy":"redis","redis_host":"rr"}`, ""},
		{"sync_interval too small", `{"count":1,"time_window":10,"sync_interval":0.05,"policy":"redis","redis_host":"rr"}`, p + "sync_interval: must be -1 (off) or at least 0.1 (seconds), got 0.05"},
		{"sync_interval negative", `{"count":1,"time_window":10,"sync_interval":-2,"policy":"redis-cluster","redis_cluster_nodes":["127.0.0.1:7000"],"redis_cluster_name":"c"}`, p + "sync_interval: must be -1 (off) or at least 0.1 (seconds), got -2"},
		{"sync_interval window", `{"count":1,"time_window":10,"sync_interval":10,"policy":"redis","redis_host":"rr"}`, p + "sync_interval: must be smaller than time_window (10), got 10"},
		{"sync_interval type", `{"count":1,"time_window":10,"sync_interval":"1"}`, p + "sync_interval: must be a number, got string"},
		{"redis without host", `{"count":1,"time_window":1,"policy":"redis"}`, p + "redis_host: is required when policy is redis"},
		{"redis short host", `{"count":1,"time_window":1,"policy":"redis","redis_host":"r"}`, p + `redis_host: must be at least 2 characters, got "r"`},
		{"redis port", `{"count":1,"time_window":1,"policy":"redis","redis_host":"rr","redis_port":0}`, p + "redis_port: must be between 1 and 65535, got 0"},
		{"redis db", `{"count":1,"time_window":1,"policy":"redis","redis_host":"rr","redis_database":-1}`, p + "redis_database: must be at least 0, got -1"},
		{"redis user", `{"count":1,"time_window":1,"policy":"redis","redis_host":"rr","redis_username":""}`, p + "redis_username: must not be empty"},
		{"redis timeout", `{"count":1,"time_window":1,"policy":"redis","redis_host":"rr","redis_timeout":0}`, p + "redis_timeout: must be at least 1 (milliseconds), got 0"},
		{"redis keepalive", `{"count":1,"time_window":1,"policy":"redis","redis_host":"rr","redis_keepalive_timeout":999}`, p + "redis_keepalive_timeout: must be at least 1000 (milliseconds), got 999"},
		{"redis pool", `{"count":1,"time_window":1,"policy":"redis","redis_host":"rr","redis_keepalive_pool":0}`, p + "redis_keepalive_pool: must be at least 1, got 0"},
		{"redis timeout type", `{"count":1,"time_window":1,"policy":"redis","redis_host":"rr","redis_timeout":"1s"}`, p + "redis_timeout: must be a number, got string"},
		{"cluster without nodes", `{"count":1,"time_window":1,"policy":"redis-cluster","redis_cluster_name":"c"}`, p + "redis_cluster_nodes: is required when policy is redis-cluster (at least one host:port)"},
		{"cluster bad node", `{"count":1,"time_window":1,"policy":"redis-cluster","redis_cluster_nodes":["127.0.0.1:7000","x"],"redis_cluster_name":"c"}`, p + `redis_cluster_nodes[1]: must be 2 to 100 characters, got "x"`},
		{"cluster without name", `{"count":1,"time_window":1,"policy":"redis-cluster","redis_cluster_nodes":["127.0.0.1:7000"]}`, p + "redis_cluster_name: is required when policy is redis-cluster"},
		{"unknown field", `{"count":1,"time_window":1,"rate":5}`, p + "rate: unknown field"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			_, err := plugintest.Build(Name, tt.cfg)
			if got := errString(err); got != tt.err {
				t.Errorf("error = %q, want %q", got, tt.err)
			}
		})
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func header(hs []plugin.Header, name string) string {
	for _, h := range hs {
		if strings.EqualFold(h.Name, name) {
			return h.Value
		}
	}
	return ""
}

// TestAccessLocal walks a key through its quota: headers count down, then
// the configured rejection with Remaining 0.
func TestAccessLocal(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc, cfg    string
		rejectStatus int
		rejectBody   string
		rejectType   string
	}{
		{"default rejection", `{"count":2,"time_window":60}`, 503,
			"<html>\r\n<head><title>503 Service Temporarily Unavailable</title></head>", "text/html"},
		{"rejected_code and msg", `{"count":2,"time_window":60,"rejected_code":429,"rejected_msg":"too \"many\""}`, 429,
			`{"error_msg":"too \"many\""}` + "\n", "application/json"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			inst := plugintest.New(t, Name, tt.cfg)
			for i, want := range []string{"1", "0"} {
				res := plugintest.Run(inst, plugintest.NewRequest("GET", "/"), &plugintest.Response{Code: 200})
				if res.Exit != nil {
					t.Fatalf("request %d rejected: %d", i+1, res.Exit.Status)
				}
				if got := res.Response.Header("X-RateLimit-Limit"); got != "2" {
					t.Errorf("request %d: X-RateLimit-Limit = %q, want 2", i+1, got)
				}
				if got := res.Response.Header("X-RateLimit-Remaining"); got != want {
					t.Errorf("request %d: X-RateLimit-Remaining = %q, want %s", i+1, got, want)
				}
				if got, err := strconv.ParseFloat(res.Response.Header("X-RateLimit-Reset"), 64); err != nil || got > 60 || got < 59 {
					t.Errorf("request %d: X-RateLimit-Reset = %v (%v), want within (59, 60]", i+1, got, err)
				}
			}
			res := plugintest.Run(inst, plugintest.NewRequest("GET", "/"), &plugintest.Response{Code: 200})
			if res.Exit == nil {
				t.Fatal("third request passed")
			}
			if res.Exit.Status != tt.rejectStatus || !strings.HasPrefix(string(res.Exit.Body), tt.rejectBody) {
				t.Errorf("rejection = %d %q, want %d %q", res.Exit.Status, res.Exit.Body, tt.rejectStatus, tt.rejectBody)
			}
			if got := header(res.Exit.Headers, "Content-Type"); got != tt.rejectType {
				t.Errorf("Content-Type = %q, want %q", got, tt.rejectType)
			}
			if got := res.Response.Header("X-RateLimit-Remaining"); got != "0" {
				t.Errorf("rejection X-RateLimit-Remaining = %q, want 0", got)
			}
			if got := res.Response.Header("X-RateLimit-Limit"); got != "2" {
				t.Errorf("rejection X-RateLimit-Limit = %q, want 2", got)
			}
		})
	}
}

func TestNoQuotaHeaders(t *testing.T) {
	t.Parallel()
	inst := plugintest.New(t, Name, `{"count":1,"time_window":60,"show_limit_quota_header":false}`)
	for i := range 2 {
		res := plugintest.Run(inst, plugintest.NewRequest("GET", "/"), &plugintest.Response{Code: 200})
		if (res.Exit != nil) != (i == 1) {
			t.Fatalf("request %d: exit = %v", i+1, res.Exit)
		}
		for _, h := range []string{"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"} {
			if v := res.Response.Header(h); v != "" {
				t.Errorf("request %d: %s = %q, want none", i+1, h, v)
			}
		}
	}
}

// TestKeys checks what requests are counted by, and the fallback to the
// client address when the key resolves to nothing.
func TestKeys(t *testing.T) {
	t.Parallel()
	type req struct {
		ip, user, team string
		pass           bool
	}
	tests := []struct {
		desc, cfg string
		reqs      []req
	}{
		{"remote_addr", `{"count":1,"time_window":60}`, []req{
			{ip: "10.0.0.1", pass: true}, {ip: "10.0.0.2", pass: true}, {ip: "10.0.0.1"}}},
		{"var header", `{"count":1,"time_window":60,"key":"http_x_user"}`, []req{
			{ip: "10.0.0.1", user: "a", pass: true}, {ip: "10.0.0.1", user: "b", pass: true}, {ip: "10.0.0.2", user: "a"}}},
		{"var missing falls back to remote_addr", `{"count":1,"time_window":60,"key":"http_x_user"}`, []req{
			{ip: "10.0.0.1", pass: true}, {ip: "10.0.0.2", pass: true}, {ip: "10.0.0.1"}}},
		{"var_combination", `{"count":1,"time_window":60,"key_type":"var_combination","key":"$http_x_user:$http_x_team"}`, []req{
			{ip: "10.0.0.1", user: "a", team: "t", pass: true}, {ip: "10.0.0.1", user: "a", team: "u", pass: true},
			{ip: "10.0.0.2", user: "a", team: "t"}, {ip: "10.0.0.2", user: "a", pass: true}}},
		{"var_combination unresolved falls back", `{"count":1,"time_window":60,"key_type":"var_combination","key":"$http_x_user $http_x_team"}`, []req{
			{ip: "10.0.0.1", pass: true}, {ip: "10.0.0.2", pass: true}, {ip: "10.0.0.1"}}},
		{"constant", `{"count":2,"time_window":60,"key_type":"constant","key":"all"}`, []req{
			{ip: "10.0.0.1", pass: true}, {ip: "10.0.0.2", user: "x", pass: true}, {ip: "10.0.0.3"}}},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			inst := plugintest.New(t, Name, tt.cfg)
			for i, r := range tt.reqs {
				q := plugintest.NewRequest("GET", "/").WithIP(r.ip)
				if r.user != "" {
					q.WithHeader("X-User", r.user)
				}
				if r.team != "" {
					q.WithHeader("X-Team", r.team)
				}
				res := plugintest.Run(inst, q, &plugintest.Response{Code: 200})
				if pass := res.Exit == nil; pass != r.pass {
					t.Errorf("request %d (%+v): passed = %v, want %v", i+1, r, pass, r.pass)
				}
			}
		})
	}
}

// TestKeyIsCopied: engines hand out variables as views of the connection's
// buffer, which the next request overwrites; the table must keep its own
// copy of a key.
func TestKeyIsCopied(t *testing.T) {
	t.Parallel()
	inst := plugintest.New(t, Name, `{"count":3,"time_window":60,"key":"http_x_k"}`)
	buf := []byte("aaaa")
	view := unsafe.String(&buf[0], len(buf))
	send := func(k string) string {
		req := plugintest.NewRequest("GET", "/")
		req.Vars = map[string]string{"http_x_k": k}
		res := plugintest.Run(inst, req, &plugintest.Response{Code: 200})
		return res.Response.Header("X-RateLimit-Remaining")
	}
	if got := send(view); got != "2" {
		t.Fatalf("aaaa: remaining %q, want 2", got)
	}
	copy(buf, "bbbb") // the connection reads its next request
	if got := send(view); got != "2" {
		t.Errorf("bbbb (first request): remaining %q, want 2", got)
	}
	if got := send("aaaa"); got != "1" {
		t.Errorf("aaaa (second request): remaining %q, want 1", got)
	}
}

// fakeClock is a table clock the test moves by hand.
type fakeClock struct{ ns atomic.Int64 }

func (c *fakeClock) now() int64              { return c.ns.Load() }
func (c *fakeClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

// TestWindowMath checks APISIX's fixed window: it starts with a key's first
// request, Reset counts down to its end, and the next request after it
// starts a full new window.
func TestWindowMath(t *testing.T) {
	t.Parallel()
	clk := &fakeClock{}
	clk.ns.Store(int64(5 * time.Hour)) // any origin
	tb := newTable(3, 10*time.Second, 100)
	tb.now = clk.now
	steps := []struct {
		advance   time.Duration
		admitted  bool
		remaining int64
		reset     time.Duration
	}{
		{0, true, 2, 10 * time.Second},
		{4 * time.Second, true, 1, 6 * time.Second},
		{5 * time.Second, true, 0, 1 * time.Second},
		{500 * time.Millisecond, false, 0, 500 * time.Millisecond},
		{499 * time.Millisecond, false, 0, time.Millisecond},
		{time.Millisecond, true, 2, 10 * time.Second}, // exactly at the end: a new window
		{3 * time.Second, true, 1, 7 * time.Second},
		{time.Hour, true, 2, 10 * time.Second}, // long idle: fresh window
	}
	for i, s := range steps {
		clk.advance(s.advance)
		v := tb.count("k", 1)
		if v.admitted != s.admitted || v.remaining != s.remaining || v.reset != s.reset {
			t.Errorf("step %d: %+v, want admitted=%v remaining=%d reset=%v", i, v, s.admitted, s.remaining, s.reset)
		}
	}
	// Another key has its own window.
	if v := tb.count("other", 1); !v.admitted || v.remaining != 2 || v.reset != 10*time.Second {
		t.Errorf("other key: %+v", v)
	}
}

// TestRequestOlderThanTable: the request's start time (the engine's) can
// precede the table, which is made on a route's first request.
func TestRequestOlderThanTable(t *testing.T) {
	t.Parallel()
	start := time.Now()
	tb := newTable(2, time.Minute, 10)
	for i, want := range []int64{1, 0} {
		v, _ := tb.take("k", 1, start)
		if !v.admitted || v.remaining != want || v.reset != time.Minute {
			t.Errorf("request %d: %+v, want remaining %d and reset 1m", i+1, v, want)
		}
	}
}

func TestFormatReset(t *testing.T) {
	t.Parallel()
	for d, want := range map[time.Duration]string{
		60 * time.Second:         "60",
		59998 * time.Millisecond: "59.99",
		1500 * time.Millisecond:  "1.5",
		time.Millisecond:         "0",
		-time.Second:             "0",
		86400 * time.Second:      "86400",
	} {
		if got := formatReset(d); got != want {
			t.Errorf("formatReset(%v) = %q, want %q", d, got, want)
		}
	}
}

// TestConcurrencyExact: 200 goroutines released at once against count 100
// admit exactly 100, over many rounds (run with -race).
func TestConcurrencyExact(t *testing.T) {
	t.Parallel()
	for round := range 50 {
		tb := newTable(100, time.Hour, defaultMaxKeys)
		var admitted atomic.Int64
		var start, done sync.WaitGroup
		start.Add(1)
		for range 200 {
			done.Add(1)
			go func() {
				defer done.Done()
				start.Wait()
				if tb.count("k", 1).admitted {
					admitted.Add(1)
				}
			}()
		}
		start.Done()
		done.Wait()
		if n := admitted.Load(); n != 100 {
			t.Fatalf("round %d: admitted %d of 200, want exactly 100", round, n)
		}
	}
}

// TestConcurrencyExactUnderSweeps keeps the table full so sweeps and
// evictions run while one hot key is counted: the hot key is never
// evicted mid-window here because expired junk keys are always there to go
// first, and its count stays exact.
func TestConcurrencyExactUnderSweeps(t *testing.T) {
	t.Parallel()
	clk := &fakeClock{}
	tb := newTable(100, time.Minute, 64)
	tb.now = clk.now
	for i := range 64 {
		tb.count(fmt.Sprint("junk-", i), 1)
	}
	clk.advance(2 * time.Minute) // the junk windows are over
	var admitted atomic.Int64
	var wg sync.WaitGroup
	for g := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if tb.count("hot", 1).admitted {
				admitted.Add(1)
			}
			tb.count(fmt.Sprint("new-", g%8), 1) // a few new keys: forces sweeps of the expired junk
		}()
	}
	wg.Wait()
	if n := admitted.Load(); n != 100 {
		t.Fatalf("hot key admitted %d of 200, want exactly 100", n)
	}
}

// TestMemoryBound floods a table with distinct keys: it never tracks many
// more than maxKeys, and expired keys go before live ones.
func TestMemoryBound(t *testing.T) {
	t.Parallel()
	clk := &fakeClock{}
	const maxKeys = 1000
	tb := newTable(5, time.Minute, maxKeys)
	tb.now = clk.now
	for i := range 900 {
		tb.count(fmt.Sprint("old-", i), 1)
	}
	clk.advance(time.Minute) // those windows are over
	for i := range 100 {
		tb.count(fmt.Sprint("live-", i), 1)
	}
	// The table is full; 500 newcomers evict expired keys only.
	for i := range 500 {
		tb.count(fmt.Sprint("new-", i), 1)
	}
	if n := tb.len(); n > maxKeys {
		t.Fatalf("table holds %d keys, bound %d", n, maxKeys)
	}
	for i := range 100 {
		if v := tb.count(fmt.Sprint("live-", i), 1); v.remaining != 3 {
			t.Fatalf("live key %d lost its count (remaining %d, want 3): evicted before expired keys", i, v.remaining)
		}
	}
	// A flood of 100k live keys stays bounded.
	for i := range 100_000 {
		tb.count(fmt.Sprint("flood-", i), 1)
		if n := tb.len(); n > maxKeys {
			t.Fatalf("after %d flood keys the table holds %d keys, bound %d", i+1, n, maxKeys)
		}
	}
	var counted int64
	tb.m.Range(func(any, any) bool { counted++; return true })
	if counted != tb.len() {
		t.Errorf("len() = %d but the map holds %d entries", tb.len(), counted)
	}
}

// build builds an instance as a live configuration does, with Lasting.
func build(t testing.TB, l *plugin.Lasting, cfg string) *limitCount {
	t.Helper()
	c := NewConfig()
	if err := json.Unmarshal([]byte(cfg), c); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	p, err := newLimitCount(c, plugin.Deps{Lasting: l})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// run sends one request for route through p and reports whether it passed
// and the Remaining header.
func run(p *limitCount, route, ip string) (bool, string) {
	c := &plugin.Ctx{}
	req := plugintest.NewRequest("GET", "/").WithIP(ip)
	c.Reset(req)
	c.RouteID = route
	e := p.Access(c)
	resp := &plugintest.Response{Code: 200}
	c.Response = resp
	p.HeaderFilter(c)
	return e == nil, resp.Header("X-RateLimit-Remaining")
}

// TestStateSurvivesReload: a reload with the same configuration keeps the
// counts (Lasting), a changed configuration starts afresh, and routes only
// share counts through a group.
func TestStateSurvivesReload(t *testing.T) {
	t.Parallel()
	l := plugin.NewLasting(nil)
	cfg := `{"count":3,"time_window":60}`
	p1 := build(t, l, cfg)
	if _, rem := run(p1, "r1", "10.0.0.1"); rem != "2" {
		t.Fatalf("first request: remaining %q, want 2", rem)
	}
	// Reload: same config, new instance.
	l.BeginCompile()
	p2 := build(t, l, cfg)
	l.Sweep()
	if _, rem := run(p2, "r1", "10.0.0.1"); rem != "1" {
		t.Errorf("after a reload with the same config: remaining %q, want 1", rem)
	}
	// Another route with the same config has its own counts.
	if _, rem := run(p2, "r2", "10.0.0.1"); rem != "2" {
		t.Errorf("other route: remaining %q, want 2", rem)
	}
	// A changed configuration starts afresh.
	l.BeginCompile()
	p3 := build(t, l, `{"count":3,"time_window":61}`)
	l.Sweep()
	if _, rem := run(p3, "r1", "10.0.0.1"); rem != "2" {
		t.Errorf("after a config change: remaining %q, want 2", rem)
	}
	// Grouped routes share.
	g1 := build(t, l, `{"count":3,"time_window":60,"group":"g"}`)
	g2 := build(t, l, `{"count":3,"time_window":60,"group":"g"}`)
	run(g1, "r1", "10.0.0.9")
	if _, rem := run(g2, "r2", "10.0.0.9"); rem != "1" {
		t.Errorf("group: second route sees remaining %q, want 1", rem)
	}
}

func BenchmarkLocalTake(b *testing.B) {
	tb := newTable(1<<62, time.Hour, defaultMaxKeys)
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = fmt.Sprint("10.0.", i/256, ".", i%256)
		tb.count(keys[i], 1)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		tb.count(keys[i&1023], 1)
		i++
	}
}

func BenchmarkLocalTakeParallel(b *testing.B) {
	tb := newTable(1<<62, time.Hour, defaultMaxKeys)
	tb.count("hot", 1)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			tb.count("hot", 1)
		}
	})
}

// BenchmarkAccess is the whole plugin on a request: key from remote_addr,
// count, and the three headers.
func BenchmarkAccess(b *testing.B) {
	for _, headers := range []bool{false, true} {
		b.Run(fmt.Sprint("headers=", headers), func(b *testing.B) {
			inst := plugintest.New(b, Name, fmt.Sprintf(`{"count":1000000000000,"time_window":3600,"show_limit_quota_header":%t}`, headers)).(*limitCount)
			req := plugintest.NewRequest("GET", "/")
			// As the engines do: remote_addr is a string kept per connection.
			req.Vars = map[string]string{"remote_addr": "10.1.2.3"}
			resp := &plugintest.Response{Code: 200}
			c := &plugin.Ctx{}
			b.ReportAllocs()
			for b.Loop() {
				c.Reset(req)
				c.RouteID = "1"
				c.Served.Start = time.Now() // the engine's, read once per request anyway
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
