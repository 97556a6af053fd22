package upstream

import (
	"crypto/tls"
	"net/http"
	"sync"
	"time"
)

// Registry owns connection state that outlives snapshots: keepalive pools and
// net/http transports. The compiler asks it for the pool of each node while it
// builds a snapshot (never on the request path); after a swap the runtime calls
// Sweep so pools no snapshot uses are closed.
type Registry struct {
	mu         sync.Mutex
	pools      map[PoolKey]*Pool
	transports map[string]*http.Transport
	used       map[any]bool // keys touched since the last Sweep
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{
		pools:      make(map[PoolKey]*Pool),
		transports: make(map[string]*http.Transport),
		used:       make(map[any]bool),
	}
}

// Pool returns the pool for key, creating it on first use.
func (r *Registry) Pool(key PoolKey, tlsConf *tls.Config) *Pool {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.used[key] = true
	p, ok := r.pools[key]
	if !ok {
		p = newPool(key, tlsConf)
		r.pools[key] = p
	}
	return p
}

// Transport returns the net/http transport stored under key, building it with
// build on first use. The key must capture every setting build depends on.
func (r *Registry) Transport(key string, build func() *http.Transport) *http.Transport {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.used[key] = true
	t, ok := r.transports[key]
	if !ok {
		t = build()
		r.transports[key] = t
	}
	return t
}

// BeginCompile starts tracking which pools and transports the next snapshot uses.
func (r *Registry) BeginCompile() {
	r.mu.Lock()
	clear(r.used)
	r.mu.Unlock()
}

// Sweep closes pools and transports that the snapshot compiled since the last
// BeginCompile does not use. Requests still running on an older snapshot finish
// normally: a connection returned to a closed pool is simply closed.
func (r *Registry) Sweep() {
	r.mu.Lock()
	var dropPools []*Pool
	for k, p := range r.pools {
		if !r.used[k] {
			dropPools = append(dropPools, p)
			delete(r.pools, k)
		}
	}
	var dropTransports []*http.Transport
	for k, t := range r.transports {
		if !r.used[k] {
			dropTransports = append(dropTransports, t)
			delete(r.transports, k)
		}
	}
	r.mu.Unlock()
	for _, p := range dropPools {
		p.closeIdle(time.Time{}, true)
	}
	for _, t := range dropTransports {
		t.CloseIdleConnections()
	}
}

// ReapIdle closes idle connections past their pool's idle timeout; the runtime
// calls it periodically so idle sockets do not pile up on quiet nodes.
func (r *Registry) ReapIdle(now time.Time) {
	r.mu.Lock()
	pools := make([]*Pool, 0, len(r.pools))
	for _, p := range r.pools {
		pools = append(pools, p)
	}
	r.mu.Unlock()
	for _, p := range pools {
		p.closeIdle(now, false)
	}
}

// Close closes everything.
func (r *Registry) Close() {
	r.BeginCompile()
	r.Sweep()
}
