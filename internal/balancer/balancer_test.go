package balancer

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// vars is a VarSource backed by a map.
type vars map[string]string

func (v vars) Var(name string) (string, bool) {
	s, ok := v[name]
	return s, ok
}

// mkNodes builds nodes named n0, n1, ... with the given weights.
func mkNodes(weights ...int) []Node {
	nodes := make([]Node, len(weights))
	for i, w := range weights {
		nodes[i] = Node{Addr: fmt.Sprintf("10.0.0.%d:80", i), Weight: w}
	}
	return nodes
}

// name maps an address from mkNodes back to a letter, for readable sequences.
func name(n *Node) string {
	var i int
	fmt.Sscanf(n.Addr, "10.0.0.%d:80", &i)
	return string(rune('a' + i))
}

func mustNew(t testing.TB, spec Spec, reg *Registry) Picker {
	t.Helper()
	p, err := New(spec, reg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return p
}

// forceLocked rebuilds p's round-robin groups without a schedule.
func forceLocked(p Picker) {
	pk := p.(*picker)
	for i := range pk.groups {
		g := &pk.groups[i]
		g.sel = newRoundRobin(pk, g.lo, g.hi, new(rrCounter), 0)
	}
}

func pickSeq(t *testing.T, p Picker, n int) string {
	t.Helper()
	var b strings.Builder
	for range n {
		node, err := p.Pick(nil, Tried{})
		if err != nil {
			t.Fatalf("Pick: %v", err)
		}
		b.WriteString(name(node))
		p.Done(node, Result{})
	}
	return b.String()
}

func TestSmoothWRRSequence(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc    string
		weights []int
		want    string
	}{
		{"nginx example", []int{5, 1, 1}, "aabacaa" + "aabacaa"},
		{"scaled weights give the same order", []int{50, 10, 10}, "aabacaa"},
		{"equal weights", []int{1, 1, 1}, "abcabc"},
		{"two to one", []int{2, 1}, "abaaba"},
		{"zero weight drained", []int{1, 0, 1}, "acacac"},
	}
	for _, tc := range tests {
		for _, locked := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/locked=%v", tc.desc, locked), func(t *testing.T) {
				t.Parallel()
				p := mustNew(t, Spec{UpstreamKey: "u", Nodes: mkNodes(tc.weights...)}, nil)
				if locked {
					forceLocked(p)
				}
				if got := pickSeq(t, p, len(tc.want)); got != tc.want {
					t.Errorf("sequence = %s, want %s", got, tc.want)
				}
			})
		}
	}
}

func TestRoundRobinLongPeriodUsesLock(t *testing.T) {
	t.Parallel()
	// Co-prime weights summing past maxSchedulePeriod cannot be precomputed.
	p := mustNew(t, Spec{UpstreamKey: "u", Nodes: mkNodes(40000, 39999)}, nil)
	if rr := p.(*picker).groups[0].sel.(*roundRobin); rr.sched != nil {
		t.Fatalf("schedule of %d slots built, want the locked path", len(rr.sched))
	}
	if got := pickSeq(t, p, 4); got != "abab" {
		t.Errorf("sequence = %s, want abab", got)
	}
}

func TestAllTypes(t *testing.T) {
	t.Parallel()
	for _, typ := range []string{TypeRoundRobin, TypeCHash, TypeLeastConn, TypeEWMA} {
		t.Run(typ, func(t *testing.T) {
			t.Parallel()
			t.Run("drained nodes are never picked", func(t *testing.T) {
				p := mustNew(t, Spec{Type: typ, Key: "uri", Nodes: mkNodes(0, 3, 0, 1)}, nil)
				for i := range 2000 {
					n, err := p.Pick(vars{"uri": fmt.Sprint("/", i)}, Tried{})
					if err != nil {
						t.Fatal(err)
					}
					if n.Weight == 0 {
						t.Fatalf("picked drained node %s", n.Addr)
					}
					p.Done(n, Result{Latency: time.Millisecond})
				}
			})
			t.Run("all drained", func(t *testing.T) {
				p := mustNew(t, Spec{Type: typ, Key: "uri", Nodes: mkNodes(0, 0)}, nil)
				if _, err := p.Pick(vars{}, Tried{}); !errors.Is(err, ErrNoNode) {
					t.Fatalf("err = %v, want ErrNoNode", err)
				}
			})
			t.Run("no nodes", func(t *testing.T) {
				p := mustNew(t, Spec{Type: typ, Key: "uri"}, nil)
				if _, err := p.Pick(vars{}, Tried{}); !errors.Is(err, ErrNoNode) {
					t.Fatalf("err = %v, want ErrNoNode", err)
				}
			})
			for _, size := range []int{5, 100} {
				t.Run(fmt.Sprintf("retries visit every node once/%d", size), func(t *testing.T) {
					weights := make([]int, size)
					for i := range weights {
						weights[i] = 1 + i%3
					}
					p := mustNew(t, Spec{Type: typ, Key: "uri", Nodes: mkNodes(weights...)}, nil)
					var tried Tried
					seen := map[string]bool{}
					req := vars{"uri": "/x"}
					for range size {
						n, err := p.Pick(req, tried)
						if err != nil {
							t.Fatalf("after %d picks: %v", len(seen), err)
						}
						if seen[n.Addr] {
							t.Fatalf("%s picked twice", n.Addr)
						}
						seen[n.Addr] = true
						tried.Add(n)
						p.Done(n, Result{Failed: true})
					}
					if _, err := p.Pick(req, tried); !errors.Is(err, ErrNoNode) {
						t.Fatalf("err = %v, want ErrNoNode", err)
					}
					if tried.Len() != size {
						t.Errorf("tried.Len() = %d, want %d", tried.Len(), size)
					}
				})
			}
			t.Run("priority groups", func(t *testing.T) {
				nodes := mkNodes(1, 1, 1, 1)
				nodes[0].Priority, nodes[1].Priority = -1, -1
				nodes[2].Priority, nodes[3].Priority = 5, 5
				p := mustNew(t, Spec{Type: typ, Key: "uri", Nodes: nodes}, nil)
				var tried Tried
				var got []string
				for range 4 {
					n, err := p.Pick(vars{"uri": "/"}, tried)
					if err != nil {
						t.Fatal(err)
					}
					tried.Add(n)
					p.Done(n, Result{})
					got = append(got, fmt.Sprint(n.Priority))
				}
				if s := strings.Join(got, ","); s != "5,5,-1,-1" {
					t.Errorf("priorities in pick order = %s, want 5,5,-1,-1", s)
				}
			})
		})
	}
}

func TestRoundRobinDistribution(t *testing.T) {
	t.Parallel()
	weights := []int{1, 2, 3, 4}
	p := mustNew(t, Spec{Nodes: mkNodes(weights...)}, nil)
	counts := map[string]int{}
	for range 1000 {
		n, _ := p.Pick(nil, Tried{})
		counts[name(n)]++
	}
	for i, w := range weights {
		if got := counts[string(rune('a'+i))]; got != w*100 {
			t.Errorf("node %c: %d picks, want %d", 'a'+i, got, w*100)
		}
	}
}

func TestRoundRobinRetryFollowsSchedule(t *testing.T) {
	t.Parallel()
	p := mustNew(t, Spec{Nodes: mkNodes(5, 1, 1)}, nil)
	// The first slot is a; with a tried, the walk continues to b (slot 3).
	var tried Tried
	first, _ := p.Pick(nil, tried)
	tried.Add(first)
	second, _ := p.Pick(nil, tried)
	if name(first) != "a" || name(second) != "b" {
		t.Errorf("picks = %s,%s, want a,b", name(first), name(second))
	}
}

func TestErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc string
		spec Spec
		want string
	}{
		{"unknown type", Spec{Type: "random"}, `type: unknown balancer type "random"`},
		{"unknown hash_on", Spec{Type: "chash", HashOn: "body", Key: "x"}, `hash_on: unknown value "body"`},
		{"chash without key", Spec{Type: "chash", HashOn: "header"}, "key: must not be empty"},
		{"negative weight", Spec{Nodes: []Node{{Addr: "a:1", Weight: -1}}}, "nodes[0].weight: must be >= 0"},
		{"duplicate", Spec{Nodes: []Node{{Addr: "a:1"}, {Addr: "a:1"}}}, "nodes[1]: duplicate address"},
		{"no host", Spec{Nodes: []Node{{Port: 80}}}, "nodes[0].host: must not be empty"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			_, err := New(tc.spec, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestAddrFromHostPort(t *testing.T) {
	t.Parallel()
	p := mustNew(t, Spec{Nodes: []Node{{Host: "::1", Port: 8080, Weight: 1}}}, nil)
	n, err := p.Pick(nil, Tried{})
	if err != nil {
		t.Fatal(err)
	}
	if n.Addr != "[::1]:8080" {
		t.Errorf("Addr = %q, want [::1]:8080", n.Addr)
	}
}

func TestDoneIgnoresForeignNode(t *testing.T) {
	t.Parallel()
	reg := NewRegistry()
	p := mustNew(t, Spec{UpstreamKey: "u", Type: TypeLeastConn, Nodes: mkNodes(1, 1)}, reg)
	n, _ := p.Pick(nil, Tried{})
	cp := *n
	p.Done(&cp, Result{})
	p.Done(nil, Result{})
	if got := p.(*picker).states[n.index].inflight.Load(); got != 1 {
		t.Errorf("inflight = %d after foreign Done, want 1", got)
	}
}

func TestConcurrent(t *testing.T) {
	t.Parallel()
	for _, typ := range []string{TypeRoundRobin, TypeCHash, TypeLeastConn, TypeEWMA} {
		t.Run(typ, func(t *testing.T) {
			t.Parallel()
			reg := NewRegistry()
			spec := Spec{UpstreamKey: "u", Type: typ, Key: "uri", Nodes: mkNodes(1, 2, 3, 4)}
			var cur sync.Map // "p" -> Picker, swapped by a reloader goroutine
			cur.Store("p", mustNew(t, spec, reg))
			var wg sync.WaitGroup
			stop := make(chan struct{})
			wg.Go(func() {
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					s := spec
					if i%2 == 0 {
						s.Nodes = mkNodes(1, 2, 3, 4, 5)
					}
					cur.Store("p", mustNew(t, s, reg))
					time.Sleep(100 * time.Microsecond)
				}
			})
			var workers sync.WaitGroup
			for g := range 16 {
				workers.Go(func() {
					for i := range 2000 {
						v, _ := cur.Load("p")
						p := v.(Picker)
						req := vars{"uri": fmt.Sprint("/", g, "/", i)}
						var tried Tried
						for range 2 {
							n, err := p.Pick(req, tried)
							if err != nil {
								t.Error(err)
								return
							}
							tried.Add(n)
							p.Done(n, Result{Latency: time.Duration(i%7) * time.Millisecond, Failed: i%11 == 0})
						}
					}
				})
			}
			workers.Wait()
			close(stop)
			wg.Wait()
			p := mustNew(t, Spec{UpstreamKey: "u", Type: typ, Key: "uri", Nodes: mkNodes(1, 2, 3, 4, 5)}, reg)
			for i, st := range p.(*picker).states {
				if n := st.inflight.Load(); n != 0 {
					t.Errorf("node %d: inflight = %d after all Done, want 0", i, n)
				}
			}
		})
	}
}

func TestPickDoesNotAllocate(t *testing.T) {
	for _, typ := range []string{TypeRoundRobin, TypeCHash, TypeLeastConn, TypeEWMA} {
		for _, size := range []int{3, 64} {
			t.Run(fmt.Sprintf("%s/%d", typ, size), func(t *testing.T) {
				weights := make([]int, size)
				for i := range weights {
					weights[i] = 1 + i%3
				}
				p := mustNew(t, Spec{UpstreamKey: "u", Type: typ, HashOn: "vars_combinations", Key: "$remote_addr$uri", Nodes: mkNodes(weights...)}, nil)
				var req VarSource = vars{"remote_addr": "192.0.2.1", "uri": "/a"}
				allocs := testing.AllocsPerRun(1000, func() {
					var tried Tried
					n, _ := p.Pick(req, tried)
					tried.Add(n)
					p.Done(n, Result{Failed: true})
					n, _ = p.Pick(req, tried)
					p.Done(n, Result{Latency: time.Millisecond})
				})
				if allocs != 0 {
					t.Errorf("%v allocations per request, want 0", allocs)
				}
			})
		}
	}
}
