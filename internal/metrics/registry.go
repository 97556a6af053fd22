package metrics

import (
	"hash/maphash"
	"slices"
	"sync"
)

// Registry keeps route handles across configurations. The runtime asks for
// a route's handle while compiling (Route), then calls Sweep once the new
// configuration serves: handles it no longer asked for are dropped, and
// their series disappear from the next scrape. Scrapes walk it through
// Each. Its mutex is taken at compile and scrape time, never per request.
type Registry struct {
	buckets   []float64
	seed      maphash.Seed
	tableSize int

	mu     sync.Mutex
	routes map[string]*RouteMetrics
	used   map[string]bool
}

// NewRegistry returns an empty registry whose histograms use buckets
// (milliseconds, ascending; nil: DefaultBuckets).
func NewRegistry(buckets []float64) *Registry {
	return newRegistry(buckets, SeriesPerRoute)
}

func newRegistry(buckets []float64, tableSize int) *Registry {
	if !validBuckets(buckets) {
		buckets = DefaultBuckets()
	}
	return &Registry{buckets: slices.Clone(buckets), seed: maphash.MakeSeed(), tableSize: tableSize,
		routes: make(map[string]*RouteMetrics), used: make(map[string]bool)}
}

// Buckets returns the histogram bounds in milliseconds.
func (r *Registry) Buckets() []float64 { return slices.Clone(r.buckets) }

// Route returns the handle for spec.ID, keeping the existing one when its
// labels are unchanged. A nil Registry (validation-only compiles) returns
// nil.
func (r *Registry) Route(spec RouteSpec) *RouteMetrics {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.used[spec.ID] = true
	if m, ok := r.routes[spec.ID]; ok && m.spec.equal(&spec) {
		return m
	}
	spec.URIs, spec.Hosts = slices.Clone(spec.URIs), slices.Clone(spec.Hosts)
	m := newRouteMetrics(spec, r.buckets, r.seed, r.tableSize)
	r.routes[spec.ID] = m
	return m
}

// BeginCompile starts recording which routes the next configuration uses.
func (r *Registry) BeginCompile() {
	if r == nil {
		return
	}
	r.mu.Lock()
	clear(r.used)
	r.mu.Unlock()
}

// Sweep drops every handle not asked for since BeginCompile. Requests still
// finishing on the previous configuration may count into a dropped handle;
// those few counts are lost with it.
func (r *Registry) Sweep() {
	if r == nil {
		return
	}
	r.mu.Lock()
	for id := range r.routes {
		if !r.used[id] {
			delete(r.routes, id)
		}
	}
	r.mu.Unlock()
}

// Each calls fn for every live handle, in no particular order.
func (r *Registry) Each(fn func(*RouteMetrics)) {
	if r == nil {
		return
	}
	r.mu.Lock()
	list := make([]*RouteMetrics, 0, len(r.routes))
	for _, m := range r.routes {
		list = append(list, m)
	}
	r.mu.Unlock()
	for _, m := range list {
		fn(m)
	}
}

// Len reports how many handles are live.
func (r *Registry) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.routes)
}
