package balancer

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

func TestKeyExtraction(t *testing.T) {
	t.Parallel()
	req := vars{
		"remote_addr":    "192.0.2.7",
		"uri":            "/orders",
		"arg_id":         "42",
		"http_x_user_id": "alice",
		"cookie_Session": "s1",
		"consumer_name":  "bob",
		"host.name":      "h",
	}
	tests := []struct {
		desc   string
		hashOn string
		key    string
		want   string // the string whose hash the key must equal
	}{
		{"vars uri", "vars", "uri", "/orders"},
		{"default hash_on is vars", "", "arg_id", "42"},
		{"vars missing falls back to remote_addr", "vars", "arg_missing", "192.0.2.7"},
		{"header normalised", "header", "X-User-Id", "alice"},
		{"header missing", "header", "X-Other", "192.0.2.7"},
		{"cookie keeps case", "cookie", "Session", "s1"},
		{"cookie missing", "cookie", "session", "192.0.2.7"},
		{"consumer", "consumer", "", "bob"},
		{"combination", "vars_combinations", "$remote_addr$uri", "192.0.2.7/orders"},
		{"combination with literals", "vars_combinations", "id=${arg_id}&u=$uri!", "id=42&u=/orders!"},
		{"dots belong to the name", "vars_combinations", "$uri.", ""},
		{"dotted name", "vars_combinations", "$host.name", "h"},
		{"missing var is empty", "vars_combinations", "[$arg_nope]", "[]"},
		{"default value", "vars_combinations", "${ arg_nope ?? dflt }-$arg_id", "dflt-42"},
		{"escaped dollar stays", "vars_combinations", `\$uri$uri`, `\$uri/orders`},
		{"lone dollar", "vars_combinations", "$ $uri", "$ /orders"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			kf, err := newKeyFunc(tc.hashOn, tc.key)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := kf.hash(req), newHasher().add(tc.want).sum(); got != want {
				t.Errorf("hash differs from hash(%q); template %+v", tc.want, kf.tpl)
			}
		})
	}
	t.Run("consumer missing falls back", func(t *testing.T) {
		t.Parallel()
		kf, _ := newKeyFunc("consumer", "")
		if kf.hash(vars{"remote_addr": "x"}) != newHasher().add("x").sum() {
			t.Error("missing consumer_name did not fall back to remote_addr")
		}
	})
}

func chashOwner(t *testing.T, p Picker, key string) string {
	t.Helper()
	n, err := p.Pick(vars{"uri": key}, Tried{})
	if err != nil {
		t.Fatal(err)
	}
	return n.Addr
}

func TestCHashStableAndMinimalDisruption(t *testing.T) {
	t.Parallel()
	spec := Spec{UpstreamKey: "u", Type: TypeCHash, Key: "uri", Nodes: mkNodes(1, 1, 1, 1, 1, 1, 1, 1, 1, 1)}
	before := mustNew(t, spec, nil)
	const keys = 20000
	owner := make([]string, keys)
	for i := range owner {
		owner[i] = chashOwner(t, before, fmt.Sprint("/k", i))
	}
	// Same configuration in another picker: identical mapping.
	again := mustNew(t, spec, nil)
	for i := range 1000 {
		if got := chashOwner(t, again, fmt.Sprint("/k", i)); got != owner[i] {
			t.Fatalf("key %d moved from %s to %s without a change", i, owner[i], got)
		}
	}

	t.Run("add a node", func(t *testing.T) {
		t.Parallel()
		s := spec
		s.Nodes = append(mkNodes(1, 1, 1, 1, 1, 1, 1, 1, 1, 1), Node{Addr: "10.0.0.99:80", Weight: 1})
		after := mustNew(t, s, nil)
		moved := 0
		for i := range owner {
			got := chashOwner(t, after, fmt.Sprint("/k", i))
			if got == owner[i] {
				continue
			}
			if got != "10.0.0.99:80" {
				t.Fatalf("key %d moved between old nodes: %s -> %s", i, owner[i], got)
			}
			moved++
		}
		// Ideal is 1/11 of the keys.
		if frac := float64(moved) / keys; frac < 0.06 || frac > 0.13 {
			t.Errorf("%.3f of keys moved, want about %.3f", frac, 1.0/11)
		}
	})
	t.Run("remove a node", func(t *testing.T) {
		t.Parallel()
		s := spec
		s.Nodes = mkNodes(1, 1, 1, 1, 1, 1, 1, 1, 1, 1)[1:]
		after := mustNew(t, s, nil)
		for i := range owner {
			got := chashOwner(t, after, fmt.Sprint("/k", i))
			if owner[i] != "10.0.0.0:80" && got != owner[i] {
				t.Fatalf("key %d on a remaining node moved: %s -> %s", i, owner[i], got)
			}
		}
	})
}

func TestCHashDistribution(t *testing.T) {
	t.Parallel()
	weights := []int{1, 2, 3, 4}
	p := mustNew(t, Spec{Type: TypeCHash, Key: "uri", Nodes: mkNodes(weights...)}, nil)
	const keys = 100000
	counts := map[string]int{}
	for i := range keys {
		n, _ := p.Pick(vars{"uri": fmt.Sprint("/k", i)}, Tried{})
		counts[name(n)]++
	}
	for i, w := range weights {
		want := float64(keys) * float64(w) / 10
		if got := float64(counts[string(rune('a'+i))]); math.Abs(got-want)/want > 0.15 {
			t.Errorf("node %c: %v keys, want about %v", 'a'+i, got, want)
		}
	}
}

func TestCHashRetryIsDeterministic(t *testing.T) {
	t.Parallel()
	p := mustNew(t, Spec{Type: TypeCHash, HashOn: "header", Key: "X-Id", Nodes: mkNodes(1, 1, 1, 1, 1)}, nil)
	order := func() string {
		var tried Tried
		s := ""
		for range 5 {
			n, err := p.Pick(vars{"http_x_id": "user-7"}, tried)
			if err != nil {
				t.Fatal(err)
			}
			tried.Add(n)
			s += name(n)
		}
		return s
	}
	first := order()
	for range 10 {
		if got := order(); got != first {
			t.Fatalf("retry order %s, then %s", first, got)
		}
	}
}

func TestCHashLargeWeightsCapped(t *testing.T) {
	t.Parallel()
	p := mustNew(t, Spec{Type: TypeCHash, Key: "uri", Nodes: mkNodes(10000, 5000, 1)}, nil)
	c := p.(*picker).groups[0].sel.(*chash)
	if len(c.hashes) > maxRingPoints+3 {
		t.Errorf("ring has %d points, cap is %d", len(c.hashes), maxRingPoints)
	}
	if owned := countOwned(c, 2); owned < 1 {
		t.Error("light node lost all its points")
	}
}

func countOwned(c *chash, id int) int {
	n := 0
	for _, o := range c.owners {
		if int(o) == id {
			n++
		}
	}
	return n
}

func TestLeastConnPrefersIdle(t *testing.T) {
	t.Parallel()
	p := mustNew(t, Spec{Type: TypeLeastConn, Nodes: mkNodes(1, 1, 1)}, nil)
	// Three concurrent requests land on three different nodes.
	held := map[string]*Node{}
	for range 3 {
		n, _ := p.Pick(nil, Tried{})
		held[n.Addr] = n
	}
	if len(held) != 3 {
		t.Fatalf("3 in-flight picks used %d nodes, want 3", len(held))
	}
	// Finishing b's request makes b the only idle node.
	b := held["10.0.0.1:80"]
	p.Done(b, Result{})
	for range 5 {
		n, _ := p.Pick(nil, Tried{})
		if n != b {
			t.Fatalf("picked %s, want the idle node b", name(n))
		}
		p.Done(n, Result{})
	}
}

func TestLeastConnWeighted(t *testing.T) {
	t.Parallel()
	p := mustNew(t, Spec{Type: TypeLeastConn, Nodes: mkNodes(3, 1)}, nil)
	// Held picks are scored (active+1)/weight, so a takes three for each one
	// on b; whichever way ties break, 8 picks end with a=6, b=2.
	counts := map[string]int{}
	for range 8 {
		n, _ := p.Pick(nil, Tried{})
		counts[name(n)]++
	}
	if counts["a"] != 6 || counts["b"] != 2 {
		t.Errorf("held picks a=%d b=%d, want a=6 b=2", counts["a"], counts["b"])
	}
}

// fakeClock makes reg's clock manual.
func fakeClock(reg *Registry) *int64 {
	var now int64 = int64(time.Hour)
	reg.clock = func() int64 { return now }
	return &now
}

func TestEWMAPrefersFastNode(t *testing.T) {
	t.Parallel()
	reg := NewRegistry()
	now := fakeClock(reg)
	p := mustNew(t, Spec{UpstreamKey: "u", Type: TypeEWMA, Nodes: mkNodes(1, 1, 1)}, reg)
	pk := p.(*picker)
	lat := map[string]time.Duration{"a": 50 * time.Millisecond, "b": 2 * time.Millisecond, "c": 80 * time.Millisecond}
	// Warm every node up with one sample.
	for i := range pk.nodes {
		pk.states[i].observe(*now, Result{Latency: lat[name(&pk.nodes[i])]})
	}
	counts := map[string]int{}
	for range 3000 {
		*now += int64(time.Millisecond)
		n, _ := p.Pick(nil, Tried{})
		counts[name(n)]++
		p.Done(n, Result{Latency: lat[name(n)]})
	}
	// Power of two choices: b wins every comparison it is in (2/3 of them),
	// and c never beats the others.
	if counts["b"] < 1800 || counts["c"] > 100 {
		t.Errorf("picks %v: want b about 2000 and c near 0", counts)
	}
}

func TestEWMAFailurePenalised(t *testing.T) {
	t.Parallel()
	reg := NewRegistry()
	now := fakeClock(reg)
	p := mustNew(t, Spec{UpstreamKey: "u", Type: TypeEWMA, Nodes: mkNodes(1, 1)}, reg)
	pk := p.(*picker)
	pk.states[0].observe(*now, Result{Latency: 10 * time.Millisecond})
	pk.states[1].observe(*now, Result{Latency: 20 * time.Millisecond})
	// a now refuses connections quickly.
	pk.states[0].observe(*now, Result{Latency: 100 * time.Microsecond, Failed: true})
	for range 20 {
		n, _ := p.Pick(nil, Tried{})
		if name(n) != "b" {
			t.Fatalf("picked %s after it failed", name(n))
		}
		p.Done(n, Result{Latency: 20 * time.Millisecond})
	}
	// b keeps serving; after a minute a's penalty has decayed below b's
	// latency, so a gets probed again.
	*now += int64(time.Minute)
	pk.states[1].observe(*now, Result{Latency: 20 * time.Millisecond})
	if sa, sb := pk.states[0].score(*now), pk.states[1].score(*now); sa >= sb {
		t.Errorf("after decay score a=%v >= b=%v", sa, sb)
	}
}

func TestEWMAUnprobedNodeNotFlooded(t *testing.T) {
	t.Parallel()
	reg := NewRegistry()
	now := fakeClock(reg)
	p := mustNew(t, Spec{UpstreamKey: "u", Type: TypeEWMA, Nodes: mkNodes(1, 1)}, reg)
	pk := p.(*picker)
	pk.states[0].observe(*now, Result{Latency: 10 * time.Millisecond})
	// b is new: its first in-flight request makes it the worse choice until
	// that request reports.
	pk.states[1].inflight.Add(1)
	for range 10 {
		n, _ := p.Pick(nil, Tried{})
		if name(n) != "a" {
			t.Fatalf("picked unprobed busy node %s", name(n))
		}
	}
}

func TestStateSurvivesRebuild(t *testing.T) {
	t.Parallel()
	for _, typ := range []string{TypeLeastConn, TypeEWMA} {
		t.Run(typ, func(t *testing.T) {
			t.Parallel()
			reg := NewRegistry()
			now := fakeClock(reg)
			old := mustNew(t, Spec{UpstreamKey: "up1", Type: typ, Nodes: mkNodes(1, 1)}, reg)
			var held []*Node
			for range 4 {
				n, _ := old.Pick(nil, Tried{})
				held = append(held, n)
			}
			n, _ := old.Pick(nil, Tried{})
			old.Done(n, Result{Latency: 30 * time.Millisecond})
			oldStates := old.(*picker).states

			// Rebuild with a third node.
			nu := mustNew(t, Spec{UpstreamKey: "up1", Type: typ, Nodes: mkNodes(1, 1, 1)}, reg)
			st := nu.(*picker).states
			for i := range 2 {
				if st[i] != oldStates[i] {
					t.Fatalf("node %d got fresh state after rebuild", i)
				}
			}
			if got := st[0].inflight.Load() + st[1].inflight.Load(); got != 4 {
				t.Errorf("in-flight after rebuild = %d, want 4", got)
			}
			if typ == TypeEWMA && st[n.index].score(*now) == 0 {
				t.Error("EWMA score lost in rebuild")
			}
			if st[2].inflight.Load() != 0 {
				t.Error("new node starts with in-flight requests")
			}
			// Requests from the old snapshot finish on the old picker and the
			// new picker sees it.
			for _, h := range held {
				old.Done(h, Result{Latency: time.Millisecond})
			}
			if got := st[0].inflight.Load() + st[1].inflight.Load(); got != 0 {
				t.Errorf("in-flight after old Done = %d, want 0", got)
			}

			// A node that left loses its state; other upstreams are separate.
			mustNew(t, Spec{UpstreamKey: "up1", Type: typ, Nodes: mkNodes(1)}, reg)
			back := mustNew(t, Spec{UpstreamKey: "up1", Type: typ, Nodes: mkNodes(1, 1)}, reg)
			if back.(*picker).states[1] == oldStates[1] {
				t.Error("state of a removed node came back")
			}
			other := mustNew(t, Spec{UpstreamKey: "up2", Type: typ, Nodes: mkNodes(1, 1)}, reg)
			if other.(*picker).states[0] == back.(*picker).states[0] {
				t.Error("two upstreams share node state")
			}
		})
	}
}

func TestRegistryRetain(t *testing.T) {
	t.Parallel()
	reg := NewRegistry()
	a := mustNew(t, Spec{UpstreamKey: "a", Type: TypeLeastConn, Nodes: mkNodes(1)}, reg)
	b := mustNew(t, Spec{UpstreamKey: "b", Type: TypeLeastConn, Nodes: mkNodes(1)}, reg)
	reg.Retain([]string{"a"})
	if len(reg.upstreams) != 1 {
		t.Fatalf("%d upstreams kept, want 1", len(reg.upstreams))
	}
	a2 := mustNew(t, Spec{UpstreamKey: "a", Type: TypeLeastConn, Nodes: mkNodes(1)}, reg)
	b2 := mustNew(t, Spec{UpstreamKey: "b", Type: TypeLeastConn, Nodes: mkNodes(1)}, reg)
	if a2.(*picker).states[0] != a.(*picker).states[0] {
		t.Error("retained upstream lost its state")
	}
	if b2.(*picker).states[0] == b.(*picker).states[0] {
		t.Error("dropped upstream kept its state")
	}
}

func TestRoundRobinPositionSurvivesRebuild(t *testing.T) {
	t.Parallel()
	reg := NewRegistry()
	spec := Spec{UpstreamKey: "u", Nodes: mkNodes(1, 1, 1)}
	p := mustNew(t, spec, reg)
	if got := pickSeq(t, p, 2); got != "ab" {
		t.Fatalf("sequence = %s", got)
	}
	// A reload of an unchanged upstream continues where it was instead of
	// restarting at the first node, which would overload it under frequent
	// reloads.
	if got := pickSeq(t, mustNew(t, spec, reg), 2); got != "ca" {
		t.Errorf("sequence after rebuild = %s, want ca", got)
	}
}

func TestLessLoadedMatchesScore(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	mk := func() *nodeState {
		s := new(nodeState)
		if rng.IntN(4) > 0 {
			s.cost.Store(math.Float64bits(float64(rng.Int64N(int64(time.Second)))))
			s.stamp.Store(rng.Int64N(int64(time.Minute)))
		}
		s.inflight.Store(rng.Int64N(4))
		return s
	}
	for i := range 10000 {
		a, b := mk(), mk()
		now := int64(time.Minute) + rng.Int64N(int64(time.Minute))
		sa, sb := a.score(now), b.score(now)
		if math.Abs(sa-sb) <= 1e-9*max(sa, sb) {
			continue // equal within rounding: either answer is right
		}
		if got, want := lessLoaded(a, b), sa < sb; got != want {
			t.Fatalf("case %d: lessLoaded = %v, scores %v vs %v", i, got, sa, sb)
		}
	}
}
