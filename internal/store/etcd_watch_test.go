package store

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/sluicegw/sluice/internal/store/etcdtest"
)

func testEtcdWatchOrder(t *testing.T, e *Etcd, raw *clientv3.Client) {
	ctx := testCtx(t)
	l, err := e.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ch := e.Watch(ctx, l.Revision)
	a1 := mustPut(t, e, Routes, "a", `{"id":"a","v":1}`, 0)
	mustPut(t, e, Routes, "b", `{"id":"b"}`, 0)
	mustPut(t, e, Routes, "a", `{"id":"a","v":2}`, a1.ModRev)
	if _, err := e.Delete(ctx, Routes, "b", AnyRevision); err != nil {
		t.Fatal(err)
	}
	// Two changes in one etcd transaction arrive as one batch.
	if _, err := raw.Txn(ctx).Then(
		clientv3.OpPut("/watch/upstreams/c", `{"id":"c"}`),
		clientv3.OpPut("/watch/services/d", `{"id":"d"}`),
	).Commit(); err != nil {
		t.Fatal(err)
	}

	var got []string
	var evs []Event
	batchOf := map[string]int{} // "kind/id" of the last event → batch index
	last := l.Revision
	for n := 0; len(got) < 6; n++ {
		b := nextBatch(t, ch)
		if b.Reset || b.Revision <= last {
			t.Fatalf("batch %+v after revision %d", b, last)
		}
		last = b.Revision
		for _, ev := range b.Events {
			if ev.Item.ModRev > b.Revision {
				t.Fatalf("event %+v beyond batch revision %d", ev, b.Revision)
			}
			typ := "put"
			if ev.Type == Delete {
				typ = "delete"
			}
			got = append(got, fmt.Sprintf("%s %s/%s %s", typ, ev.Item.Kind, ev.Item.ID, ev.Item.Value))
			evs = append(evs, ev)
			batchOf[string(ev.Item.Kind)+"/"+ev.Item.ID] = n
		}
		if b.Events[len(b.Events)-1].Item.ModRev != b.Revision {
			t.Fatalf("batch revision %d is not its last event's", b.Revision)
		}
	}
	want := []string{
		`put routes/a {"id":"a","v":1}`,
		`put routes/b {"id":"b"}`,
		`put routes/a {"id":"a","v":2}`,
		`delete routes/b {"id":"b"}`, // a delete carries the item as it was
		`put upstreams/c {"id":"c"}`,
		`put services/d {"id":"d"}`,
	}
	if !slices.Equal(got, want) {
		t.Fatalf("events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// Two changes in one transaction share a revision and a batch.
	if evs[4].Item.ModRev != evs[5].Item.ModRev || batchOf["upstreams/c"] != batchOf["services/d"] {
		t.Fatalf("transaction events %+v and %+v split", evs[4], evs[5])
	}
	if del := evs[3].Item; del.ModRev <= evs[1].Item.ModRev || del.CreateRev != evs[1].Item.CreateRev {
		t.Fatalf("delete item %+v, created as %+v", del, evs[1].Item)
	}
}

func testEtcdWatchResume(t *testing.T, e *Etcd) {
	ctx := testCtx(t)
	x1 := mustPut(t, e, Routes, "x", `{"n":1}`, 0)
	x2 := mustPut(t, e, Routes, "x", `{"n":2}`, x1.ModRev)
	mustPut(t, e, Routes, "x", `{"n":3}`, x2.ModRev)

	// From a revision: only what came after it.
	ch := e.Watch(ctx, x1.ModRev)
	var got []string
	for len(got) < 2 {
		b := nextBatch(t, ch)
		if b.Reset {
			t.Fatalf("unexpected reset %+v", b)
		}
		for _, ev := range b.Events {
			got = append(got, string(ev.Item.Value))
		}
	}
	if fmt.Sprint(got) != `[{"n":2} {"n":3}]` {
		t.Fatalf("resumed events %v", got)
	}

	// From 0: a full listing first, then changes.
	ch0 := e.Watch(ctx, 0)
	b := nextBatch(t, ch0)
	if !b.Reset || fmt.Sprint(keysOf(b.Listing)) != "[routes/x]" || b.Revision != b.Listing.Revision {
		t.Fatalf("first batch from 0 = %+v", b)
	}
	y := mustPut(t, e, Routes, "y", `{}`, 0)
	if b := nextBatch(t, ch0); b.Reset || len(b.Events) != 1 || b.Events[0].Item.ID != "y" || b.Revision != y.ModRev {
		t.Fatalf("batch after reset = %+v", b)
	}
}

func testEtcdPagination(t *testing.T, endpoint string, raw *clientv3.Client) {
	const routes, upstreams = 1600, 10
	ctx := testCtx(t)
	var ops []clientv3.Op
	flush := func() {
		if _, err := raw.Txn(ctx).Then(ops...).Commit(); err != nil {
			t.Fatal(err)
		}
		ops = ops[:0]
	}
	for i := range routes {
		ops = append(ops, clientv3.OpPut(fmt.Sprintf("/page/routes/r%05d", i), fmt.Sprintf(`{"id":"r%05d","v":0}`, i)))
		if len(ops) == 100 {
			flush()
		}
	}
	for i := range upstreams {
		ops = append(ops, clientv3.OpPut(fmt.Sprintf("/page/upstreams/u%d", i), `{}`))
	}
	flush()

	for _, pageSize := range []int64{512, 97} {
		tune := fastEtcdTuning()
		tune.pageSize = pageSize
		e := openTestEtcd(t, EtcdConfig{Endpoints: []string{endpoint}, Prefix: "/page"}, tune)

		// Keep writing while listing: every page must still show the first
		// page's revision.
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			for n := 1; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				i := rand.N(routes)
				if _, err := raw.Put(ctx, fmt.Sprintf("/page/routes/r%05d", i), fmt.Sprintf(`{"id":"r%05d","v":%d}`, i, n)); err != nil {
					t.Error(err)
					return
				}
			}
		})
		time.Sleep(20 * time.Millisecond)
		l, err := e.List(ctx)
		close(stop)
		wg.Wait()
		if err != nil {
			t.Fatal(err)
		}
		if len(l.Items) != routes+upstreams {
			t.Fatalf("page size %d: %d items, want %d", pageSize, len(l.Items), routes+upstreams)
		}
		if !strings.HasPrefix(l.Items[0].ID, "u") || l.Items[upstreams].ID != "r00000" || l.Items[len(l.Items)-1].ID != "r01599" {
			t.Fatalf("page size %d: wrong order", pageSize)
		}
		at, err := raw.Get(ctx, "/page/", clientv3.WithPrefix(), clientv3.WithRev(l.Revision))
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{}
		for _, kv := range at.Kvs {
			want[string(kv.Key)] = string(kv.Value)
		}
		got := map[string]string{}
		for _, it := range l.Items {
			got["/page/"+string(it.Kind)+"/"+it.ID] = string(it.Value)
			if it.ModRev > l.Revision {
				t.Fatalf("item %s/%s at revision %d, after the listing's %d", it.Kind, it.ID, it.ModRev, l.Revision)
			}
		}
		if !maps.Equal(got, want) {
			t.Fatalf("page size %d: listing differs from the state at revision %d", pageSize, l.Revision)
		}
	}
}

func testEtcdAPISIX(t *testing.T, e *Etcd, raw *clientv3.Client) {
	ctx := testCtx(t)
	route1 := `{"id":"1","uri":"/hello","upstream":{"nodes":{"127.0.0.1:1980":1},"type":"roundrobin"},"create_time":1700000000,"update_time":1700000000}`
	upstream1 := `{"id":"1","nodes":{"127.0.0.1:1980":1},"type":"roundrobin","create_time":1700000000,"update_time":1700000000}`
	consumer := `{"username":"jack","plugins":{"key-auth":{"key":"auth-one"}}}`
	meta := `{"id":"example-plugin","i":1}`
	keys := [][2]string{
		// APISIX's directory placeholders, in both spellings.
		{"/apisix/routes", "init_dir"},
		{"/apisix/routes/", "init_dir"},
		{"/apisix/upstreams/", "init_dir"},
		{"/apisix/consumers/", "init_dir"},
		{"/apisix/plugin_metadata/", "init_dir"},
		{"/apisix/routes/1", route1},
		{"/apisix/upstreams/1", upstream1},
		{"/apisix/consumers/jack", consumer},
		{"/apisix/plugin_metadata/example-plugin", meta},
		// Keys APISIX keeps that are not resources sluice serves.
		{"/apisix/consumers/jack/credentials/cred-1", `{"id":"jack/credentials/cred-1","plugins":{}}`},
		{"/apisix/data_plane/server_info/5d8b7c", `{"id":"5d8b7c","version":"3.9.0"}`},
		{"/apisix/plugins", `[{"name":"key-auth"}]`},
		{"/apisix/stream_routes/1", `{"id":"1","server_port":9100}`},
		{"/apisix/proto/1", `{"id":"1","content":"syntax = \"proto3\";"}`},
		{"/apisix/secrets/vault/1", `{"uri":"http://127.0.0.1:8200"}`},
		{"/apisix/gen_id", "1"},
		{"/apisix/routes/broken", "not json"},
		{"/apisixx/routes/2", route1},
		{"/other/routes/3", route1},
	}
	for _, kv := range keys {
		if _, err := raw.Put(ctx, kv[0], kv[1]); err != nil {
			t.Fatal(err)
		}
	}
	l, err := e.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(keysOf(l)); got != "[upstreams/1 consumers/jack plugin_metadata/example-plugin routes/1]" {
		t.Fatalf("listed %s", got)
	}
	for i, want := range []string{upstream1, consumer, meta, route1} {
		if string(l.Items[i].Value) != want {
			t.Fatalf("item %d value %s, want %s", i, l.Items[i].Value, want)
		}
	}

	ch := e.Watch(ctx, l.Revision)
	route2 := strings.ReplaceAll(route1, `"1"`, `"2"`)
	for _, op := range []clientv3.Op{
		clientv3.OpPut("/apisix/stream_routes/2", `{"id":"2"}`),
		clientv3.OpPut("/apisix/routes/", "init_dir"),
		clientv3.OpPut("/apisix/data_plane/server_info/5d8b7c", `{"id":"5d8b7c"}`),
		clientv3.OpPut("/apisix/consumers/jack/credentials/cred-2", `{}`),
		clientv3.OpPut("/apisix/routes/junk", "init_dir"),
		clientv3.OpPut("/apisix/routes/2", route2),
		clientv3.OpDelete("/apisix/routes/1"),
		clientv3.OpPut("/apisix/upstreams/1", "init_dir"), // no longer a resource: a delete
	} {
		if _, err := raw.Do(ctx, op); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	for len(got) < 3 {
		for _, ev := range nextBatch(t, ch).Events {
			got = append(got, fmt.Sprintf("%d %s/%s", ev.Type, ev.Item.Kind, ev.Item.ID))
		}
	}
	if fmt.Sprint(got) != "[0 routes/2 1 routes/1 1 upstreams/1]" {
		t.Fatalf("watched %v", got)
	}

	// What sluice writes, APISIX reads: the plain key and the exact bytes.
	mustPut(t, e, Routes, "3", route1, 0)
	resp, err := raw.Get(ctx, "/apisix/routes/3")
	if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != route1 {
		t.Fatalf("raw read of a sluice write: %v, %v", resp, err)
	}
}

// TestEtcdCompaction checks that a watcher whose revision was compacted away
// receives a Reset with the full current listing, then further events.
func TestEtcdCompaction(t *testing.T) {
	t.Parallel()
	endpoint, _, _ := etcdtest.Start(t)
	raw := rawEtcd(t, endpoint)
	e := openTestEtcd(t, EtcdConfig{Endpoints: []string{endpoint}}, fastEtcdTuning())
	ctx := testCtx(t)
	a := mustPut(t, e, Routes, "a", `{"v":1}`, 0)
	b := mustPut(t, e, Routes, "b", `{"v":1}`, 0)
	seen := b.ModRev
	mustPut(t, e, Routes, "a", `{"v":2}`, a.ModRev)
	mustPut(t, e, Upstreams, "c", `{"v":1}`, 0)
	if _, err := e.Delete(ctx, Routes, "b", AnyRevision); err != nil {
		t.Fatal(err)
	}
	cur := mustPut(t, e, Routes, "d", `{"v":1}`, 0)
	if _, err := raw.Compact(ctx, cur.ModRev, clientv3.WithCompactPhysical()); err != nil {
		t.Fatal(err)
	}

	ch := e.Watch(ctx, seen)
	reset := nextBatch(t, ch)
	if !reset.Reset || reset.Listing.Revision < cur.ModRev || reset.Revision != reset.Listing.Revision {
		t.Fatalf("first batch = %+v, want a reset at >= %d", reset, cur.ModRev)
	}
	state := map[string]string{}
	applyBatch(state, reset)
	want := map[string]string{"upstreams/c": `{"v":1}`, "routes/a": `{"v":2}`, "routes/d": `{"v":1}`}
	if !maps.Equal(state, want) {
		t.Fatalf("reset listing %v, want %v", state, want)
	}
	mustPut(t, e, Routes, "e", `{}`, 0)
	if b := nextBatch(t, ch); b.Reset || len(b.Events) != 1 || b.Events[0].Item.ID != "e" {
		t.Fatalf("batch after reset = %+v", b)
	}
}

// TestEtcdRestart takes etcd down under a watching store and brings it back.
func TestEtcdRestart(t *testing.T) {
	t.Parallel()
	endpoint, stop, restart := etcdtest.Start(t)
	logs := &logRecorder{}
	e := openTestEtcdLog(t, EtcdConfig{Endpoints: []string{endpoint}, Timeout: 500 * time.Millisecond}, fastEtcdTuning(), slog.New(logs))
	ctx := testCtx(t)
	ch := e.Watch(ctx, 0)
	state := map[string]string{}
	applyBatch(state, nextBatch(t, ch))
	mustPut(t, e, Routes, "a", `{"v":1}`, 0)
	applyBatch(state, nextBatch(t, ch))
	if !e.Reachable() || e.LastError() != nil {
		t.Fatalf("healthy store: Reachable %v, LastError %v", e.Reachable(), e.LastError())
	}

	stop()
	waitFor(t, "Reachable() false after etcd stopped", func() bool { return !e.Reachable() })
	if err := e.LastError(); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("LastError = %v, want ErrUnavailable", err)
	}
	if _, err := e.List(ctx); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("List while down: err = %v, want ErrUnavailable", err)
	}
	if _, err := e.Get(ctx, Routes, "a"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Get while down: err = %v, want ErrUnavailable", err)
	}

	restart()
	other := rawEtcd(t, endpoint)
	if _, err := other.Put(ctx, "/apisix/routes/b", `{"v":1}`); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"routes/a": `{"v":1}`, "routes/b": `{"v":1}`}
	for !maps.Equal(state, want) {
		applyBatch(state, nextBatch(t, ch))
	}
	waitFor(t, "Reachable() true after etcd restarted", e.Reachable)
	if err := e.LastError(); err != nil {
		t.Fatalf("LastError after recovery = %v", err)
	}

	// One outage, logged once as it starts and once as it ends.
	if down, up := logs.count("WARN etcd is unreachable"), logs.count("INFO etcd is reachable again"); down != 1 || up != 1 {
		t.Errorf("outage logged %d times, recovery %d times; want 1 and 1:\n%s", down, up, strings.Join(logs.all(), "\n"))
	}

	// The watch goes on after recovery.
	mustPut(t, e, Routes, "c", `{}`, 0)
	want["routes/c"] = `{}`
	for !maps.Equal(state, want) {
		applyBatch(state, nextBatch(t, ch))
	}

	// Close ends the watch.
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	for range ch {
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
