// Package etcdtest runs a real, single-member etcd server for tests.
//
// Tests never use a fake etcd: the compatibility they check (key layout,
// revisions, compaction, reconnects) is etcd's own behaviour. The etcd binary
// must be on PATH (Debian and Ubuntu: apt-get install etcd-server). Without
// it, tests fail, unless SLUICE_SKIP_ETCD=1 is set, which skips them.
package etcdtest

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// SkipEnv is the environment variable that turns a missing etcd binary into a
// skipped test instead of a failure.
const SkipEnv = "SLUICE_SKIP_ETCD"

// startTimeout bounds how long etcd may take to serve after being started.
const startTimeout = 20 * time.Second

// Start runs etcd on free 127.0.0.1 ports with a data directory under
// t.TempDir() and waits until it serves. It returns the client URL, stop
// (kill the server; idempotent) and restart (stop, then start again on the
// same ports and data, so data and revisions survive: an outage). The server
// is stopped when the test ends; its log is printed if the test failed.
func Start(t testing.TB) (endpoint string, stop func(), restart func()) {
	t.Helper()
	bin, err := exec.LookPath("etcd")
	if err != nil {
		if os.Getenv(SkipEnv) == "1" {
			t.Skipf("etcd binary not found on PATH and %s=1: skipping", SkipEnv)
		}
		t.Fatalf("etcd binary not found on PATH: install it (Debian/Ubuntu: apt-get install -y etcd-server, "+
			"which provides /usr/bin/etcd) or set %s=1 to skip etcd tests", SkipEnv)
	}
	s := &server{
		t:       t,
		bin:     bin,
		dataDir: filepath.Join(t.TempDir(), "data"),
		logPath: filepath.Join(t.TempDir(), "etcd.log"),
	}
	clientPort, peerPort := freePort(t), freePort(t)
	s.clientURL = "http://127.0.0.1:" + strconv.Itoa(clientPort)
	s.peerURL = "http://127.0.0.1:" + strconv.Itoa(peerPort)
	s.start()
	t.Cleanup(func() {
		s.stop()
		if t.Failed() {
			s.dumpLog()
		}
	})
	return s.clientURL, s.stop, func() {
		t.Helper()
		s.stop()
		s.start()
	}
}

type server struct {
	t                  testing.TB
	bin                string
	dataDir, logPath   string
	clientURL, peerURL string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has exited
}

func (s *server) start() {
	s.t.Helper()
	logf, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		s.t.Fatalf("etcdtest: open log: %v", err)
	}
	defer logf.Close() // the child has its own descriptor
	cmd := exec.Command(s.bin,
		"--name", "default",
		"--data-dir", s.dataDir,
		"--listen-client-urls", s.clientURL,
		"--advertise-client-urls", s.clientURL,
		"--listen-peer-urls", s.peerURL,
		"--initial-advertise-peer-urls", s.peerURL,
		"--initial-cluster", "default="+s.peerURL,
		// A lone member needs no slack for network delays: short ticks make
		// it elect itself (at start and after a restart) in milliseconds.
		"--heartbeat-interval", "10",
		"--election-timeout", "100",
		"--logger", "zap",
		"--log-level", "warn",
		"--log-outputs", "stderr",
	)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("etcdtest: start %s: %v", s.bin, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait() // reaps the process; exit status is irrelevant
		close(exited)
	}()
	s.mu.Lock()
	s.cmd, s.exited = cmd, exited
	s.mu.Unlock()
	if err := waitHealthy(s.clientURL, exited); err != nil {
		s.stop()
		s.dumpLog()
		s.t.Fatalf("etcdtest: etcd at %s did not become healthy: %v", s.clientURL, err)
	}
}

// stop kills etcd (SIGKILL: an abrupt outage, and fast) and waits for the
// process to exit so its ports are free again.
func (s *server) stop() {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill() // already gone is fine
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		s.t.Errorf("etcdtest: etcd (pid %d) did not exit after SIGKILL", cmd.Process.Pid)
	}
}

func (s *server) dumpLog() {
	b, err := os.ReadFile(s.logPath)
	if err != nil {
		return
	}
	if len(b) > 8192 {
		b = b[len(b)-8192:]
	}
	s.t.Logf("etcd log (%s, tail):\n%s", s.logPath, b)
}

// waitHealthy polls etcd's /health endpoint, which answers true once the
// member has a leader and serves requests.
func waitHealthy(url string, exited <-chan struct{}) error {
	c := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(startTimeout)
	var last error
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return fmt.Errorf("etcd exited")
		default:
		}
		resp, err := c.Get(url + "/health")
		if err == nil {
			var buf bytes.Buffer
			_, _ = buf.ReadFrom(resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK && bytes.Contains(buf.Bytes(), []byte(`"true"`)) {
				return nil
			}
			err = fmt.Errorf("status %d: %s", resp.StatusCode, buf.String())
		}
		last = err
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("timeout after %s: %w", startTimeout, last)
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("etcdtest: find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
