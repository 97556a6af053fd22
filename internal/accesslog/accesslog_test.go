package accesslog

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"sync"
	"testing"
	"time"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func TestLineIsValidJSONWithEveryField(t *testing.T) {
	var buf lockedBuffer
	l := New(&buf)
	l.Log(&Entry{
		Time: time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC), Client: "10.0.0.1", Method: "GET",
		Host: "ex\"ample\n.com", URI: "/a?b=\x01\xff", Status: 502, Bytes: 12, RouteID: "r1",
		UpstreamAddr: "127.0.0.1:80", UpstreamStatus: 0, UpstreamLatency: 1500 * time.Microsecond,
		Latency: 2 * time.Millisecond,
	})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	line := buf.b.String()
	if strings.Count(line, "\n") != 1 {
		t.Fatalf("want exactly one line, got %q", line)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(line), &m); err != nil {
		t.Fatalf("not JSON: %v: %q", err, line)
	}
	want := map[string]any{
		"time": "2026-11-29T10:00:00Z", "client": "10.0.0.1", "method": "GET", "host": "ex\"ample\n.com",
		"uri": "/a?b=\x01\ufffd", "status": 502.0, "bytes": 12.0, "route_id": "r1",
		"upstream_addr": "127.0.0.1:80", "upstream_status": 0.0, "upstream_latency_ms": 1.5, "latency_ms": 2.0,
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %#v, want %#v", k, m[k], v)
		}
	}
	if len(m) != len(want) {
		t.Errorf("fields %v, want %d", m, len(want))
	}
}

// blockingWriter never returns until released, like a stuck disk or pipe.
type blockingWriter struct{ release chan struct{} }

func (w *blockingWriter) Write(p []byte) (int, error) { <-w.release; return len(p), nil }

func TestSlowWriterDropsInsteadOfBlocking(t *testing.T) {
	w := &blockingWriter{release: make(chan struct{})}
	l := New(w)
	done := make(chan struct{})
	go func() {
		defer close(done)
		// The 64 KiB bufio buffer plus the queue absorb a few thousand lines;
		// the rest must be dropped, not waited for.
		for i := 0; i < 3*queueLen; i++ {
			l.Log(&Entry{Time: time.Now(), Method: "GET", URI: strings.Repeat("x", 200)})
		}
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Log blocked on a stuck writer")
	}
	if l.Dropped() == 0 {
		t.Fatal("expected dropped lines")
	}
	close(w.release)
	l.Close()
}

func TestNilLoggerIsOff(t *testing.T) {
	var l *Logger
	l.Log(&Entry{})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

func BenchmarkLog(b *testing.B) {
	l := New(io.Discard)
	defer l.Close()
	e := &Entry{Time: time.Now(), Client: "127.0.0.1", Method: "GET", Host: "example.com", URI: "/api/users?id=1",
		Status: 200, Bytes: 512, RouteID: "r1", UpstreamAddr: "127.0.0.1:8080", UpstreamStatus: 200}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		l.Log(e)
	}
}
