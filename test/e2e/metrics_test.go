package e2e

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

var metricsAddrRe = regexp.MustCompile(`msg="sluice started".* prometheus=(\S+)`)

// metricsGateway starts a gateway whose exporter listens on a free port, with
// a shared dict to report, and returns it with the metrics URL.
func metricsGateway(t *testing.T, engine string) (*Gateway, string) {
	t.Helper()
	g := StartGateway(t, GatewayOptions{Store: "embedded", Engine: engine, Extra: `
shared_dicts:
  metrics-e2e: 1m
plugin_attr:
  prometheus:
    export_addr: {ip: 127.0.0.1, port: 0}
    default_buckets: [1, 10, 100, 1000]
`})
	m := metricsAddrRe.FindStringSubmatch(g.Stderr.String())
	if m == nil || m[1] == "off" {
		t.Fatalf("exporter address not logged:\n%s", g.Stderr.String())
	}
	return g, "http://" + m[1] + "/apisix/prometheus/metrics"
}

// metricsScrape fetches and parses the exporter's text.
func metricsScrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("scrape: %d %s", resp.StatusCode, b)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse scrape: %v", err)
	}
	return fams
}

// metricsFind returns the metrics of family name with all of labels.
func metricsFind(fams map[string]*dto.MetricFamily, name string, labels map[string]string) []*dto.Metric {
	var out []*dto.Metric
	for _, m := range fams[name].GetMetric() {
		have := map[string]string{}
		for _, lp := range m.GetLabel() {
			have[lp.GetName()] = lp.GetValue()
		}
		ok := true
		for k, v := range labels {
			if have[k] != v {
				ok = false
			}
		}
		if ok {
			out = append(out, m)
		}
	}
	return out
}

// metricsCounter is the one counter of name with labels, or fails.
func metricsCounter(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	t.Helper()
	ms := metricsFind(fams, name, labels)
	if len(ms) != 1 {
		t.Fatalf("%s%v: %d series, want 1 (all: %v)", name, labels, len(ms), fams[name].GetMetric())
	}
	return ms[0].GetCounter().GetValue()
}

func metricsGauge(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	t.Helper()
	ms := metricsFind(fams, name, labels)
	if len(ms) != 1 {
		t.Fatalf("%s%v: %d series, want 1", name, labels, len(ms))
	}
	return ms[0].GetGauge().GetValue()
}

func metricsStatusLabels(code, route, uri, service, consumer, node string) map[string]string {
	return map[string]string{"code": code, "route": route, "matched_uri": uri, "matched_host": "",
		"service": service, "consumer": consumer, "node": node}
}

// TestMetricsPrometheusPlugin drives the prometheus plugin end to end on
// both engines: exact per-label counts (status, consumer from key-auth, node),
// histogram totals, bandwidth, prefer_name, the gateway gauges, counts that
// survive an unrelated reload, a global rule (unmatched requests included),
// and series that go away with their route.
func TestMetricsPrometheusPlugin(t *testing.T) {
	pmEngines(t, []string{"fast", "std"}, func(t *testing.T, engine string) {
		up := protoNewUpstream(t, func(w http.ResponseWriter, r *http.Request, _ *protoSeen) {
			if strings.HasSuffix(r.URL.Path, "/teapot") {
				w.WriteHeader(http.StatusTeapot)
			}
			io.WriteString(w, "metrics-upstream-body")
		})
		g, murl := metricsGateway(t, engine)
		node := strings.Split(up.Addr, ":")[0]
		mustAdmin(t, g, "PUT", "/apisix/admin/upstreams/u1", fmt.Sprintf(`{"nodes":{%q:1}}`, up.Addr))
		mustAdmin(t, g, "PUT", "/apisix/admin/consumers", `{"username":"jack","plugins":{"key-auth":{"key":"jack-key"}}}`)
		mustAdmin(t, g, "PUT", "/apisix/admin/services/s1", `{"name":"svc-one","upstream_id":"u1"}`)
		mustAdmin(t, g, "PUT", "/apisix/admin/routes/r1", `{"name":"route-one","uri":"/m/*","service_id":"s1",
			"plugins":{"prometheus":{"prefer_name":true},"key-auth":{}}}`)
		mustAdmin(t, g, "PUT", "/apisix/admin/routes/r2", `{"uri":"/plain/*","upstream_id":"u1"}`)
		// Written last: once it serves, so do r1 and r2 (one store, in order).
		mustAdmin(t, g, "PUT", "/apisix/admin/routes/probe", `{"uri":"/probe","upstream_id":"u1"}`)
		pmWait(t, g.URL+"/probe", 200)

		const anon, ok, teapot = 5, 7, 3
		for range anon {
			if code, _, _ := do(t, "GET", g.URL+"/m/ok"); code != 401 {
				t.Fatalf("without key: %d", code)
			}
		}
		for range ok {
			if code, _, _ := do(t, "GET", g.URL+"/m/ok", "apikey", "jack-key"); code != 200 {
				t.Fatalf("with key: %d", code)
			}
		}
		for range teapot {
			if code, _, _ := do(t, "GET", g.URL+"/m/teapot", "apikey", "jack-key"); code != 418 {
				t.Fatalf("teapot: %d", code)
			}
		}
		do(t, "GET", g.URL+"/plain/x") // r2 has no prometheus: not counted

		fams := metricsScrape(t, murl)
		want := []struct {
			labels map[string]string
			n      float64
		}{
			{metricsStatusLabels("401", "route-one", "/m/*", "svc-one", "", ""), anon},
			{metricsStatusLabels("200", "route-one", "/m/*", "svc-one", "jack", node), ok},
			{metricsStatusLabels("418", "route-one", "/m/*", "svc-one", "jack", node), teapot},
		}
		for _, w := range want {
			if got := metricsCounter(t, fams, "apisix_http_status", w.labels); got != w.n {
				t.Errorf("apisix_http_status%v = %v, want %v", w.labels, got, w.n)
			}
		}
		if n := len(fams["apisix_http_status"].GetMetric()); n != len(want) {
			t.Errorf("%d http_status series, want %d (r2 and the probe route must not be counted)", n, len(want))
		}
		jack := map[string]string{"route": "route-one", "service": "svc-one", "consumer": "jack", "node": node}
		for _, typ := range []string{"request", "upstream", "apisix"} {
			jack["type"] = typ
			hs := metricsFind(fams, "apisix_http_latency", jack)
			if len(hs) != 1 {
				t.Fatalf("latency %s: %d series", typ, len(hs))
			}
			h := hs[0].GetHistogram()
			if h.GetSampleCount() != ok+teapot {
				t.Errorf("latency %s count = %d, want %d", typ, h.GetSampleCount(), ok+teapot)
			}
			bk := h.GetBucket()
			// default_buckets [1,10,100,1000], then +Inf holding every sample.
			if len(bk) != 5 || bk[0].GetUpperBound() != 1 || bk[3].GetUpperBound() != 1000 ||
				bk[4].GetCumulativeCount() != h.GetSampleCount() || bk[0].GetCumulativeCount() > bk[3].GetCumulativeCount() {
				t.Errorf("latency %s buckets = %v (default_buckets [1,10,100,1000])", typ, bk)
			}
		}
		// Rejected before the upstream: request and apisix latency, no upstream.
		anonLat := map[string]string{"route": "route-one", "consumer": "", "node": ""}
		anonLat["type"] = "upstream"
		if hs := metricsFind(fams, "apisix_http_latency", anonLat); len(hs) != 0 {
			t.Errorf("upstream latency for requests that never reached one: %v", hs)
		}
		anonLat["type"] = "request"
		if hs := metricsFind(fams, "apisix_http_latency", anonLat); len(hs) != 1 || hs[0].GetHistogram().GetSampleCount() != anon {
			t.Errorf("401 request latency: %v", hs)
		}
		delete(jack, "type")
		for _, typ := range []string{"ingress", "egress"} {
			jack["type"] = typ
			// Every request is at least its request line and the body
			// "metrics-upstream-body" plus a status line.
			if v := metricsCounter(t, fams, "apisix_bandwidth", jack); v < float64((ok+teapot)*20) {
				t.Errorf("bandwidth %s = %v", typ, v)
			}
		}

		host, _ := os.Hostname()
		if ms := metricsFind(fams, "apisix_node_info", map[string]string{"hostname": host}); len(ms) != 1 {
			t.Errorf("node_info for %q: %v", host, fams["apisix_node_info"])
		}
		if v := metricsGauge(t, fams, "apisix_etcd_reachable", nil); v != 1 {
			t.Errorf("etcd_reachable = %v, want 1 (embedded store)", v)
		}
		if v := metricsGauge(t, fams, "apisix_shared_dict_capacity_bytes", map[string]string{"name": "metrics-e2e"}); v != 1<<20 {
			t.Errorf("shared dict capacity = %v", v)
		}
		if v := metricsGauge(t, fams, "apisix_shared_dict_free_space_bytes", map[string]string{"name": "metrics-e2e"}); v <= 0 || v > 1<<20 {
			t.Errorf("shared dict free = %v", v)
		}
		conn := func(state string) float64 {
			return metricsGauge(t, fams, "apisix_nginx_http_current_connections", map[string]string{"state": state})
		}
		// The test client keeps its connection to the gateway open and idle.
		if conn("accepted") < 1 || conn("handled") != conn("accepted") || conn("waiting") < 1 ||
			conn("active") < conn("waiting") {
			t.Errorf("connections: active %v accepted %v handled %v waiting %v writing %v",
				conn("active"), conn("accepted"), conn("handled"), conn("waiting"), conn("writing"))
		}
		if v := metricsGauge(t, fams, "apisix_http_requests_total", nil); v < anon+ok+teapot+2 {
			t.Errorf("http_requests_total = %v", v)
		}
		if fams["go_goroutines"] == nil || fams["process_cpu_seconds_total"] == nil {
			t.Error("Go runtime / process metrics missing")
		}

		// An unrelated change reloads the configuration: counts stay.
		mustAdmin(t, g, "PUT", "/apisix/admin/routes/r9", `{"uri":"/r9","upstream_id":"u1"}`)
		pmWait(t, g.URL+"/r9", 200)
		fams = metricsScrape(t, murl)
		if got := metricsCounter(t, fams, "apisix_http_status", want[1].labels); got != ok {
			t.Errorf("after reload: %v, want %v", got, float64(ok))
		}

		// A global rule counts every route, and requests no route matched.
		mustAdmin(t, g, "PUT", "/apisix/admin/global_rules/g1", `{"plugins":{"prometheus":{}}}`)
		r2 := metricsStatusLabels("200", "r2", "/plain/*", "", "", node)
		deadline := time.Now().Add(3 * time.Second)
		for len(metricsFind(metricsScrape(t, murl), "apisix_http_status", r2)) == 0 {
			if time.Now().After(deadline) {
				t.Fatal("global rule prometheus never counted route r2")
			}
			do(t, "GET", g.URL+"/plain/x")
			time.Sleep(5 * time.Millisecond)
		}
		for range 2 {
			if code, _, _ := do(t, "GET", g.URL+"/no/such/route"); code != 404 {
				t.Fatalf("unmatched: %d", code)
			}
		}
		fams = metricsScrape(t, murl)
		if got := metricsCounter(t, fams, "apisix_http_status", metricsStatusLabels("404", "", "", "", "", "")); got != 2 {
			t.Errorf("unmatched requests = %v, want 2", got)
		}
		// r1's own config (prefer_name) still wins over the global rule's.
		if got := metricsCounter(t, fams, "apisix_http_status", want[1].labels); got != ok {
			t.Errorf("route-one after global rule: %v, want %v", got, float64(ok))
		}

		// Deleting the route drops its series.
		mustAdmin(t, g, "DELETE", "/apisix/admin/routes/r1", "")
		pmWait(t, g.URL+"/m/ok", 404)
		fams = metricsScrape(t, murl)
		if ms := metricsFind(fams, "apisix_http_status", map[string]string{"route": "route-one"}); len(ms) != 0 {
			t.Errorf("series of a deleted route remain: %v", ms)
		}
		if ms := metricsFind(fams, "apisix_http_latency", map[string]string{"route": "route-one"}); len(ms) != 0 {
			t.Errorf("latency of a deleted route remains: %v", ms)
		}
	})
}

// TestMetricsExporterOff: with prometheus out of the plugin list, no
// exporter listens; a bad plugin_attr stops the start with its field path.
func TestMetricsExporterOff(t *testing.T) {
	t.Parallel()
	g := StartGateway(t, GatewayOptions{Store: "embedded", Extra: `
plugins: [key-auth]
plugin_attr:
  prometheus:
    export_addr: {ip: 127.0.0.1, port: 0}
`})
	if m := metricsAddrRe.FindStringSubmatch(g.Stderr.String()); m == nil || m[1] != "off" {
		t.Errorf("exporter started without the plugin: %v", m)
	}
	dir := t.TempDir()
	conf := featWrite(t, dir, "sluice.yaml", "listen: {http: [\"127.0.0.1:0\"]}\nadmin: {listen: \"off\"}\n"+
		"control: {listen: \"off\"}\nplugin_attr:\n  prometheus:\n    export_addr: {port: 70000}\n    default_buckets: [5, 1]\n")
	p := featStartProc(t, dir, "-c", conf)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Fatal("gateway with a bad plugin_attr.prometheus did not exit")
	}
	if p.cmd.ProcessState.ExitCode() == 0 {
		t.Error("exit code 0")
	}
	for _, want := range []string{"plugin_attr.prometheus.export_addr.port", "plugin_attr.prometheus.default_buckets[1]"} {
		if !strings.Contains(p.Stderr.String(), want) {
			t.Errorf("start error does not name %s:\n%s", want, p.Stderr.String())
		}
	}
}

// TestMetricsUpstreamStatus: nodes under active health checks are exported
// as apisix_upstream_status, 1 for the live node and 0 for the dead one.
func TestMetricsUpstreamStatus(t *testing.T) {
	t.Parallel()
	up := protoNewUpstream(t, nil)
	dead := featClosedAddr(t)
	g, murl := metricsGateway(t, "fast")
	mustAdmin(t, g, "PUT", "/apisix/admin/upstreams/hc", fmt.Sprintf(`{"nodes":{%q:1,%q:1},
		"checks":{"active":{"type":"http","http_path":"/","timeout":1,
		"healthy":{"interval":1,"successes":1},"unhealthy":{"interval":1,"http_failures":1,"tcp_failures":1}}}}`,
		up.Addr, dead))
	mustAdmin(t, g, "PUT", "/apisix/admin/routes/hc", `{"uri":"/hc","upstream_id":"hc"}`)
	liveIP, livePort, _ := strings.Cut(up.Addr, ":")
	deadIP, deadPort, _ := strings.Cut(dead, ":")
	deadline := time.Now().Add(8 * time.Second)
	for {
		fams := metricsScrape(t, murl)
		live := metricsFind(fams, "apisix_upstream_status", map[string]string{"name": "/apisix/upstreams/hc", "ip": liveIP, "port": livePort})
		gone := metricsFind(fams, "apisix_upstream_status", map[string]string{"name": "/apisix/upstreams/hc", "ip": deadIP, "port": deadPort})
		if len(live) == 1 && len(gone) == 1 && live[0].GetGauge().GetValue() == 1 && gone[0].GetGauge().GetValue() == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("upstream_status never showed live=1 dead=0: %v", fams["apisix_upstream_status"].GetMetric())
		}
		time.Sleep(100 * time.Millisecond)
	}
}
