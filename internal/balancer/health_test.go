package balancer

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// staticHealth is a Health whose mask the test sets, recording Observe calls.
type staticHealth struct {
	down atomic.Pointer[Mask]
	mu   sync.Mutex
	seen []observed
}

type observed struct {
	i   int
	res Result
}

func (h *staticHealth) Down() *Mask { return h.down.Load() }

func (h *staticHealth) Observe(i int, res Result) {
	h.mu.Lock()
	h.seen = append(h.seen, observed{i, res})
	h.mu.Unlock()
}

func (h *staticHealth) set(indices ...int) { h.down.Store(NewMask(indices)) }

// counts picks n times and returns how often each node address came up.
func counts(t *testing.T, p Picker, req VarSource, n int) map[string]int {
	t.Helper()
	out := make(map[string]int)
	for range n {
		node, err := p.Pick(req, Tried{})
		if err != nil {
			t.Fatalf("Pick: %v", err)
		}
		out[node.Addr]++
		p.Done(node, Result{})
	}
	return out
}

func TestHealthMaskSkipsDownNodes(t *testing.T) {
	t.Parallel()
	for _, typ := range []string{TypeRoundRobin, TypeCHash, TypeLeastConn, TypeEWMA} {
		t.Run(typ, func(t *testing.T) {
			t.Parallel()
			h := &staticHealth{}
			p := mustNew(t, Spec{UpstreamKey: "u", Type: typ, Key: "remote_addr", Nodes: mkNodes(1, 1, 1), Health: h}, nil)
			// Different keys so chash spreads over every node.
			pickAll := func() map[string]int {
				out := make(map[string]int)
				for k := range 300 {
					req := vars{"remote_addr": fmt.Sprintf("192.0.2.%d", k%250)}
					node, err := p.Pick(req, Tried{})
					if err != nil {
						t.Fatalf("Pick: %v", err)
					}
					out[node.Addr]++
					p.Done(node, Result{})
				}
				return out
			}
			if got := pickAll(); len(got) != 3 {
				t.Fatalf("all healthy: picks %v, want all three nodes", got)
			}
			h.set(1)
			got := pickAll()
			if got["10.0.0.1:80"] != 0 || got["10.0.0.0:80"] == 0 || got["10.0.0.2:80"] == 0 {
				t.Fatalf("node 1 down: picks %v, want nodes 0 and 2 only", got)
			}
			h.set()
			if got := pickAll(); got["10.0.0.1:80"] == 0 {
				t.Fatalf("node 1 back: picks %v, want it picked again", got)
			}
		})
	}
}

// TestHealthCHashMovesOnlyDownKeys checks that chash keys of a down node go to
// the next node of the ring and come back when it recovers, while other keys
// stay put.
func TestHealthCHashMovesOnlyDownKeys(t *testing.T) {
	t.Parallel()
	h := &staticHealth{}
	p := mustNew(t, Spec{UpstreamKey: "u", Type: TypeCHash, Key: "remote_addr", Nodes: mkNodes(1, 1, 1), Health: h}, nil)
	before := make(map[string]string)
	for k := range 200 {
		key := fmt.Sprintf("198.51.100.%d", k)
		n, _ := p.Pick(vars{"remote_addr": key}, Tried{})
		before[key] = n.Addr
	}
	h.set(0)
	for key, addr := range before {
		n, _ := p.Pick(vars{"remote_addr": key}, Tried{})
		switch {
		case addr == "10.0.0.0:80" && n.Addr == addr:
			t.Fatalf("key %s stayed on the down node", key)
		case addr != "10.0.0.0:80" && n.Addr != addr:
			t.Fatalf("key %s moved from healthy %s to %s", key, addr, n.Addr)
		}
	}
	h.set()
	for key, addr := range before {
		if n, _ := p.Pick(vars{"remote_addr": key}, Tried{}); n.Addr != addr {
			t.Fatalf("key %s: %s after recovery, want %s", key, n.Addr, addr)
		}
	}
}

// TestHealthPriorityFallsBack checks that a priority group whose nodes are all
// down is skipped for the next one.
func TestHealthPriorityFallsBack(t *testing.T) {
	t.Parallel()
	h := &staticHealth{}
	nodes := mkNodes(1, 1, 1)
	nodes[0].Priority, nodes[1].Priority = 10, 10
	p := mustNew(t, Spec{UpstreamKey: "u", Nodes: nodes, Health: h}, nil)
	if got := counts(t, p, nil, 10); got["10.0.0.2:80"] != 0 {
		t.Fatalf("healthy high group: %v, want no low-priority pick", got)
	}
	h.set(0, 1)
	if got := counts(t, p, nil, 10); got["10.0.0.2:80"] != 10 {
		t.Fatalf("high group down: %v, want every pick on the low-priority node", got)
	}
}

// TestHealthRetryDoesNotUseDownNodes checks that tried and down combine: once
// the healthy nodes are tried, Pick reports ErrNoNode (APISIX retries over the
// healthy nodes only), and the caller's Tried is left as it was.
func TestHealthRetryDoesNotUseDownNodes(t *testing.T) {
	t.Parallel()
	h := &staticHealth{}
	p := mustNew(t, Spec{UpstreamKey: "u", Nodes: mkNodes(1, 1, 1), Health: h}, nil)
	h.set(2)
	var tried Tried
	for range 2 {
		n, err := p.Pick(nil, tried)
		if err != nil {
			t.Fatalf("Pick: %v", err)
		}
		if n.Addr == "10.0.0.2:80" {
			t.Fatal("picked the down node")
		}
		tried.Add(n)
	}
	if tried.Len() != 2 {
		t.Fatalf("caller's Tried changed: Len %d, want 2", tried.Len())
	}
	if _, err := p.Pick(nil, tried); !errors.Is(err, ErrNoNode) {
		t.Fatalf("third attempt: err %v, want ErrNoNode", err)
	}
}

// TestHealthMaskLargeUpstream checks nodes beyond the one-word fast path.
func TestHealthMaskLargeUpstream(t *testing.T) {
	t.Parallel()
	weights := make([]int, 130)
	var down []int
	for i := range weights {
		weights[i] = 1
		if i != 3 && i != 100 {
			down = append(down, i)
		}
	}
	h := &staticHealth{}
	p := mustNew(t, Spec{UpstreamKey: "u", Nodes: mkNodes(weights...), Health: h}, nil)
	h.set(down...)
	got := counts(t, p, nil, 50)
	if len(got) != 2 || got["10.0.0.3:80"] == 0 || got["10.0.0.100:80"] == 0 {
		t.Fatalf("picks %v, want only nodes 3 and 100", got)
	}
	var tried Tried
	n, _ := p.Pick(nil, tried)
	tried.Add(n)
	n2, _ := p.Pick(nil, tried)
	if n2 == nil || n2 == n {
		t.Fatalf("retry picked %v after %v, want the other healthy node", n2, n)
	}
	tried.Add(n2)
	if _, err := p.Pick(nil, tried); !errors.Is(err, ErrNoNode) {
		t.Fatalf("err %v, want ErrNoNode once both healthy nodes are tried", err)
	}
}

// TestHealthObserve checks that Done hands every outcome to the checker with
// the node's index, for tracked and untracked types alike.
func TestHealthObserve(t *testing.T) {
	t.Parallel()
	for _, typ := range []string{TypeRoundRobin, TypeLeastConn} {
		h := &staticHealth{}
		p := mustNew(t, Spec{UpstreamKey: "u", Type: typ, Nodes: mkNodes(1, 1), Health: h}, nil)
		n, _ := p.Pick(nil, Tried{})
		res := Result{Latency: time.Millisecond, Status: 503}
		p.Done(n, res)
		p.Done(&Node{Addr: "elsewhere"}, res) // not this picker's: ignored
		if len(h.seen) != 1 || h.seen[0].i != n.Index() || h.seen[0].res != res {
			t.Fatalf("%s: observed %+v, want one call for node %d", typ, h.seen, n.Index())
		}
	}
}

func TestMask(t *testing.T) {
	t.Parallel()
	if NewMask(nil) != nil {
		t.Fatal("empty mask must be nil")
	}
	m := NewMask([]int{0, 63, 64, 200})
	for i, want := range map[int]bool{0: true, 1: false, 63: true, 64: true, 65: false, 200: true, 1000: false, -1: false} {
		if m.Has(i) != want {
			t.Errorf("Has(%d) = %v, want %v", i, !want, want)
		}
	}
	var nilMask *Mask
	if nilMask.Has(0) {
		t.Error("nil mask has nothing")
	}
}

// TestHealthRoundRobinEvenSpread checks that a down node's share is spread
// over the others, not handed to its schedule successor.
func TestHealthRoundRobinEvenSpread(t *testing.T) {
	t.Parallel()
	h := &staticHealth{}
	p := mustNew(t, Spec{UpstreamKey: "u", Nodes: mkNodes(1, 1, 1), Health: h}, nil)
	h.set(1)
	got := counts(t, p, nil, 300)
	if got["10.0.0.0:80"] != 150 || got["10.0.0.2:80"] != 150 {
		t.Fatalf("picks %v, want 150 each on nodes 0 and 2", got)
	}
}
