// Package e2e runs the real sluice binary against real upstream servers and
// real clients over loopback sockets.
package e2e

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// binary is the sluice binary built once for the whole package.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sluice-e2e-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "sluice")
	args := []string{"build", "-o", binary}
	if os.Getenv("SLUICE_E2E_RACE") != "" {
		args = append(args, "-race")
	}
	args = append(args, "../../cmd/sluice")
	cmd := exec.Command("go", args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building sluice:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// syncBuffer collects a process's output safely for concurrent readers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// GatewayOptions configure one sluice process.
type GatewayOptions struct {
	// Resources is the APISIX-style resources YAML, without the #END line.
	Resources string
	// Engine is "fast" (default) or "std".
	Engine string
	// HTTPS adds a TLS listener with a fresh self-signed certificate for
	// "localhost" and 127.0.0.1.
	HTTPS bool
	// Extra is YAML appended to the gateway config (timeouts, limits, log...).
	// It must not repeat listen, resources, engine or tls.
	Extra string
	// AccessLog is where the access log goes: "" means a file in the
	// gateway's directory (see Gateway.AccessLogPath).
	AccessLog string
	// Store is "" or "file" (Resources in a watched file), "embedded", or a
	// whole YAML store section (for etcd).
	Store string
	// Dir, when set, is the gateway's directory (config, data_dir, logs), so
	// a second gateway can start on the first one's data.
	Dir string
	// NoAdminKey leaves admin.keys unset, so sluice uses (or generates) the
	// key kept in data_dir.
	NoAdminKey bool
}

// Gateway is a running sluice process.
type Gateway struct {
	Dir           string
	URL           string // http://127.0.0.1:port
	AdminURL      string // http://127.0.0.1:port of the Admin API
	ControlURL    string // http://127.0.0.1:port of the control API
	Addr          string // 127.0.0.1:port
	TLSAddr       string // 127.0.0.1:port of the TLS listener, when HTTPS
	CertPEM       []byte // the TLS certificate, for client trust
	ResourcesPath string
	AccessLogPath string
	Stderr        *syncBuffer
	Stdout        *syncBuffer
	cmd           *exec.Cmd
	done          chan struct{}
	rev           int
}

var (
	listenRe  = regexp.MustCompile(`msg="sluice started".* listen=(\S+)`)
	adminRe   = regexp.MustCompile(`msg="sluice started".* admin=(\S+)`)
	controlRe = regexp.MustCompile(`msg="sluice started".* control=(\S+)`)
)

// AdminKey is the Admin API key every harness gateway accepts.
const AdminKey = "e2e-admin-key-0123456789abcdef"

// StartGateway starts sluice with opts and waits until it serves its first
// configuration. The process is stopped when the test ends.
func StartGateway(t testing.TB, opts GatewayOptions) *Gateway {
	t.Helper()
	dir := opts.Dir
	if dir == "" {
		dir = t.TempDir()
	}
	g := &Gateway{Dir: dir, ResourcesPath: filepath.Join(dir, "apisix.yaml"), Stderr: &syncBuffer{}, Stdout: &syncBuffer{}}
	writeFile(t, g.ResourcesPath, opts.Resources+"\n#END\n")
	engine := opts.Engine
	if engine == "" {
		engine = "fast"
	}
	accessLog := opts.AccessLog
	if accessLog == "" {
		g.AccessLogPath = filepath.Join(dir, "access.log")
		accessLog = g.AccessLogPath
	}
	var conf strings.Builder
	conf.WriteString("listen:\n  http: [\"127.0.0.1:0\"]\n")
	if opts.HTTPS {
		certPath, keyPath := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
		g.CertPEM = selfSigned(t, certPath, keyPath)
		fmt.Fprintf(&conf, "  https: [\"127.0.0.1:0\"]\ntls:\n  certificates:\n    - cert_file: %s\n      key_file: %s\n", certPath, keyPath)
	}
	fmt.Fprintf(&conf, "engine: %s\ndata_dir: data\n", engine)
	conf.WriteString("admin:\n  listen: \"127.0.0.1:0\"\n")
	if !opts.NoAdminKey {
		fmt.Fprintf(&conf, "  keys:\n    - key: %s\n", AdminKey)
	}
	conf.WriteString("control:\n  listen: \"127.0.0.1:0\"\n")
	switch opts.Store {
	case "", "file":
		conf.WriteString("resources:\n  file: apisix.yaml\n")
	case "embedded":
		conf.WriteString("store:\n  type: embedded\n")
	default:
		conf.WriteString(opts.Store + "\n") // a whole store section, e.g. for etcd
	}
	if !strings.Contains(opts.Extra, "log:") {
		fmt.Fprintf(&conf, "log:\n  level: debug\n  error_log: stderr\n  access_log: %q\n", accessLog)
	}
	conf.WriteString(opts.Extra + "\n")
	confPath := filepath.Join(dir, "sluice.yaml")
	writeFile(t, confPath, conf.String())

	g.cmd = exec.Command(binary, "-c", confPath)
	g.cmd.Stdout, g.cmd.Stderr = g.Stdout, g.Stderr
	if err := g.cmd.Start(); err != nil {
		t.Fatalf("start sluice: %v", err)
	}
	g.done = make(chan struct{})
	go func() { _ = g.cmd.Wait(); close(g.done) }()
	t.Cleanup(func() {
		g.Stop()
		if t.Failed() {
			t.Logf("sluice stderr:\n%s", tail(g.Stderr.String(), 4000))
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		if m := listenRe.FindStringSubmatch(g.Stderr.String()); m != nil {
			addrs := strings.Split(m[1], ",")
			g.Addr = addrs[0]
			if opts.HTTPS && len(addrs) > 1 {
				g.TLSAddr = addrs[1]
			}
			break
		}
		select {
		case <-g.done:
			t.Fatalf("sluice exited at start:\n%s", g.Stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("sluice did not start:\n%s", g.Stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	g.URL = "http://" + g.Addr
	if m := adminRe.FindStringSubmatch(g.Stderr.String()); m != nil {
		g.AdminURL = "http://" + m[1]
	}
	if m := controlRe.FindStringSubmatch(g.Stderr.String()); m != nil {
		g.ControlURL = "http://" + m[1]
	}
	g.rev = 1
	g.WaitLog(t, "configuration applied", 10*time.Second)
	return g
}

// WriteResources replaces the resources file (atomically, by rename) and
// waits until the gateway applied it.
func (g *Gateway) WriteResources(t testing.TB, yaml string) {
	t.Helper()
	before := strings.Count(g.Stderr.String(), `msg="configuration applied"`)
	tmp := g.ResourcesPath + ".tmp"
	writeFile(t, tmp, yaml+"\n#END\n")
	if err := os.Rename(tmp, g.ResourcesPath); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for strings.Count(g.Stderr.String(), `msg="configuration applied"`) <= before {
		if time.Now().After(deadline) {
			t.Fatalf("configuration not applied:\n%s", tail(g.Stderr.String(), 3000))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// WaitLog waits until the error log contains substr.
func (g *Gateway) WaitLog(t testing.TB, substr string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !strings.Contains(g.Stderr.String(), substr) {
		if time.Now().After(deadline) {
			t.Fatalf("log never showed %q:\n%s", substr, tail(g.Stderr.String(), 3000))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Signal sends sig to the process.
func (g *Gateway) Signal(sig syscall.Signal) { _ = g.cmd.Process.Signal(sig) }

// Exited returns a channel closed when the process has exited.
func (g *Gateway) Exited() <-chan struct{} { return g.done }

// ExitCode is the process's exit code, once exited.
func (g *Gateway) ExitCode() int { return g.cmd.ProcessState.ExitCode() }

// Stop terminates the process (SIGTERM, then SIGKILL after 10 s).
func (g *Gateway) Stop() {
	select {
	case <-g.done:
		return
	default:
	}
	g.Signal(syscall.SIGTERM)
	select {
	case <-g.done:
	case <-time.After(10 * time.Second):
		_ = g.cmd.Process.Kill()
		<-g.done
	}
}

// AccessLog returns the access log's lines (waiting briefly for the writer
// to flush).
func (g *Gateway) AccessLog(t testing.TB, wantAtLeast int) []string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		data, _ := os.ReadFile(g.AccessLogPath)
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		if len(data) > 0 && len(lines) >= wantAtLeast {
			return lines
		}
		if time.Now().After(deadline) {
			t.Fatalf("access log has %d lines, want %d:\n%s", len(lines), wantAtLeast, data)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// RawRequest writes raw bytes on a fresh connection to the gateway and returns
// everything it answers until it closes the connection or timeout passes.
// closed reports whether the gateway closed the connection. A write that fails
// counts as closed: the gateway may close while request bytes are still
// unread, which resets the connection.
func RawRequest(t testing.TB, addr, raw string, timeout time.Duration) (resp string, closed bool) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(raw)); err != nil {
		return "", true
	}
	_ = c.SetReadDeadline(time.Now().Add(timeout))
	var out bytes.Buffer
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		out.Write(buf[:n])
		if err != nil {
			var ne net.Error
			if ok := errorsAs(err, &ne); ok && ne.Timeout() {
				return out.String(), false
			}
			return out.String(), true
		}
	}
}

// StatusOf returns the status code of the first response in a raw answer.
func StatusOf(resp string) int {
	line, _, _ := strings.Cut(resp, "\r\n")
	f := strings.Fields(line)
	if len(f) < 2 || !strings.HasPrefix(f[0], "HTTP/1.") {
		return 0
	}
	code, _ := strconv.Atoi(f[1])
	return code
}

func writeFile(t testing.TB, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// selfSigned writes a fresh ECDSA certificate for localhost/127.0.0.1.
func selfSigned(t testing.TB, certPath, keyPath string) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	writeFile(t, certPath, string(certPEM))
	writeFile(t, keyPath, string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})))
	return certPEM
}
