package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// openEmb opens an embedded store in dir and closes it when the test ends.
func embOpen(t testing.TB, dir string, o embOptions) *Embedded {
	t.Helper()
	e, err := openEmbedded(dir, nil, o)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return e
}

func embPut(t testing.TB, e *Embedded, kind Kind, id, value string, prev int64) Item {
	t.Helper()
	it, err := e.Put(context.Background(), kind, id, json.RawMessage(value), prev)
	if err != nil {
		t.Fatalf("put %s/%s: %v", kind, id, err)
	}
	return it
}

func TestEmbeddedCRUD(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := embOpen(t, t.TempDir(), embOptions{})

	// Stored byte for byte, whitespace included.
	const v1 = `{"uri": "/a",  "upstream_id":"1"}`
	it := embPut(t, e, Routes, "r1", v1, AnyRevision)
	if it.CreateRev != 1 || it.ModRev != 1 || string(it.Value) != v1 || it.Kind != Routes || it.ID != "r1" {
		t.Fatalf("created item = %+v", it)
	}
	got, err := e.Get(ctx, Routes, "r1")
	if err != nil || string(got.Value) != v1 || got.CreateRev != 1 || got.ModRev != 1 {
		t.Fatalf("get = %+v, %v", got, err)
	}
	embPut(t, e, Upstreams, "r1", `{}`, AnyRevision) // same id, other kind: independent
	it = embPut(t, e, Routes, "r1", `{"uri":"/b"}`, AnyRevision)
	if it.CreateRev != 1 || it.ModRev != 3 {
		t.Fatalf("updated item revisions = %d/%d, want 1/3", it.CreateRev, it.ModRev)
	}

	old, err := e.Delete(ctx, Routes, "r1", AnyRevision)
	if err != nil || string(old.Value) != `{"uri":"/b"}` || old.ModRev != 3 {
		t.Fatalf("delete = %+v, %v", old, err)
	}
	if _, err := e.Get(ctx, Routes, "r1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get after delete: %v, want ErrNotFound", err)
	}
	if _, err := e.Delete(ctx, Routes, "r1", AnyRevision); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: %v, want ErrNotFound", err)
	}
	if _, err := e.Get(ctx, Upstreams, "r1"); err != nil {
		t.Fatalf("upstream r1 gone with route r1: %v", err)
	}

	l, err := e.List(ctx)
	if err != nil || l.Revision != 4 || len(l.Items) != 1 || l.Items[0].Kind != Upstreams {
		t.Fatalf("list = %+v, %v", l, err)
	}
}

func TestEmbeddedCompareAndSet(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := embOpen(t, t.TempDir(), embOptions{})
	embPut(t, e, Services, "s", `{"n":1}`, 0) // rev 1

	tests := []struct {
		desc    string
		del     bool
		id      string
		prevRev int64
		wantErr error
	}{
		{desc: "create existing with 0", id: "s", prevRev: 0, wantErr: ErrConflict},
		{desc: "update with stale revision", id: "s", prevRev: 7, wantErr: ErrConflict},
		{desc: "update missing with revision", id: "nope", prevRev: 1, wantErr: ErrConflict},
		{desc: "delete with stale revision", del: true, id: "s", prevRev: 7, wantErr: ErrConflict},
		{desc: "delete existing with 0", del: true, id: "s", prevRev: 0, wantErr: ErrConflict},
		{desc: "delete missing with revision", del: true, id: "nope", prevRev: 1, wantErr: ErrNotFound},
		{desc: "delete missing unconditionally", del: true, id: "nope", prevRev: AnyRevision, wantErr: ErrNotFound},
	}
	for _, tc := range tests {
		var err error
		if tc.del {
			_, err = e.Delete(ctx, Services, tc.id, tc.prevRev)
		} else {
			_, err = e.Put(ctx, Services, tc.id, json.RawMessage(`{}`), tc.prevRev)
		}
		if !errors.Is(err, tc.wantErr) {
			t.Errorf("%s: err = %v, want %v", tc.desc, err, tc.wantErr)
		}
	}
	// None of the failed writes took a revision or changed the item.
	if it, err := e.Get(ctx, Services, "s"); err != nil || it.ModRev != 1 || string(it.Value) != `{"n":1}` {
		t.Fatalf("item after failed writes = %+v, %v", it, err)
	}
	it := embPut(t, e, Services, "s", `{"n":2}`, 1)
	if it.ModRev != 2 {
		t.Fatalf("CAS update ModRev = %d, want 2", it.ModRev)
	}
	if _, err := e.Delete(ctx, Services, "s", 2); err != nil {
		t.Fatalf("CAS delete: %v", err)
	}
	embPut(t, e, Services, "s", `{"n":3}`, 0) // absent again: create with 0 works
}

func TestEmbeddedRejectsBadInput(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := embOpen(t, t.TempDir(), embOptions{})
	tests := []struct {
		desc  string
		kind  Kind
		id    string
		value string
		prev  int64
		want  string
	}{
		{desc: "invalid JSON", kind: Routes, id: "1", value: `{"uri":`, prev: AnyRevision, want: "not valid JSON"},
		{desc: "empty value", kind: Routes, id: "1", value: ``, prev: AnyRevision, want: "not valid JSON"},
		{desc: "unknown kind", kind: "widgets", id: "1", value: `{}`, prev: AnyRevision, want: `unknown kind "widgets"`},
		{desc: "empty id", kind: Routes, id: "", value: `{}`, prev: AnyRevision, want: "id must not be empty"},
		{desc: "bad prevRev", kind: Routes, id: "1", value: `{}`, prev: -2, want: "invalid prevRev -2"},
	}
	for _, tc := range tests {
		_, err := e.Put(ctx, tc.kind, tc.id, json.RawMessage(tc.value), tc.prev)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "store: put ") {
			t.Errorf("%s: err = %v, want it to contain %q", tc.desc, err, tc.want)
		}
	}
	if _, err := e.Get(ctx, "widgets", "1"); err == nil || errors.Is(err, ErrNotFound) {
		t.Errorf("get of unknown kind: %v, want a non-NotFound error", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := e.Put(cctx, Routes, "1", json.RawMessage(`{}`), AnyRevision); !errors.Is(err, context.Canceled) {
		t.Errorf("put with canceled ctx: %v", err)
	}
	if l, _ := e.List(ctx); l.Revision != 0 || len(l.Items) != 0 {
		t.Errorf("rejected writes changed the store: %+v", l)
	}
}

func TestEmbeddedSurvivesReopen(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	e, err := OpenEmbedded(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	embPut(t, e, Upstreams, "u1", `{"nodes":{"127.0.0.1:1980":1}}`, 0)
	embPut(t, e, Routes, "r1", `{"uri":"/x","upstream_id":"u1"}`, 0)
	embPut(t, e, Routes, "r2", `{"uri":"/y"}`, 0)
	if _, err := e.Delete(ctx, Routes, "r2", AnyRevision); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}

	e = embOpen(t, dir, embOptions{})
	l, err := e.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if l.Revision != 4 || len(l.Items) != 2 {
		t.Fatalf("listing after reopen = %+v", l)
	}
	// Kinds order: upstreams before routes.
	if l.Items[0].Kind != Upstreams || l.Items[1].ID != "r1" || l.Items[1].ModRev != 2 {
		t.Fatalf("items after reopen = %+v", l.Items)
	}
	it := embPut(t, e, Routes, "r1", `{"uri":"/z"}`, 2)
	if it.ModRev != 5 || it.CreateRev != 2 {
		t.Fatalf("revision after reopen: %d/%d, want 2/5", it.CreateRev, it.ModRev)
	}
}

func TestEmbeddedNewID(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	clock := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	now := func() time.Time { return clock }
	e, err := openEmbedded(dir, nil, embOptions{now: now})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	var last string
	next := func(e *Embedded) string {
		t.Helper()
		id, err := e.NewID(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(id) != 20 || strings.Trim(id, "0123456789") != "" {
			t.Fatalf("id %q is not 20 decimal digits", id)
		}
		if seen[id] || id <= last {
			t.Fatalf("id %q repeated or not increasing after %q", id, last)
		}
		seen[id], last = true, id
		return id
	}
	first := next(e)
	if want := fmt.Sprintf("%020d", clock.UnixMicro()); first != want {
		t.Fatalf("first id %s, want the time base %s", first, want)
	}
	for range 5 {
		next(e)
	}
	// An id a client chose by hand is skipped.
	taken := fmt.Sprintf("%020d", clock.UnixMicro()+6)
	embPut(t, e, Consumers, taken, `{"username":"jack"}`, 0)
	if id := next(e); id == taken {
		t.Fatalf("NewID returned the taken id %s", id)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}

	clock = clock.Add(-time.Hour) // the clock stepped back while stopped
	e = embOpen(t, dir, embOptions{now: now})
	for range 5 {
		next(e)
	}
}

func TestEmbeddedDirectoryInUse(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	embOpen(t, dir, embOptions{})
	start := time.Now()
	// bbolt's flock is per open file, so a second open in this process is
	// refused exactly as one from another process would be.
	_, err := openEmbedded(dir, nil, embOptions{lockTimeout: 200 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "data directory is in use by another sluice process") {
		t.Fatalf("second open: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("second open took %v", d)
	}
}

func TestEmbeddedClosed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e, err := OpenEmbedded(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	w := e.Watch(ctx, 0)
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if _, ok := <-w; ok {
		t.Fatal("watch channel open after close")
	}
	if _, ok := <-e.Watch(ctx, 0); ok {
		t.Fatal("watch after close delivered a batch")
	}
	if _, err := e.Put(ctx, Routes, "1", json.RawMessage(`{}`), AnyRevision); err == nil {
		t.Fatal("put after close succeeded")
	}
	if _, err := e.List(ctx); err == nil {
		t.Fatal("list after close succeeded")
	}
}

// TestEmbeddedNoLostUpdate runs read-modify-write increments from many
// goroutines through Get + Put(prevRev); every conflict is retried, so the
// final count must equal the number of increments.
func TestEmbeddedNoLostUpdate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := embOpen(t, t.TempDir(), embOptions{})
	embPut(t, e, PluginMetadata, "counter", `{"n":0}`, 0)

	const workers, each = 50, 10
	var wg sync.WaitGroup
	var mu sync.Mutex
	conflicts := 0
	errs := make(chan error, workers)
	for range workers {
		wg.Go(func() {
			for i := 0; i < each; {
				it, err := e.Get(ctx, PluginMetadata, "counter")
				if err != nil {
					errs <- err
					return
				}
				var v struct{ N int }
				if err := json.Unmarshal(it.Value, &v); err != nil {
					errs <- err
					return
				}
				_, err = e.Put(ctx, PluginMetadata, "counter", json.RawMessage(fmt.Sprintf(`{"n":%d}`, v.N+1)), it.ModRev)
				switch {
				case errors.Is(err, ErrConflict):
					mu.Lock()
					conflicts++
					mu.Unlock()
				case err != nil:
					errs <- err
					return
				default:
					i++
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	it, err := e.Get(ctx, PluginMetadata, "counter")
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf(`{"n":%d}`, workers*each); string(it.Value) != want {
		t.Fatalf("counter = %s, want %s (lost updates)", it.Value, want)
	}
	if it.ModRev != workers*each+1 {
		t.Fatalf("ModRev = %d, want %d: a failed CAS took a revision", it.ModRev, workers*each+1)
	}
	t.Logf("%d increments, %d conflicts retried", workers*each, conflicts)
}

func TestEmbeddedConcurrentWriters(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := embOpen(t, t.TempDir(), embOptions{})
	const workers, each = 8, 25
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				if _, err := e.Put(ctx, Routes, fmt.Sprintf("w%d-%d", w, i), json.RawMessage(`{}`), 0); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	// Listings taken meanwhile are consistent: with only creates, the
	// revision is the newest ModRev and equals the number of items.
	for range 20 {
		l, err := e.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var top int64
		for _, it := range l.Items {
			top = max(top, it.ModRev)
		}
		if top != l.Revision || int64(len(l.Items)) != l.Revision {
			t.Fatalf("inconsistent listing: revision %d, %d items, newest ModRev %d", l.Revision, len(l.Items), top)
		}
	}
	wg.Wait()
	l, err := e.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	revs := map[int64]bool{}
	for _, it := range l.Items {
		revs[it.ModRev] = true
	}
	if len(l.Items) != workers*each || len(revs) != workers*each || l.Revision != workers*each {
		t.Fatalf("%d items, %d distinct revisions, revision %d; want %d each", len(l.Items), len(revs), l.Revision, workers*each)
	}
}

func BenchmarkPut(b *testing.B) {
	ctx := context.Background()
	e := embOpen(b, b.TempDir(), embOptions{})
	v := json.RawMessage(`{"uri":"/hello","upstream":{"nodes":{"127.0.0.1:1980":1},"type":"roundrobin"}}`)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := e.Put(ctx, Routes, fmt.Sprintf("r%d", i%100), v, AnyRevision); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGet(b *testing.B) {
	ctx := context.Background()
	e := embOpen(b, b.TempDir(), embOptions{noSync: true})
	v := json.RawMessage(`{"uri":"/hello","upstream":{"nodes":{"127.0.0.1:1980":1},"type":"roundrobin"}}`)
	for i := range 100 {
		embPut(b, e, Routes, fmt.Sprintf("r%d", i), string(v), AnyRevision)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := e.Get(ctx, Routes, fmt.Sprintf("r%d", i%100)); err != nil {
			b.Fatal(err)
		}
	}
}
