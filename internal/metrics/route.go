// Package metrics counts requests per route for the prometheus plugin and
// exports them, with the gateway's own gauges, in APISIX's metric names.
//
// The hot path is RouteMetrics.Observe: one per request, after the log
// phase. It takes no lock and, once a series has been seen, allocates
// nothing. Each route that runs the prometheus plugin gets a RouteMetrics
// handle when a configuration is compiled; the Registry keeps the handle
// across configurations (keyed by route id) so counters survive reloads, and
// drops it when the route goes away. Series (one per status code, consumer,
// node and matched pattern) live in a small fixed-size open-addressing table
// of pointers inside the handle: a new series is published with one
// compare-and-swap, and a lookup is a hash and a few pointer loads. Only past
// SeriesPerRoute distinct series does a handle fall back to a mutex-guarded
// map, which a route with that many distinct label sets deserves.
package metrics

import (
	"hash/maphash"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicegw/sluice/internal/router"
	"github.com/sluicegw/sluice/plugin"
)

// SeriesPerRoute is the default size of a route's lock-free series table.
// A route seldom sees more than a handful of (status, consumer, node)
// combinations; past this many, new series go to the locked overflow map.
const SeriesPerRoute = 64

// Latency types of apisix_http_latency, in label order.
const (
	latRequest = iota
	latUpstream
	latAPISIX
	latTypes
)

var latencyTypeNames = [latTypes]string{"request", "upstream", "apisix"}

// RouteSpec is what identifies a route's handle: the label values fixed for
// the route. A handle is reused across configurations only while its spec is
// unchanged (a rename under prefer_name starts new series).
type RouteSpec struct {
	// ID is the route id (the registry key); "" for the handle that counts
	// requests no route matched.
	ID string
	// Route and Service are the route and service label values (ids, or
	// names under prefer_name).
	Route, Service string
	// URIs and Hosts are the route's uri and host patterns. With one of
	// each, matched_uri/matched_host are simply them; with several, the
	// pattern that matches the request is found at Observe time.
	URIs, Hosts []string
}

func (s *RouteSpec) equal(o *RouteSpec) bool {
	return s.ID == o.ID && s.Route == o.Route && s.Service == o.Service &&
		slices.Equal(s.URIs, o.URIs) && slices.Equal(s.Hosts, o.Hosts)
}

// RouteMetrics is one route's counters. It is safe for concurrent use.
type RouteMetrics struct {
	spec    RouteSpec
	buckets []float64 // upper bounds in ms, ascending
	seed    maphash.Seed
	// matched lists the (uri, host) label pairs; matcher picks one when
	// there are several (nil: always matched[0]).
	matched []matchedPair
	matcher *router.Router[int]

	slots []atomic.Pointer[series]
	mask  uint64

	overMu sync.Mutex
	over   map[seriesKey]*series
}

type matchedPair struct{ uri, host string }

// seriesKey is the dynamic part of a series' labels.
type seriesKey struct {
	code     int
	matched  int
	consumer string
	node     string
}

// series holds the counters of one label set. Its key is written before the
// series is published and never changes.
type series struct {
	hash uint64
	key  seriesKey

	requests atomic.Uint64
	ingress  atomic.Uint64 // bytes received ($request_length)
	egress   atomic.Uint64 // bytes sent ($bytes_sent)
	// buckets holds latTypes runs of len(buckets)+1 non-cumulative counts;
	// the last of each run counts values above every bound.
	buckets []atomic.Uint64
	sumNs   [latTypes]atomic.Int64
}

func newRouteMetrics(spec RouteSpec, buckets []float64, seed maphash.Seed, tableSize int) *RouteMetrics {
	size := 1
	for size < tableSize {
		size <<= 1
	}
	m := &RouteMetrics{spec: spec, buckets: buckets, seed: seed,
		slots: make([]atomic.Pointer[series], size), mask: uint64(size - 1)}
	uris, hosts := spec.URIs, spec.Hosts
	if len(uris) == 0 {
		uris = []string{""}
	}
	if len(hosts) == 0 {
		hosts = []string{""}
	}
	for _, u := range uris {
		for _, h := range hosts {
			m.matched = append(m.matched, matchedPair{u, h})
		}
	}
	if len(m.matched) > 1 {
		m.matcher = buildMatcher(spec.URIs, spec.Hosts)
	}
	return m
}

// buildMatcher compiles the route's own uri × host patterns into a router
// whose value is the index into matched, so Observe learns which pattern
// matched with the gateway's own matching rules and without allocating.
func buildMatcher(uris, hosts []string) *router.Router[int] {
	hostList := hosts
	if len(hostList) == 0 {
		hostList = []string{""}
	}
	var entries []router.Route[int]
	for ui, u := range uris {
		for hi, h := range hostList {
			e := router.Route[int]{ID: strconv.Itoa(len(entries)), URIs: []string{u}, Value: ui*len(hostList) + hi}
			if h != "" {
				e.Hosts = []string{h}
			}
			entries = append(entries, e)
		}
	}
	r, err := router.New(entries)
	if err != nil {
		return nil // the route compiled with these patterns; nil falls back to the first pair
	}
	return r
}

// Spec returns the handle's fixed labels.
func (m *RouteMetrics) Spec() RouteSpec { return m.spec }

// Observe counts one answered request from the log-phase facts in c
// (c.Served, c.Consumer, c.Request). It takes no lock and does not allocate
// once the request's series exists.
func (m *RouteMetrics) Observe(c *plugin.Ctx) {
	s := &c.Served
	k := seriesKey{code: s.Status, node: hostOf(s.UpstreamAddr)}
	if k.code == 0 {
		k.code = 499 // nginx's code for a client that went away before the answer
	}
	if c.Consumer != nil {
		k.consumer = c.Consumer.Username
	}
	if m.matcher != nil && c.Request != nil {
		if i, ok := m.matcher.Match(c.Request); ok {
			k.matched = i
		}
	}
	se := m.series(&k)
	se.requests.Add(1)
	if s.RequestLength > 0 {
		se.ingress.Add(uint64(s.RequestLength))
	}
	if s.BytesSent > 0 {
		se.egress.Add(uint64(s.BytesSent))
	}
	total := max(s.Latency, 0)
	m.observeLatency(se, latRequest, total)
	apisix := total
	if s.UpstreamAddr != "" {
		up := max(s.UpstreamLatency, 0)
		m.observeLatency(se, latUpstream, up)
		apisix = max(total-up, 0)
	}
	m.observeLatency(se, latAPISIX, apisix)
}

func (m *RouteMetrics) observeLatency(se *series, typ int, d time.Duration) {
	ms := float64(d) / float64(time.Millisecond)
	// Few bounds (15 by default): a linear scan beats a binary search.
	i := 0
	for i < len(m.buckets) && ms > m.buckets[i] {
		i++
	}
	se.buckets[typ*(len(m.buckets)+1)+i].Add(1)
	se.sumNs[typ].Add(int64(d))
}

// hostOf strips the port from "host:port" ("[v6]:port" too), like nginx's
// balancer_ip, which APISIX uses for the node label.
func hostOf(addr string) string {
	i := strings.LastIndexByte(addr, ':')
	if i < 0 {
		return addr
	}
	h := addr[:i]
	if len(h) >= 2 && h[0] == '[' && h[len(h)-1] == ']' {
		h = h[1 : len(h)-1]
	}
	return h
}

func (m *RouteMetrics) hash(k *seriesKey) uint64 {
	h := maphash.String(m.seed, k.consumer)
	h ^= maphash.String(m.seed, k.node) * 0x9e3779b97f4a7c15
	h ^= uint64(k.code)<<32 | uint64(uint32(k.matched))
	h ^= h >> 29
	h *= 0xbf58476d1ce4e5b9
	return h ^ h>>32
}

// series finds or creates the series of k: linear probing over the
// lock-free table, then the overflow map once the table is full.
func (m *RouteMetrics) series(k *seriesKey) *series {
	h := m.hash(k)
	var fresh *series
	for i := uint64(0); i <= m.mask; i++ {
		slot := &m.slots[(h+i)&m.mask]
		for {
			s := slot.Load()
			if s == nil {
				if fresh == nil {
					fresh = m.newSeries(h, k)
				}
				if slot.CompareAndSwap(nil, fresh) {
					return fresh
				}
				continue // another goroutine took the slot: look at what it put there
			}
			if s.hash == h && s.key == *k {
				return s
			}
			break
		}
	}
	return m.overflow(h, k, fresh)
}

func (m *RouteMetrics) overflow(h uint64, k *seriesKey, fresh *series) *series {
	m.overMu.Lock()
	defer m.overMu.Unlock()
	if s, ok := m.over[*k]; ok {
		return s
	}
	if fresh == nil {
		fresh = m.newSeries(h, k)
	}
	if m.over == nil {
		m.over = make(map[seriesKey]*series)
	}
	m.over[fresh.key] = fresh
	return fresh
}

// newSeries copies k's strings: they may point into a connection's buffers.
func (m *RouteMetrics) newSeries(h uint64, k *seriesKey) *series {
	return &series{
		hash:    h,
		key:     seriesKey{code: k.code, matched: k.matched, consumer: strings.Clone(k.consumer), node: strings.Clone(k.node)},
		buckets: make([]atomic.Uint64, latTypes*(len(m.buckets)+1)),
	}
}

// each calls fn for every series, the table's then the overflow's.
func (m *RouteMetrics) each(fn func(*series)) {
	for i := range m.slots {
		if s := m.slots[i].Load(); s != nil {
			fn(s)
		}
	}
	m.overMu.Lock()
	over := make([]*series, 0, len(m.over))
	for _, s := range m.over {
		over = append(over, s)
	}
	m.overMu.Unlock()
	for _, s := range over {
		fn(s)
	}
}

// overflowLen reports how many series live in the overflow map.
func (m *RouteMetrics) overflowLen() int {
	m.overMu.Lock()
	defer m.overMu.Unlock()
	return len(m.over)
}

// DefaultBuckets are APISIX's latency buckets in milliseconds, 1 ms to 60 s.
func DefaultBuckets() []float64 {
	return []float64{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 30000, 60000}
}

// validBuckets reports whether b is strictly ascending and finite.
func validBuckets(b []float64) bool {
	for i, v := range b {
		if math.IsNaN(v) || math.IsInf(v, 0) || (i > 0 && v <= b[i-1]) {
			return false
		}
	}
	return len(b) > 0
}
