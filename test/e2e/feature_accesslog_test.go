package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// featLogLine is one access-log record; pointers tell a missing field from a
// zero one.
type featLogLine struct {
	Time              *string  `json:"time"`
	Client            *string  `json:"client"`
	Method            *string  `json:"method"`
	Host              *string  `json:"host"`
	URI               *string  `json:"uri"`
	Status            *int     `json:"status"`
	Bytes             *int64   `json:"bytes"`
	RouteID           *string  `json:"route_id"`
	UpstreamAddr      *string  `json:"upstream_addr"`
	UpstreamStatus    *int     `json:"upstream_status"`
	UpstreamLatencyMS *float64 `json:"upstream_latency_ms"`
	LatencyMS         *float64 `json:"latency_ms"`
}

func featParseLog(t testing.TB, line string) featLogLine {
	t.Helper()
	var l featLogLine
	dec := json.NewDecoder(strings.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&l); err != nil {
		t.Fatalf("access log line is not the expected JSON: %v\n%s", err, line)
	}
	if l.Time == nil || l.Client == nil || l.Method == nil || l.Host == nil || l.URI == nil || l.Status == nil ||
		l.Bytes == nil || l.RouteID == nil || l.UpstreamAddr == nil || l.UpstreamStatus == nil ||
		l.UpstreamLatencyMS == nil || l.LatencyMS == nil {
		t.Fatalf("access log line misses fields: %s", line)
	}
	return l
}

// TestFeatureAccessLog checks the fields of the JSON access log.
func TestFeatureAccessLog(t *testing.T) {
	t.Parallel()
	for _, engine := range featEngines {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			up := featNewUpstream(t, "up", func(w http.ResponseWriter, r *http.Request) {
				switch r.URL.Path {
				case "/slow":
					time.Sleep(150 * time.Millisecond)
					io.WriteString(w, "slow body")
				case "/teapot":
					w.WriteHeader(418)
					io.WriteString(w, "short and stout")
				default:
					io.WriteString(w, "hello")
				}
			})
			dead := featClosedAddr(t)
			res := fmt.Sprintf(`upstreams:
  - id: u
    nodes: {%q: 1}
  - id: dead
    nodes: {%q: 1}
routes:
  - {id: "main", uris: ["/ok", "/teapot", "/slow"], upstream_id: u}
  - {id: "broken", uri: "/dead", upstream_id: dead}
`, up.Addr, dead)
			g := featGateway(t, GatewayOptions{Resources: res, Engine: engine})
			c := featClient(5 * time.Second)
			start := time.Now().Add(-time.Second)
			type want struct {
				method, uri, host string
				status            int
				bytes             int64
				route, upAddr     string
				upStatus          int
				minUpLatency      float64
			}
			wants := []want{
				{"GET", "/ok?x=1&y=%22q%22", "", 200, 5, "main", up.Addr, 200, 0},
				{"POST", "/teapot", "tea.example", 418, 15, "main", up.Addr, 418, 0},
				{"GET", "/slow", "", 200, 9, "main", up.Addr, 200, 150},
				{"DELETE", "/dead", "", 502, -1, "broken", dead, 0, 0}, // bytes: the error page sent
			}
			for i, w := range wants {
				r := featDo(t, c, w.method, g.URL+w.uri, w.host)
				if r.Status != w.status {
					t.Fatalf("%s %s: status %d", w.method, w.uri, r.Status)
				}
				if w.bytes < 0 {
					if !strings.Contains(r.Body, "502 Bad Gateway") {
						t.Fatalf("%s: body %q", w.uri, r.Body)
					}
					wants[i].bytes = int64(len(r.Body))
				}
			}
			// A request no route matches is logged too, without upstream fields.
			raw, _ := RawRequest(t, g.Addr, "GET /nowhere HTTP/1.1\r\nHost: Nowhere.example\r\nConnection: close\r\n\r\n", 3*time.Second)
			if StatusOf(raw) != 404 {
				t.Fatalf("/nowhere: %q", raw)
			}
			lines := g.AccessLog(t, len(wants)+1)
			if len(lines) != len(wants)+1 {
				t.Fatalf("%d access log lines for %d requests:\n%s", len(lines), len(wants)+1, strings.Join(lines, "\n"))
			}
			end := time.Now().Add(time.Second)
			byURI := map[string]featLogLine{}
			for _, line := range lines {
				l := featParseLog(t, line)
				byURI[*l.URI] = l
				ts, err := time.Parse(time.RFC3339Nano, *l.Time)
				if err != nil || ts.Before(start) || ts.After(end) {
					t.Errorf("time %q (%v) is not the request time", *l.Time, err)
				}
				if *l.Client != "127.0.0.1" {
					t.Errorf("client %q", *l.Client)
				}
				if *l.LatencyMS < *l.UpstreamLatencyMS || *l.LatencyMS <= 0 {
					t.Errorf("latency_ms %v, upstream_latency_ms %v", *l.LatencyMS, *l.UpstreamLatencyMS)
				}
			}
			for _, w := range wants {
				l, ok := byURI[w.uri]
				if !ok {
					t.Errorf("no access log line for %s", w.uri)
					continue
				}
				host := w.host
				if host == "" {
					host = g.Addr
				}
				if *l.Method != w.method || *l.Host != host || *l.Status != w.status || *l.Bytes != w.bytes ||
					*l.RouteID != w.route || *l.UpstreamAddr != w.upAddr || *l.UpstreamStatus != w.upStatus {
					t.Errorf("%s: logged %s %s host=%s status=%d bytes=%d route=%s up=%s upstatus=%d", w.uri,
						*l.Method, *l.URI, *l.Host, *l.Status, *l.Bytes, *l.RouteID, *l.UpstreamAddr, *l.UpstreamStatus)
				}
				if *l.UpstreamLatencyMS < w.minUpLatency || (w.minUpLatency > 0 && *l.LatencyMS > w.minUpLatency+1000) {
					t.Errorf("%s: upstream_latency_ms %v latency_ms %v, want >= %v", w.uri, *l.UpstreamLatencyMS,
						*l.LatencyMS, w.minUpLatency)
				}
			}
			if l := byURI["/nowhere"]; *l.Status != 404 || *l.Host != "Nowhere.example" || *l.RouteID != "" ||
				*l.UpstreamAddr != "" || *l.UpstreamStatus != 0 || *l.UpstreamLatencyMS != 0 ||
				*l.Bytes != int64(len(`{"error_msg":"404 Route Not Found"}`+"\n")) {
				t.Errorf("/nowhere logged as %+v", lines)
			}
		})
	}
}

// TestFeatureAccessLogOff checks that access_log "off" writes nothing anywhere.
func TestFeatureAccessLogOff(t *testing.T) {
	t.Parallel()
	up := featNewUpstream(t, "up", nil)
	res := fmt.Sprintf("upstreams:\n  - id: u\n    nodes: {%q: 1}\nroutes:\n  - {id: r, uri: /*, upstream_id: u}\n", up.Addr)
	for _, engine := range featEngines {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			g := featGateway(t, GatewayOptions{Resources: res, Engine: engine,
				Extra: "log:\n  level: info\n  error_log: stderr\n  access_log: \"off\""})
			c := featClient(5 * time.Second)
			for i := 0; i < 5; i++ {
				if r := featDo(t, c, "GET", g.URL+"/x", ""); r.Status != 200 {
					t.Fatalf("status %d", r.Status)
				}
			}
			featDo(t, c, "GET", g.URL+"/", "nowhere.example")
			time.Sleep(400 * time.Millisecond) // longer than the access log's flush interval
			g.Stop()
			if out := g.Stdout.String(); out != "" {
				t.Errorf("access_log off, but stdout has:\n%s", out)
			}
			if strings.Contains(g.Stderr.String(), `"uri":`) {
				t.Errorf("access_log off, but stderr has access lines:\n%s", g.Stderr.String())
			}
			entries, _ := os.ReadDir(g.Dir)
			for _, e := range entries {
				if strings.Contains(e.Name(), "access") || e.Name() == "off" {
					t.Errorf("access_log off created %s", e.Name())
				}
			}
		})
	}
}

// TestFeatureErrorLogFile runs sluice with both logs in files: nothing goes to
// stdout or stderr, and the files hold the records.
func TestFeatureErrorLogFile(t *testing.T) {
	t.Parallel()
	up := featNewUpstream(t, "up", nil)
	dir := t.TempDir()
	dead := featClosedAddr(t)
	featWrite(t, dir, "conf/apisix.yaml", fmt.Sprintf(
		"upstreams:\n  - id: u\n    nodes: {%q: 1}\n  - id: d\n    nodes: {%q: 1}\nroutes:\n  - {id: r, uri: /*, upstream_id: u}\n  - {id: d, uri: /dead, upstream_id: d}\n#END\n",
		up.Addr, dead))
	featWrite(t, dir, "conf/sluice.yaml", `listen:
  http: ["127.0.0.1:0"]
admin:
  listen: "127.0.0.1:0"
control:
  listen: "127.0.0.1:0"
resources:
  file: apisix.yaml
log:
  level: info
  error_log: logs/error.log
  access_log: logs/access.log
`)
	p := featStartProc(t, dir, "-c", "conf/sluice.yaml")
	errLog := filepath.Join(dir, "conf/logs/error.log") // relative to the config file
	read := func() string { b, _ := os.ReadFile(errLog); return string(b) }
	addr := featWaitListen(t, p, read)
	c := featClient(5 * time.Second)
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(read(), "configuration applied") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if r := featDo(t, c, "GET", "http://"+addr+"/hello", ""); r.Status != 200 || r.Body != "up" {
		t.Fatalf("got %d %q", r.Status, r.Body)
	}
	if r := featDo(t, c, "GET", "http://"+addr+"/dead", ""); r.Status != 502 {
		t.Fatalf("/dead: got %d", r.Status)
	}
	deadline = time.Now().Add(5 * time.Second)
	for !strings.Contains(read(), "upstream request failed") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if s := read(); !strings.Contains(s, `msg="configuration applied"`) || !strings.Contains(s, "upstream request failed") ||
		!strings.Contains(s, dead) {
		t.Errorf("error log file lacks the expected records:\n%s", s)
	}
	accessPath := filepath.Join(dir, "conf/logs/access.log")
	var access string
	deadline = time.Now().Add(5 * time.Second)
	for strings.Count(access, "\n") < 2 && time.Now().Before(deadline) {
		b, _ := os.ReadFile(accessPath)
		access = string(b)
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(access, `"uri":"/hello"`) || !strings.Contains(access, `"uri":"/dead"`) {
		t.Errorf("access log file: %q", access)
	}
	if p.Stdout.String() != "" || p.Stderr.String() != "" {
		t.Errorf("with file logs, sluice wrote stdout %q stderr %q", p.Stdout.String(), p.Stderr.String())
	}
}
