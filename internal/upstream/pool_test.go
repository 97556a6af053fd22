package upstream

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// listener accepts and holds connections, counting them.
func listener(t *testing.T) (string, *atomic.Int32) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	var n atomic.Int32
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			go func() { buf := make([]byte, 1); c.Read(buf); c.Close() }()
		}
	}()
	return l.Addr().String(), &n
}

func TestPoolReusesUpToSizeAndRequests(t *testing.T) {
	addr, accepted := listener(t)
	reg := NewRegistry()
	p := reg.Pool(PoolKey{UpstreamKey: "u", Addr: addr, Size: 1, IdleTimeout: time.Minute, MaxRequests: 3}, nil)
	if p != reg.Pool(PoolKey{UpstreamKey: "u", Addr: addr, Size: 1, IdleTimeout: time.Minute, MaxRequests: 3}, nil) {
		t.Fatal("same key must give the same pool")
	}
	if p.Get() != nil {
		t.Fatal("new pool must be empty")
	}
	c1, err := p.Dial(context.Background(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c2, err := p.Dial(context.Background(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	p.Put(c1)
	p.Put(c2) // over size 1: closed
	got := p.Get()
	if got != c1 || !got.Reused {
		t.Fatalf("want c1 back marked reused, got %v", got)
	}
	if p.Get() != nil {
		t.Fatal("only one idle connection may be kept")
	}
	p.Put(got) // 2 requests
	got = p.Get()
	p.Put(got) // 3 requests: retired
	if p.Get() != nil {
		t.Fatal("a connection must be retired after keepalive_pool.requests")
	}
	// The listener counts asynchronously: wait for it, then check no more came.
	for deadline := time.Now().Add(2 * time.Second); accepted.Load() < 2 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond)
	if n := accepted.Load(); n != 2 {
		t.Fatalf("accepted %d connections, want 2", n)
	}
}

func TestPoolIdleTimeoutAndSweep(t *testing.T) {
	addr, _ := listener(t)
	reg := NewRegistry()
	p := reg.Pool(PoolKey{Addr: addr, Size: 4, IdleTimeout: 20 * time.Millisecond}, nil)
	c, err := p.Dial(context.Background(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	p.Put(c)
	time.Sleep(40 * time.Millisecond)
	if p.Get() != nil {
		t.Fatal("a connection idle past idle_timeout must not be reused")
	}

	c, _ = p.Dial(context.Background(), time.Second)
	p.Put(c)
	reg.BeginCompile() // a new snapshot that no longer uses the pool
	reg.Sweep()
	if p.Get() != nil {
		t.Fatal("a swept pool must close its idle connections")
	}
	c, _ = p.Dial(context.Background(), time.Second)
	p.Put(c) // returning to a closed pool closes the connection
	if p.Get() != nil {
		t.Fatal("a closed pool must not keep connections")
	}
}

func TestDialRefusedFailsFast(t *testing.T) {
	reg := NewRegistry()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens: connection refused, at once
	p := reg.Pool(PoolKey{Addr: addr, Size: 1}, nil)
	start := time.Now()
	if _, err := p.Dial(context.Background(), time.Second); err == nil {
		t.Fatal("dial to a closed port succeeded")
	}
	if time.Since(start) > 900*time.Millisecond {
		t.Fatal("a refused connect must fail fast")
	}
}
