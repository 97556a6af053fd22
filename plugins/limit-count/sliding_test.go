package limitcount

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicegw/sluice/plugin"
	"github.com/sluicegw/sluice/plugin/plugintest"
)

// slidingTable returns a sliding table whose windows start at table time
// 0, W, 2W... and a clock the test moves by hand.
func slidingTable(limit int64, w time.Duration, maxKeys int64) (*table, *fakeClock) {
	clk := &fakeClock{}
	tb := newSlidingTable(limit, w, maxKeys)
	tb.off = 0
	tb.now = clk.now
	return tb, clk
}

func TestSlidingVerdict(t *testing.T) {
	t.Parallel()
	const w = int64(10 * time.Second)
	s := int64(time.Second)
	ms := int64(time.Millisecond)
	tests := []struct {
		desc                  string
		limit, cur, prev, rem int64
		admitted              bool
		remaining             int64
		reset                 time.Duration
	}{
		{"empty", 10, 0, 0, 4 * s, true, 9, 4 * time.Second},
		{"last of the window", 10, 9, 0, 4 * s, true, 0, 4 * time.Second},
		{"current window full", 10, 10, 0, 4 * s, false, 0, 4 * time.Second},
		{"full weight of a full window", 10, 0, 10, w, false, 0, time.Second},  // fits after 1 s (weight 9)
		{"weight 9: exactly fits", 10, 0, 10, 9 * s, true, 0, 9 * time.Second}, // 0+1+9 = 10
		{"weight 8.5: remaining floored", 10, 0, 10, 8500 * ms, true, 0, 8500 * time.Millisecond},
		{"weight 8.5, one counted", 10, 1, 10, 8500 * ms, false, 0, 500 * time.Millisecond}, // fits once the weight is 8
		{"weight 5", 10, 3, 10, 5 * s, true, 1, 5 * time.Second},
		{"one nanosecond of weight", 10, 9, 1, 1, false, 0, 1},
		// (2^61-1) + 1 + 2^61 x 1/2 = 2^62 - 2^60: fits, 2^60 left; the
		// products overflow 64 bits.
		{"huge counts stay exact", 1 << 62, 1<<61 - 1, 1 << 61, w / 2, true, 1 << 60, time.Duration(w / 2)},
		{"huge counts, one too many", 1 << 62, 1<<61 + 1<<60, 1 << 61, w / 2, false, 0, 1},
	}
	for _, tt := range tests {
		v := slideVerdict(tt.limit, w, tt.cur, 1, tt.prev, tt.rem)
		if v.admitted != tt.admitted || v.remaining != tt.remaining || v.reset != tt.reset {
			t.Errorf("%s: %+v, want admitted=%v remaining=%d reset=%v", tt.desc, v, tt.admitted, tt.remaining, tt.reset)
		}
	}
}

// TestSlidingWindowMath walks one key across a window boundary: the
// previous window weighs on the next as it slides out.
func TestSlidingWindowMath(t *testing.T) {
	t.Parallel()
	tb, clk := slidingTable(10, 10*time.Second, 100)
	clk.ns.Store(int64(100 * time.Second)) // the start of window 10
	steps := []struct {
		at        time.Duration // since the start of window 10
		admitted  bool
		remaining int64
		reset     time.Duration
	}{
		{0, true, 9, 10 * time.Second},
		{9900 * time.Millisecond, true, 8, 100 * time.Millisecond},
		// Window 11, 2 requests in window 10: weight 2 x 9.9/10 = 1.98.
		{10100 * time.Millisecond, true, 7, 9900 * time.Millisecond}, // 10 - 1 - ceil(1.98)
		{19 * time.Second, true, 7, time.Second},                     // weight 0.2: 10 - 2 - ceil(0.2)
		// Window 13: window 12 was empty, so nothing weighs.
		{30 * time.Second, true, 9, 10 * time.Second},
	}
	base := clk.now()
	for i, s := range steps {
		clk.ns.Store(base + int64(s.at))
		v := tb.count("k", 1)
		if v.admitted != s.admitted || v.remaining != s.remaining || v.reset != s.reset {
			t.Errorf("step %d (at %v): %+v, want admitted=%v remaining=%d reset=%v", i, s.at, v, s.admitted, s.remaining, s.reset)
		}
	}
}

// TestSlidingBoundaryBurst is the case sliding windows exist for: a client
// spends its quota at the end of one window and bursts again right after
// the boundary. A fixed window admits a second full quota at once; the
// sliding window admits what the previous window's weight leaves.
func TestSlidingBoundaryBurst(t *testing.T) {
	t.Parallel()
	const limit = 100
	w := 60 * time.Second
	sliding, sclk := slidingTable(limit, w, 100)
	fixed := newTable(limit, w, 100)
	fclk := &fakeClock{}
	fixed.now = fclk.now
	// One request opens both windows at 0; 99 more at 59.9 s.
	burst := func(tb *table, clk *fakeClock, at time.Duration, n int) (admitted int) {
		clk.ns.Store(int64(at))
		for range n {
			if tb.count("k", 1).admitted {
				admitted++
			}
		}
		return admitted
	}
	for _, c := range []struct {
		tb  *table
		clk *fakeClock
	}{{sliding, sclk}, {fixed, fclk}} {
		if burst(c.tb, c.clk, 0, 1)+burst(c.tb, c.clk, w-100*time.Millisecond, 199) != limit {
			t.Fatalf("sliding=%v: the first window did not admit exactly %d", c.tb.sliding, limit)
		}
	}
	// 200 ms later, just past the boundary.
	at := w + 100*time.Millisecond
	if n := burst(fixed, fclk, at, 200); n != limit {
		t.Errorf("fixed window after the boundary admitted %d, want a whole new quota (%d)", n, limit)
	}
	// Weight 100 x 59.9/60 = 99.83: nothing fits (0 + 1 + 99.83 > 100).
	if n := burst(sliding, sclk, at, 200); n != 0 {
		t.Errorf("sliding window just past the boundary admitted %d, want 0", n)
	}
	// Half way through: weight 50, so 50 fit.
	if n := burst(sliding, sclk, w+w/2, 200); n != 50 {
		t.Errorf("sliding window half way admitted %d, want 50", n)
	}
}

// TestSlidingBound checks the stated precision bound on random bursty
// traffic, much of it just before window boundaries: over any interval of
// length L < W, at most count x (1 + L/W) requests are admitted. It also
// checks the window is not starved: over the run it admits at least half
// the quota.
func TestSlidingBound(t *testing.T) {
	t.Parallel()
	const limit, windows = 50, 40
	w := int64(10 * time.Second)
	rng := rand.New(rand.NewPCG(1, 2))
	// Bursts at random times, many of them near boundaries.
	var times []int64
	for range 3000 {
		at := rng.Int64N(windows * w)
		if rng.IntN(2) == 0 {
			at = at/w*w + w - rng.Int64N(int64(200*time.Millisecond)) // just before a boundary
		}
		for range 1 + rng.IntN(30) {
			times = append(times, at+rng.Int64N(int64(5*time.Millisecond)))
		}
	}
	sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
	admittedAt := func(tb *table, clk *fakeClock) []int64 {
		var out []int64
		for _, at := range times {
			clk.ns.Store(at)
			if tb.count("k", 1).admitted {
				out = append(out, at)
			}
		}
		return out
	}
	// worst returns the most requests admitted in any interval (t-L, t]
	// and the bound for it.
	worst := func(adm []int64, l int64) int {
		most, j := 0, 0
		for i, at := range adm {
			for adm[j] <= at-l {
				j++
			}
			most = max(most, i-j+1)
		}
		return most
	}
	sl, sclk := slidingTable(limit, time.Duration(w), 100)
	sAdm := admittedAt(sl, sclk)
	for _, l := range []time.Duration{10 * time.Millisecond, 300 * time.Millisecond, time.Second, 5 * time.Second, 9999 * time.Millisecond} {
		bound := int(limit + limit*int64(l)/w)
		if got := worst(sAdm, int64(l)); got > bound {
			t.Errorf("sliding: %d admitted within %v, bound %d", got, l, bound)
		}
	}
	if len(sAdm) < limit*(windows-1)/2 {
		t.Errorf("sliding admitted %d over %d windows: far below the quota", len(sAdm), windows)
	}
}

// TestSlidingConcurrencyExact: 200 goroutines at once against count 100
// admit exactly 100 in a fresh window, and exactly what the weight leaves
// when they race the first request of a new window (run with -race).
func TestSlidingConcurrencyExact(t *testing.T) {
	t.Parallel()
	const w = time.Minute
	race := func(tb *table) int64 {
		var admitted atomic.Int64
		var start, done sync.WaitGroup
		start.Add(1)
		for range 200 {
			done.Add(1)
			go func() {
				defer done.Done()
				start.Wait()
				if tb.count("k", 1).admitted {
					admitted.Add(1)
				}
			}()
		}
		start.Done()
		done.Wait()
		return admitted.Load()
	}
	for round := range 30 {
		tb, clk := slidingTable(100, w, defaultMaxKeys)
		clk.ns.Store(int64(w / 3))
		if n := race(tb); n != 100 {
			t.Fatalf("round %d, fresh window: admitted %d of 200, want exactly 100", round, n)
		}
		// The next window, a quarter in: weight 75, so 25 fit, decided by
		// whichever goroutine starts the window and the ones racing it.
		clk.ns.Store(int64(w + w/4))
		if n := race(tb); n != 25 {
			t.Fatalf("round %d, new window: admitted %d of 200, want exactly 25", round, n)
		}
	}
}

// TestSlidingLateRequestsAreCarried: requests that read their start time
// in the old window race the first requests of the new one. Sealing the old
// window keeps every admission either in the count carried over as prev or
// in the new window's count, never lost between them: the total admitted
// equals what the counters hold, and the new window respects the weight.
func TestSlidingLateRequestsAreCarried(t *testing.T) {
	t.Parallel()
	const w = int64(time.Minute)
	for round := range 40 {
		tb, _ := slidingTable(100, time.Duration(w), defaultMaxKeys)
		for range 60 {
			tb.countAt("k", 1, w/2)
		}
		var admitted atomic.Int64
		var start, done sync.WaitGroup
		start.Add(1)
		for i := range 200 {
			at := w - 1 // late: still in window 0
			if i%2 == 1 {
				at = w + w/2 // window 1, half way: weight prev/2
			}
			done.Add(1)
			go func() {
				defer done.Done()
				start.Wait()
				if tb.countAt("k", 1, at).admitted {
					admitted.Add(1)
				}
			}()
		}
		start.Done()
		done.Wait()
		v, _ := tb.m.Load("k")
		cur := v.(*entry).w.Load()
		n := cur.n.Load()
		if cur.end != 2*w || n < 0 {
			t.Fatalf("round %d: the key is not in a live window 1 (end %d, n %d)", round, cur.end, n)
		}
		if got, want := admitted.Load(), cur.prev-60+n; got != want {
			t.Fatalf("round %d: admitted %d, but the counters hold %d (prev %d, n %d): admissions lost", round, got, want, cur.prev, n)
		}
		if cur.prev > 100 || n+(cur.prev+1)/2 > 100 {
			t.Fatalf("round %d: prev %d, n %d exceed the limit", round, cur.prev, n)
		}
	}
}

// TestSlidingSealed is the interleaving behind that guarantee, made
// deterministic: a request loads the old window, the first request of the
// new window carries the old count over, and only then does the first
// request try to count in the old window. It must find it sealed (and look
// again) rather than count where nobody will see it.
func TestSlidingSealed(t *testing.T) {
	t.Parallel()
	const w = int64(time.Minute)
	tb, _ := slidingTable(100, time.Duration(w), 100)
	tb.countAt("k", 1, w/2)
	v, _ := tb.m.Load("k")
	e := v.(*entry)
	old := e.w.Load()
	tb.countAt("k", 1, w+w/2) // starts window 1, carrying 1
	if _, ok := tb.slideIn(old, 1, 1); ok {
		t.Fatal("a request counted in a window whose count was already carried over")
	}
	if cur := e.w.Load(); cur.prev != 1 || cur.n.Load() != 1 {
		t.Errorf("window 1: prev %d, n %d; want 1 and 1", cur.prev, cur.n.Load())
	}
	// The late request, retried, counts in window 1 at the full weight.
	if got := tb.countAt("k", 1, w-1); !got.admitted || got.remaining != 100-2-1 {
		t.Errorf("late request: %+v, want admitted with remaining 97", got)
	}
}

// TestSlidingMemoryBound: a key is kept one window after its own (its
// count still weighs), dropped after that, and a flood of keys stays
// within maxKeys.
func TestSlidingMemoryBound(t *testing.T) {
	t.Parallel()
	const maxKeys = 1000
	w := time.Minute
	tb, clk := slidingTable(5, w, maxKeys)
	for i := range 900 {
		tb.count(fmt.Sprint("old-", i), 1)
	}
	clk.advance(2 * w) // the old keys no longer weigh on anything
	for i := range 100 {
		tb.count(fmt.Sprint("live-", i), 1)
	}
	clk.advance(w) // the live keys' window is now the previous one: it weighs
	for i := range 200 {
		tb.count(fmt.Sprint("new-", i), 1) // fills the table: a sweep drops the old keys only
	}
	if n := tb.len(); n != 300 {
		t.Fatalf("table holds %d keys, want 300 (the 900 expired ones dropped, nothing else)", n)
	}
	for i := range 100 {
		// prev 1, weight 1 (at the window's start): 5 - 1 - 1 = 3.
		if v := tb.count(fmt.Sprint("live-", i), 1); v.remaining != 3 {
			t.Fatalf("live key %d lost its previous window (remaining %d, want 3)", i, v.remaining)
		}
	}
	for i := range 100_000 {
		tb.count(fmt.Sprint("flood-", i), 1)
		if n := tb.len(); n > maxKeys {
			t.Fatalf("after %d flood keys the table holds %d keys, bound %d", i+1, n, maxKeys)
		}
	}
}

// TestSlidingEpochAligned: windows start on multiples of time_window in
// Unix time, as APISIX's do, whatever the table's own origin.
func TestSlidingEpochAligned(t *testing.T) {
	t.Parallel()
	tb := newSlidingTable(10, 7*time.Second, 100)
	at := time.Unix(1_700_000_003, 0) // 1_700_000_003 = 7 x 242857143 + 2
	v, _ := tb.take("k", 1, at)
	if v.reset != 5*time.Second {
		t.Errorf("reset = %v, want 5s (the window started 2 s before, on the epoch grid)", v.reset)
	}
}

// TestSlidingNoAllocs: counting in a window the key is already in does not
// allocate.
func TestSlidingNoAllocs(t *testing.T) {
	tb, clk := slidingTable(1<<62, time.Hour, 100)
	clk.ns.Store(int64(time.Minute))
	tb.count("k", 1)
	if n := testing.AllocsPerRun(1000, func() { tb.count("k", 1) }); n != 0 {
		t.Errorf("%v allocations per check, want 0", n)
	}
}

// TestAccessSliding: the plugin end to end on a sliding config: headers
// count down, Reset is rounded up to hundredths, rejections show 0.
func TestAccessSliding(t *testing.T) {
	t.Parallel()
	inst := plugintest.New(t, Name, `{"count":2,"time_window":3600,"window_type":"sliding","key":"remote_addr","rejected_code":429}`).(*limitCount)
	for i, want := range []struct {
		status    int
		remaining string
	}{{200, "1"}, {200, "0"}, {429, "0"}} {
		c := &plugin.Ctx{}
		c.Reset(plugintest.NewRequest("GET", "/").WithIP("10.0.0.1"))
		c.RouteID = "r"
		e := inst.Access(c)
		status := 200
		if e != nil {
			status = e.Status
		}
		resp := &plugintest.Response{Code: status}
		c.Response = resp
		inst.HeaderFilter(c)
		if status != want.status || resp.Header("X-RateLimit-Remaining") != want.remaining || resp.Header("X-RateLimit-Limit") != "2" {
			t.Errorf("request %d: %d remaining %q limit %q, want %d %s 2", i+1, status,
				resp.Header("X-RateLimit-Remaining"), resp.Header("X-RateLimit-Limit"), want.status, want.remaining)
		}
		var reset float64
		if _, err := fmt.Sscan(resp.Header("X-RateLimit-Reset"), &reset); err != nil || reset <= 0 || reset > 3600 {
			t.Errorf("request %d: X-RateLimit-Reset %q", i+1, resp.Header("X-RateLimit-Reset"))
		}
	}
}

func TestFormatResetUp(t *testing.T) {
	t.Parallel()
	for d, want := range map[time.Duration]string{
		60 * time.Second:         "60",
		59991 * time.Millisecond: "60",
		59981 * time.Millisecond: "59.99",
		2300 * time.Millisecond:  "2.3",
		time.Nanosecond:          "0.01",
		0:                        "0",
		-time.Second:             "0",
	} {
		if got := formatResetUp(d); got != want {
			t.Errorf("formatResetUp(%v) = %q, want %q", d, got, want)
		}
	}
}

func BenchmarkLocalSlidingTake(b *testing.B) {
	tb := newSlidingTable(1<<62, time.Hour, defaultMaxKeys)
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = fmt.Sprint("10.0.", i/256, ".", i%256)
		tb.count(keys[i], 1)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		tb.count(keys[i&1023], 1)
		i++
	}
}

// BenchmarkLocalSlidingTakeWeighted is the check with a previous window
// that weighs (the 128-bit comparison and ceiling division run).
func BenchmarkLocalSlidingTakeWeighted(b *testing.B) {
	tb, clk := slidingTable(1<<40, time.Hour, defaultMaxKeys)
	tb.count("k", 1)
	clk.ns.Store(int64(time.Hour + time.Minute))
	tb.count("k", 1)
	b.ReportAllocs()
	for b.Loop() {
		tb.count("k", 1)
	}
}

func BenchmarkLocalSlidingTakeParallel(b *testing.B) {
	tb := newSlidingTable(1<<62, time.Hour, defaultMaxKeys)
	tb.count("hot", 1)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			tb.count("hot", 1)
		}
	})
}

// BenchmarkAccessSliding is BenchmarkAccess with window_type sliding.
func BenchmarkAccessSliding(b *testing.B) {
	for _, headers := range []bool{false, true} {
		b.Run(fmt.Sprint("headers=", headers), func(b *testing.B) {
			inst := plugintest.New(b, Name, fmt.Sprintf(`{"count":1000000000000,"time_window":3600,"window_type":"sliding","show_limit_quota_header":%t}`, headers)).(*limitCount)
			req := plugintest.NewRequest("GET", "/")
			req.Vars = map[string]string{"remote_addr": "10.1.2.3"}
			resp := &plugintest.Response{Code: 200}
			c := &plugin.Ctx{}
			b.ReportAllocs()
			for b.Loop() {
				c.Reset(req)
				c.RouteID = "1"
				c.Served.Start = time.Now()
				if inst.Access(c) != nil {
					b.Fatal("rejected")
				}
				resp.Headers = resp.Headers[:0]
				c.Response = resp
				inst.HeaderFilter(c)
			}
		})
	}
}
