package batch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// sink records the batches it receives.
type sink struct {
	mu      sync.Mutex
	batches [][]string
	got     chan int // receives each batch's size
}

func newSink() *sink { return &sink{got: make(chan int, 1000)} }

func (s *sink) send(_ context.Context, entries [][]byte) error {
	b := make([]string, len(entries))
	for i, e := range entries {
		b[i] = string(e)
	}
	s.mu.Lock()
	s.batches = append(s.batches, b)
	s.mu.Unlock()
	s.got <- len(entries)
	return nil
}

func (s *sink) all() [][]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]string(nil), s.batches...)
}

// wait returns the size of the next batch, failing after a generous bound
// (a correctness bound, not a speed assertion).
func wait(t *testing.T, ch <-chan int) int {
	t.Helper()
	select {
	case n := <-ch:
		return n
	case <-time.After(5 * time.Second):
		t.Fatal("no batch arrived")
		return 0
	}
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func start(t *testing.T, o Options) *Processor {
	t.Helper()
	if o.Log == nil {
		o.Log = quiet()
	}
	p, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func cfg(size, inactive int) Config {
	c := NewConfig("test")
	c.BatchMaxSize, c.InactiveTimeout = size, inactive
	return c
}

func TestFlushBySize(t *testing.T) {
	t.Parallel()
	s := newSink()
	// inactive_timeout of an hour: only the size can trigger these sends.
	p := start(t, Options{Config: cfg(3, 3600), Send: s.send})
	for i := range 6 {
		p.Push(fmt.Appendf(nil, "e%d", i))
	}
	if a, b := wait(t, s.got), wait(t, s.got); a != 3 || b != 3 {
		t.Fatalf("batch sizes %d, %d; want 3, 3", a, b)
	}
	want := [][]string{{"e0", "e1", "e2"}, {"e3", "e4", "e5"}}
	if got := s.all(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("batches %v, want %v (in order)", got, want)
	}
}

func TestFlushByInactiveTimeout(t *testing.T) {
	t.Parallel()
	s := newSink()
	p := start(t, Options{Config: cfg(1000, 1), Send: s.send, Second: 20 * time.Millisecond})
	p.Push([]byte("a"))
	p.Push([]byte("b"))
	if n := wait(t, s.got); n != 2 {
		t.Fatalf("batch of %d, want both entries in one batch", n)
	}
}

func TestFlushByBufferDuration(t *testing.T) {
	t.Parallel()
	s := newSink()
	c := cfg(1000, 5)
	c.BufferDuration = 1
	p := start(t, Options{Config: c, Send: s.send, Second: 50 * time.Millisecond})
	// A steady trickle keeps the batch from ever being idle for
	// inactive_timeout; buffer_duration must still send it.
	stop := make(chan struct{})
	go func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
				p.Push([]byte("x"))
			}
		}
	}()
	defer close(stop)
	if n := wait(t, s.got); n < 1 {
		t.Fatal("empty batch")
	}
}

func TestRetriesThenSucceeds(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	attempts := 0
	got := make(chan int, 10)
	send := func(_ context.Context, entries [][]byte) error {
		mu.Lock()
		defer mu.Unlock()
		attempts++
		if attempts <= 2 {
			return errors.New("sink down")
		}
		got <- len(entries)
		return nil
	}
	c := cfg(2, 3600)
	c.MaxRetryCount, c.RetryDelay = 3, 1
	p := start(t, Options{Config: c, Send: send, Second: 10 * time.Millisecond})
	p.Push([]byte("a"))
	p.Push([]byte("b"))
	if n := wait(t, got); n != 2 {
		t.Fatalf("delivered %d entries, want 2", n)
	}
	// The processor counts a batch as sent once Send has returned, just
	// after the receiver above saw it.
	st := p.Stats()
	for deadline := time.Now().Add(5 * time.Second); st.Sent < 2 && time.Now().Before(deadline); st = p.Stats() {
		time.Sleep(time.Millisecond)
	}
	if st.Failures != 2 || st.Sent != 2 || st.Dropped != 0 {
		t.Fatalf("stats %+v, want 2 failures, 2 sent, 0 dropped", st)
	}
}

func TestBackoffDoubles(t *testing.T) {
	t.Parallel()
	d := time.Second
	var seq []time.Duration
	for range 8 {
		d = nextDelay(d, time.Second, 60*time.Second)
		seq = append(seq, d)
	}
	want := "[2s 4s 8s 16s 32s 1m0s 1m0s 1m0s]"
	if fmt.Sprint(seq) != want {
		t.Fatalf("delays %v, want %s", seq, want)
	}
	if got := nextDelay(0, time.Second, time.Minute); got != 100*time.Millisecond {
		t.Fatalf("retry_delay 0 backs off from %v, want 100ms", got)
	}
}

func TestFailedBatchDroppedAndCounted(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	attempts := 0
	failed := make(chan struct{}, 10)
	send := func(context.Context, [][]byte) error {
		mu.Lock()
		attempts++
		mu.Unlock()
		failed <- struct{}{}
		return errors.New("sink down")
	}
	c := cfg(3, 3600)
	c.MaxRetryCount, c.RetryDelay = 2, 0
	var logs syncBuf
	p := start(t, Options{Config: c, Send: send, Second: 10 * time.Millisecond, Log: slog.New(slog.NewTextHandler(&logs, nil))})
	for range 3 {
		p.Push([]byte("x"))
	}
	for range 3 { // first attempt and two retries
		select {
		case <-failed:
		case <-time.After(5 * time.Second):
			t.Fatal("send not attempted")
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for p.Dropped() != 3 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	st := p.Stats()
	if st.Dropped != 3 || st.Failures != 3 || st.Sent != 0 {
		t.Fatalf("stats %+v, want 3 dropped after 3 failed attempts", st)
	}
	if !strings.Contains(logs.String(), "dropped log entries") {
		t.Fatalf("drop not logged:\n%s", logs.String())
	}
}

func TestFullQueueDropsWithoutBlocking(t *testing.T) {
	t.Parallel()
	gate := make(chan struct{})
	var mu sync.Mutex
	var sent int
	send := func(ctx context.Context, entries [][]byte) error {
		select {
		case <-gate:
		case <-ctx.Done():
			return ctx.Err()
		}
		mu.Lock()
		sent += len(entries)
		mu.Unlock()
		return nil
	}
	var logs syncBuf
	p := start(t, Options{Config: cfg(1, 3600), Send: send, MaxPending: 10,
		Log: slog.New(slog.NewTextHandler(&logs, nil))})
	// The sink is stuck: Push must still return at once, dropping what the
	// bounded queue cannot hold. (A blocking Push would hang this test.)
	accepted := 0
	for range 100 {
		if p.Push([]byte("x")) {
			accepted++
		}
	}
	st := p.Stats()
	if st.Pushed+st.Dropped != 100 || st.Pushed != uint64(accepted) {
		t.Fatalf("stats %+v, accepted %d: every push must be queued or counted as dropped", st, accepted)
	}
	// One entry in the stuck send plus at most 9 queued: at most 10 accepted.
	if accepted > 10 || accepted < 9 {
		t.Fatalf("accepted %d entries with max_pending 10", accepted)
	}
	if !strings.Contains(logs.String(), "reason=\"queue full\"") {
		t.Fatalf("drop not logged:\n%s", logs.String())
	}
	// Rate-limited: 90 drops within a second make one log line.
	if n := strings.Count(logs.String(), "dropped log entries"); n != 1 {
		t.Fatalf("%d drop reports for one burst, want 1", n)
	}
	close(gate)
	p.Close()
	mu.Lock()
	defer mu.Unlock()
	if sent != accepted {
		t.Fatalf("sent %d of %d accepted entries after the sink recovered", sent, accepted)
	}
}

func TestCloseFlushes(t *testing.T) {
	t.Parallel()
	s := newSink()
	p := start(t, Options{Config: cfg(100, 3600), Send: s.send})
	for i := range 5 {
		p.Push(fmt.Appendf(nil, "%d", i))
	}
	p.Close()
	if got := s.all(); len(got) != 1 || len(got[0]) != 5 {
		t.Fatalf("after Close the sink got %v, want one batch of 5", got)
	}
	if p.Push([]byte("late")) {
		t.Fatal("Push after Close accepted an entry")
	}
	if p.Dropped() != 1 {
		t.Fatalf("dropped %d, want the late entry counted", p.Dropped())
	}
}

func TestCloseIsBoundedWithADeadSink(t *testing.T) {
	t.Parallel()
	send := func(ctx context.Context, _ [][]byte) error {
		<-ctx.Done() // a sink that never answers
		return ctx.Err()
	}
	p := start(t, Options{Config: cfg(100, 3600), Send: send, CloseTimeout: 50 * time.Millisecond})
	for range 4 {
		p.Push([]byte("x"))
	}
	p.Close() // returns (the test would time out otherwise)
	if st := p.Stats(); st.Dropped != 4 || st.Sent != 0 {
		t.Fatalf("stats %+v, want the 4 unsent entries dropped", st)
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		mut  func(*Config)
		want string
	}{
		{func(c *Config) { c.BatchMaxSize = 0 }, "batch_max_size: must be >= 1, got 0"},
		{func(c *Config) { c.InactiveTimeout = 0 }, "inactive_timeout: must be >= 1"},
		{func(c *Config) { c.BufferDuration = 0 }, "buffer_duration: must be >= 1"},
		{func(c *Config) { c.MaxRetryCount = -1 }, "max_retry_count: must be >= 0"},
		{func(c *Config) { c.RetryDelay = -1 }, "retry_delay: must be >= 0"},
	} {
		c := NewConfig("x")
		tc.mut(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate() = %v, want %q", err, tc.want)
		}
	}
	c := NewConfig("x")
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults rejected: %v", err)
	}
}

type syncBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func BenchmarkPush(b *testing.B) {
	p, err := New(Options{Config: cfg(1000, 1), Send: func(context.Context, [][]byte) error { return nil }, Log: quiet()})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	e := []byte(`{"k":"v"}`)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			p.Push(e)
		}
	})
}

func TestEagerSendsWithoutWaitingForTimers(t *testing.T) {
	t.Parallel()
	s := newSink()
	// An hour of inactive_timeout: only Eager can send this batch.
	p := start(t, Options{Config: cfg(1000, 3600), Send: s.send, Eager: true})
	p.Push([]byte("now"))
	if n := wait(t, s.got); n != 1 {
		t.Fatalf("batch of %d", n)
	}
}
