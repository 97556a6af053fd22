package store

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"testing"
	"time"
)

// embNext receives one batch or fails the test after a timeout.
func embNext(t *testing.T, w <-chan Batch) Batch {
	t.Helper()
	select {
	case b, ok := <-w:
		if !ok {
			t.Fatal("watch channel closed")
		}
		return b
	case <-time.After(10 * time.Second):
		t.Fatal("no batch within 10s")
	}
	return Batch{}
}

// embQuiet asserts that nothing arrives for a short while.
func embQuiet(t *testing.T, w <-chan Batch) {
	t.Helper()
	select {
	case b := <-w:
		t.Fatalf("unexpected batch %+v", b)
	case <-time.After(50 * time.Millisecond):
	}
}

// embCollect reads incremental events until revision rev.
func embCollect(t *testing.T, w <-chan Batch, rev int64) []Event {
	t.Helper()
	var evs []Event
	for last := int64(0); last < rev; {
		b := embNext(t, w)
		if b.Reset {
			t.Fatalf("unexpected reset at revision %d", b.Revision)
		}
		evs = append(evs, b.Events...)
		last = b.Revision
	}
	return evs
}

// embState applies batches the way the runtime does.
type embState map[string]string

func (s embState) apply(b Batch) {
	if b.Reset {
		clear(s)
		for _, it := range b.Listing.Items {
			s[string(it.Kind)+"/"+it.ID] = string(it.Value)
		}
		return
	}
	for _, ev := range b.Events {
		k := string(ev.Item.Kind) + "/" + ev.Item.ID
		if ev.Type == Delete {
			delete(s, k)
		} else {
			s[k] = string(ev.Item.Value)
		}
	}
}

func TestEmbeddedWatchOrder(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := embOpen(t, t.TempDir(), embOptions{})
	w := e.Watch(ctx, 0)
	embQuiet(t, w) // an empty store at revision 0 has nothing to send

	embPut(t, e, Upstreams, "u", `{"a":1}`, 0)
	embPut(t, e, Routes, "r", `{"b":1}`, 0)
	embPut(t, e, Routes, "r", `{"b":2}`, 2)
	if _, err := e.Delete(ctx, Upstreams, "u", AnyRevision); err != nil {
		t.Fatal(err)
	}
	evs := embCollect(t, w, 4)
	want := []struct {
		typ   EventType
		key   string
		value string
		crev  int64
	}{
		{Put, "upstreams/u", `{"a":1}`, 1},
		{Put, "routes/r", `{"b":1}`, 2},
		{Put, "routes/r", `{"b":2}`, 2},
		{Delete, "upstreams/u", `{"a":1}`, 1},
	}
	if len(evs) != len(want) {
		t.Fatalf("got %d events, want %d: %+v", len(evs), len(want), evs)
	}
	for i, ev := range evs {
		w := want[i]
		key := string(ev.Item.Kind) + "/" + ev.Item.ID
		if ev.Type != w.typ || key != w.key || string(ev.Item.Value) != w.value ||
			ev.Item.CreateRev != w.crev || ev.Item.ModRev != int64(i+1) {
			t.Errorf("event %d = %+v, want %+v at revision %d", i, ev, w, i+1)
		}
	}
}

func TestEmbeddedWatchResume(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := embOpen(t, t.TempDir(), embOptions{})
	for i := range 5 {
		embPut(t, e, Routes, fmt.Sprint(i), fmt.Sprintf(`{"i":%d}`, i), AnyRevision)
	}
	evs := embCollect(t, e.Watch(ctx, 3), 5)
	if len(evs) != 2 || evs[0].Item.ID != "3" || evs[1].Item.ID != "4" {
		t.Fatalf("resume from 3 = %+v", evs)
	}
	w := e.Watch(ctx, 5) // up to date: waits for the next write
	embQuiet(t, w)
	embPut(t, e, Routes, "x", `{}`, 0)
	if evs := embCollect(t, w, 6); len(evs) != 1 || evs[0].Item.ID != "x" {
		t.Fatalf("after the next write: %+v", evs)
	}
	// A future revision waits until the store gets there.
	w = e.Watch(ctx, 7)
	embPut(t, e, Routes, "y", `{}`, 0) // 7
	embQuiet(t, w)
	embPut(t, e, Routes, "z", `{}`, 0) // 8
	if evs := embCollect(t, w, 8); len(evs) != 1 || evs[0].Item.ID != "z" {
		t.Fatalf("from a future revision: %+v", evs)
	}
}

func TestEmbeddedWatchResetWhenTooOld(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	e := embOpen(t, dir, embOptions{historySize: 10})
	for i := range 30 {
		embPut(t, e, Routes, fmt.Sprint(i%12), fmt.Sprintf(`{"i":%d}`, i), AnyRevision)
	}
	// Revision 20 is still covered (events 21..30 are in the window); 19 is not.
	if evs := embCollect(t, e.Watch(ctx, 20), 30); len(evs) != 10 {
		t.Fatalf("from 20: %d events, want 10", len(evs))
	}
	w := e.Watch(ctx, 19)
	b := embNext(t, w)
	if !b.Reset || b.Revision != 30 || b.Listing.Revision != 30 || len(b.Listing.Items) != 12 {
		t.Fatalf("first batch from 19 = reset %v, revision %d, %d items", b.Reset, b.Revision, len(b.Listing.Items))
	}
	embPut(t, e, Routes, "new", `{}`, 0)
	if evs := embCollect(t, w, 31); len(evs) != 1 || evs[0].Item.ID != "new" {
		t.Fatalf("after reset: %+v", evs)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}

	// After a restart the window is empty: anything older than now is a reset,
	// the current revision waits for news.
	e = embOpen(t, dir, embOptions{})
	if b := embNext(t, e.Watch(ctx, 0)); !b.Reset || b.Listing.Revision != 31 || len(b.Listing.Items) != 13 {
		t.Fatalf("watch from 0 after reopen = %+v", b)
	}
	w = e.Watch(ctx, 31)
	embQuiet(t, w)
	embPut(t, e, Routes, "after", `{}`, 0)
	if evs := embCollect(t, w, 32); len(evs) != 1 {
		t.Fatalf("after reopen: %+v", evs)
	}
}

// TestEmbeddedSlowWatcher: a watcher that never reads must not hold writers
// back, and when it finally reads it catches up through a reset and ends
// with the same state as the store.
func TestEmbeddedSlowWatcher(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// fsync is not under test here; 20,000 synced commits would take minutes
	// on a slow disk.
	e := embOpen(t, t.TempDir(), embOptions{noSync: true})
	stalled := e.Watch(ctx, 0)
	fast := e.Watch(ctx, 0)
	fastState := embState{}
	fastDone := make(chan struct{})
	go func() {
		defer close(fastDone)
		for b := range fast {
			fastState.apply(b)
			if b.Revision == 20_000 {
				return
			}
		}
	}()

	const writes = 20_000
	start := time.Now()
	for i := range writes {
		if i%10 == 9 {
			if _, err := e.Delete(ctx, Routes, fmt.Sprint(i-1), AnyRevision); err != nil {
				t.Fatal(err)
			}
			continue
		}
		embPut(t, e, Routes, fmt.Sprint(i), fmt.Sprintf(`{"i":%d}`, i), AnyRevision)
	}
	elapsed := time.Since(start)
	if elapsed > time.Minute { // generous for -race on a busy machine; a blocking writer would hang instead
		t.Fatalf("%d writes with a stalled watcher took %v", writes, elapsed)
	}
	t.Logf("%d writes with a stalled watcher: %v", writes, elapsed)

	l, err := e.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := embState{}
	want.apply(Batch{Reset: true, Listing: l})

	select {
	case <-fastDone:
	case <-time.After(10 * time.Second):
		t.Fatal("fast watcher did not reach the last revision")
	}
	if !maps.Equal(fastState, want) {
		t.Fatalf("fast watcher state has %d items, store %d", len(fastState), len(want))
	}

	got, resets := embState{}, 0
	for rev := int64(0); rev < writes; {
		b := embNext(t, stalled)
		if b.Reset {
			resets++
		}
		got.apply(b)
		rev = b.Revision
	}
	if resets == 0 {
		t.Fatal("stalled watcher caught up without a reset")
	}
	if !maps.Equal(got, want) {
		t.Fatalf("stalled watcher state has %d items, store %d", len(got), len(want))
	}
}

func TestEmbeddedWatchEnds(t *testing.T) {
	t.Parallel()
	e := embOpen(t, t.TempDir(), embOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	w := e.Watch(ctx, 0)
	embPut(t, e, Routes, "1", `{}`, 0)
	cancel()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case _, ok := <-w:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatal("channel not closed after ctx ended")
		}
	}
}

func TestEmbeddedWatchIgnoresCallerMutation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := embOpen(t, t.TempDir(), embOptions{})
	w := e.Watch(ctx, 0)
	v := json.RawMessage(`{"a":1}`)
	if _, err := e.Put(ctx, Routes, "1", v, 0); err != nil {
		t.Fatal(err)
	}
	copy(v, `{"a":2}`) // the caller reuses its buffer
	if evs := embCollect(t, w, 1); string(evs[0].Item.Value) != `{"a":1}` {
		t.Fatalf("event value %s changed with the caller's buffer", evs[0].Item.Value)
	}
}
