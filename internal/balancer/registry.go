package balancer

import (
	"sync"
	"sync/atomic"
	"time"
)

// Registry keeps balancer state that must outlive a single configuration
// snapshot: per node in-flight counts and latency scores, and the round-robin
// position of each upstream. The runtime creates one with NewRegistry and
// passes it to every New; it is safe for concurrent use.
//
// State is keyed by (Spec.UpstreamKey, Node.Addr). New hands a picker the
// existing state of nodes that stay and drops the entries of nodes that left
// the upstream; pickers still draining on an old snapshot keep their own
// pointers, so their Done calls stay correct. Retain drops whole upstreams.
type Registry struct {
	mu        sync.Mutex
	upstreams map[string]*upstreamState
	epoch     time.Time
	// clock returns nanoseconds since epoch; tests replace it to control decay.
	clock func() int64
}

// upstreamState is everything the Registry keeps for one upstream.
type upstreamState struct {
	nodes map[string]*nodeState
	// rr holds the round-robin position of each priority group.
	rr map[int]*rrCounter
}

// nodeState is the shared, reload-surviving state of one node.
type nodeState struct {
	// inflight counts attempts between Pick and Done (least_conn and ewma).
	inflight atomic.Int64
	// cost is the peak-EWMA latency in nanoseconds as float64 bits and stamp
	// the clock reading of its last update; Pick reads both without locking.
	cost  atomic.Uint64
	stamp atomic.Int64
	// mu serialises writers of cost and stamp so that concurrent Done calls
	// do not lose updates; readers never take it.
	mu sync.Mutex
	// Padding keeps two hot nodes off one cache line.
	_ [32]byte
}

// rrCounter is a round-robin position, padded because every pick of the
// upstream increments it.
type rrCounter struct {
	n atomic.Uint64
	_ [56]byte
}

// NewRegistry returns an empty Registry.
func NewRegistry() *Registry {
	r := &Registry{upstreams: make(map[string]*upstreamState), epoch: time.Now()}
	r.clock = func() int64 { return int64(time.Since(r.epoch)) }
	return r
}

// now returns the registry clock in nanoseconds.
func (r *Registry) now() int64 { return r.clock() }

// Retain drops the state of every upstream whose key is not in keys. The
// runtime calls it after swapping in a snapshot, with the keys of all
// upstreams that snapshot uses.
func (r *Registry) Retain(keys []string) {
	keep := make(map[string]struct{}, len(keys))
	for _, k := range keys {
		keep[k] = struct{}{}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for k := range r.upstreams {
		if _, ok := keep[k]; !ok {
			delete(r.upstreams, k)
		}
	}
}

// upstream returns the state of key, creating it. r.mu must be held.
func (r *Registry) upstream(key string) *upstreamState {
	u := r.upstreams[key]
	if u == nil {
		u = &upstreamState{nodes: make(map[string]*nodeState), rr: make(map[int]*rrCounter)}
		r.upstreams[key] = u
	}
	return u
}

// adopt returns the state for each of nodes (in order), reusing what key
// already has for the same address and forgetting addresses no longer listed.
func (r *Registry) adopt(key string, nodes []Node) []*nodeState {
	r.mu.Lock()
	defer r.mu.Unlock()
	u := r.upstream(key)
	states := make([]*nodeState, len(nodes))
	next := make(map[string]*nodeState, len(nodes))
	for i, n := range nodes {
		st := u.nodes[n.Addr]
		if st == nil {
			st = new(nodeState)
		}
		states[i] = st
		next[n.Addr] = st
	}
	u.nodes = next
	return states
}

// rrCounter returns the round-robin position of one priority group of key.
func (r *Registry) rrCounter(key string, priority int) *rrCounter {
	r.mu.Lock()
	defer r.mu.Unlock()
	u := r.upstream(key)
	c := u.rr[priority]
	if c == nil {
		c = new(rrCounter)
		u.rr[priority] = c
	}
	return c
}
