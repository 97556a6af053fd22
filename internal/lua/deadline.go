package lua

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// The time limit of a call into Lua. gopher-lua interrupts a VM whose
// context is done (it checks between instructions), so each VM keeps one
// context for its whole life, and a per-Runtime watchdog cancels the
// context of a VM whose call ran past its deadline. A per-call
// context.WithTimeout costs an allocation and a runtime timer per call, a
// large share of a short function's cost; this costs two uncontended mutex
// operations. The price is precision: a runaway call is stopped within
// watchdogTick after its deadline. An interrupted VM is never reused (the
// script may have left its state half-updated), so a context is cancelled
// at most once.

// watchdogTick is how often the watchdog looks at running calls.
const watchdogTick = 10 * time.Millisecond

// vmContext is a VM's context: done when the watchdog stops it.
type vmContext struct {
	done    chan struct{}
	stopped atomic.Bool
	// deadline of the running call, in nanoseconds of the Runtime's
	// monotonic clock (since rt.epoch); guarded by the Runtime's calls lock.
	deadline int64

	// after holds the cancel functions of the contexts derived from this
	// one: gopher-lua gives every coroutine a context.WithCancel of its
	// VM's, so a coroutine stops with its VM. AfterFunc keeps them here
	// instead of a goroutine each (what context does for a parent type it
	// does not know).
	mu    sync.Mutex
	after []func()
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
func (c *vmContext) derived() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.after)
}

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
	epoch   time.Time
	mu      sync.Mutex
	calls   map[*vmContext]struct{}
	running bool // a watch goroutine is running
}

func (w *watchdog) now() int64 { return int64(time.Since(w.epoch)) }

// begin registers a call that must end within limit.
func (w *watchdog) begin(c *vmContext, limit time.Duration) {
	dl := w.now() + int64(limit)
	w.mu.Lock()
	if w.calls == nil {
		w.calls = make(map[*vmContext]struct{})
	}
	c.deadline = dl
	w.calls[c] = struct{}{}
	if !w.running {
		// Started on demand and gone once no call runs, so an idle (or
		// discarded) Runtime holds no goroutine.
		w.running = true
		go w.watch()
	}
	w.mu.Unlock()
}

// end unregisters a call and reports whether the watchdog stopped it.
func (w *watchdog) end(c *vmContext) bool {
	w.mu.Lock()
	delete(w.calls, c)
	w.mu.Unlock()
	return c.stopped.Load()
}

func (w *watchdog) watch() {
	t := time.NewTicker(watchdogTick)
	defer t.Stop()
	idle := 0
	for range t.C {
		now := w.now()
		w.mu.Lock()
		for c := range w.calls {
			if now > c.deadline {
				c.stop()
			}
		}
		if len(w.calls) == 0 {
			// A few idle ticks before leaving: under load calls come and
			// go between ticks, and restarting the goroutine each time
			// would cost more than ticking.
			if idle++; idle >= 100 {
				w.running = false
				w.mu.Unlock()
				return
			}
		} else {
			idle = 0
		}
		w.mu.Unlock()
	}
}
