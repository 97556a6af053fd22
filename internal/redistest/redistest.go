// Package redistest runs real redis-server processes for tests: single
// servers and Redis Clusters, on free 127.0.0.1 ports, without persistence.
//
// Tests never use a fake Redis: what they check (the counting script's
// atomicity, expiry, cluster slots, reconnects after an outage) is Redis's
// own behaviour. redis-server and redis-cli must be on PATH (Debian and
// Ubuntu: apt-get install redis-server); without them the tests fail.
package redistest

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// startTimeout bounds how long a server may take to answer PING, and a
// cluster to report cluster_state:ok.
const startTimeout = 20 * time.Second

// Server is one redis-server process.
type Server struct {
	t       testing.TB
	bin     string
	dir     string
	port    int
	cluster bool
	busPort int // cluster bus; not port+10000, which may be taken or past 65535

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
}

// Start runs a redis-server on a free port and waits until it answers PING.
// It is killed when the test ends; its log is printed if the test failed.
func Start(t testing.TB) *Server {
	t.Helper()
	return start(t, false)
}

func start(t testing.TB, cluster bool) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redistest: redis-server not found on PATH: install it (Debian/Ubuntu: apt-get install -y redis-server; " +
			"scripts/test.sh does it)")
	}
	s := &Server{t: t, bin: bin, dir: t.TempDir(), port: freePort(t), cluster: cluster}
	if cluster {
		s.busPort = freePort(t)
	}
	s.start()
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			s.dumpLog()
		}
	})
	return s
}

// Addr is the server's "127.0.0.1:port".
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// Port is the server's port.
func (s *Server) Port() int { return s.port }

func (s *Server) logPath() string { return filepath.Join(s.dir, "redis.log") }

func (s *Server) start() {
	s.t.Helper()
	args := []string{
		"--port", strconv.Itoa(s.port),
		"--bind", "127.0.0.1",
		"--dir", s.dir,
		"--save", "",
		"--appendonly", "no",
		"--logfile", s.logPath(),
	}
	if s.cluster {
		args = append(args, "--cluster-enabled", "yes",
			"--cluster-config-file", filepath.Join(s.dir, "nodes.conf"),
			"--cluster-port", strconv.Itoa(s.busPort),
			"--cluster-node-timeout", "2000")
	}
	cmd := exec.Command(s.bin, args...)
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("redistest: start %s: %v", s.bin, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait() // reaps the process; its exit status is irrelevant
		close(exited)
	}()
	s.mu.Lock()
	s.cmd, s.exited = cmd, exited
	s.mu.Unlock()
	if err := waitPing(s.Addr(), exited); err != nil {
		s.Stop()
		s.dumpLog()
		s.t.Fatalf("redistest: redis-server at %s did not answer: %v", s.Addr(), err)
	}
}

// Stop kills the server (SIGKILL: an abrupt outage) and waits until it has
// exited and its port is free. It is idempotent.
func (s *Server) Stop() {
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
		s.t.Errorf("redistest: redis-server (pid %d) did not exit after SIGKILL", cmd.Process.Pid)
	}
}

// Restart starts a stopped server again on the same port (empty: nothing
// is persisted).
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	s.start()
}

// Pause freezes the server (SIGSTOP): connections are accepted by the
// kernel but nothing answers, like a Redis stuck or far away. Resume
// undoes it.
func (s *Server) Pause() { s.signal(syscall.SIGSTOP) }

// Resume continues a paused server (SIGCONT).
func (s *Server) Resume() { s.signal(syscall.SIGCONT) }

func (s *Server) signal(sig syscall.Signal) {
	s.mu.Lock()
	cmd := s.cmd
	s.mu.Unlock()
	if cmd == nil {
		s.t.Fatalf("redistest: signal %v: server not running", sig)
	}
	if err := cmd.Process.Signal(sig); err != nil {
		s.t.Fatalf("redistest: signal %v: %v", sig, err)
	}
}

// Do sends one command (inline arguments, no spaces inside) and returns
// the raw first reply line, e.g. "+PONG" or ":3", for tests that look at
// Redis directly.
func (s *Server) Do(args ...string) (string, error) {
	return do(s.Addr(), args...)
}

func (s *Server) dumpLog() {
	b, err := os.ReadFile(s.logPath())
	if err != nil {
		return
	}
	if len(b) > 8192 {
		b = b[len(b)-8192:]
	}
	s.t.Logf("redis log (%s, tail):\n%s", s.logPath(), b)
}

// Cluster is a Redis Cluster of masters without replicas.
type Cluster struct {
	Servers []*Server
}

// StartCluster runs n (at least 3) cluster-enabled servers, joins them with
// `redis-cli --cluster create` (slots split evenly) and waits until every
// node reports cluster_state:ok.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	if n < 3 {
		t.Fatalf("redistest: a Redis Cluster needs at least 3 masters, got %d", n)
	}
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Fatalf("redistest: redis-cli not found on PATH: install redis-server (Debian/Ubuntu: apt-get install -y redis-server)")
	}
	c := &Cluster{}
	args := []string{"--cluster", "create"}
	for range n {
		s := start(t, true)
		c.Servers = append(c.Servers, s)
		args = append(args, s.Addr())
	}
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	out, err := exec.Command(cli, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("redistest: redis-cli %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	deadline := time.Now().Add(startTimeout)
	for _, s := range c.Servers {
		for {
			info, err := bulk(s.Addr(), "CLUSTER", "INFO")
			if err == nil && strings.Contains(info, "cluster_state:ok") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("redistest: cluster node %s not ok after %s: %v %q", s.Addr(), startTimeout, err, info)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return c
}

// Addrs are the nodes' addresses.
func (c *Cluster) Addrs() []string {
	out := make([]string, len(c.Servers))
	for i, s := range c.Servers {
		out[i] = s.Addr()
	}
	return out
}

// waitPing polls the server until it answers +PONG.
func waitPing(addr string, exited <-chan struct{}) error {
	deadline := time.Now().Add(startTimeout)
	var last error
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return fmt.Errorf("redis-server exited")
		default:
		}
		r, err := do(addr, "PING")
		if err == nil && r == "+PONG" {
			return nil
		}
		if err == nil {
			err = fmt.Errorf("PING answered %q", r)
		}
		last = err
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("timeout after %s: %w", startTimeout, last)
}

// do sends an inline command and returns the first reply line.
func do(addr string, args ...string) (string, error) {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := conn.Write([]byte(strings.Join(args, " ") + "\r\n")); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	return strings.TrimRight(line, "\r\n"), err
}

// bulk sends an inline command whose reply is a bulk string and returns it.
func bulk(addr string, args ...string) (string, error) {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := conn.Write([]byte(strings.Join(args, " ") + "\r\n")); err != nil {
		return "", err
	}
	br := bufio.NewReader(conn)
	head, err := br.ReadString('\n')
	if err != nil {
		return "", err
	}
	head = strings.TrimRight(head, "\r\n")
	if !strings.HasPrefix(head, "$") {
		return head, fmt.Errorf("not a bulk reply: %q", head)
	}
	n, err := strconv.Atoi(head[1:])
	if err != nil || n < 0 {
		return "", fmt.Errorf("bad bulk length %q", head)
	}
	buf := make([]byte, n+2)
	if _, err := io.ReadFull(br, buf); err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("redistest: find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
