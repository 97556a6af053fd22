package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// logSink collects what a logger sends: HTTP bodies, TCP connections'
// contents, UDP datagrams or syslog lines, one string each.
type logSink struct {
	mu   sync.Mutex
	got  []string
	addr string
	port int
}

func (s *logSink) add(v string) {
	s.mu.Lock()
	s.got = append(s.got, v)
	s.mu.Unlock()
}

// wait returns the first n items, failing after a generous bound.
func (s *logSink) wait(t *testing.T, n int) []string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s.mu.Lock()
		got := append([]string(nil), s.got...)
		s.mu.Unlock()
		if len(got) >= n {
			return got[:n]
		}
		if time.Now().After(deadline) {
			t.Fatalf("sink %s got %d items, want %d: %q", s.addr, len(got), n, got)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func newHTTPSink(t *testing.T) *logSink {
	s := &logSink{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s.add(string(b))
	}))
	t.Cleanup(srv.Close)
	s.addr = srv.URL
	return s
}

// newTCPSink keeps each connection's whole content (tcp-logger), or each
// line (lines true: syslog over TCP).
func newTCPSink(t *testing.T, lines bool) *logSink {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	s := &logSink{addr: ln.Addr().String(), port: ln.Addr().(*net.TCPAddr).Port}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if lines {
					sc := bufio.NewScanner(c)
					for sc.Scan() {
						s.add(sc.Text())
					}
					return
				}
				b, _ := io.ReadAll(c)
				s.add(string(b))
			}()
		}
	}()
	return s
}

func newUDPSink(t *testing.T) *logSink {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	s := &logSink{addr: pc.LocalAddr().String(), port: pc.LocalAddr().(*net.UDPAddr).Port}
	go func() {
		buf := make([]byte, 65536)
		for {
			n, _, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			s.add(strings.TrimSuffix(string(buf[:n]), "\n"))
		}
	}()
	return s
}

const logFormat = `{"uri":"$uri","status":"$status","method":"$request_method","ua":"$http_user_agent"}`

// TestLoggersDeliverEntries: through a real gateway, three requests produce
// exactly the expected entries at a real HTTP receiver (APISIX's default
// entry), a TCP listener (one JSON array of three), a UDP socket, syslog
// receivers over TCP and UDP (RFC 5424 lines) and a file (JSON lines).
func TestLoggersDeliverEntries(t *testing.T) {
	for _, engine := range []string{"fast", "std"} {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			g, up := pluginGateway(t, engine)
			httpSink, tcpSink, udpSink := newHTTPSink(t), newTCPSink(t, false), newUDPSink(t)
			syslogTCP, syslogUDP := newTCPSink(t, true), newUDPSink(t)
			file := filepath.Join(t.TempDir(), "entries.log")
			mustAdmin(t, g, "PUT", "/apisix/admin/routes/logged", fmt.Sprintf(`{"uri":"/logged/*","upstream_id":"u1","plugins":{
				"http-logger":{"uri":%q,"batch_max_size":1,"auth_header":"Bearer k"},
				"tcp-logger":{"host":"127.0.0.1","port":%d,"batch_max_size":3,"inactive_timeout":1,"log_format":%s},
				"udp-logger":{"host":"127.0.0.1","port":%d,"batch_max_size":1,"log_format":%s},
				"syslog":{"host":"127.0.0.1","port":%d,"batch_max_size":1,"log_format":%s},
				"file-logger":{"path":%q,"log_format":%s}}}`,
				httpSink.addr+"/ingest", tcpSink.port, logFormat, udpSink.port, logFormat, syslogTCP.port, logFormat, file, logFormat))
			mustAdmin(t, g, "PUT", "/apisix/admin/routes/logged-udp", fmt.Sprintf(`{"uri":"/udp/*","upstream_id":"u1","plugins":{
				"syslog":{"host":"127.0.0.1","port":%d,"sock_type":"udp","batch_max_size":1,"log_format":%s}}}`,
				syslogUDP.port, logFormat))
			waitServed(t, g.URL+"/udp/ready", 200, 5*time.Second)
			syslogUDP.wait(t, 1)
			for i := range 3 {
				code, _, _ := do(t, "GET", fmt.Sprintf("%s/logged/%d?a=%d&b", g.URL, i, i), "User-Agent", "e2e/1")
				if code != 200 {
					t.Fatalf("request %d: %d", i, code)
				}
			}
			// The default entry, exact but for what varies per run.
			upHost := strings.Split(up.Addr, ":")[0]
			for i, body := range httpSink.wait(t, 3) {
				if i == 0 {
					t.Logf("http-logger entry: %s", body)
				}
				var e map[string]any
				if err := json.Unmarshal([]byte(body), &e); err != nil {
					t.Fatalf("http entry %d not JSON: %v\n%s", i, err, body)
				}
				req, resp := e["request"].(map[string]any), e["response"].(map[string]any)
				for _, k := range []string{"latency", "apisix_latency", "upstream_latency", "start_time"} {
					if v, ok := e[k].(float64); !ok || v < 0 {
						t.Errorf("entry %d: %s = %v", i, k, e[k])
					}
					delete(e, k)
				}
				if up, _ := e["upstream"].(string); !strings.HasPrefix(up, upHost+":") {
					t.Errorf("entry %d: upstream %v", i, e["upstream"])
				}
				if s, _ := req["size"].(float64); s <= 0 {
					t.Errorf("entry %d: request.size %v", i, req["size"])
				}
				if s, _ := resp["size"].(float64); s <= 0 {
					t.Errorf("entry %d: response.size %v", i, resp["size"])
				}
				delete(e, "upstream")
				delete(e, "server")
				delete(req, "size")
				// Both engines list every field (logentry.HeaderLister).
				rh, _ := req["headers"].(map[string]any)
				if rh["user-agent"] != "e2e/1" || rh["host"] != g.Addr {
					t.Errorf("entry %d: request.headers %v", i, rh)
				}
				if ph, _ := resp["headers"].(map[string]any); ph["content-length"] == nil && ph["content-type"] == nil {
					t.Errorf("entry %d: response.headers %v", i, ph)
				}
				delete(req, "headers")
				delete(resp, "size")
				delete(resp, "headers")
				want := fmt.Sprintf(`{"request":{"url":"http://%s/logged/%d?a=%d&b","uri":"/logged/%d?a=%d&b","method":"GET",
					"querystring":{"a":"%d","b":true}},"response":{"status":200},
					"service_id":"","route_id":"logged","client_ip":"127.0.0.1"}`, g.Addr, i, i, i, i, i)
				var w map[string]any
				if err := json.Unmarshal([]byte(want), &w); err != nil {
					t.Fatal(err)
				}
				if fmt.Sprint(e) != fmt.Sprint(w) {
					t.Errorf("entry %d:\n got %v\nwant %v", i, e, w)
				}
			}
			entry := func(i int) string {
				return fmt.Sprintf(`{"method":"GET","status":"200","ua":"e2e/1","uri":"/logged/%d","route_id":"logged"}`, i)
			}
			if got := tcpSink.wait(t, 1)[0]; got != "["+entry(0)+","+entry(1)+","+entry(2)+"]" {
				t.Errorf("tcp-logger sent %s", got)
			}
			if got := strings.Join(udpSink.wait(t, 3), "\n"); got != entry(0)+"\n"+entry(1)+"\n"+entry(2) {
				t.Errorf("udp-logger sent:\n%s", got)
			}
			re := regexp.MustCompile(`^<46>1 \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z 127\.0\.0\.1 apisix \d+ - - (\{.*\})$`)
			for i, line := range syslogTCP.wait(t, 3) {
				m := re.FindStringSubmatch(line)
				if m == nil || m[1] != entry(i) {
					t.Errorf("syslog line %d: %q", i, line)
				}
			}
			if line := syslogUDP.wait(t, 1)[0]; !re.MatchString(line) || !strings.Contains(line, `"uri":"/udp/ready"`) {
				t.Errorf("syslog udp datagram %q", line)
			}
			want := entry(0) + "\n" + entry(1) + "\n" + entry(2) + "\n"
			deadline := time.Now().Add(10 * time.Second)
			for {
				b, _ := os.ReadFile(file)
				if string(b) == want {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("file holds %q, want %q", b, want)
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
}

// hangingHTTP accepts connections, reads requests and never answers.
func hangingHTTP(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			go io.Copy(io.Discard, c)
		}
	}()
	return "http://" + ln.Addr().String() + "/never"
}

// silentTCP accepts connections and never reads from them.
func silentTCP(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}

// latencies sends n sequential requests and returns their sorted durations;
// every one must answer 200.
func latencies(t *testing.T, url string, n int) []time.Duration {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	out := make([]time.Duration, 0, n)
	for i := range n {
		start := time.Now()
		resp, err := c.Get(url)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		out = append(out, time.Since(start))
		if resp.StatusCode != 200 {
			t.Fatalf("request %d: %d", i, resp.StatusCode)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

func p99(d []time.Duration) time.Duration { return d[len(d)*99/100-1] }

// TestLoggerHangingSinkDoesNotSlowRequests: with an HTTP sink that never
// answers, a TCP sink that never reads and a TCP sink whose connects hang,
// 200 requests are as fast as with a healthy sink, all succeed, and the
// entries the bounded queues cannot hold are dropped and counted in the
// gateway's log.
func TestLoggerHangingSinkDoesNotSlowRequests(t *testing.T) {
	for _, engine := range []string{"fast", "std"} {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			g, _ := pluginGateway(t, engine)
			healthy := newHTTPSink(t)
			// A small backlog makes the drops show within 200 requests.
			mustAdmin(t, g, "PUT", "/apisix/admin/plugin_metadata/http-logger", `{"max_pending_entries":20}`)
			mustAdmin(t, g, "PUT", "/apisix/admin/plugin_metadata/tcp-logger", `{"max_pending_entries":20}`)
			mustAdmin(t, g, "PUT", "/apisix/admin/routes/healthy", fmt.Sprintf(`{"uri":"/healthy","upstream_id":"u1","plugins":{
				"http-logger":{"uri":%q,"batch_max_size":1}}}`, healthy.addr))
			blackhole := featBlackhole(t)
			bhPort, _ := strconv.Atoi(blackhole[strings.LastIndexByte(blackhole, ':')+1:])
			mustAdmin(t, g, "PUT", "/apisix/admin/routes/hanging", fmt.Sprintf(`{"uri":"/hanging","upstream_id":"u1","plugins":{
				"http-logger":{"uri":%q,"batch_max_size":1,"timeout":3},
				"tcp-logger":{"host":"127.0.0.1","port":%d,"batch_max_size":1,"timeout":3000}}}`, hangingHTTP(t), bhPort))
			mustAdmin(t, g, "PUT", "/apisix/admin/routes/silent", fmt.Sprintf(`{"uri":"/silent","upstream_id":"u1","plugins":{
				"tcp-logger":{"host":"127.0.0.1","port":%d,"batch_max_size":1}}}`, silentTCP(t)))
			waitServed(t, g.URL+"/silent", 200, 5*time.Second)
			waitServed(t, g.URL+"/hanging", 200, 5*time.Second)
			waitServed(t, g.URL+"/healthy", 200, 5*time.Second)

			base := latencies(t, g.URL+"/healthy", 200)
			hang := latencies(t, g.URL+"/hanging", 200)
			silent := latencies(t, g.URL+"/silent", 200)
			t.Logf("p50/p99: healthy sink %v/%v, hanging sinks %v/%v, non-reading sink %v/%v",
				base[100], p99(base), hang[100], p99(hang), silent[100], p99(silent))
			for name, d := range map[string][]time.Duration{"hanging": hang, "silent": silent} {
				if p99(d) > 50*time.Millisecond {
					t.Errorf("%s sink: p99 %v, want < 50ms (healthy sink: %v)", name, p99(d), p99(base))
				}
			}
			// The healthy sink got every entry.
			healthy.wait(t, 200+1)

			// Drops are reported at most once a second; one more request
			// after that second reports the running total.
			time.Sleep(1100 * time.Millisecond)
			do(t, "GET", g.URL+"/hanging")
			re := regexp.MustCompile(`batch processor dropped log entries.*plugin=(\S+).*dropped_total=(\d+)`)
			deadline := time.Now().Add(5 * time.Second)
			for {
				totals := map[string]int{}
				for _, m := range re.FindAllStringSubmatch(g.Stderr.String(), -1) {
					n, _ := strconv.Atoi(m[2])
					totals[m[1]] = max(totals[m[1]], n)
				}
				// 201 entries, at most 20 held by each queue: >= 180 dropped.
				if totals["http-logger"] >= 180 && totals["tcp-logger"] >= 180 {
					t.Logf("dropped and counted: %v", totals)
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("drop totals %v, want >= 180 for http-logger and tcp-logger\n%s", totals, tail(g.Stderr.String(), 3000))
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
}
