package ratelimit

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sluicegw/sluice/internal/redistest"
)

// countScript admits a call while the key's count stays within ARGV[1] and
// echoes the caller's tag (ARGV[2]), so each caller can check the reply is
// its own.
var countScript = redis.NewScript(`
local n = redis.call('INCR', KEYS[1])
if n > tonumber(ARGV[1]) then return {0, n, ARGV[2]} end
return {1, n, ARGV[2]}
`)

func testBackend(t testing.TB, s *redistest.Server, timeout time.Duration, direct bool) *Backend {
	t.Helper()
	c := RedisConfig{Policy: PolicyRedis, Host: "127.0.0.1", Port: s.Port(), Timeout: int(timeout / time.Millisecond),
		KeepaliveTimeout: 10000, KeepalivePool: 100, Direct: direct}
	b := NewBackend(&c, "test", slog.New(slog.DiscardHandler))
	t.Cleanup(func() { b.Close() })
	return b
}

// countReply checks a countScript reply carries tag and returns whether the
// call was admitted and the count it saw.
func countReply(cmd *redis.Cmd, tag string) (bool, int64, error) {
	res, err := cmd.Slice()
	if err != nil {
		return false, 0, err
	}
	if len(res) != 3 {
		return false, 0, fmt.Errorf("reply %v: want 3 values", res)
	}
	ok, _ := res[0].(int64)
	n, _ := res[1].(int64)
	if got, _ := res[2].(string); got != tag {
		return false, 0, fmt.Errorf("reply for %q carries tag %q", tag, got)
	}
	return ok == 1, n, nil
}

// TestRunExactCounts: 200 concurrent callers against a count of 100 through
// a real redis-server: exactly 100 are admitted, every caller gets its own
// reply, and the counts seen are 1..200 each once (no call lost, none run
// twice).
func TestRunExactCounts(t *testing.T) {
	t.Parallel()
	b := testBackend(t, redistest.Start(t), 5*time.Second, false)
	const callers, limit = 200, 100
	var admitted atomic.Int64
	seen := make([]atomic.Int32, callers+1)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() {
			tag := fmt.Sprintf("caller-%d", i)
			ok, n, err := countReply(b.Run(countScript, []string{"exact"}, limit, tag), tag)
			if err != nil {
				t.Error(err)
				return
			}
			if ok {
				admitted.Add(1)
			}
			if n < 1 || n > callers {
				t.Errorf("%s: count %d out of 1..%d", tag, n, callers)
				return
			}
			seen[n].Add(1)
		})
	}
	wg.Wait()
	if got := admitted.Load(); got != limit {
		t.Errorf("admitted %d of %d, want exactly %d", got, callers, limit)
	}
	for n := 1; n <= callers; n++ {
		if got := seen[n].Load(); got != 1 {
			t.Errorf("count %d seen by %d callers, want 1", n, got)
		}
	}
	t.Logf("%d calls in %d round trips", callers, b.co.batches.Load())
}

// holdSenders freezes Redis and gives each sender one call of script to
// send, one at a time so that each sender takes one: afterwards every
// sender waits on Redis and new calls queue. It returns a function that
// resumes Redis (also run when the test ends) and waits for the held calls.
func holdSenders(t *testing.T, s *redistest.Server, b *Backend, script *redis.Script) (resume func()) {
	t.Helper()
	s.Pause()
	var once sync.Once
	var wg sync.WaitGroup
	resume = func() { once.Do(func() { s.Resume(); wg.Wait() }) }
	t.Cleanup(resume)
	for i := range senders {
		before := b.co.batches.Load()
		wg.Go(func() {
			if err := b.Run(script, []string{"hold"}).Err(); err != nil && !isNoScript(err) {
				t.Errorf("holding call %d: %v", i, err)
			}
		})
		waitFor(t, "a sender to take a holding call", func() bool { return b.co.batches.Load() > before })
	}
	return resume
}

// waitFor polls cond; it fails the test rather than hang.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for range 10000 {
		if cond() {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("gave up waiting for %s", what)
}

// TestRunCoalesces: calls queued while the senders wait on Redis leave
// together: 50 queued calls take at most a few round trips, and each still
// gets its own reply.
func TestRunCoalesces(t *testing.T) {
	t.Parallel()
	s := redistest.Start(t)
	b := testBackend(t, s, 10*time.Second, false)
	// Warm a connection per sender and load the script, so the queued calls
	// below are not split by dials or NOSCRIPT.
	for i := range senders {
		if _, _, err := countReply(b.Run(countScript, []string{"warm"}, 1000, "w"), "w"); err != nil {
			t.Fatalf("warm-up %d: %v", i, err)
		}
	}
	resume := holdSenders(t, s, b, otherScript)
	before := b.co.batches.Load()
	var wg sync.WaitGroup
	const queued = 50
	for i := range queued {
		wg.Go(func() {
			tag := fmt.Sprintf("q-%d", i)
			if _, _, err := countReply(b.Run(countScript, []string{"co"}, 1000, tag), tag); err != nil {
				t.Error(err)
			}
		})
	}
	waitFor(t, "the calls to queue", func() bool { return len(b.co.q) == queued })
	resume()
	wg.Wait()
	if got := b.co.batches.Load() - before; got > 2*senders {
		t.Errorf("%d queued calls took %d round trips, want at most %d", queued, got, 2*senders)
	}
}

// TestRunStalledRedis: with Redis frozen, every caller returns an error at
// its own deadline instead of waiting for Redis, and the backend serves
// again once Redis answers.
func TestRunStalledRedis(t *testing.T) {
	t.Parallel()
	s := redistest.Start(t)
	b := testBackend(t, s, 200*time.Millisecond, false)
	if _, _, err := countReply(b.Run(countScript, []string{"st"}, 1000, "first"), "first"); err != nil {
		t.Fatalf("before the stall: %v", err)
	}
	s.Pause()
	var wg sync.WaitGroup
	var failed atomic.Int64
	done := make(chan struct{})
	for i := range 30 {
		wg.Go(func() {
			if _, _, err := countReply(b.Run(countScript, []string{"st"}, 1000, "x"), "x"); err != nil {
				failed.Add(1)
			} else {
				t.Errorf("caller %d: got a reply from a frozen Redis", i)
			}
		})
	}
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second): // a hang, far beyond any deadline
		s.Resume()
		t.Fatal("callers still waiting on a frozen Redis long after redis_timeout")
	}
	s.Resume()
	if got := failed.Load(); got != 30 {
		t.Errorf("%d of 30 callers failed, want all", got)
	}
	var err error
	for range 50 { // the first calls after a resume may meet broken connections
		if _, _, err = countReply(b.Run(countScript, []string{"st"}, 1000, "after"), "after"); err == nil {
			break
		}
	}
	if err != nil {
		t.Errorf("after the stall: %v", err)
	}
}

// otherScript holds the senders (holdSenders) without loading countScript.
var otherScript = redis.NewScript(`return redis.call('INCR', KEYS[1])`)

// TestRunNoScript: after SCRIPT FLUSH the server no longer knows the
// script; a single call and a pipeline of queued calls both reload it and
// every call still runs exactly once.
func TestRunNoScript(t *testing.T) {
	t.Parallel()
	s := redistest.Start(t)
	b := testBackend(t, s, 10*time.Second, false)
	rc := redis.NewClient(&redis.Options{Addr: s.Addr(), Protocol: 2, DisableIdentity: true})
	t.Cleanup(func() { rc.Close() })
	ctx := t.Context()
	flush := func() {
		t.Helper()
		if err := rc.ScriptFlush(ctx).Err(); err != nil {
			t.Fatalf("SCRIPT FLUSH: %v", err)
		}
	}
	if _, _, err := countReply(b.Run(countScript, []string{"ns"}, 1000, "one"), "one"); err != nil {
		t.Fatalf("first call: %v", err)
	}
	flush()
	if _, _, err := countReply(b.Run(countScript, []string{"ns"}, 1000, "two"), "two"); err != nil {
		t.Fatalf("single call after flush: %v", err)
	}
	for i := range senders { // a connection per sender, otherScript loaded
		if err := b.Run(otherScript, []string{"other"}).Err(); err != nil {
			t.Fatalf("warm-up %d: %v", i, err)
		}
	}
	flush()
	// Hold the senders on a frozen Redis (with otherScript: reloading it
	// does not load countScript), queue calls behind them, then let go: the
	// queued calls leave as pipelines of EVALSHA that all meet NOSCRIPT.
	resume := holdSenders(t, s, b, otherScript)
	var wg sync.WaitGroup
	const queued = 40
	for i := range queued {
		wg.Go(func() {
			tag := fmt.Sprintf("q-%d", i)
			if _, _, err := countReply(b.Run(countScript, []string{"ns"}, 1000, tag), tag); err != nil {
				t.Errorf("queued call after flush: %v", err)
			}
		})
	}
	waitFor(t, "the calls to queue", func() bool { return len(b.co.q) == queued })
	resume()
	wg.Wait()
	// Every call ran exactly once: 2 single calls and the queued ones.
	if n, err := rc.Get(ctx, "ns").Int(); err != nil || n != 2+queued {
		t.Errorf("count %d (%v), want %d", n, err, 2+queued)
	}
}

// TestRunClosed: a call on a closed backend fails at once.
func TestRunClosed(t *testing.T) {
	t.Parallel()
	b := testBackend(t, redistest.Start(t), 5*time.Second, false)
	b.Close()
	if err := b.Run(countScript, []string{"c"}, 1, "c").Err(); !errors.Is(err, redis.ErrClosed) {
		t.Errorf("after Close: err %v, want %v", err, redis.ErrClosed)
	}
}

// BenchmarkRun: parallel script calls, 50 callers per GOMAXPROCS (a loaded
// gateway's concurrent requests), each call its own round trip (direct)
// against coalesced pipelines. Run with -cpu 1,2 -benchmem.
func BenchmarkRun(b *testing.B) {
	s := redistest.Start(b)
	for _, mode := range []struct {
		name   string
		direct bool
	}{{"direct", true}, {"coalesced", false}} {
		b.Run(mode.name, func(b *testing.B) {
			be := testBackend(b, s, 5*time.Second, mode.direct)
			var next atomic.Int64
			b.SetParallelism(50)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				key := []string{fmt.Sprintf("bench-%d", next.Add(1)%64)}
				for pb.Next() {
					if err := be.Run(countScript, key, 1<<40, "b").Err(); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
