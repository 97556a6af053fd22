package lua

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
	"weak"
)

// The time limit of a call into Lua. gopher-lua interrupts a VM whose
// context is done (it checks between instructions), so each VM keeps one
// context for its whole life, and a per-Runtime watchdog cancels the
// context of a VM whose call ran past its deadline. A per-call
// context.WithTimeout costs an allocation and a runtime timer per call, a
// large share of a short function's cost. Starting and ending a call costs
// a few atomic operations on the VM's own context: the deadline is read
// from a clock the watchdog refreshes every tick (no clock read per call),
// and the watchdog finds the contexts to check in a list each VM joins
// once, when it is built (an earlier version took a Runtime-wide lock and
// updated a map twice per call, which every gateway goroutine contended
// for). The price is precision: a runaway call is stopped within
// 2*watchdogTick after its deadline. An interrupted VM is never reused (the
// script may have left its state half-updated), so a context is cancelled
// at most once.

// watchdogTick is how often the watchdog looks at running calls.
const watchdogTick = 10 * time.Millisecond

// vmContext is a VM's context: done when the watchdog stops it.
type vmContext struct {
	done    chan struct{}
	stopped atomic.Bool
	// deadline of the running call, in nanoseconds of the watchdog's
	// clock; 0 while no call runs, -1 once the watchdog has claimed an
	// overrun call (end then knows it was stopped).
	deadline atomic.Int64

	// after holds the cancel functions of the contexts derived from this
	// one: gopher-lua gives every coroutine a context.WithCancel of its
	// VM's, so a coroutine stops with its VM. AfterFunc keeps them here
	// instead of a goroutine each (what context does for a parent type it
	// does not know).
	mu    sync.Mutex
	after []func()
	// nAfter is len(after), read on every call without the lock.
	nAfter atomic.Int32
}

// maxDerived bounds the coroutine contexts a VM keeps: gopher-lua never
// cancels them itself, so a VM that created more is retired (closed, not
// pooled) and its memory freed.
const maxDerived = 1024

// AfterFunc runs f when the VM is stopped; context.WithCancel uses it for
// contexts derived from this one.
func (c *vmContext) AfterFunc(f func()) (stop func() bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped.Load() {
		go f()
		return func() bool { return false }
	}
	i := len(c.after)
	c.after = append(c.after, f)
	c.nAfter.Store(int32(len(c.after)))
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		if i < len(c.after) && c.after[i] != nil {
			c.after[i] = nil
			return true
		}
		return false
	}
}

// derived is how many derived contexts the VM holds.
func (c *vmContext) derived() int { return int(c.nAfter.Load()) }

// stop ends the VM's context and those derived from it.
func (c *vmContext) stop() {
	c.mu.Lock()
	if c.stopped.Load() {
		c.mu.Unlock()
		return
	}
	c.stopped.Store(true)
	close(c.done)
	fs := c.after
	c.after = nil
	c.nAfter.Store(0)
	c.mu.Unlock()
	for _, f := range fs {
		if f != nil {
			f()
		}
	}
}

func (c *vmContext) Deadline() (time.Time, bool) { return time.Time{}, false }
func (c *vmContext) Done() <-chan struct{}       { return c.done }
func (c *vmContext) Value(any) any               { return nil }

// Err is context.DeadlineExceeded once stopped, so gopher-lua's error says
// what happened.
func (c *vmContext) Err() error {
	if c.stopped.Load() {
		return context.DeadlineExceeded
	}
	return nil
}

var _ context.Context = (*vmContext)(nil)

// watchdog tracks the calls running in a Runtime's VMs.
type watchdog struct {
	epoch time.Time
	// clock is nanoseconds since epoch, refreshed by the watch goroutine
	// every tick and when it starts.
	clock atomic.Int64
	// running: a watch goroutine is running.
	running atomic.Bool
	mu      sync.Mutex // guards ctxs and starting the goroutine
	// ctxs are the contexts of the Runtime's VMs, held weakly: a spare VM
	// the pool drops is left to the garbage collector with its context.
	ctxs []weak.Pointer[vmContext]
}

func (w *watchdog) now() int64 { return int64(time.Since(w.epoch)) }

// register adds a VM's context to those the watchdog checks; once per VM.
func (w *watchdog) register(c *vmContext) {
	w.mu.Lock()
	w.ctxs = append(w.ctxs, weak.Make(c))
	w.mu.Unlock()
}

// begin marks the start of a call that must end within limit.
func (w *watchdog) begin(c *vmContext, limit time.Duration) {
	if !w.running.Load() {
		w.start() // also refreshes the clock
	}
	// One tick more: the clock may be a tick old.
	c.deadline.Store(w.clock.Load() + int64(limit) + int64(watchdogTick))
	if !w.running.Load() {
		// The goroutine left between the check above and the store,
		// without seeing this call.
		w.start()
	}
}

// start runs the watch goroutine unless it runs already.
func (w *watchdog) start() {
	w.mu.Lock()
	if w.running.CompareAndSwap(false, true) {
		// Started on demand and gone once no call runs, so an idle (or
		// discarded) Runtime holds no goroutine.
		w.clock.Store(w.now())
		go w.watch()
	}
	w.mu.Unlock()
}

// end marks the end of a call and reports whether the watchdog stopped it.
func (w *watchdog) end(c *vmContext) bool {
	if c.deadline.Swap(0) == -1 {
		// Claimed by the watchdog, which is about to stop it, or did.
		c.stop()
	}
	return c.stopped.Load()
}

func (w *watchdog) watch() {
	t := time.NewTicker(watchdogTick)
	defer t.Stop()
	idle := 0
	for range t.C {
		now := w.now()
		w.clock.Store(now)
		if w.scan(now) {
			idle = 0
			continue
		}
		// A few idle ticks before leaving: under load calls come and go
		// between ticks, and restarting the goroutine each time would
		// cost more than ticking.
		if idle++; idle < 100 {
			continue
		}
		w.running.Store(false)
		// A call that began before the store above may have seen the
		// goroutine running: look once more, and stay for it unless a
		// begin has started another goroutine meanwhile.
		if !w.scan(now) || !w.running.CompareAndSwap(false, true) {
			return
		}
		idle = 0
	}
}

// scan stops the calls past their deadline, forgets the contexts of
// collected VMs, and reports whether any call is running.
func (w *watchdog) scan(now int64) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	active := false
	live := w.ctxs[:0]
	for _, p := range w.ctxs {
		c := p.Value()
		if c == nil {
			continue
		}
		live = append(live, p)
		d := c.deadline.Load()
		if d == 0 {
			continue
		}
		active = true
		// The swap fails if the call ended (or another began) since the
		// load: that call is not stopped.
		if d > 0 && now > d && c.deadline.CompareAndSwap(d, -1) {
			c.stop()
		}
	}
	clear(w.ctxs[len(live):])
	w.ctxs = live
	return active
}
