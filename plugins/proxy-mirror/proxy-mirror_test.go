package proxymirror

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicegw/sluice/plugin"
	"github.com/sluicegw/sluice/plugin/plugintest"
)

func TestPriorityIsAPISIXs(t *testing.T) {
	t.Parallel()
	d, ok := plugin.Lookup(Name)
	if !ok || d.Priority != 1010 {
		t.Fatalf("proxy-mirror registered=%v priority=%d, want 1010 (apisix/plugins/proxy-mirror.lua)", ok, d.Priority)
	}
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	c := NewConfig()
	if c.PathConcatMode != "replace" || c.SampleRatio != 1 || c.Path != nil || c.Host != "" {
		t.Fatalf("defaults %+v", c)
	}
	a := DefaultAttr()
	if a.Connect != 60*time.Second || a.Send != 60*time.Second || a.Read != 60*time.Second ||
		a.QueueSize != 1024 || a.Workers != 32 || a.MaxBodyBytes != 1<<20 {
		t.Fatalf("default attr %+v", a)
	}
}

func TestValidation(t *testing.T) {
	t.Parallel()
	const pre = "plugins.proxy-mirror: "
	tests := []struct{ desc, cfg, err string }{
		{"host missing", `{}`, "host: is required"},
		{"no scheme", `{"host":"127.0.0.1:9797"}`, `host: must be scheme://host[:port], got "127.0.0.1:9797"`},
		{"ftp", `{"host":"ftp://127.0.0.1"}`, `host: scheme must be http or https, got "ftp://127.0.0.1"`},
		{"grpc", `{"host":"grpc://127.0.0.1:9797"}`, `host: grpc and grpcs mirrors are not supported yet; use http or https, got "grpc://127.0.0.1:9797"`},
		{"path in host", `{"host":"http://127.0.0.1:9797/x"}`, `host: must be scheme://host[:port] with a port of 1-65535 and no path, got "http://127.0.0.1:9797/x"`},
		{"trailing slash", `{"host":"http://mirror/"}`, `host: must be scheme://host[:port] with no path, got "http://mirror/"`},
		{"port 0", `{"host":"http://mirror:0"}`, `host: must be scheme://host[:port] with a port of 1-65535 and no path, got "http://mirror:0"`},
		{"empty host", `{"host":"http://"}`, `host: must be scheme://host[:port] with no path, got "http://"`},
		{"bad ipv6", `{"host":"http://[::1"}`, `host: unclosed IPv6 address in "http://[::1"`},
		{"userinfo", `{"host":"http://u@mirror"}`, `host: must be scheme://host[:port] with no path, got "http://u@mirror"`},
		{"path relative", `{"host":"http://m","path":"mirror"}`, `path: must start with / and have at least one more character, got "mirror"`},
		{"path root", `{"host":"http://m","path":"/"}`, `path: must start with / and have at least one more character, got "/"`},
		{"path query", `{"host":"http://m","path":"/a?b=1"}`, `path: must not contain ? or &, got "/a?b=1"`},
		{"path amp", `{"host":"http://m","path":"/a&b"}`, `path: must not contain ? or &, got "/a&b"`},
		{"path space", `{"host":"http://m","path":"/a b"}`, `path: must not contain spaces or control characters, got "/a b"`},
		{"mode", `{"host":"http://m","path_concat_mode":"append"}`, `path_concat_mode: must be one of replace, prefix, got "append"`},
		{"ratio zero", `{"host":"http://m","sample_ratio":0}`, "sample_ratio: must be between 0.00001 and 1, got 0"},
		{"ratio tiny", `{"host":"http://m","sample_ratio":0.000001}`, "sample_ratio: must be between 0.00001 and 1, got 1e-06"},
		{"ratio big", `{"host":"http://m","sample_ratio":1.5}`, "sample_ratio: must be between 0.00001 and 1, got 1.5"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			_, err := plugintest.Build(Name, tt.cfg)
			if err == nil || err.Error() != pre+tt.err {
				t.Fatalf("err = %v\nwant  %s", err, pre+tt.err)
			}
		})
	}
	// The gateway's decoder reports types and unknown fields.
	for cfg, want := range map[string]string{
		`{"host":"http://m","sample_ratio":"half"}`: "sample_ratio",
		`{"host":"http://m","timeout":1}`:           "timeout: unknown field",
	} {
		if _, err := plugintest.Build(Name, cfg); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want it to name %q", cfg, err, want)
		}
	}
	for _, ok := range []string{
		`{"host":"http://127.0.0.1:9797"}`,
		`{"host":"https://mirror.example.com"}`,
		`{"host":"http://[::1]:8080","path":"/shadow","path_concat_mode":"prefix","sample_ratio":0.00001}`,
		`{"host":"http://m","path":"/a/b%20c","sample_ratio":1}`,
	} {
		if _, err := plugintest.Build(Name, ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
}

func TestParseAttr(t *testing.T) {
	t.Parallel()
	a, err := ParseAttr(map[string]any{
		"timeout":    map[string]any{"connect": "2000ms", "send": "1m30s", "read": float64(3)},
		"queue_size": float64(16), "workers": 2, "max_body_bytes": float64(0),
	})
	if err != nil {
		t.Fatal(err)
	}
	want := Attr{Connect: 2 * time.Second, Send: 90 * time.Second, Read: 3 * time.Second, QueueSize: 16, Workers: 2}
	if a != want {
		t.Fatalf("attr %+v, want %+v", a, want)
	}
	// A partial timeout keeps the other defaults.
	if a, err := ParseAttr(map[string]any{"timeout": map[string]any{"read": "2s"}}); err != nil ||
		a.Read != 2*time.Second || a.Connect != 60*time.Second {
		t.Fatalf("partial timeout: %+v %v", a, err)
	}
	const pre = "plugin_attr.proxy-mirror."
	bad := []struct {
		raw map[string]any
		err string
	}{
		{map[string]any{"timeout": "60s"}, "timeout: must be an object with connect, send and read, got string"},
		{map[string]any{"timeout": map[string]any{"read": "soon"}}, `timeout.read: must be a positive duration such as 60s or 2000ms, got "soon"`},
		{map[string]any{"timeout": map[string]any{"read": "1.5s"}}, `timeout.read: must be a positive duration such as 60s or 2000ms, got "1.5s"`},
		{map[string]any{"timeout": map[string]any{"connect": "0s"}}, `timeout.connect: must be a positive duration such as 60s or 2000ms, got "0s"`},
		{map[string]any{"timeout": map[string]any{"send": float64(-1)}}, "timeout.send: must be a positive duration such as 60s or 2000ms, got -1 (number)"},
		{map[string]any{"timeout": map[string]any{"write": "1s"}}, "timeout.write: unknown field"},
		{map[string]any{"queue_size": float64(0)}, "queue_size: must be between 1 and 1048576, got 0"},
		{map[string]any{"workers": 2.5}, "workers: must be an integer, got 2.5 (number)"},
		{map[string]any{"max_body_bytes": "1m"}, `max_body_bytes: must be an integer, got "1m"`},
		{map[string]any{"buffer": true}, "buffer: unknown field"},
	}
	for _, tt := range bad {
		if _, err := ParseAttr(tt.raw); err == nil || err.Error() != pre+tt.err {
			t.Errorf("%v: err = %v\nwant  %s", tt.raw, err, pre+tt.err)
		}
	}
	// A bad plugin_attr fails the build, so the configuration is refused.
	c := NewConfig()
	c.Host = "http://127.0.0.1:1"
	_, err = newMirror(c, plugin.Deps{Attr: map[string]any{"workers": float64(0)}})
	if err == nil || !strings.Contains(err.Error(), "plugin_attr.proxy-mirror.workers") {
		t.Fatalf("build with bad attr: %v", err)
	}
}

// listedRequest is plugintest's request plus EachHeader, as the gateway's
// engines have, and a record of ReadBody calls.
type listedRequest struct {
	*plugintest.Request
	reads int
}

func (r *listedRequest) EachHeader(fn func(name, value string)) {
	for _, h := range r.Headers {
		fn(h.Name, h.Value)
	}
}

func (r *listedRequest) ReadBody(max int64) ([]byte, error) {
	r.reads++
	return r.Request.ReadBody(max)
}

// newReq builds a request as the gateway would show it: target is the
// request line's, path the normalized $uri.
func newReq(method, target, path string) *listedRequest {
	r := plugintest.NewRequest(method, target)
	if path != "" {
		r.P = path
	}
	r.Vars = map[string]string{"request_uri": target, "scheme": "http", "server_port": "9080", "remote_addr": "127.0.0.1"}
	return &listedRequest{Request: r.WithHeader("Host", "example.com")}
}

func buildMirror(t testing.TB, cfg string, attr map[string]any) (*mirror, *plugin.Lasting) {
	t.Helper()
	c := NewConfig()
	if err := jsonDecode(cfg, c); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	l := plugin.NewLasting(nil)
	t.Cleanup(l.Close)
	inst, err := newMirror(c, plugin.Deps{Lasting: l, Attr: attr})
	if err != nil {
		t.Fatal(err)
	}
	return inst.(*mirror), l
}

func TestPathConcatModes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc, cfg, target, path, want string
	}{
		{"client path and query", `{"host":"http://m"}`, "/orders/7?x=1&y=%20", "", "/orders/7?x=1&y=%20"},
		{"escapes kept byte for byte", `{"host":"http://m"}`, "/a%2Fb/c%20d", "/a/b/c d", "/a%2Fb/c%20d"},
		{"merged slashes go normalized", `{"host":"http://m"}`, "/a//b/./c?q", "/a/b/c", "/a/b/c?q"},
		{"encoded dot segment normalized", `{"host":"http://m"}`, "/a/%2e%2e/b", "/b", "/b"},
		{"replace", `{"host":"http://m","path":"/shadow"}`, "/orders/7?x=1", "", "/shadow?x=1"},
		{"replace without query", `{"host":"http://m","path":"/shadow","path_concat_mode":"replace"}`, "/orders/7", "", "/shadow"},
		{"prefix", `{"host":"http://m","path":"/shadow","path_concat_mode":"prefix"}`, "/orders/7?x=1", "", "/shadow/orders/7?x=1"},
		{"prefix root", `{"host":"http://m","path":"/v2","path_concat_mode":"prefix"}`, "/", "", "/v2/"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			c := NewConfig()
			if err := jsonDecode(tt.cfg, c); err != nil {
				t.Fatal(err)
			}
			if err := c.Validate(); err != nil {
				t.Fatal(err)
			}
			inst, err := newMirror(c, plugin.Deps{})
			if err != nil {
				t.Fatal(err)
			}
			got := string(inst.(*mirror).appendTarget(nil, newReq("GET", tt.target, tt.path)))
			if got != tt.want {
				t.Fatalf("target %q, want %q", got, tt.want)
			}
		})
	}
}

// TestSampleRatio draws 10,000 times per ratio and checks the count is
// within 6 standard deviations of the expected one (a false failure has
// odds of about 1 in 500 million).
func TestSampleRatio(t *testing.T) {
	t.Parallel()
	const draws = 10000
	for _, ratio := range []float64{0.00001, 0.01, 0.3, 0.5, 0.9, 1} {
		p := &mirror{ratio: ratio}
		n := 0
		for range draws {
			if p.sampled() {
				n++
			}
		}
		mean := draws * ratio
		slack := 6*math.Sqrt(draws*ratio*(1-ratio)) + 1
		if math.Abs(float64(n)-mean) > slack {
			t.Errorf("ratio %v: %d of %d sampled, want %.0f ± %.0f", ratio, n, draws, mean, slack)
		}
		if ratio == 1 && n != draws {
			t.Errorf("ratio 1 sampled %d of %d", n, draws)
		}
	}
}

// recorder is a real mirror server that records what it receives.
type recorder struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []recorded
	got  chan struct{}
}

type recorded struct {
	method, uri, host string
	header            http.Header
	body              string
}

func newRecorder(t *testing.T) *recorder {
	rec := &recorder{got: make(chan struct{}, 100)}
	rec.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rec.mu.Lock()
		rec.reqs = append(rec.reqs, recorded{r.Method, r.RequestURI, r.Host, r.Header.Clone(), string(b)})
		rec.mu.Unlock()
		w.WriteHeader(http.StatusTeapot) // ignored by the sender
		io.WriteString(w, strings.Repeat("x", 4096))
		rec.got <- struct{}{}
	}))
	t.Cleanup(rec.Close)
	return rec
}

func (rec *recorder) wait(t *testing.T, n int) []recorded {
	t.Helper()
	for i := 0; i < n; i++ {
		select {
		case <-rec.got:
		case <-time.After(5 * time.Second):
			t.Fatalf("mirror received %d copies, want %d", i, n)
		}
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]recorded(nil), rec.reqs...)
}

func TestCopyArrivesWithHeadersAndBody(t *testing.T) {
	t.Parallel()
	rec := newRecorder(t)
	p, _ := buildMirror(t, `{"host":"`+rec.URL+`"}`, nil)

	get := newReq("GET", "/items?id=7&sort=desc", "")
	get.WithHeader("Accept", "application/json").WithHeader("X-Multi", "a").WithHeader("X-Multi", "b").
		WithHeader("X-Forwarded-For", "10.0.0.1").WithHeader("Connection", "keep-alive, X-Hop").
		WithHeader("X-Hop", "drop me").WithHeader("Keep-Alive", "timeout=5").
		WithHeader("X-Consumer-Username", "forged").WithHeader("User-Agent", "e2e/1")
	c := &plugin.Ctx{}
	c.Reset(get)
	if e := p.BeforeProxy(c); e != nil {
		t.Fatalf("exit %+v", e)
	}
	body := `{"name":"widget","qty":3}`
	post := newReq("POST", "/items", "")
	post.WithBody(body).WithHeader("Content-Type", "application/json").WithHeader("Content-Length", "25")
	c.Reset(post)
	c.Consumer = &plugin.Consumer{Username: "jack"}
	post.SetHeader("X-Consumer-Username", "jack") // as the gateway does
	p.BeforeProxy(c)

	got := rec.wait(t, 2)
	byMethod := map[string]recorded{}
	for _, r := range got {
		byMethod[r.method] = r
	}
	g := byMethod["GET"]
	if g.uri != "/items?id=7&sort=desc" || g.host != "example.com" || g.body != "" {
		t.Fatalf("GET copy %+v", g)
	}
	wantHdr := map[string]string{
		"Accept": "application/json", "User-Agent": "e2e/1",
		"X-Forwarded-For": "10.0.0.1, 127.0.0.1", "X-Real-Ip": "127.0.0.1",
		"X-Forwarded-Proto": "http", "X-Forwarded-Host": "example.com", "X-Forwarded-Port": "9080",
	}
	for k, v := range wantHdr {
		if got := g.header.Get(k); got != v {
			t.Errorf("GET copy %s = %q, want %q", k, got, v)
		}
	}
	if v := g.header.Values("X-Multi"); len(v) != 2 || v[0] != "a" || v[1] != "b" {
		t.Errorf("X-Multi %q, want both values in order", v)
	}
	for _, k := range []string{"X-Hop", "Keep-Alive", "X-Consumer-Username", "Accept-Encoding"} {
		if _, ok := g.header[k]; ok {
			t.Errorf("GET copy carries %s: %q", k, g.header[k])
		}
	}
	po := byMethod["POST"]
	if po.uri != "/items" || po.body != body || po.header.Get("Content-Type") != "application/json" ||
		po.header.Get("Content-Length") != "25" || po.header.Get("X-Consumer-Username") != "jack" {
		t.Fatalf("POST copy %+v", po)
	}
	if _, ok := po.header["User-Agent"]; ok {
		t.Errorf("POST copy got a User-Agent the client did not send: %q", po.header["User-Agent"])
	}
	waitStats(t, p.s, func(s Stats) bool { return s.Sent == 2 && s.Queued == 2 })
}

func waitStats(t *testing.T, s *sender, ok func(Stats) bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !ok(s.Stats()) {
		if time.Now().After(deadline) {
			t.Fatalf("stats %+v", s.Stats())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestBodyRules(t *testing.T) {
	t.Parallel()
	rec := newRecorder(t)
	p, _ := buildMirror(t, `{"host":"`+rec.URL+`"}`, map[string]any{"max_body_bytes": float64(10)})
	run := func(r *listedRequest) {
		c := &plugin.Ctx{}
		c.Reset(r)
		p.BeforeProxy(c)
	}
	chunked := newReq("POST", "/up", "")
	chunked.WithBody("0123").WithHeader("Transfer-Encoding", "chunked")
	run(chunked)
	noLength := newReq("PUT", "/up", "")
	noLength.WithBody("0123")
	run(noLength)
	large := newReq("POST", "/up", "")
	large.WithBody("0123456789A").WithHeader("Content-Length", "11")
	run(large)
	for _, r := range []*listedRequest{chunked, noLength, large} {
		if r.reads != 0 {
			t.Errorf("%s with %v: body read %d times; it must be left to stream upstream", r.M, r.Headers, r.reads)
		}
	}
	waitStats(t, p.s, func(s Stats) bool { return s.Skipped == 3 && s.Queued == 0 })

	fits := newReq("POST", "/up", "")
	fits.WithBody("0123456789").WithHeader("Content-Length", "10")
	run(fits)
	del := newReq("DELETE", "/up/1", "")
	run(del)
	got := rec.wait(t, 2)
	if fits.reads != 1 {
		t.Errorf("body within max_body_bytes read %d times", fits.reads)
	}
	bodies := map[string]string{}
	for _, r := range got {
		bodies[r.method] = r.body
	}
	if bodies["POST"] != "0123456789" || bodies["DELETE"] != "" {
		t.Fatalf("copies %+v", got)
	}
}

// TestQueueFullDropsAndCounts holds the only worker, fills the queue, and
// checks that the rest is dropped at once, counted, and reported once.
func TestQueueFullDropsAndCounts(t *testing.T) {
	t.Parallel()
	var logs syncBuf
	s, err := newSender("http://127.0.0.1:1", Attr{Connect: time.Second, Send: time.Second, Read: time.Second,
		QueueSize: 2, Workers: 1}, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	started := make(chan struct{}, 16)
	s.deliver = func(ctx context.Context, j *job) error {
		started <- struct{}{}
		<-release
		return nil
	}
	s.enqueue(getJob())
	<-started // the worker holds one copy; the queue has room for 2
	for range 10 {
		s.enqueue(getJob())
	}
	st := s.Stats()
	if st.Queued != 3 || st.Dropped != 8 {
		t.Fatalf("stats %+v, want 3 queued (1 sending, 2 waiting) and 8 dropped", st)
	}
	if n := strings.Count(logs.String(), "proxy-mirror dropped copies"); n != 1 {
		t.Fatalf("drop reported %d times, want once (rate-limited):\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "reason=\"queue full\"") {
		t.Fatalf("log does not say why:\n%s", logs.String())
	}
	close(release)
	waitStats(t, s, func(st Stats) bool { return st.Sent == 3 })
	s.Close()
	s.enqueue(getJob())
	if st := s.Stats(); st.Dropped != 9 {
		t.Fatalf("after close: %+v, want the late copy dropped", st)
	}
}

// TestHungMirrorTimesOut: a mirror that accepts and never answers holds a
// worker only until the send+read timeouts, then the copy counts as failed.
func TestHungMirrorTimesOut(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c) // held open, never read or answered
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	var logs syncBuf
	s, err := newSender("http://"+ln.Addr().String(), Attr{Connect: 200 * time.Millisecond,
		Send: 200 * time.Millisecond, Read: 200 * time.Millisecond, QueueSize: 4, Workers: 1},
		slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	j := getJob()
	j.method, j.target = "GET", append(j.target, "/hang"...)
	s.enqueue(j)
	waitStats(t, s, func(st Stats) bool { return st.Failed == 1 })
	if !strings.Contains(logs.String(), "proxy-mirror copies failed") {
		t.Fatalf("failure not logged:\n%s", logs.String())
	}
}

// TestDownMirrorFails: connection refused counts as a failed copy.
func TestDownMirrorFails(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	p, _ := buildMirror(t, `{"host":"http://`+addr+`"}`, nil)
	for range 3 {
		c := &plugin.Ctx{}
		c.Reset(newReq("GET", "/x", ""))
		p.BeforeProxy(c)
	}
	waitStats(t, p.s, func(st Stats) bool { return st.Failed == 3 && st.Sent == 0 })
}

func TestCloseDropsQueuedCopies(t *testing.T) {
	t.Parallel()
	s, err := newSender("http://127.0.0.1:1", Attr{Connect: time.Second, Send: time.Second, Read: time.Second,
		QueueSize: 8, Workers: 1}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{}, 1)
	s.deliver = func(ctx context.Context, j *job) error {
		started <- struct{}{}
		<-ctx.Done() // a copy in flight is aborted by Close
		return ctx.Err()
	}
	for range 5 {
		s.enqueue(getJob())
	}
	<-started
	s.Close()
	if st := s.Stats(); st.Queued != 5 || st.Failed != 1 || st.Dropped != 4 || s.pending.Load() != 0 {
		t.Fatalf("after close %+v pending %d, want 1 aborted and 4 dropped", st, s.pending.Load())
	}
}

func TestLastingSharesSenders(t *testing.T) {
	t.Parallel()
	l := plugin.NewLasting(nil)
	defer l.Close()
	build := func(host string, attr map[string]any) *sender {
		c := NewConfig()
		c.Host = host
		inst, err := newMirror(c, plugin.Deps{Lasting: l, Attr: attr})
		if err != nil {
			t.Fatal(err)
		}
		return inst.(*mirror).s
	}
	a := build("http://127.0.0.1:7001", nil)
	if b := build("http://127.0.0.1:7001", nil); a != b {
		t.Fatal("two routes mirroring to one host do not share the sender")
	}
	if b := build("http://127.0.0.1:7002", nil); a == b {
		t.Fatal("different hosts share a sender")
	}
	if b := build("http://127.0.0.1:7001", map[string]any{"timeout": map[string]any{"read": "1s"}}); a == b {
		t.Fatal("different timeouts share a sender")
	}
}

// A validation-only compile has no Lasting: the instance does nothing.
func TestValidationOnlyCompile(t *testing.T) {
	t.Parallel()
	inst := plugintest.New(t, Name, `{"host":"http://127.0.0.1:1"}`).(*mirror)
	if inst.s != nil {
		t.Fatal("a sender was started without Lasting")
	}
	res := plugintest.Run(inst, plugintest.NewRequest("POST", "/x").WithBody("abc"), nil)
	if res.Exit != nil {
		t.Fatalf("exit %+v", res.Exit)
	}
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuf) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuf) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestEarlyAnswerKeepsBodyBuffer: a mirror that answers before reading the
// body leaves the transport still writing it when the answer is back; the
// job's buffer must not be reused until the transport is done with it.
func TestEarlyAnswerKeepsBodyBuffer(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		head := make([]byte, 0, 4096)
		buf := make([]byte, 512)
		for !bytes.Contains(head, []byte("\r\n\r\n")) {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			head = append(head, buf[:n]...)
		}
		// Answer, then read nothing more: the 32 MiB body stays stuck in
		// the socket buffers.
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
		time.Sleep(3 * time.Second)
	}()
	s, err := newSender("http://"+ln.Addr().String(), Attr{Connect: time.Second, Send: 5 * time.Second,
		Read: 5 * time.Second, QueueSize: 1, Workers: 1}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	j := getJob()
	j.method, j.target = "POST", append(j.target, "/up"...)
	j.body = make([]byte, 32<<20)
	if err := s.send(context.Background(), j); err != nil {
		t.Fatalf("send: %v", err)
	}
	if j.body == nil {
		t.Fatal("the job gave up its buffer: the transport never released the body")
	}
	// The buffer is the job's again: the race detector reports this write
	// if the transport could still be reading it.
	for i := range j.body {
		j.body[i] = 1
	}
}

// TestReleaseWaitsForTheTransport: a job's buffer goes back to the pool only
// once the transport closed the body; past the copy's time bound the job
// gives the buffer up instead.
func TestReleaseWaitsForTheTransport(t *testing.T) {
	t.Parallel()
	s := &sender{total: 5 * time.Second}
	j := &job{body: []byte("payload")}
	b := &jobBody{Reader: bytes.NewReader(j.body), done: make(chan struct{})}
	var closedFirst atomic.Bool
	go func() {
		time.Sleep(20 * time.Millisecond)
		closedFirst.Store(true)
		b.Close()
	}()
	s.release(j, b)
	if !closedFirst.Load() || j.body == nil {
		t.Fatalf("release returned before the body was closed (%v) or dropped the buffer (%v)", closedFirst.Load(), j.body == nil)
	}

	s.total = 10 * time.Millisecond
	stuck := &jobBody{Reader: bytes.NewReader(j.body), done: make(chan struct{})}
	s.release(j, stuck)
	if j.body != nil {
		t.Fatal("a body the transport never closed went back to the pool")
	}
}
