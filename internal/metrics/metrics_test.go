package metrics

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/sluicegw/sluice/plugin"
	"github.com/sluicegw/sluice/plugin/plugintest"
)

// scrape serves the registry through the real exporter handler on a real
// socket and parses the text it returns.
func scrape(t testing.TB, attr Attr, src Sources) map[string]*dto.MetricFamily {
	t.Helper()
	h, err := NewHandler(attr, src, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Get(srv.URL + attr.ExportURI)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("scrape status %d: %s", resp.StatusCode, b)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse scrape: %v", err)
	}
	return fams
}

// find returns the metric of family name whose labels include want.
func find(fams map[string]*dto.MetricFamily, name string, want map[string]string) []*dto.Metric {
	f := fams[name]
	if f == nil {
		return nil
	}
	var out []*dto.Metric
	for _, m := range f.Metric {
		ok := true
		for k, v := range want {
			found := false
			for _, lp := range m.Label {
				if lp.GetName() == k && lp.GetValue() == v {
					found = true
				}
			}
			ok = ok && found
		}
		if ok {
			out = append(out, m)
		}
	}
	return out
}

func ctxFor(status int, consumer, upstream string, latency, upLatency time.Duration) *plugin.Ctx {
	c := &plugin.Ctx{}
	c.Served = plugin.Served{Status: status, RequestLength: 100, BytesSent: 250, Latency: latency,
		UpstreamAddr: upstream, UpstreamLatency: upLatency}
	if consumer != "" {
		c.Consumer = &plugin.Consumer{Username: consumer}
	}
	return c
}

func TestConcurrentObserveIsExact(t *testing.T) {
	t.Parallel()
	reg := NewRegistry(nil)
	m := reg.Route(RouteSpec{ID: "1", Route: "1", Service: "s1", URIs: []string{"/hello"}})
	ctxs := []*plugin.Ctx{
		ctxFor(200, "", "127.0.0.1:1980", 3*time.Millisecond, time.Millisecond),
		ctxFor(200, "jack", "127.0.0.1:1980", 3*time.Millisecond, time.Millisecond),
		ctxFor(404, "jack", "127.0.0.1:1981", 3*time.Millisecond, time.Millisecond),
		ctxFor(502, "", "[::1]:1982", 3*time.Millisecond, time.Millisecond),
	}
	const workers, perWorker = 8, 5000
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWorker {
				m.Observe(ctxs[(w+i)%len(ctxs)])
			}
		}()
	}
	wg.Wait()
	fams := scrape(t, DefaultAttr(), Sources{Routes: reg})
	want := workers * perWorker / len(ctxs)
	for _, tc := range []map[string]string{
		{"code": "200", "consumer": "", "node": "127.0.0.1"},
		{"code": "200", "consumer": "jack", "node": "127.0.0.1"},
		{"code": "404", "consumer": "jack", "node": "127.0.0.1"},
		{"code": "502", "consumer": "", "node": "::1"},
	} {
		tc["route"], tc["service"], tc["matched_uri"], tc["matched_host"] = "1", "s1", "/hello", ""
		ms := find(fams, "apisix_http_status", tc)
		if len(ms) != 1 || ms[0].GetCounter().GetValue() != float64(want) {
			t.Errorf("%v: got %v, want one series of %d", tc, ms, want)
		}
	}
	if n := len(fams["apisix_http_status"].GetMetric()); n != len(ctxs) {
		t.Errorf("%d status series, want %d", n, len(ctxs))
	}
	// Latency and bandwidth have no code label: jack's 200s and 404s on
	// 127.0.0.1 are separate nodes (1980 and 1981 share the IP, so one).
	jack := find(fams, "apisix_http_latency", map[string]string{"type": "request", "consumer": "jack", "node": "127.0.0.1"})
	if len(jack) != 1 || jack[0].GetHistogram().GetSampleCount() != uint64(2*want) {
		t.Errorf("jack request latency = %v, want count %d", jack, 2*want)
	}
	in := find(fams, "apisix_bandwidth", map[string]string{"type": "ingress", "consumer": "jack"})
	out := find(fams, "apisix_bandwidth", map[string]string{"type": "egress", "consumer": "jack"})
	if len(in) != 1 || in[0].GetCounter().GetValue() != float64(100*2*want) ||
		len(out) != 1 || out[0].GetCounter().GetValue() != float64(250*2*want) {
		t.Errorf("jack bandwidth in=%v out=%v", in, out)
	}
}

func TestHistogramBuckets(t *testing.T) {
	t.Parallel()
	reg := NewRegistry([]float64{1, 10, 100})
	m := reg.Route(RouteSpec{ID: "r", Route: "r"})
	for _, d := range []time.Duration{500 * time.Microsecond, time.Millisecond, 3 * time.Millisecond,
		70 * time.Millisecond, 100 * time.Second} {
		m.Observe(ctxFor(200, "", "10.0.0.1:80", d, d/2))
	}
	// A request that never reached an upstream: no upstream latency.
	m.Observe(ctxFor(503, "", "", 2*time.Millisecond, 0))
	fams := scrape(t, DefaultAttr(), Sources{Routes: reg})
	req := find(fams, "apisix_http_latency", map[string]string{"type": "request", "node": "10.0.0.1"})
	if len(req) != 1 {
		t.Fatalf("request latency series: %v", req)
	}
	h := req[0].GetHistogram()
	got := map[float64]uint64{}
	for _, b := range h.GetBucket() {
		got[b.GetUpperBound()] = b.GetCumulativeCount()
	}
	// le is inclusive: 1 ms lands in the 1 ms bucket.
	want := map[float64]uint64{1: 2, 10: 3, 100: 4}
	for le, n := range want {
		if got[le] != n {
			t.Errorf("bucket le=%v: %d, want %d (all %v)", le, got[le], n, got)
		}
	}
	if h.GetSampleCount() != 5 {
		t.Errorf("count %d, want 5", h.GetSampleCount())
	}
	if s := h.GetSampleSum(); s < 100074.49 || s > 100074.51 {
		t.Errorf("sum %v ms, want 100074.5", s)
	}
	up := find(fams, "apisix_http_latency", map[string]string{"type": "upstream", "node": ""})
	if len(up) != 0 {
		t.Errorf("upstream latency for a request without upstream: %v", up)
	}
	ap := find(fams, "apisix_http_latency", map[string]string{"type": "apisix", "node": ""})
	if len(ap) != 1 || ap[0].GetHistogram().GetSampleSum() != 2 {
		t.Errorf("apisix latency without upstream = %v, want the whole 2 ms", ap)
	}
	// apisix latency = request - upstream: each was d/2.
	apx := find(fams, "apisix_http_latency", map[string]string{"type": "apisix", "node": "10.0.0.1"})
	if len(apx) != 1 || apx[0].GetHistogram().GetSampleSum() != 50037.25 {
		t.Errorf("apisix latency = %v", apx)
	}
}

func TestSeriesOverflow(t *testing.T) {
	t.Parallel()
	reg := newRegistry(nil, 4)
	m := reg.Route(RouteSpec{ID: "r", Route: "r"})
	const distinct = 20
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range distinct * 10 {
				m.Observe(ctxFor(200+(i+w)%distinct, "", "", time.Millisecond, 0))
			}
		}()
	}
	wg.Wait()
	if n := m.overflowLen(); n != distinct-4 {
		t.Errorf("overflow holds %d series, want %d (table of 4)", n, distinct-4)
	}
	fams := scrape(t, DefaultAttr(), Sources{Routes: reg})
	ms := fams["apisix_http_status"].GetMetric()
	if len(ms) != distinct {
		t.Fatalf("%d series, want %d", len(ms), distinct)
	}
	for _, x := range ms {
		if x.GetCounter().GetValue() != 40 {
			t.Errorf("%v: %v, want 40", x.GetLabel(), x.GetCounter().GetValue())
		}
	}
}

func TestMatchedPatterns(t *testing.T) {
	t.Parallel()
	reg := NewRegistry(nil)
	m := reg.Route(RouteSpec{ID: "r", Route: "r", URIs: []string{"/a", "/b/*"}, Hosts: []string{"x.com", "*.y.com"}})
	for _, tc := range []struct{ host, path string }{
		{"x.com", "/a"}, {"x.com", "/b/1"}, {"api.y.com", "/b/2"}, {"api.y.com", "/b/3"},
	} {
		c := ctxFor(200, "", "", time.Millisecond, 0)
		r := plugintest.NewRequest("GET", tc.path)
		r.H = tc.host
		c.Request = r
		m.Observe(c)
	}
	fams := scrape(t, DefaultAttr(), Sources{Routes: reg})
	for _, tc := range []struct {
		uri, host string
		n         float64
	}{{"/a", "x.com", 1}, {"/b/*", "x.com", 1}, {"/b/*", "*.y.com", 2}} {
		ms := find(fams, "apisix_http_status", map[string]string{"matched_uri": tc.uri, "matched_host": tc.host})
		if len(ms) != 1 || ms[0].GetCounter().GetValue() != tc.n {
			t.Errorf("%s %s: %v, want %v", tc.host, tc.uri, ms, tc.n)
		}
	}
}

func TestRegistryKeepsAndSweeps(t *testing.T) {
	t.Parallel()
	reg := NewRegistry(nil)
	spec := RouteSpec{ID: "1", Route: "1", URIs: []string{"/a"}}
	a := reg.Route(spec)
	a.Observe(ctxFor(200, "", "", time.Millisecond, 0))
	reg.BeginCompile()
	b := reg.Route(spec)
	reg.Route(RouteSpec{ID: "2", Route: "2"})
	reg.Sweep()
	if a != b {
		t.Fatal("unchanged route got a new handle: counts would reset on reload")
	}
	reg.BeginCompile()
	renamed := reg.Route(RouteSpec{ID: "1", Route: "one", URIs: []string{"/a"}})
	reg.Sweep()
	if renamed == a {
		t.Error("a renamed route kept its old labels")
	}
	if reg.Len() != 1 {
		t.Errorf("route 2 not swept: %d handles", reg.Len())
	}
	var nilReg *Registry
	if nilReg.Route(spec) != nil {
		t.Error("nil registry (validation compile) built a handle")
	}
}

func TestObserveDoesNotAllocate(t *testing.T) {
	reg := NewRegistry(nil)
	m := reg.Route(RouteSpec{ID: "1", Route: "1", URIs: []string{"/a", "/b"}})
	c := ctxFor(200, "jack", "127.0.0.1:8080", 5*time.Millisecond, 2*time.Millisecond)
	c.Request = plugintest.NewRequest("GET", "/b")
	m.Observe(c)
	if n := testing.AllocsPerRun(1000, func() { m.Observe(c) }); n != 0 {
		t.Errorf("Observe allocates %v times per request", n)
	}
}

func TestGatewayGauges(t *testing.T) {
	t.Parallel()
	src := Sources{
		Routes: NewRegistry(nil),
		Conns: func() ConnStats {
			return ConnStats{Active: 3, Accepted: 10, Handled: 10, Writing: 1, Waiting: 2, Requests: 42}
		},
		StoreReachable: func() (bool, bool) { return false, true },
		Revision:       func() int64 { return 17 },
		Upstreams: func() []UpstreamHealth {
			return []UpstreamHealth{{Name: "/apisix/upstreams/1", IP: "10.0.0.1", Port: 80, Healthy: true},
				{Name: "/apisix/upstreams/1", IP: "10.0.0.2", Port: 80}}
		},
		Dicts:    func() []DictStat { return []DictStat{{Name: "plugin-limit-count", Capacity: 1 << 20, Free: 1000}} },
		Hostname: "h1", Version: "v9",
	}
	attr := DefaultAttr()
	attr.MetricPrefix = "gw_"
	fams := scrape(t, attr, src)
	checks := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"gw_http_requests_total", nil, 42},
		{"gw_nginx_http_current_connections", map[string]string{"state": "active"}, 3},
		{"gw_nginx_http_current_connections", map[string]string{"state": "accepted"}, 10},
		{"gw_nginx_http_current_connections", map[string]string{"state": "waiting"}, 2},
		{"gw_nginx_http_current_connections", map[string]string{"state": "reading"}, 0},
		{"gw_etcd_reachable", nil, 0},
		{"gw_etcd_modify_indexes", map[string]string{"key": "max_modify_index"}, 17},
		{"gw_node_info", map[string]string{"hostname": "h1", "version": "v9"}, 1},
		{"gw_upstream_status", map[string]string{"ip": "10.0.0.1", "port": "80"}, 1},
		{"gw_upstream_status", map[string]string{"ip": "10.0.0.2", "port": "80"}, 0},
		{"gw_shared_dict_capacity_bytes", map[string]string{"name": "plugin-limit-count"}, 1 << 20},
		{"gw_shared_dict_free_space_bytes", map[string]string{"name": "plugin-limit-count"}, 1000},
	}
	for _, c := range checks {
		ms := find(fams, c.name, c.labels)
		if len(ms) != 1 || ms[0].GetGauge().GetValue() != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, ms, c.want)
		}
	}
	if fams["go_goroutines"] == nil || fams["process_open_fds"] == nil && fams["process_cpu_seconds_total"] == nil {
		t.Error("Go runtime or process metrics missing")
	}
}

func TestExporterPaths(t *testing.T) {
	t.Parallel()
	h, err := NewHandler(DefaultAttr(), Sources{Routes: NewRegistry(nil)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	for _, tc := range []struct {
		method, path string
		want         int
	}{{"GET", "/apisix/prometheus/metrics", 200}, {"GET", "/metrics", 404}, {"POST", "/apisix/prometheus/metrics", 405}} {
		req, _ := http.NewRequest(tc.method, srv.URL+tc.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s %s = %d, want %d", tc.method, tc.path, resp.StatusCode, tc.want)
		}
	}
}

func TestParseAttr(t *testing.T) {
	t.Parallel()
	a, err := ParseAttr(map[string]any{
		"export_addr": map[string]any{"ip": "0.0.0.0", "port": float64(9100)}, "export_uri": "/m",
		"metric_prefix": "gw_", "default_buckets": []any{float64(5), 50, float64(500)}, "enable_export_server": false,
		"refresh_interval": 15,
	})
	if err != nil {
		t.Fatal(err)
	}
	if a.Addr() != "0.0.0.0:9100" || a.ExportURI != "/m" || a.MetricPrefix != "gw_" ||
		fmt.Sprint(a.Buckets) != "[5 50 500]" || a.EnableExportServer {
		t.Errorf("parsed %+v", a)
	}
	if d, err := ParseAttr(nil); err != nil || d.Addr() != "127.0.0.1:9091" || d.ExportURI != "/apisix/prometheus/metrics" ||
		d.MetricPrefix != "apisix_" || len(d.Buckets) != 15 || !d.EnableExportServer {
		t.Errorf("defaults %+v %v", d, err)
	}
	for _, tc := range []struct {
		raw  map[string]any
		want string
	}{
		{map[string]any{"export_addr": map[string]any{"port": 70000}}, "plugin_attr.prometheus.export_addr.port: must be an integer between 0 and 65535"},
		{map[string]any{"export_addr": map[string]any{"ip": "nope"}}, "plugin_attr.prometheus.export_addr.ip: must be an IP address"},
		{map[string]any{"export_addr": "x"}, "plugin_attr.prometheus.export_addr: must be an object with ip and port"},
		{map[string]any{"export_uri": "metrics"}, `plugin_attr.prometheus.export_uri: must be a path starting with "/"`},
		{map[string]any{"metric_prefix": "9x"}, "plugin_attr.prometheus.metric_prefix: must be letters"},
		{map[string]any{"default_buckets": []any{10, 5}}, "plugin_attr.prometheus.default_buckets[1]: must be greater than the previous bucket"},
		{map[string]any{"default_buckets": []any{"a"}}, "plugin_attr.prometheus.default_buckets[0]: must be a positive number"},
		{map[string]any{"enable_export_server": "yes"}, "plugin_attr.prometheus.enable_export_server: must be a boolean"},
		{map[string]any{"metrics": map[string]any{}}, "plugin_attr.prometheus.metrics: extra_labels and expire are not supported"},
		{map[string]any{"exportaddr": 1}, "plugin_attr.prometheus.exportaddr: unknown field"},
	} {
		_, err := ParseAttr(tc.raw)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err %v, want %q", tc.raw, err, tc.want)
		}
	}
}
