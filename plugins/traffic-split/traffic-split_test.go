package trafficsplit

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/sluicegw/sluice/internal/pipeline"
	"github.com/sluicegw/sluice/internal/runtime"
	"github.com/sluicegw/sluice/internal/store"
	"github.com/sluicegw/sluice/internal/upstream"
	"github.com/sluicegw/sluice/plugin"
	"github.com/sluicegw/sluice/plugin/plugintest"
	_ "github.com/sluicegw/sluice/plugins/key-auth"
)

// decode runs the gateway's decoder and Validate over a JSON config.
func decode(t *testing.T, cfg string) error {
	t.Helper()
	var raw any
	if err := json.Unmarshal([]byte(cfg), &raw); err != nil {
		t.Fatal(err)
	}
	_, _, err := pipeline.Decode(Name, raw, nil)
	return err
}

func TestConfigValidation(t *testing.T) {
	ok := []string{
		`{}`,
		`{"rules":[]}`,
		`{"rules":[{}]}`,
		`{"rules":[{"match":[],"weighted_upstreams":[{"weight":0}]}]}`,
		`{"rules":[{"match":[{"vars":[["arg_name","==","jack"]]},{}],"weighted_upstreams":[{"upstream_id":1,"weight":3},{"upstream_id":"u-2.a_b"},{"weight":1}]}]}`,
		`{"rules":[{"weighted_upstreams":[{"upstream":{"nodes":{"127.0.0.1:1980":1}},"weight":2}]}]}`,
	}
	for _, cfg := range ok {
		if err := decode(t, cfg); err != nil {
			t.Errorf("%s: %v", cfg, err)
		}
	}
	many := `{"rules":[{"weighted_upstreams":[` + strings.Repeat(`{"weight":1},`, 20) + `{"weight":1}]}]}`
	bad := []struct{ cfg, want string }{
		{`{"rules":[{"weighted_upstreams":[{"weight":-1}]}]}`, "rules[0].weighted_upstreams[0].weight: must be >= 0, got -1"},
		{`{"rules":[{},{"weighted_upstreams":[]}]}`, "rules[1].weighted_upstreams: must have at least 1 item"},
		{many, "rules[0].weighted_upstreams: must have at most 20 items, got 21"},
		{`{"rules":[{"weighted_upstreams":[{"upstream_id":0}]}]}`, "rules[0].weighted_upstreams[0].upstream_id: must be a string or an integer >= 1, got 0"},
		{`{"rules":[{"weighted_upstreams":[{"upstream_id":1.5}]}]}`, "rules[0].weighted_upstreams[0].upstream_id: must be a string or an integer >= 1, got 1.5"},
		{`{"rules":[{"weighted_upstreams":[{"weight":1},{"upstream_id":"a b"}]}]}`, `rules[0].weighted_upstreams[1].upstream_id: must be 1 to 64 characters of [a-zA-Z0-9-_.], got "a b"`},
		{`{"rules":[{"weighted_upstreams":[{"upstream_id":"1","upstream":{"nodes":{}}}]}]}`, "rules[0].weighted_upstreams[0].upstream: must not be set together with upstream_id"},
		{`{"rules":[{"weighted_upstreams":[{"upstream":"u1"}]}]}`, "rules[0].weighted_upstreams[0].upstream: must be an object"},
		{`{"rules":[{"match":[{"vars":[["arg_a","==","1"]]},{"vars":[["arg_b","~~","("]]}]}]}`, "rules[0].match[1].vars: "},
		{`{"rules":[{"match":[{"vars":"arg_a"}]}]}`, "rules[0].match[0].vars: must be an array"},
		{`{"rules":[{"weighted_upstreams":[{"weight":1,"upstream_key":"x"}]}]}`, "upstream_key: unknown field"},
		{`{"rules":[{"matches":[]}]}`, "matches: unknown field"},
		{`{"rules":[{"weighted_upstreams":[{"weight":-1},{"upstream_id":0}]}]}`,
			"rules[0].weighted_upstreams[0].weight: must be >= 0, got -1; rules[0].weighted_upstreams[1].upstream_id: must be"},
	}
	for _, c := range bad {
		err := decode(t, c.cfg)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error containing %q", c.cfg, err, c.want)
		}
	}
}

// refs returns n distinct refs named "u0", "u1", ...
func refs(n int) []plugin.UpstreamRef {
	out := make([]plugin.UpstreamRef, n)
	for i := range out {
		k := fmt.Sprintf("u%d", i)
		out[i] = plugin.NewUpstreamRef(k, k)
	}
	return out
}

// count takes n picks and counts them by key ("" for the route's upstream).
func count(s *split, n int) map[string]int {
	got := make(map[string]int)
	for range n {
		got[s.next().Key()]++
	}
	return got
}

func TestSplitSmoothOrder(t *testing.T) {
	s := newSplit(refs(2), []int{3, 1}, 0)
	var seq []string
	for range 8 {
		seq = append(seq, s.next().Key())
	}
	// nginx's smooth WRR: the light entry sits inside the heavy one's run.
	if got, want := strings.Join(seq, " "), "u0 u0 u1 u0 u0 u0 u1 u0"; got != want {
		t.Fatalf("sequence %q, want %q", got, want)
	}
}

func TestSplitExactOverEveryCycle(t *testing.T) {
	cases := []struct {
		weights []int
		cycle   int // sum of weights / gcd
	}{
		{[]int{3, 1}, 4},
		{[]int{30, 10}, 4},
		{[]int{1, 1, 1}, 3},
		{[]int{5, 0, 2, 3}, 10},
		{[]int{7, 11, 13, 1, 2}, 34},
		{[]int{99, 1}, 100},
	}
	for _, c := range cases {
		for _, start := range []uint64{0, 1, 5, 1 << 40} {
			s := newSplit(refs(len(c.weights)), c.weights, start)
			g := 0
			for _, w := range c.weights {
				g = gcd(g, w)
			}
			const cycles = 7
			got := count(s, cycles*c.cycle)
			for i, w := range c.weights {
				if want := cycles * w / g; got[fmt.Sprintf("u%d", i)] != want {
					t.Errorf("weights %v start %d: u%d got %d of %d, want %d", c.weights, start, i,
						got[fmt.Sprintf("u%d", i)], cycles*c.cycle, want)
				}
			}
		}
	}
}

// TestSplitLockedPath: weights whose cycle is too long to precompute take
// the incremental path, which is just as exact.
func TestSplitLockedPath(t *testing.T) {
	s := newSplit(refs(2), []int{maxPeriod, 1}, 0)
	if s.sched != nil {
		t.Fatal("expected no precomputed schedule")
	}
	got := count(s, maxPeriod+1)
	if got["u0"] != maxPeriod || got["u1"] != 1 {
		t.Fatalf("got %v", got)
	}
}

func TestSplitRouteUpstream(t *testing.T) {
	r := refs(1)
	// The zero ref is an entry like any other: the route's own upstream.
	s := newSplit([]plugin.UpstreamRef{r[0], {}}, []int{1, 3}, 0)
	if got := count(s, 400); got["u0"] != 100 || got[""] != 300 {
		t.Fatalf("got %v", got)
	}
	// Every weight 0: the route's upstream, as in APISIX.
	s = newSplit(refs(2), []int{0, 0}, 0)
	if got := s.next(); !got.IsZero() {
		t.Fatalf("got %q", got.Key())
	}
}

// TestSplitConcurrent: the atomic position hands out every slot once, so
// concurrent picks over whole cycles are exact too.
func TestSplitConcurrent(t *testing.T) {
	s := newSplit(refs(3), []int{5, 3, 2}, 0)
	const workers, each = 8, 1000 // 8000 picks: 800 cycles of 10
	var mu sync.Mutex
	total := make(map[string]int)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			got := count(s, each)
			mu.Lock()
			for k, v := range got {
				total[k] += v
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	if total["u0"] != 4000 || total["u1"] != 2400 || total["u2"] != 1600 {
		t.Fatalf("got %v", total)
	}
}

// source is a plugin.UpstreamSource over fixed refs, for tests of the
// plugin's own logic; the gateway's is tested below through a real compile.
type source map[string]plugin.UpstreamRef

func (s source) Upstream(id string) (plugin.UpstreamRef, error) {
	if r, ok := s[id]; ok {
		return r, nil
	}
	return plugin.UpstreamRef{}, fmt.Errorf("upstream %q not found", id)
}

func (s source) InlineUpstream(raw json.RawMessage) (plugin.UpstreamRef, error) {
	return plugin.NewUpstreamRef("inline", string(raw)), nil
}

func build(t testing.TB, cfg string) any {
	t.Helper()
	var raw any
	if err := json.Unmarshal([]byte(cfg), &raw); err != nil {
		t.Fatal(err)
	}
	src := source{"blue": plugin.NewUpstreamRef("blue", "blue"), "green": plugin.NewUpstreamRef("green", "green")}
	ps, err := pipeline.Build(map[string]any{Name: raw}, nil, func(string) plugin.Deps { return plugin.Deps{Upstreams: src} })
	if err != nil {
		t.Fatal(err)
	}
	return ps[0].Instance
}

func chosen(inst any, req *plugintest.Request) string {
	res := plugintest.Run(inst, req, nil)
	if res.Exit != nil {
		return fmt.Sprintf("exit %d", res.Exit.Status)
	}
	if res.Ctx.Upstream().IsZero() {
		return "route"
	}
	return res.Ctx.Upstream().Key()
}

func TestMatch(t *testing.T) {
	inst := build(t, `{"rules":[
		{"match":[{"vars":[["http_release","==","canary"],["arg_v","==","2"]]},{"vars":[["cookie_beta","==","1"]]}],
		 "weighted_upstreams":[{"upstream_id":"green"}]},
		{"match":[{"vars":[["arg_name","~~","^inline"]]}],"weighted_upstreams":[{"upstream":{"nodes":{"127.0.0.1:1":1}}}]},
		{"match":[{"vars":[["arg_name","==","own"]]}],"weighted_upstreams":[{"weight":1}]},
		{"match":[{"vars":[["arg_name","==","blue"]]}]}]}`)
	req := func(target string, hdr ...string) *plugintest.Request {
		r := plugintest.NewRequest("GET", target)
		for i := 0; i+1 < len(hdr); i += 2 {
			r.WithHeader(hdr[i], hdr[i+1])
		}
		return r
	}
	withCookie := req("/")
	withCookie.Vars = map[string]string{"cookie_beta": "1"}
	cases := []struct {
		name string
		req  *plugintest.Request
		want string
	}{
		{"both vars of the first entry", req("/?v=2", "release", "canary"), "green"},
		{"one var of the entry is not enough (AND)", req("/?v=1", "release", "canary"), "route"},
		{"the second entry (OR)", withCookie, "green"},
		{"second rule, inline upstream", req("/?name=inline-x"), "inline"},
		{"route's upstream chosen by weight", req("/?name=own"), "route"},
		{"rule without weighted_upstreams", req("/?name=blue"), "route"},
		{"no rule matches", req("/?name=nobody"), "route"},
	}
	for _, c := range cases {
		if got := chosen(inst, c.req); got != c.want {
			t.Errorf("%s: got %s, want %s", c.name, got, c.want)
		}
	}

	// A rule without match (or with an empty one) always passes, so later
	// rules are never reached.
	for _, m := range []string{``, `"match":[],`, `"match":[{}],`} {
		inst := build(t, `{"rules":[{`+m+`"weighted_upstreams":[{"upstream_id":"blue"}]},{"weighted_upstreams":[{"upstream_id":"green"}]}]}`)
		if got := chosen(inst, req("/")); got != "blue" {
			t.Errorf("%q: got %s, want blue", m, got)
		}
	}
}

// TestMatchWeighted: a matching rule splits by weight, exactly per cycle.
func TestMatchWeighted(t *testing.T) {
	inst := build(t, `{"rules":[{"match":[{"vars":[["http_release","==","canary"]]}],
		"weighted_upstreams":[{"upstream_id":"green","weight":1},{"upstream_id":"blue","weight":2},{"weight":1}]}]}`)
	got := make(map[string]int)
	for range 400 {
		got[chosen(inst, plugintest.NewRequest("GET", "/").WithHeader("Release", "canary"))]++
	}
	if got["green"] != 100 || got["blue"] != 200 || got["route"] != 100 {
		t.Fatalf("got %v", got)
	}
}

func TestBuildWithoutSource(t *testing.T) {
	_, err := plugintest.Build(Name, `{"rules":[{"weighted_upstreams":[{"upstream_id":"1"}]}]}`)
	if err == nil || !strings.Contains(err.Error(), "rules[0].weighted_upstreams[0].upstream_id: no upstream source") {
		t.Fatalf("got %v", err)
	}
	// Without upstreams to resolve, no source is needed.
	if _, err := plugintest.Build(Name, `{"rules":[{"weighted_upstreams":[{"weight":1}]}]}`); err != nil {
		t.Fatal(err)
	}
}

// compile runs the gateway's real compile over stored items (kind/id: JSON).
func compile(t *testing.T, items map[string]string) (*runtime.Snapshot, error) {
	t.Helper()
	var l store.Listing
	for k, v := range items {
		kind, id, _ := strings.Cut(k, "/")
		l.Items = append(l.Items, store.Item{Kind: store.Kind(kind), ID: id, Value: json.RawMessage(v)})
	}
	res, err := runtime.ResourcesFromListing(l)
	if err != nil {
		return nil, err
	}
	return runtime.Compile(res, 1, runtime.Deps{})
}

func route(t *testing.T, snap *runtime.Snapshot, id string) *runtime.Route {
	t.Helper()
	for _, r := range snap.Routes {
		if r.ID == id {
			return r
		}
	}
	t.Fatalf("route %s not compiled", id)
	return nil
}

// pick runs a compiled route's chain over req and returns the upstream the
// request would go to.
func pick(r *runtime.Route, req *plugintest.Request) *upstream.Upstream {
	var c plugin.Ctx
	c.Reset(req)
	r.Chain.Access(&c)
	return r.UpstreamFor(&c)
}

const inlineUp = `{"type":"roundrobin","nodes":[{"host":"127.0.0.1","port":1981,"weight":1}],"timeout":{"connect":1,"send":2,"read":3}}`

// TestCompiledUpstreams goes through the gateway's compile: upstream_id
// resolves to the compiled upstream object, an inline upstream is compiled
// once per content (two routes share it), and no match keeps the route's.
func TestCompiledUpstreams(t *testing.T) {
	ts := `{"rules":[{"match":[{"vars":[["http_release","==","canary"]]}],"weighted_upstreams":[{"upstream_id":2}]},
		{"match":[{"vars":[["arg_inline","==","1"]]}],"weighted_upstreams":[{"upstream":` + inlineUp + `}]}]}`
	snap, err := compile(t, map[string]string{
		"upstreams/1": `{"nodes":{"127.0.0.1:1980":1}}`,
		"upstreams/2": `{"nodes":{"127.0.0.1:1990":1}}`,
		"routes/r1":   `{"uri":"/a","upstream_id":"1","timeout":{"connect":5,"send":5,"read":9},"plugins":{"traffic-split":` + ts + `}}`,
		"routes/r2":   `{"uri":"/b","upstream_id":"1","plugins":{"traffic-split":` + ts + `}}`,
	})
	if err != nil {
		t.Fatal(err)
	}
	r1, r2 := route(t, snap, "r1"), route(t, snap, "r2")
	if u := pick(r1, plugintest.NewRequest("GET", "/a")); u != r1.Upstream || u.Key != "upstreams/1" {
		t.Fatalf("no match: %v", u.Key)
	}
	if u := pick(r1, plugintest.NewRequest("GET", "/a").WithHeader("Release", "canary")); u.Key != "upstreams/2" {
		t.Fatalf("canary: %v", u.Key)
	}
	in1 := pick(r1, plugintest.NewRequest("GET", "/a?inline=1"))
	in2 := pick(r2, plugintest.NewRequest("GET", "/b?inline=1"))
	if in1 != in2 || !strings.HasPrefix(in1.Key, "plugins/traffic-split/") || !strings.HasSuffix(in1.Key, "/upstream") {
		t.Fatalf("inline upstreams: %q and %q, want one shared plugins/traffic-split/<digest>/upstream", in1.Key, in2.Key)
	}
	if len(in1.Targets) != 1 || in1.Targets[0].Node.Addr != "127.0.0.1:1981" {
		t.Fatalf("inline targets: %+v", in1.Targets)
	}
	// Route r1's own timeout wins over the inline upstream's; r2 has none.
	if tm := r1.TimeoutsFor(in1); tm.Connect.Seconds() != 5 || tm.Send.Seconds() != 5 || tm.Read.Seconds() != 9 {
		t.Fatalf("r1 timeouts %+v", tm)
	}
	if tm := r2.TimeoutsFor(in2); tm.Connect.Seconds() != 1 || tm.Send.Seconds() != 2 || tm.Read.Seconds() != 3 {
		t.Fatalf("r2 timeouts %+v", tm)
	}

	// The key is the content's: the same in another compile, another when
	// a node changes, the same when only the name changes.
	again := func(up string) string {
		snap, err := compile(t, map[string]string{
			"routes/r9": `{"uri":"/z","upstream":{"nodes":{"127.0.0.1:1":1}},"plugins":{"traffic-split":{"rules":[{"weighted_upstreams":[{"upstream":` + up + `}]}]}}}`,
		})
		if err != nil {
			t.Fatal(err)
		}
		return pick(route(t, snap, "r9"), plugintest.NewRequest("GET", "/z")).Key
	}
	if k := again(inlineUp); k != in1.Key {
		t.Fatalf("recompiled key %q, want %q", k, in1.Key)
	}
	if k := again(strings.Replace(inlineUp, `"type"`, `"name":"canary","type"`, 1)); k != in1.Key {
		t.Fatalf("renamed key %q, want %q", k, in1.Key)
	}
	if k := again(strings.Replace(inlineUp, "1981", "1982", 1)); k == in1.Key {
		t.Fatal("a changed node kept the key")
	}
}

// TestCompileErrors: the gateway reports a traffic-split config's problems
// with the whole path, down to an inline upstream's fields.
func TestCompileErrors(t *testing.T) {
	cases := []struct{ ts, want string }{
		{`{"rules":[{"weighted_upstreams":[{"upstream_id":"nope"}]}]}`,
			`routes[id=r1]: plugins.traffic-split: rules[0].weighted_upstreams[0].upstream_id: upstream "nope" not found`},
		{`{"rules":[{},{"weighted_upstreams":[{"weight":1},{"upstream":{"nodes":[{"host":"127.0.0.1","port":70000,"weight":1}],"type":"fastest"}}]}]}`,
			`routes[id=r1]: plugins.traffic-split: rules[1].weighted_upstreams[1].upstream: nodes[0].port: must be between 1 and 65535; rules[1].weighted_upstreams[1].upstream: type: must be one of`},
		{`{"rules":[{"weighted_upstreams":[{"upstream":{"nodes":{"127.0.0.1:1":1},"retries":1,"bogus":true}}]}]}`,
			`rules[0].weighted_upstreams[0].upstream: bogus: unknown field`},
	}
	for _, c := range cases {
		_, err := compile(t, map[string]string{
			"upstreams/1": `{"nodes":{"127.0.0.1:1980":1}}`,
			"routes/r1":   `{"uri":"/a","upstream_id":"1","plugins":{"traffic-split":` + c.ts + `}}`,
		})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s:\n got %v\nwant %q", c.ts, err, c.want)
		}
		t.Log(err)
	}
}

// TestGlobalRuleAndConsumer: traffic-split in a global rule resolves
// upstreams too, and so does one in a consumer's plugins (compiled with the
// configuration, used by the chain its first request builds).
func TestGlobalRuleAndConsumer(t *testing.T) {
	snap, err := compile(t, map[string]string{
		"upstreams/1":    `{"nodes":{"127.0.0.1:1980":1}}`,
		"upstreams/2":    `{"nodes":{"127.0.0.1:1990":1}}`,
		"global_rules/g": `{"plugins":{"traffic-split":{"rules":[{"match":[{"vars":[["arg_g","==","1"]]}],"weighted_upstreams":[{"upstream_id":"2"}]}]}}}`,
		"routes/r1":      `{"uri":"/a","upstream_id":"1"}`,
		"consumers/jack": `{"username":"jack","plugins":{"key-auth":{"key":"k"},"traffic-split":{"rules":[{"weighted_upstreams":[{"upstream":` + inlineUp + `}]}]}}}`,
	})
	if err != nil {
		t.Fatal(err)
	}
	r1 := route(t, snap, "r1")
	if u := pick(r1, plugintest.NewRequest("GET", "/a?g=1")); u.Key != "upstreams/2" {
		t.Fatalf("global rule: %q", u.Key)
	}
	cc := r1.ConsumerChains.For("jack")
	if cc == nil {
		t.Fatal("no chain for jack")
	}
	var c plugin.Ctx
	c.Reset(plugintest.NewRequest("GET", "/a"))
	cc.Chain.Access(&c)
	if u := r1.UpstreamFor(&c); !strings.HasPrefix(u.Key, "plugins/traffic-split/") {
		t.Fatalf("consumer's traffic-split: %q", u.Key)
	}
}
