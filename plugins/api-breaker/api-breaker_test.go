package apibreaker

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicegw/sluice/internal/pipeline"
	"github.com/sluicegw/sluice/plugin"
	"github.com/sluicegw/sluice/plugin/plugintest"
)

func TestRegistered(t *testing.T) {
	t.Parallel()
	d, ok := plugin.Lookup(Name)
	if !ok {
		t.Fatal("api-breaker is not registered")
	}
	if d.Priority != 1005 {
		t.Errorf("priority = %d, want APISIX's 1005", d.Priority)
	}
	s := plugin.SchemaOf(d)
	if req, _ := s["required"].([]string); len(req) != 1 || req[0] != "break_response_code" {
		t.Errorf("schema required = %v", s["required"])
	}
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	c := NewConfig()
	if c.MaxBreakerSec != 300 || c.Unhealthy.Failures != 3 || c.Healthy.Successes != 3 ||
		fmt.Sprint(c.Unhealthy.HTTPStatuses) != "[500]" || fmt.Sprint(c.Healthy.HTTPStatuses) != "[200]" {
		t.Errorf("defaults = %+v", *c)
	}
	if err := c.Validate(); err == nil || err.Error() != "break_response_code: is required" {
		t.Errorf("defaults without break_response_code: %v", err)
	}
	// A partial object keeps the defaults of the fields it leaves out.
	cfg, _, err := pipeline.Decode(Name, decodeJSON(t, `{"break_response_code":502,"unhealthy":{"failures":5}}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c := cfg.(*Config); c.Unhealthy.Failures != 5 || fmt.Sprint(c.Unhealthy.HTTPStatuses) != "[500]" {
		t.Errorf("partial unhealthy = %+v", c.Unhealthy)
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	const pre = "plugins.api-breaker: "
	tests := []struct {
		desc, cfg, err string
	}{
		{"minimal", `{"break_response_code":502}`, ""},
		{"all fields", `{"break_response_code":599,"break_response_body":"down","break_response_headers":[{"key":"X-A","value":"$remote_addr"}],
			"max_breaker_sec":3,"unhealthy":{"http_statuses":[500,503],"failures":1},"healthy":{"http_statuses":[200,404],"successes":1}}`, ""},
		{"missing code", `{}`, pre + "break_response_code: is required"},
		{"code low", `{"break_response_code":199}`, pre + "break_response_code: must be between 200 and 599, got 199"},
		{"code high", `{"break_response_code":600}`, pre + "break_response_code: must be between 200 and 599, got 600"},
		{"code type", `{"break_response_code":"502"}`, pre + "break_response_code: must be a number, got string"},
		{"body type", `{"break_response_code":502,"break_response_body":1}`, pre + "break_response_body: must be a string, got number"},
		{"headers type", `{"break_response_code":502,"break_response_headers":{"X":"y"}}`, pre + "break_response_headers: must be an array, got object"},
		{"header no key", `{"break_response_code":502,"break_response_headers":[{"value":"v"}]}`, pre + "break_response_headers[0].key: is required and must not be empty"},
		{"header bad key", `{"break_response_code":502,"break_response_headers":[{"key":"X","value":"v"},{"key":"a b","value":"v"}]}`,
			pre + `break_response_headers[1].key: must be a valid header name, got "a b"`},
		{"header colon", `{"break_response_code":502,"break_response_headers":[{"key":"a:b","value":"v"}]}`,
			pre + `break_response_headers[0].key: header name must be non-empty and without ':', got "a:b"`},
		{"header no value", `{"break_response_code":502,"break_response_headers":[{"key":"X","value":""}]}`, pre + "break_response_headers[0].value: is required and must not be empty"},
		{"header CRLF", `{"break_response_code":502,"break_response_headers":[{"key":"X","value":"a\r\nB: c"}]}`, pre + "break_response_headers[0].value: must not contain CR or LF"},
		{"header unknown", `{"break_response_code":502,"break_response_headers":[{"key":"X","value":"v","name":"n"}]}`, pre + "break_response_headers[0].name: unknown field"},
		{"header item type", `{"break_response_code":502,"break_response_headers":["X: v"]}`, pre + "break_response_headers[0]: must be an object, got string"},
		{"header value type", `{"break_response_code":502,"break_response_headers":[{"key":"X","value":1}]}`, pre + "break_response_headers[0].value: must be a string, got number"},
		{"unhealthy unknown", `{"break_response_code":502,"unhealthy":{"failure":3}}`, pre + "unhealthy.failure: unknown field"},
		{"unhealthy type", `{"break_response_code":502,"unhealthy":[500]}`, pre + "unhealthy: must be an object, got array"},
		{"healthy successes type", `{"break_response_code":502,"healthy":{"successes":"3"}}`, pre + "healthy.successes: must be an integer, got string"},
		{"healthy statuses type", `{"break_response_code":502,"healthy":{"http_statuses":[200.5]}}`, pre + "healthy.http_statuses: must be an integer, got number 200.5"},
		{"unhealthy null keeps defaults", `{"break_response_code":502,"unhealthy":null}`, ""},
		{"max low", `{"break_response_code":502,"max_breaker_sec":2}`, pre + "max_breaker_sec: must be at least 3, got 2"},
		{"unhealthy empty", `{"break_response_code":502,"unhealthy":{"http_statuses":[]}}`, pre + "unhealthy.http_statuses: must have at least 1 item"},
		{"unhealthy range", `{"break_response_code":502,"unhealthy":{"http_statuses":[500,404]}}`, pre + "unhealthy.http_statuses[1]: must be between 500 and 599, got 404"},
		{"unhealthy dup", `{"break_response_code":502,"unhealthy":{"http_statuses":[502,503,502]}}`, pre + "unhealthy.http_statuses[2]: duplicate of unhealthy.http_statuses[0]"},
		{"failures zero", `{"break_response_code":502,"unhealthy":{"failures":0}}`, pre + "unhealthy.failures: must be at least 1, got 0"},
		{"healthy range", `{"break_response_code":502,"healthy":{"http_statuses":[500]}}`, pre + "healthy.http_statuses[0]: must be between 200 and 499, got 500"},
		{"healthy low", `{"break_response_code":502,"healthy":{"http_statuses":[199]}}`, pre + "healthy.http_statuses[0]: must be between 200 and 499, got 199"},
		{"successes zero", `{"break_response_code":502,"healthy":{"successes":0}}`, pre + "healthy.successes: must be at least 1, got 0"},
		{"unknown field", `{"break_response_code":502,"policy":"unhealthy-ratio"}`, pre + "policy: unknown field"},
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

func decodeJSON(t testing.TB, s string) any {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// fakeClock is a table clock that moves only when a test says so.
type fakeClock struct{ ns int64 }

func (f *fakeClock) now() int64              { return f.ns }
func (f *fakeClock) advance(d time.Duration) { f.ns += int64(d) }

// rig is one api-breaker instance on a table with a fake clock, and an
// upstream that answers whatever status the test sets.
type rig struct {
	p        *apiBreaker
	clock    *fakeClock
	upstream int // status the upstream answers
	calls    int // requests that reached the upstream
}

func newRig(t testing.TB, cfg string) *rig {
	t.Helper()
	clock := &fakeClock{ns: 1}
	return &rig{p: buildOn(t, cfg, newTableWithClock(quiet, clock.now)), clock: clock, upstream: 200}
}

// quiet drops the breaker's logs in tests.
var quiet = slog.New(slog.DiscardHandler)

func buildOn(t testing.TB, cfg string, tbl *table) *apiBreaker {
	t.Helper()
	c, _, err := pipeline.Decode(Name, decodeJSON(t, cfg), nil)
	if err != nil {
		t.Fatal(err)
	}
	return build(c.(*Config), tbl)
}

// send runs one request for host and uri through the access and log
// phases, as the gateway does, and returns the breaker's answer (nil when
// the upstream answered).
func (r *rig) send(host, uri string) *plugin.Exit {
	req := plugintest.NewRequest("GET", uri)
	req.H = host
	c := &plugin.Ctx{}
	c.Reset(req)
	c.RouteID = "r1"
	if e := r.p.Access(c); e != nil {
		c.Served = plugin.Served{Status: e.Status}
		r.p.Log(c)
		return e
	}
	r.calls++
	c.Served = plugin.Served{Status: r.upstream, UpstreamAddr: "10.0.0.1:80", UpstreamStatus: r.upstream}
	r.p.Log(c)
	return nil
}

// sendN sends n requests to example.com/a with the upstream answering
// status and fails the test if the breaker answered any of them.
func (r *rig) sendN(t *testing.T, n, status int) {
	t.Helper()
	r.upstream = status
	for i := range n {
		if e := r.send("example.com", "/a"); e != nil {
			t.Fatalf("request %d of %d (upstream %d) was broken: %d", i+1, n, status, e.Status)
		}
	}
}

// broken reports whether example.com/a is broken now, without sending a
// request through (the access phase only).
func (r *rig) broken() bool {
	c := &plugin.Ctx{}
	c.Reset(plugintest.NewRequest("GET", "/a"))
	return r.p.Access(c) != nil
}

func TestBreaksAfterFailures(t *testing.T) {
	t.Parallel()
	r := newRig(t, `{"break_response_code":502,"break_response_body":"open\n","break_response_headers":[{"key":"X-Breaker","value":"open"}]}`)
	r.sendN(t, 2, 500)
	if r.broken() {
		t.Fatal("broken after 2 failures (failures: 3)")
	}
	r.sendN(t, 1, 500)
	before := r.calls
	r.upstream = 200
	for range 5 {
		e := r.send("example.com", "/a")
		if e == nil {
			t.Fatal("not broken after 3 failures")
		}
		if e.Status != 502 || string(e.Body) != "open\n" || len(e.Headers) != 1 || e.Headers[0] != (plugin.Header{Name: "X-Breaker", Value: "open"}) {
			t.Fatalf("break answer = %d %v %q", e.Status, e.Headers, e.Body)
		}
	}
	if r.calls != before {
		t.Fatalf("the upstream got %d requests during the break", r.calls-before)
	}
	// Another URI, and the same URI on another host, are not broken.
	if r.send("example.com", "/b") != nil || r.send("other.com", "/a") != nil {
		t.Fatal("the break leaked to another (host, uri)")
	}
	// The break ends after 2 s, to the nanosecond.
	r.clock.advance(2*time.Second - 1)
	if r.send("example.com", "/a") == nil {
		t.Fatal("break ended before 2 s")
	}
	r.clock.advance(1)
	if r.send("example.com", "/a") != nil {
		t.Fatal("still broken after 2 s")
	}
}

func TestBreakDoublesUpToMax(t *testing.T) {
	t.Parallel()
	r := newRig(t, `{"break_response_code":503,"max_breaker_sec":10,"unhealthy":{"http_statuses":[500,502],"failures":2}}`)
	var got []time.Duration
	for range 6 {
		r.sendN(t, 1, 502)
		r.sendN(t, 1, 500) // the second failure trips
		d := time.Duration(0)
		for r.broken() {
			r.clock.advance(100 * time.Millisecond)
			d += 100 * time.Millisecond
		}
		got = append(got, d)
	}
	want := []time.Duration{2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second, 10 * time.Second}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("breaks lasted %v, want %v", got, want)
	}
}

func TestHealthySuccessesReset(t *testing.T) {
	t.Parallel()
	r := newRig(t, `{"break_response_code":502}`)
	r.sendN(t, 3, 500)
	r.clock.advance(2 * time.Second)
	// Two successes, then a failure: the run of successes starts over and
	// the failures are not forgotten (4 of them now).
	r.sendN(t, 2, 200)
	r.sendN(t, 1, 500)
	r.sendN(t, 2, 200)
	r.sendN(t, 1, 500) // 5
	r.sendN(t, 1, 500) // 6: second trip, 4 s
	r.clock.advance(4*time.Second - 1)
	if !r.broken() {
		t.Fatal("second break is not 4 s")
	}
	r.clock.advance(1)
	// Statuses in neither list change nothing.
	r.sendN(t, 5, 404)
	r.sendN(t, 3, 200) // three in a row: reset
	if !r.p.tbl.empty() {
		t.Fatal("a recovered (host, uri) stays in the table")
	}
	// Everything was forgotten: two failures do not break, the third does,
	// and for 2 s again.
	r.sendN(t, 2, 500)
	r.sendN(t, 1, 500)
	r.clock.advance(2*time.Second - 1)
	if !r.broken() {
		t.Fatal("not broken after 3 failures following a reset")
	}
	r.clock.advance(1)
	if r.broken() {
		t.Fatal("the first break after a reset is not 2 s")
	}
}

func TestHealthyWithoutFailuresIsNoop(t *testing.T) {
	t.Parallel()
	r := newRig(t, `{"break_response_code":502,"healthy":{"successes":1}}`)
	r.sendN(t, 10, 200)
	if !r.p.tbl.empty() {
		t.Fatal("healthy answers created state")
	}
	r.sendN(t, 2, 500)
	r.sendN(t, 1, 200) // successes: 1 forgets both failures
	r.sendN(t, 2, 500)
	if r.broken() {
		t.Fatal("failures were not forgotten")
	}
}

func TestOnlyUpstreamStatusesCount(t *testing.T) {
	t.Parallel()
	r := newRig(t, `{"break_response_code":502,"unhealthy":{"http_statuses":[502],"failures":1}}`)
	c := &plugin.Ctx{}
	c.Reset(plugintest.NewRequest("GET", "/a"))
	// Another plugin answered 502 itself: no upstream was tried.
	c.Served = plugin.Served{Status: 502}
	r.p.Log(c)
	if !r.p.tbl.empty() {
		t.Fatal("a gateway answer without an upstream counted")
	}
	// The upstream refused the connection: nginx records $upstream_status 502.
	c.Served = plugin.Served{Status: 502, UpstreamAddr: "10.0.0.1:80"}
	r.p.Log(c)
	if !r.broken() {
		t.Fatal("a connection failure (502) did not count")
	}
}

func TestBreakAnswers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc, cfg  string
		status     int
		headers    []plugin.Header
		body       string
		sharedExit bool
	}{
		{"bare status gets nginx's page", `{"break_response_code":503}`, 503,
			[]plugin.Header{{Name: "Content-Type", Value: "text/html"}}, "<title>503 Service Temporarily Unavailable</title>", true},
		{"bare 2xx has no page", `{"break_response_code":200}`, 200, nil, "", true},
		{"headers need a body (APISIX)", `{"break_response_code":502,"break_response_headers":[{"key":"X-A","value":"a"}]}`, 502,
			[]plugin.Header{{Name: "Content-Type", Value: "text/html"}}, "<title>502 Bad Gateway</title>", true},
		{"empty body", `{"break_response_code":429,"break_response_body":""}`, 429, nil, "", true},
		{"variables", `{"break_response_code":502,"break_response_body":"{\"down\":true}",
			"break_response_headers":[{"key":"X-Client","value":"$remote_addr via ${route_id}"},{"key":"Content-Type","value":"application/json"}]}`, 502,
			[]plugin.Header{{Name: "X-Client", Value: "127.0.0.1 via r1"}, {Name: "Content-Type", Value: "application/json"}}, `{"down":true}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			cfg := strings.Replace(tt.cfg, "{", `{"unhealthy":{"failures":1},`, 1)
			r := newRig(t, cfg)
			r.sendN(t, 1, 500)
			e := r.send("example.com", "/a")
			if e == nil {
				t.Fatal("not broken")
			}
			if e.Status != tt.status || fmt.Sprint(e.Headers) != fmt.Sprint(tt.headers) || !strings.Contains(string(e.Body), tt.body) {
				t.Fatalf("answer = %d %v %q", e.Status, e.Headers, e.Body)
			}
			if (r.send("example.com", "/a") == e) != tt.sharedExit {
				t.Fatalf("exit shared between requests = %v, want %v", !tt.sharedExit, tt.sharedExit)
			}
		})
	}
}

// TestStateOutlivesConfigurations: instances are rebuilt on every
// configuration change; they find the same state in Lasting, whatever
// their config, as long as some configuration uses the plugin.
func TestStateOutlivesConfigurations(t *testing.T) {
	t.Parallel()
	lasting := plugin.NewLasting(quiet)
	newInst := func(cfg string) *apiBreaker {
		c, _, err := pipeline.Decode(Name, decodeJSON(t, cfg), nil)
		if err != nil {
			t.Fatal(err)
		}
		inst, err := newAPIBreaker(c, plugin.Deps{Lasting: lasting})
		if err != nil {
			t.Fatal(err)
		}
		return inst.(*apiBreaker)
	}
	lasting.BeginCompile()
	r := &rig{p: newInst(`{"break_response_code":502}`)}
	lasting.Sweep()
	r.sendN(t, 3, 500)
	if !r.broken() {
		t.Fatal("not broken")
	}
	// A reload: same plugin on the route, another break code.
	lasting.BeginCompile()
	r2 := &rig{p: newInst(`{"break_response_code":503}`)}
	lasting.Sweep()
	if e := r2.send("example.com", "/a"); e == nil || e.Status != 503 {
		t.Fatalf("the new configuration lost the open breaker: %v", e)
	}
	// A configuration without api-breaker drops the state.
	lasting.BeginCompile()
	lasting.Sweep()
	lasting.BeginCompile()
	r3 := &rig{p: newInst(`{"break_response_code":502}`)}
	lasting.Sweep()
	if r3.broken() {
		t.Fatal("state survived a configuration without api-breaker")
	}
	// Validation-only compiles (nil Lasting) still build a working instance.
	c, _, _ := pipeline.Decode(Name, decodeJSON(t, `{"break_response_code":502}`), nil)
	inst, err := newAPIBreaker(c, plugin.Deps{})
	if err != nil || inst.(*apiBreaker).tbl == nil {
		t.Fatalf("validation-only build: %v", err)
	}
}

func TestTableBounded(t *testing.T) {
	t.Parallel()
	r := newRig(t, `{"break_response_code":502,"unhealthy":{"failures":1}}`)
	r.p.tbl.max = 2
	r.upstream = 500
	for _, u := range []string{"/1", "/2", "/3"} {
		r.send("example.com", u)
	}
	if n := r.p.tbl.n.Load(); n != 2 || r.p.tbl.untracked.Load() != 1 {
		t.Fatalf("entries = %d, untracked = %d; want 2, 1", n, r.p.tbl.untracked.Load())
	}
	if r.send("example.com", "/3") != nil {
		t.Fatal("an untracked URI was broken")
	}
	// Open breakers are never evicted; stale, closed ones are.
	r.clock.advance(staleAfter + time.Second)
	r.send("example.com", "/4") // /1 and /2 are stale now: evicted
	if n := r.p.tbl.n.Load(); n != 1 {
		t.Fatalf("entries after eviction = %d, want 1", n)
	}
	if r.send("example.com", "/4") == nil {
		t.Fatal("the URI tracked after eviction is not broken")
	}
	// A closed breaker with a recent failure is kept too.
	r.clock.advance(3 * time.Second) // /4's break is over; its failure is 3 s old
	r.send("example.com", "/5")
	untracked := r.p.tbl.untracked.Load()
	r.send("example.com", "/6")
	if n := r.p.tbl.n.Load(); n != 2 || r.p.tbl.untracked.Load() != untracked+1 {
		t.Fatalf("entries = %d, untracked +%d; want 2, +1 (nothing evictable)", n, r.p.tbl.untracked.Load()-untracked)
	}
}

// TestConcurrentCountsExact: the counters are lock-free atomics, and
// concurrent failures are all counted (run with -race).
func TestConcurrentCountsExact(t *testing.T) {
	t.Parallel()
	r := newRig(t, `{"break_response_code":502,"unhealthy":{"failures":1000000}}`)
	const workers, each = 8, 500
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			c := &plugin.Ctx{}
			req := plugintest.NewRequest("GET", "/a")
			for range each {
				c.Reset(req)
				if r.p.Access(c) != nil {
					t.Error("broken")
					return
				}
				c.Served = plugin.Served{Status: 500, UpstreamAddr: "10.0.0.1:80", UpstreamStatus: 500}
				r.p.Log(c)
			}
		})
	}
	wg.Wait()
	k := r.p.tbl.key("example.com", "/a")
	s := r.p.tbl.lookup(k, "example.com", "/a")
	if s == nil || s.unhealthy.Load() != workers*each {
		t.Fatalf("counted %v failures, want %d", s, workers*each)
	}
}
