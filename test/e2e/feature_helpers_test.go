package e2e

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// featEngines are the engines every feature test runs against.
var featEngines = []string{"fast", "std"}

// featExitSlack is extra time a process needs to exit: a -race binary sleeps
// a second at exit (GORACE atexit_sleep_ms) to let reports print.
func featExitSlack() time.Duration {
	if os.Getenv("SLUICE_E2E_RACE") != "" && !strings.Contains(os.Getenv("GORACE"), "atexit_sleep_ms=0") {
		return 1100 * time.Millisecond
	}
	return 0
}

// featReq is what a featUpstream received.
type featReq struct {
	Method string
	URI    string
	Host   string
	Header http.Header
	Body   string
	TLS    bool
}

// featUpstream is a real upstream server that answers with its name and
// records every request and every new connection.
type featUpstream struct {
	*httptest.Server
	Name     string
	Addr     string // 127.0.0.1:port
	NewConns atomic.Int64
	Hits     atomic.Int64

	mu   sync.Mutex
	reqs []featReq
}

// featNewUpstream starts an upstream. handler, when non-nil, answers instead
// of the default (200, body = name, X-Upstream: name); the request is recorded
// before handler runs.
func featNewUpstream(t testing.TB, name string, handler http.HandlerFunc) *featUpstream {
	return featStartUpstream(t, name, handler, false, nil)
}

// featNewTLSUpstream is featNewUpstream over TLS (self-signed certificate).
func featNewTLSUpstream(t testing.TB, name string, handler http.HandlerFunc) *featUpstream {
	return featStartUpstream(t, name, handler, true, nil)
}

// featStartUpstream starts an upstream; configure, when non-nil, adjusts the
// http.Server before it starts.
func featStartUpstream(t testing.TB, name string, handler http.HandlerFunc, useTLS bool,
	configure func(*http.Server)) *featUpstream {
	t.Helper()
	u := &featUpstream{Name: name}
	u.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		u.mu.Lock()
		u.reqs = append(u.reqs, featReq{Method: r.Method, URI: r.RequestURI, Host: r.Host, Header: r.Header.Clone(),
			Body: string(body), TLS: r.TLS != nil})
		u.mu.Unlock()
		u.Hits.Add(1)
		if handler != nil {
			handler(w, r)
			return
		}
		w.Header().Set("X-Upstream", name)
		io.WriteString(w, name)
	}))
	u.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			u.NewConns.Add(1)
		}
	}
	if configure != nil {
		configure(u.Config)
	}
	if useTLS {
		u.StartTLS()
	} else {
		u.Start()
	}
	u.Addr = u.Listener.Addr().String()
	t.Cleanup(func() {
		u.CloseClientConnections()
		u.Close()
	})
	return u
}

// Requests returns a copy of what the upstream received so far.
func (u *featUpstream) Requests() []featReq {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]featReq(nil), u.reqs...)
}

// Last returns the last request the upstream received.
func (u *featUpstream) Last(t testing.TB) featReq {
	t.Helper()
	r := u.Requests()
	if len(r) == 0 {
		t.Fatalf("upstream %s received nothing", u.Name)
	}
	return r[len(r)-1]
}

// featClient returns a fresh HTTP client (its own connection pool) that does
// not follow redirects.
func featClient(timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout:   timeout,
		Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 64, DisableCompression: true},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// featResp is a fully read response.
type featResp struct {
	Status int
	Body   string
	Header http.Header
	Close  bool // the response said Connection: close
}

// featDo sends one request; host, when set, replaces the Host header; hdr
// holds extra headers as "Name", "value" pairs.
func featDo(t testing.TB, c *http.Client, method, url, host string, hdr ...string) featResp {
	t.Helper()
	r, err := featTry(c, method, url, host, hdr...)
	if err != nil {
		t.Fatalf("%s %s (Host %q): %v", method, url, host, err)
	}
	return r
}

func featTry(c *http.Client, method, url, host string, hdr ...string) (featResp, error) {
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		return featResp{}, err
	}
	if host != "" {
		req.Host = host
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		return featResp{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return featResp{Status: resp.StatusCode, Body: string(body), Header: resp.Header, Close: resp.Close}, err
}

// featClosedAddr returns a loopback address nothing listens on.
func featClosedAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// featBlackhole returns a loopback address whose connects hang: a listener with
// a backlog of 0 whose accept queue is already full and that never accepts, so
// the kernel drops further SYNs and a dial runs into its timeout.
func featBlackhole(t testing.TB) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port)
	for i := 0; i < 8; i++ {
		c, err := net.DialTimeout("tcp", addr, 300*time.Millisecond)
		if err != nil {
			return addr // the queue is full: connects now hang
		}
		t.Cleanup(func() { c.Close() })
	}
	t.Fatalf("could not fill the accept queue of %s", addr)
	return ""
}

// featSend writes the resources file (atomically), sends SIGHUP and waits until
// the gateway applied it. With hup false it waits for the file poller instead.
func featSend(t testing.TB, g *Gateway, yaml string, hup bool) {
	t.Helper()
	if !hup {
		g.WriteResources(t, yaml)
		return
	}
	before := strings.Count(g.Stderr.String(), `msg="configuration applied"`)
	tmp := g.ResourcesPath + ".tmp"
	writeFile(t, tmp, yaml+"\n#END\n")
	if err := os.Rename(tmp, g.ResourcesPath); err != nil {
		t.Fatal(err)
	}
	g.Signal(syscall.SIGHUP)
	deadline := time.Now().Add(10 * time.Second)
	for strings.Count(g.Stderr.String(), `msg="configuration applied"`) <= before {
		if time.Now().After(deadline) {
			t.Fatalf("configuration not applied after SIGHUP:\n%s", tail(g.Stderr.String(), 3000))
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// featProc is a sluice process started by hand (own config, own working
// directory, output to buffers).
type featProc struct {
	cmd    *exec.Cmd
	Stdout *syncBuffer
	Stderr *syncBuffer
	done   chan struct{}
}

// featStartProc runs sluice with args in dir and stops it when the test ends.
func featStartProc(t testing.TB, dir string, args ...string) *featProc {
	t.Helper()
	p := &featProc{cmd: exec.Command(binary, args...), Stdout: &syncBuffer{}, Stderr: &syncBuffer{}, done: make(chan struct{})}
	p.cmd.Dir = dir
	p.cmd.Stdout, p.cmd.Stderr = p.Stdout, p.Stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-p.done:
			case <-time.After(10 * time.Second):
				_ = p.cmd.Process.Kill()
				<-p.done
			}
		}
		if strings.Contains(p.Stderr.String(), "WARNING: DATA RACE") {
			t.Errorf("sluice reported a data race")
		}
		if t.Failed() {
			t.Logf("sluice stderr:\n%s\nstdout:\n%s", tail(p.Stderr.String(), 3000), tail(p.Stdout.String(), 3000))
		}
	})
	return p
}

// featWaitListen waits until read() shows the "sluice started" record and
// returns the first listen address.
func featWaitListen(t testing.TB, p *featProc, read func() string) string {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		if m := listenRe.FindStringSubmatch(read()); m != nil {
			return strings.Split(m[1], ",")[0]
		}
		select {
		case <-p.done:
			t.Fatalf("sluice exited at start:\n%s\n%s", p.Stderr.String(), read())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("sluice did not start:\n%s\n%s", p.Stderr.String(), read())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// featRun runs sluice with args to completion and returns its exit code and
// combined output.
func featRun(t testing.TB, dir string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("sluice %v: %v", args, err)
		}
		code = ee.ExitCode()
	}
	return code, out.String()
}

// featWrite writes data to dir/name, creating directories.
func featWrite(t testing.TB, dir, name, data string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, p, data)
	return p
}

// featGateway is StartGateway plus a check, once the process stopped, that a
// -race binary (SLUICE_E2E_RACE=1) reported no data race.
func featGateway(t testing.TB, opts GatewayOptions) *Gateway {
	t.Helper()
	g := StartGateway(t, opts)
	t.Cleanup(func() {
		g.Stop()
		if s := g.Stderr.String(); strings.Contains(s, "WARNING: DATA RACE") {
			t.Errorf("sluice reported a data race:\n%s", tail(s[strings.Index(s, "WARNING: DATA RACE"):], 6000))
		}
	})
	return g
}

// featTLSClient returns a client trusting g's certificate (HTTP/1.1 only).
func featTLSClient(t testing.TB, g *Gateway, timeout time.Duration) *http.Client {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(g.CertPEM) {
		t.Fatal("bad gateway certificate")
	}
	c := featClient(timeout)
	c.Transport.(*http.Transport).TLSClientConfig = &tls.Config{RootCAs: pool}
	return c
}
