// Package batch is APISIX's batch processor for loggers: entries are queued
// by the request (never blocking it), gathered into batches by a background
// goroutine, and handed to a send function when a batch is full or has waited
// long enough. A failed send is retried with a growing delay; after the
// retries its entries are dropped and counted. A slow or dead sink therefore
// costs requests nothing but dropped entries: the queue is bounded, and when
// it is full new entries are dropped, counted and reported (at most once a
// second) instead of waiting.
//
// A Processor outlives configurations: loggers keep it in plugin.Lasting
// under a key made of every setting it depends on, so a configuration change
// that keeps those settings keeps the queue, and one that drops them closes
// it (flushing what it holds, within a bounded time).
package batch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicegw/sluice/plugin"
)

// SendFunc delivers one batch, in order. It must give up when ctx is done:
// the processor cancels ctx when it is closed and its flush deadline passes.
// Returning a *PartialError says how many leading entries were delivered, so
// only the rest is retried.
type SendFunc func(ctx context.Context, entries [][]byte) error

// PartialError reports a batch delivered in part: entries[:Sent] went out.
type PartialError struct {
	Sent int
	Err  error
}

func (e *PartialError) Error() string { return fmt.Sprintf("sent %d entries: %v", e.Sent, e.Err) }
func (e *PartialError) Unwrap() error { return e.Err }

// Options configure a Processor.
type Options struct {
	Config
	// Send delivers batches. Required.
	Send SendFunc
	// MaxPending bounds the entries waiting to be sent (APISIX's
	// max_pending_entries); default DefaultMaxPending.
	MaxPending int
	// Log receives drop reports and send failures; default slog.Default().
	Log *slog.Logger
	// Second is how long one second of Config's timings lasts: time.Second
	// unless a test shortens it.
	Second time.Duration
	// CloseTimeout bounds Close: what cannot be sent by then is dropped.
	// Default 3 s.
	CloseTimeout time.Duration
	// MaxRetryDelay caps the doubling retry delay; default 60 s.
	MaxRetryDelay time.Duration
	// Eager sends a batch as soon as no more entries are waiting, instead
	// of waiting for inactive_timeout: for local sinks (a file) where
	// batching only needs to absorb bursts.
	Eager bool
	// OnClose runs once the processor stopped (or gave up flushing):
	// closing the sink's connection or file.
	OnClose func()
}

// Stats are a processor's counters since it started.
type Stats struct {
	// Pushed entries were accepted into the queue.
	Pushed uint64
	// Sent entries were delivered.
	Sent uint64
	// Dropped entries were lost: the queue was full, the processor closed,
	// a batch failed after its retries, or the sink refused them.
	Dropped uint64
	// Failures counts failed send attempts.
	Failures uint64
}

// Processor batches entries for one sink. Push is safe for concurrent use
// and never blocks.
type Processor struct {
	cfg        Config
	send       SendFunc
	log        *slog.Logger
	second     time.Duration
	closeAfter time.Duration
	maxDelay   time.Duration
	eager      bool
	onClose    func()

	queue  chan []byte
	stop   chan struct{}
	done   chan struct{}
	ctx    context.Context // cancelled when the close deadline passes
	cancel context.CancelFunc
	closed atomic.Bool
	once   sync.Once

	pushed, sent, dropped, failures atomic.Uint64
	// lastReport and unreported rate-limit the drop log.
	lastReport atomic.Int64
	unreported atomic.Uint64
}

// New starts a processor; Close stops it.
func New(o Options) (*Processor, error) {
	if o.Send == nil {
		return nil, errors.New("batch: Send is required")
	}
	if err := o.Config.Validate(); err != nil {
		return nil, err
	}
	if o.MaxPending <= 0 {
		o.MaxPending = DefaultMaxPending
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Second <= 0 {
		o.Second = time.Second
	}
	if o.CloseTimeout <= 0 {
		o.CloseTimeout = 3 * time.Second
	}
	if o.MaxRetryDelay <= 0 {
		o.MaxRetryDelay = 60 * time.Second
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Processor{
		cfg:        o.Config,
		send:       o.Send,
		log:        o.Log.With("batch_processor", o.Name),
		second:     o.Second,
		closeAfter: o.CloseTimeout,
		maxDelay:   o.MaxRetryDelay,
		eager:      o.Eager,
		onClose:    o.OnClose,
		// The batch being gathered or sent is held outside the queue, so
		// the queue takes the rest of the allowance.
		queue:  make(chan []byte, max(o.MaxPending-o.BatchMaxSize, 1)),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
		ctx:    ctx,
		cancel: cancel,
	}
	go p.run()
	return p, nil
}

// Push queues entry (which the processor now owns) without blocking. It
// reports false when the entry was dropped: the queue is full or the
// processor closed.
func (p *Processor) Push(entry []byte) bool {
	if p.closed.Load() {
		p.Drop(1, "processor closed")
		return false
	}
	select {
	case p.queue <- entry:
		p.pushed.Add(1)
		return true
	default:
		p.Drop(1, "queue full")
		return false
	}
}

// Dropped returns how many entries were lost so far.
func (p *Processor) Dropped() uint64 { return p.dropped.Load() }

// Stats returns the processor's counters.
func (p *Processor) Stats() Stats {
	return Stats{Pushed: p.pushed.Load(), Sent: p.sent.Load(), Dropped: p.dropped.Load(), Failures: p.failures.Load()}
}

// Drop counts n lost entries and reports them at most once a second, so a
// dead sink under load does not flood the error log. Send functions call it
// for entries they discard themselves (syslog's drop_limit).
func (p *Processor) Drop(n int, reason string) {
	total := p.dropped.Add(uint64(n))
	p.unreported.Add(uint64(n))
	now := time.Now().UnixNano()
	last := p.lastReport.Load()
	if now-last < int64(time.Second) || !p.lastReport.CompareAndSwap(last, now) {
		return
	}
	p.log.Warn("batch processor dropped log entries", "reason", reason,
		"dropped", p.unreported.Swap(0), "dropped_total", total)
}

// Close stops the processor: it sends what it holds (the queue included)
// and returns within CloseTimeout, dropping, and counting, whatever could
// not be sent by then. Pushes after Close are dropped.
func (p *Processor) Close() error {
	p.once.Do(func() {
		p.closed.Store(true)
		close(p.stop)
		deadline := time.AfterFunc(p.closeAfter, p.cancel)
		defer deadline.Stop()
		select {
		case <-p.done:
		case <-time.After(p.closeAfter + 100*time.Millisecond):
			// The send function ignores its context; leave it behind.
			p.log.Warn("batch processor did not finish flushing in time")
		}
		p.cancel()
		if p.onClose != nil {
			p.onClose()
		}
	})
	return nil
}

// run gathers entries into batches and sends them, one batch at a time: while
// a send (or its retries) is in progress, entries wait in the bounded queue.
func (p *Processor) run() {
	defer close(p.done)
	inactive := time.Duration(p.cfg.InactiveTimeout) * p.second
	maxAge := time.Duration(p.cfg.BufferDuration) * p.second
	batch := make([][]byte, 0, min(p.cfg.BatchMaxSize, 1024))
	var first, last time.Time
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	flush := func() {
		timer.Stop()
		p.deliver(batch)
		clear(batch)
		batch = batch[:0]
	}
	for {
		select {
		case e := <-p.queue:
			now := time.Now()
			if len(batch) == 0 {
				first = now
				timer.Reset(inactive)
			}
			last = now
			batch = append(batch, e)
			if len(batch) >= p.cfg.BatchMaxSize || p.eager && len(p.queue) == 0 {
				flush()
			}
		case <-timer.C:
			// APISIX's rule: send once the batch has been idle for
			// inactive_timeout or its oldest entry reached buffer_duration.
			now := time.Now()
			if now.Sub(last) >= inactive || now.Sub(first) >= maxAge {
				flush()
				continue
			}
			timer.Reset(min(last.Add(inactive).Sub(now), first.Add(maxAge).Sub(now)))
		case <-p.stop:
			for {
				select {
				case e := <-p.queue:
					batch = append(batch, e)
					if len(batch) >= p.cfg.BatchMaxSize {
						flush()
					}
					continue
				default:
				}
				break
			}
			if len(batch) > 0 {
				flush()
			}
			// Entries pushed while the final flush ran are lost.
			for {
				select {
				case <-p.queue:
					p.Drop(1, "processor closed")
					continue
				default:
				}
				return
			}
		}
	}
}

// deliver sends one batch, retrying failures with a doubling delay, and drops
// the entries it could not send.
func (p *Processor) deliver(batch [][]byte) {
	delay := time.Duration(p.cfg.RetryDelay) * p.second
	for attempt := 0; ; attempt++ {
		err := p.send(p.ctx, batch)
		if err == nil {
			p.sent.Add(uint64(len(batch)))
			return
		}
		p.failures.Add(1)
		var pe *PartialError
		if errors.As(err, &pe) && pe.Sent > 0 && pe.Sent <= len(batch) {
			p.sent.Add(uint64(pe.Sent))
			batch = batch[pe.Sent:]
		}
		stopping := p.closed.Load()
		if attempt >= p.cfg.MaxRetryCount || len(batch) == 0 || stopping || p.ctx.Err() != nil {
			p.log.Error("batch processor failed to send entries; dropping them",
				"entries", len(batch), "attempts", attempt+1, "err", err)
			p.Drop(len(batch), "send failed")
			return
		}
		p.log.Warn("batch processor failed to send entries; retrying",
			"entries", len(batch), "attempt", attempt+1, "retry_in", delay, "err", err)
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-p.stop:
			// Closing: one last immediate attempt (the loop drops on failure).
			t.Stop()
		}
		delay = nextDelay(delay, p.second, p.maxDelay)
	}
}

// nextDelay doubles a retry delay, from at least a tenth of a second (so
// retry_delay 0 retries at once, then backs off) up to limit.
func nextDelay(d, second, limit time.Duration) time.Duration {
	return min(max(d*2, second/10), limit)
}

// Get returns the processor kept in l under key, starting one with opts()
// on first use. key must capture every setting the processor and its send
// function depend on. With a nil l (a validation-only compile) it returns
// nil: the instance will never log.
func Get(l *plugin.Lasting, key string, opts func() (Options, error)) (*Processor, error) {
	o, err := l.Get(key, func() (any, error) {
		op, err := opts()
		if err != nil {
			return nil, err
		}
		return New(op)
	})
	if err != nil || o == nil {
		return nil, err
	}
	p, ok := o.(*Processor)
	if !ok {
		return nil, fmt.Errorf("batch: %q holds a %T", key, o)
	}
	return p, nil
}

// MaxPendingFrom reads max_pending_entries from a logger's plugin metadata;
// DefaultMaxPending when absent or invalid.
func MaxPendingFrom(meta map[string]any) int {
	if v, ok := meta["max_pending_entries"].(float64); ok && v >= 1 && v == float64(int(v)) {
		return int(v)
	}
	return DefaultMaxPending
}

// JSONArray joins JSON entries into one JSON array, as APISIX's loggers
// encode a batch; with single (batch_max_size 1) a lone entry goes as is.
func JSONArray(entries [][]byte, single bool) []byte {
	if single && len(entries) == 1 {
		return entries[0]
	}
	n := 2
	for _, e := range entries {
		n += len(e) + 1
	}
	out := make([]byte, 0, n)
	out = append(out, '[')
	for i, e := range entries {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, e...)
	}
	return append(out, ']')
}
