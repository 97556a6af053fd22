package store

import (
	"context"
	"time"
)

// embMaxBatch caps the events in one incremental batch, so copying a batch
// under the store's lock stays short.
const embMaxBatch = 1000

// embRetryAfter is how long a watcher waits before retrying a failed listing.
const embRetryAfter = time.Second

// embHistory is a ring of the latest events, indexed by revision. Every write
// takes exactly one revision, so the retained events are the contiguous range
// first..last.
type embHistory struct {
	ring  []Event
	first int64 // oldest retained revision; last+1 when empty
	last  int64 // newest revision, the store revision once published
}

func newEmbHistory(size int, rev int64) embHistory {
	return embHistory{ring: make([]Event, size), first: rev + 1, last: rev}
}

func (h *embHistory) add(rev int64, ev Event) {
	n := int64(len(h.ring))
	h.ring[rev%n] = ev
	h.last = rev
	h.first = max(h.first, rev-n+1)
}

// since returns the events after rev (at most limit of them) and whether rev
// is still covered: false when events after it have left the window.
func (h *embHistory) since(rev int64, limit int) ([]Event, bool) {
	if rev < h.first-1 {
		return nil, false
	}
	n := int64(len(h.ring))
	var out []Event
	for r := rev + 1; r <= h.last && len(out) < limit; r++ {
		out = append(out, h.ring[r%n])
	}
	return out, true
}

// publish records a committed write and wakes the watchers. Callers hold
// writeMu, so revisions arrive in order.
func (e *Embedded) publish(rev int64, ev Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.hist.add(rev, ev)
	close(e.changed)
	e.changed = make(chan struct{})
}

// Watch streams every change after afterRev, in revision order, as incremental
// batches whose Revision is the last event's. Each event's Item.ModRev is the
// revision of that change.
//
// Events come from an in-memory window of the latest 10,000 changes. Writers
// only append to that window and never wait for a watcher. A watcher that
// starts from a revision older than the window (for example from 0 after a
// restart), or that reads so slowly that the window moves past what it has
// received, is sent one Reset batch carrying a fresh full listing and then
// continues with the events after that listing. An afterRev newer than the
// store waits for that revision, as in etcd. Batches share item values with
// the store and with other watchers: they must not be modified.
//
// The channel is closed when ctx ends or the store is closed.
func (e *Embedded) Watch(ctx context.Context, afterRev int64) <-chan Batch {
	out := make(chan Batch)
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		close(out)
		return out
	}
	e.wg.Add(1)
	e.mu.Unlock()
	go e.watch(ctx, out, max(afterRev, 0))
	return out
}

func (e *Embedded) watch(ctx context.Context, out chan<- Batch, sent int64) {
	defer e.wg.Done()
	defer close(out)
	for {
		e.mu.Lock()
		evs, covered := e.hist.since(sent, embMaxBatch)
		changed := e.changed
		e.mu.Unlock()

		var b Batch
		switch {
		case !covered:
			l, err := e.List(ctx)
			if err != nil {
				if !e.pause(ctx, err) {
					return
				}
				continue
			}
			e.logger.Info("watcher is behind the event window; sending a full listing",
				"from_revision", sent, "revision", l.Revision)
			b = Batch{Revision: l.Revision, Reset: true, Listing: l}
		case len(evs) > 0:
			b = Batch{Revision: evs[len(evs)-1].Item.ModRev, Events: evs}
		default:
			select {
			case <-changed:
				continue
			case <-ctx.Done():
				return
			case <-e.done:
				return
			}
		}
		select {
		case out <- b:
			sent = b.Revision
		case <-ctx.Done():
			return
		case <-e.done:
			return
		}
	}
}

// pause logs a failed listing and waits before the next try; it reports
// whether the watch should go on.
func (e *Embedded) pause(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	e.logger.Error("watcher cannot list the store; retrying", "error", err, "retry_in", embRetryAfter)
	t := time.NewTimer(embRetryAfter)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	case <-e.done:
		return false
	}
}
