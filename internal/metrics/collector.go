package metrics

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// ConnStats are the client connection counters behind
// apisix_nginx_http_current_connections and apisix_http_requests_total
// (nginx's stub_status).
type ConnStats struct {
	Active, Accepted, Handled, Reading, Writing, Waiting uint64
	// Requests counts client requests since start.
	Requests uint64
}

// UpstreamHealth is one node's health-check verdict (apisix_upstream_status).
type UpstreamHealth struct {
	// Name is the upstream's resource key (APISIX: the checker's name, such
	// as "/apisix/routes/1" or "/apisix/upstreams/1").
	Name    string
	IP      string
	Port    int
	Healthy bool
}

// DictStat is one shared dict's size (apisix_shared_dict_*).
type DictStat struct {
	Name           string
	Capacity, Free int
}

// Sources are where the gateway-wide gauges come from; any may be nil, and
// the metric is then left out.
type Sources struct {
	// Routes are the per-route handles.
	Routes *Registry
	// Conns reads the server's connection counters.
	Conns func() ConnStats
	// StoreReachable reports whether the configuration store answers; ok is
	// false when the store has no such notion (apisix_etcd_reachable is then
	// left out, as APISIX does for a non-etcd config provider).
	StoreReachable func() (reachable, ok bool)
	// Revision is the store revision served (apisix_etcd_modify_indexes
	// {key="max_modify_index"}); called only when StoreReachable says ok.
	Revision func() int64
	// Upstreams lists health-check verdicts.
	Upstreams func() []UpstreamHealth
	// Dicts lists the shared dicts.
	Dicts func() []DictStat
	// Hostname and Version label apisix_node_info.
	Hostname, Version string
}

// Collector renders the gateway's metrics on each scrape.
type Collector struct {
	src Sources

	status, latency, bandwidth                        *prometheus.Desc
	requests, conns, etcdReachable, etcdIndexes, node *prometheus.Desc
	upstreamStatus, dictCapacity, dictFree            *prometheus.Desc
}

// NewCollector returns a collector whose metric names start with prefix
// ("apisix_").
func NewCollector(prefix string, src Sources) *Collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(prefix+name, help, labels, nil)
	}
	return &Collector{
		src: src,
		status: d("http_status", "HTTP status codes per service in APISIX",
			"code", "route", "matched_uri", "matched_host", "service", "consumer", "node"),
		latency: d("http_latency", "HTTP request latency in milliseconds per service in APISIX",
			"type", "route", "service", "consumer", "node"),
		bandwidth: d("bandwidth", "Total bandwidth in bytes consumed per service in APISIX",
			"type", "route", "service", "consumer", "node"),
		requests:       d("http_requests_total", "The total number of client requests since APISIX started"),
		conns:          d("nginx_http_current_connections", "Number of HTTP connections", "state"),
		etcdReachable:  d("etcd_reachable", "Config server etcd reachable from APISIX, 0 is unreachable"),
		etcdIndexes:    d("etcd_modify_indexes", "Etcd modify index for APISIX keys", "key"),
		node:           d("node_info", "Info of APISIX node", "hostname", "version"),
		upstreamStatus: d("upstream_status", "Upstream status from health check", "name", "ip", "port"),
		dictCapacity:   d("shared_dict_capacity_bytes", "The capacity of each nginx shared DICT since APISIX start", "name"),
		dictFree:       d("shared_dict_free_space_bytes", "The free space of each nginx shared DICT since APISIX start", "name"),
	}
}

// Describe sends every metric's description.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.status, c.latency, c.bandwidth, c.requests, c.conns, c.etcdReachable,
		c.etcdIndexes, c.node, c.upstreamStatus, c.dictCapacity, c.dictFree} {
		ch <- d
	}
}

// Collect renders the current values.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	if c.src.Conns != nil {
		s := c.src.Conns()
		gauge(c.requests, float64(s.Requests))
		for _, st := range []struct {
			name string
			v    uint64
		}{{"active", s.Active}, {"accepted", s.Accepted}, {"handled", s.Handled},
			{"reading", s.Reading}, {"writing", s.Writing}, {"waiting", s.Waiting}} {
			gauge(c.conns, float64(st.v), st.name)
		}
	}
	if c.src.StoreReachable != nil {
		if up, ok := c.src.StoreReachable(); ok {
			gauge(c.etcdReachable, b2f(up))
			if c.src.Revision != nil {
				gauge(c.etcdIndexes, float64(c.src.Revision()), "max_modify_index")
			}
		}
	}
	gauge(c.node, 1, c.src.Hostname, c.src.Version)
	if c.src.Upstreams != nil {
		for _, u := range c.src.Upstreams() {
			gauge(c.upstreamStatus, b2f(u.Healthy), u.Name, u.IP, strconv.Itoa(u.Port))
		}
	}
	if c.src.Dicts != nil {
		for _, d := range c.src.Dicts() {
			gauge(c.dictCapacity, float64(d.Capacity), d.Name)
			gauge(c.dictFree, float64(d.Free), d.Name)
		}
	}
	c.src.Routes.Each(func(m *RouteMetrics) { c.collectRoute(ch, m) })
}

// peerKey groups a route's series for the metrics that have no code or
// matched labels (latency, bandwidth).
type peerKey struct{ consumer, node string }

type peerAgg struct {
	ingress, egress uint64
	buckets         []uint64
	sumNs           [latTypes]int64
}

func (c *Collector) collectRoute(ch chan<- prometheus.Metric, m *RouteMetrics) {
	sp := &m.spec
	nb := len(m.buckets) + 1
	peers := make(map[peerKey]*peerAgg)
	var order []peerKey
	m.each(func(s *series) {
		mp := m.matched[s.key.matched]
		ch <- prometheus.MustNewConstMetric(c.status, prometheus.CounterValue, float64(s.requests.Load()),
			strconv.Itoa(s.key.code), sp.Route, mp.uri, mp.host, sp.Service, s.key.consumer, s.key.node)
		pk := peerKey{s.key.consumer, s.key.node}
		a := peers[pk]
		if a == nil {
			a = &peerAgg{buckets: make([]uint64, latTypes*nb)}
			peers[pk] = a
			order = append(order, pk)
		}
		a.ingress += s.ingress.Load()
		a.egress += s.egress.Load()
		for i := range a.buckets {
			a.buckets[i] += s.buckets[i].Load()
		}
		for t := range a.sumNs {
			a.sumNs[t] += s.sumNs[t].Load()
		}
	})
	for _, pk := range order {
		a := peers[pk]
		ch <- prometheus.MustNewConstMetric(c.bandwidth, prometheus.CounterValue, float64(a.ingress),
			"ingress", sp.Route, sp.Service, pk.consumer, pk.node)
		ch <- prometheus.MustNewConstMetric(c.bandwidth, prometheus.CounterValue, float64(a.egress),
			"egress", sp.Route, sp.Service, pk.consumer, pk.node)
		for t := range latTypes {
			run := a.buckets[t*nb : (t+1)*nb]
			var count uint64
			cum := make(map[float64]uint64, len(m.buckets))
			for i, bound := range m.buckets {
				count += run[i]
				cum[bound] = count
			}
			count += run[len(m.buckets)]
			if count == 0 {
				continue // no upstream latency for requests that never reached one
			}
			sum := float64(a.sumNs[t]) / float64(time.Millisecond)
			ch <- prometheus.MustNewConstHistogram(c.latency, count, sum, cum,
				latencyTypeNames[t], sp.Route, sp.Service, pk.consumer, pk.node)
		}
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
