package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/sluicegw/sluice/internal/store/etcdtest"
)

// fastEtcdTuning makes outages and retries quick enough for tests.
func fastEtcdTuning() etcdTuning {
	return etcdTuning{pageSize: 512, probeInterval: 100 * time.Millisecond, backoffMin: 20 * time.Millisecond, backoffMax: 300 * time.Millisecond}
}

func openTestEtcd(t *testing.T, cfg EtcdConfig, tune etcdTuning) *Etcd {
	t.Helper()
	return openTestEtcdLog(t, cfg, tune, nil)
}

func openTestEtcdLog(t *testing.T, cfg EtcdConfig, tune etcdTuning, logger *slog.Logger) *Etcd {
	t.Helper()
	if cfg.Timeout == 0 {
		cfg.Timeout = 2 * time.Second
	}
	e, err := openEtcd(cfg, logger, tune)
	if err != nil {
		t.Fatalf("openEtcd: %v", err)
	}
	t.Cleanup(func() {
		if err := e.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return e
}

func rawEtcd(t *testing.T, endpoint string) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatalf("raw etcd client: %v", err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	return cli
}

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func nextBatch(t *testing.T, ch <-chan Batch) Batch {
	t.Helper()
	select {
	case b, ok := <-ch:
		if !ok {
			t.Fatal("watch channel closed")
		}
		return b
	case <-time.After(15 * time.Second):
		t.Fatal("no batch within 15s")
	}
	return Batch{}
}

// applyBatch folds a batch into a "kind/id" → value view.
func applyBatch(state map[string]string, b Batch) {
	if b.Reset {
		clear(state)
		for _, it := range b.Listing.Items {
			state[string(it.Kind)+"/"+it.ID] = string(it.Value)
		}
		return
	}
	for _, ev := range b.Events {
		k := string(ev.Item.Kind) + "/" + ev.Item.ID
		if ev.Type == Delete {
			delete(state, k)
		} else {
			state[k] = string(ev.Item.Value)
		}
	}
}

func keysOf(l Listing) []string {
	out := make([]string, 0, len(l.Items))
	for _, it := range l.Items {
		out = append(out, string(it.Kind)+"/"+it.ID)
	}
	return out
}

func mustPut(t *testing.T, e *Etcd, kind Kind, id, value string, prevRev int64) Item {
	t.Helper()
	it, err := e.Put(testCtx(t), kind, id, json.RawMessage(value), prevRev)
	if err != nil {
		t.Fatalf("Put %s/%s: %v", kind, id, err)
	}
	return it
}

// TestEtcd runs the cases that can share one etcd server, each under its own
// key prefix.
func TestEtcd(t *testing.T) {
	endpoint, _, _ := etcdtest.Start(t)
	open := func(t *testing.T, prefix string) *Etcd {
		return openTestEtcd(t, EtcdConfig{Endpoints: []string{endpoint}, Prefix: prefix}, fastEtcdTuning())
	}
	t.Run("crud and compare-and-set", func(t *testing.T) {
		t.Parallel()
		testEtcdCRUD(t, open(t, "/crud"), rawEtcd(t, endpoint))
	})
	t.Run("concurrent increments lose no update", func(t *testing.T) {
		t.Parallel()
		testEtcdConcurrent(t, open(t, "/concurrent"))
	})
	t.Run("new id like apisix", func(t *testing.T) {
		t.Parallel()
		testEtcdNewID(t, open(t, "/newid"), rawEtcd(t, endpoint))
	})
	t.Run("watch delivers puts and deletes in order", func(t *testing.T) {
		t.Parallel()
		testEtcdWatchOrder(t, open(t, "/watch"), rawEtcd(t, endpoint))
	})
	t.Run("watch resumes from a revision", func(t *testing.T) {
		t.Parallel()
		testEtcdWatchResume(t, open(t, "/resume"))
	})
	t.Run("paginated list is consistent", func(t *testing.T) {
		t.Parallel()
		testEtcdPagination(t, endpoint, rawEtcd(t, endpoint))
	})
	t.Run("apisix key layout", func(t *testing.T) {
		t.Parallel()
		testEtcdAPISIX(t, open(t, "/apisix"), rawEtcd(t, endpoint))
	})
}

func testEtcdCRUD(t *testing.T, e *Etcd, raw *clientv3.Client) {
	ctx := testCtx(t)
	if _, err := e.Get(ctx, Routes, "1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get absent: err = %v, want ErrNotFound", err)
	}
	v1 := `{"id":"1","uri":"/a","upstream_id":"u1"}`
	created := mustPut(t, e, Routes, "1", v1, 0)
	if created.CreateRev == 0 || created.CreateRev != created.ModRev || string(created.Value) != v1 {
		t.Fatalf("created = %+v", created)
	}
	// What APISIX would read: the same key and the same bytes.
	resp, err := raw.Get(ctx, "/crud/routes/1")
	if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != v1 || resp.Kvs[0].ModRevision != created.ModRev {
		t.Fatalf("raw get = %v, %v", resp, err)
	}
	if _, err := e.Put(ctx, Routes, "1", json.RawMessage(v1), 0); !errors.Is(err, ErrConflict) {
		t.Fatalf("second create: err = %v, want ErrConflict", err)
	}
	v2 := `{"id":"1","uri":"/b","upstream_id":"u1"}`
	updated := mustPut(t, e, Routes, "1", v2, created.ModRev)
	if updated.CreateRev != created.CreateRev || updated.ModRev <= created.ModRev {
		t.Fatalf("updated = %+v, created = %+v", updated, created)
	}
	if _, err := e.Put(ctx, Routes, "1", json.RawMessage(v1), created.ModRev); !errors.Is(err, ErrConflict) {
		t.Fatalf("stale update: err = %v, want ErrConflict", err)
	}
	if _, err := e.Put(ctx, Routes, "2", json.RawMessage(v1), 5); !errors.Is(err, ErrConflict) {
		t.Fatalf("update of absent item: err = %v, want ErrConflict", err)
	}
	mustPut(t, e, Upstreams, "u1", `{"id":"u1","nodes":{"127.0.0.1:80":1}}`, AnyRevision)
	v3 := `{"id":"1","uri":"/c","upstream_id":"u1"}`
	last := mustPut(t, e, Routes, "1", v3, AnyRevision)
	got, err := e.Get(ctx, Routes, "1")
	if err != nil || string(got.Value) != v3 || got.ModRev != last.ModRev || got.CreateRev != created.CreateRev {
		t.Fatalf("Get = %+v, %v", got, err)
	}

	l, err := e.List(ctx)
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if fmt.Sprint(keysOf(l)) != "[upstreams/u1 routes/1]" || l.Revision < last.ModRev {
		t.Fatalf("List = %v at %d", keysOf(l), l.Revision)
	}

	if _, err := e.Delete(ctx, Routes, "1", updated.ModRev); !errors.Is(err, ErrConflict) {
		t.Fatalf("stale delete: err = %v, want ErrConflict", err)
	}
	if _, err := e.Delete(ctx, Routes, "1", 0); !errors.Is(err, ErrConflict) {
		t.Fatalf("delete with prevRev 0: err = %v, want ErrConflict", err)
	}
	gone, err := e.Delete(ctx, Routes, "1", last.ModRev)
	if err != nil || string(gone.Value) != v3 || gone.ModRev != last.ModRev {
		t.Fatalf("Delete = %+v, %v", gone, err)
	}
	for _, prev := range []int64{AnyRevision, 0, last.ModRev} {
		if _, err := e.Delete(ctx, Routes, "1", prev); !errors.Is(err, ErrNotFound) {
			t.Errorf("delete absent (prevRev %d): err = %v, want ErrNotFound", prev, err)
		}
	}

	for _, tc := range []struct {
		desc  string
		kind  Kind
		id    string
		value string
		prev  int64
	}{
		{"unknown kind", "stream_routes", "1", `{}`, AnyRevision},
		{"empty id", Routes, "", `{}`, AnyRevision},
		{"id with slash", Routes, "a/b", `{}`, AnyRevision},
		{"not an object", Routes, "x", `"init_dir"`, AnyRevision},
		{"invalid json", Routes, "x", `{`, AnyRevision},
		{"bad prevRev", Routes, "x", `{}`, -7},
	} {
		_, err := e.Put(ctx, tc.kind, tc.id, json.RawMessage(tc.value), tc.prev)
		if err == nil || errors.Is(err, ErrConflict) || errors.Is(err, ErrUnavailable) {
			t.Errorf("%s: Put err = %v, want a validation error", tc.desc, err)
		}
	}
}

func testEtcdConcurrent(t *testing.T, e *Etcd) {
	const writers, each = 50, 2
	mustPut(t, e, Upstreams, "counter", `{"id":"counter","n":0}`, 0)
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for range writers {
		wg.Go(func() {
			ctx := testCtx(t)
			for done := 0; done < each; {
				it, err := e.Get(ctx, Upstreams, "counter")
				if err != nil {
					errs <- err
					return
				}
				var v struct{ N int }
				if err := json.Unmarshal(it.Value, &v); err != nil {
					errs <- err
					return
				}
				next := fmt.Sprintf(`{"id":"counter","n":%d}`, v.N+1)
				_, err = e.Put(ctx, Upstreams, "counter", json.RawMessage(next), it.ModRev)
				switch {
				case errors.Is(err, ErrConflict):
					continue // lost the race: read again
				case err != nil:
					errs <- err
					return
				}
				done++
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	it, err := e.Get(testCtx(t), Upstreams, "counter")
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf(`{"id":"counter","n":%d}`, writers*each); string(it.Value) != want {
		t.Fatalf("counter = %s, want %s", it.Value, want)
	}
}

func testEtcdNewID(t *testing.T, e *Etcd, raw *clientv3.Client) {
	ctx := testCtx(t)
	a, err := e.NewID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b, err := e.NewID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`^[0-9]{20}$`)
	if !re.MatchString(a) || !re.MatchString(b) || b <= a {
		t.Fatalf("ids %q, %q: want increasing 20-digit decimals", a, b)
	}
	resp, err := raw.Get(ctx, "/newid/gen_id")
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("gen_id key: %v, %v", resp, err)
	}
	if n, _ := strconv.ParseInt(b, 10, 64); n != resp.Kvs[0].ModRevision {
		t.Fatalf("id %s is not the gen_id write revision %d", b, resp.Kvs[0].ModRevision)
	}
}

func TestOpenEtcdConfig(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		desc string
		cfg  EtcdConfig
	}{
		{"no endpoints", EtcdConfig{}},
		{"relative prefix", EtcdConfig{Endpoints: []string{"http://127.0.0.1:1"}, Prefix: "apisix"}},
		{"root prefix", EtcdConfig{Endpoints: []string{"http://127.0.0.1:1"}, Prefix: "/"}},
		{"user without password", EtcdConfig{Endpoints: []string{"http://127.0.0.1:1"}, User: "root"}},
	} {
		if e, err := OpenEtcd(tc.cfg, nil); err == nil {
			_ = e.Close()
			t.Errorf("%s: OpenEtcd succeeded, want an error", tc.desc)
		}
	}
	e, err := OpenEtcd(EtcdConfig{Endpoints: []string{"http://127.0.0.1:1"}, Prefix: "/apisix/"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if e.prefix != "/apisix" || e.cfg.Timeout != DefaultEtcdTimeout {
		t.Fatalf("prefix %q, timeout %s", e.prefix, e.cfg.Timeout)
	}
}

// TestEtcdDown checks that a store opens, with or without credentials, while
// nothing listens, and reports ErrUnavailable.
func TestEtcdDown(t *testing.T) {
	t.Parallel()
	for _, user := range []string{"", "root"} {
		password := ""
		if user != "" {
			password = "pw"
		}
		start := time.Now()
		e := openTestEtcd(t, EtcdConfig{Endpoints: []string{"http://127.0.0.1:1"}, User: user, Password: password, Timeout: 300 * time.Millisecond}, fastEtcdTuning())
		if d := time.Since(start); d > 100*time.Millisecond {
			t.Errorf("user %q: OpenEtcd took %s; it must not wait for etcd", user, d)
		}
		if _, err := e.List(testCtx(t)); !errors.Is(err, ErrUnavailable) {
			t.Errorf("user %q: List err = %v, want ErrUnavailable", user, err)
		}
		if _, err := e.Put(testCtx(t), Routes, "1", json.RawMessage(`{}`), AnyRevision); !errors.Is(err, ErrUnavailable) {
			t.Errorf("user %q: Put err = %v, want ErrUnavailable", user, err)
		}
		if e.Reachable() || !errors.Is(e.LastError(), ErrUnavailable) {
			t.Errorf("user %q: Reachable %v, LastError %v", user, e.Reachable(), e.LastError())
		}
	}
}

func TestEtcdAuth(t *testing.T) {
	t.Parallel()
	endpoint, _, _ := etcdtest.Start(t)
	raw := rawEtcd(t, endpoint)
	ctx := testCtx(t)
	if _, err := raw.UserAdd(ctx, "root", "secret"); err != nil {
		t.Fatal(err)
	}
	if _, err := raw.UserGrantRole(ctx, "root", "root"); err != nil {
		t.Fatal(err)
	}
	// A user limited to the prefix range, as an operator would set one up.
	if _, err := raw.RoleAdd(ctx, "gateway"); err != nil {
		t.Fatal(err)
	}
	if _, err := raw.RoleGrantPermission(ctx, "gateway", "/apisix/", clientv3.GetPrefixRangeEnd("/apisix/"), clientv3.PermissionType(clientv3.PermReadWrite)); err != nil {
		t.Fatal(err)
	}
	if _, err := raw.UserAdd(ctx, "gw", "gw-secret"); err != nil {
		t.Fatal(err)
	}
	if _, err := raw.UserGrantRole(ctx, "gw", "gateway"); err != nil {
		t.Fatal(err)
	}
	if _, err := raw.AuthEnable(ctx); err != nil {
		t.Fatal(err)
	}
	good := openTestEtcd(t, EtcdConfig{Endpoints: []string{endpoint}, User: "root", Password: "secret"}, fastEtcdTuning())
	mustPut(t, good, Routes, "1", `{"id":"1"}`, 0)
	if l, err := good.List(ctx); err != nil || len(l.Items) != 1 {
		t.Fatalf("List with credentials = %v, %v", l, err)
	}
	limited := openTestEtcd(t, EtcdConfig{Endpoints: []string{endpoint}, User: "gw", Password: "gw-secret"}, fastEtcdTuning())
	ch := limited.Watch(ctx, 0)
	if b := nextBatch(t, ch); !b.Reset || len(b.Listing.Items) != 1 {
		t.Fatalf("limited user: first batch %+v", b)
	}
	if _, err := limited.NewID(ctx); err != nil {
		t.Fatalf("limited user: NewID: %v", err)
	}
	mustPut(t, limited, Routes, "2", `{"id":"2"}`, 0)
	if b := nextBatch(t, ch); len(b.Events) != 1 || b.Events[0].Item.ID != "2" {
		t.Fatalf("limited user: batch %+v", b)
	}
	time.Sleep(3 * fastEtcdTuning().probeInterval) // let the watcher probe
	if !limited.Reachable() {
		t.Fatalf("limited user: not reachable: %v", limited.LastError())
	}
	for _, cfg := range []EtcdConfig{
		{Endpoints: []string{endpoint}, User: "root", Password: "wrong", Timeout: 500 * time.Millisecond},
		{Endpoints: []string{endpoint}, Timeout: 500 * time.Millisecond},
	} {
		bad := openTestEtcd(t, cfg, fastEtcdTuning())
		if _, err := bad.List(ctx); !errors.Is(err, ErrUnavailable) {
			t.Errorf("password %q: List err = %v, want ErrUnavailable", cfg.Password, err)
		}
	}
}

// logRecorder keeps the messages of the records logged through it.
type logRecorder struct {
	mu   sync.Mutex
	msgs []string
}

func (r *logRecorder) Enabled(context.Context, slog.Level) bool { return true }

func (r *logRecorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, rec.Level.String()+" "+rec.Message)
	return nil
}

func (r *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *logRecorder) WithGroup(string) slog.Handler      { return r }

func (r *logRecorder) all() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.msgs)
}

// count returns how many records start with prefix.
func (r *logRecorder) count(prefix string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, m := range r.msgs {
		if strings.HasPrefix(m, prefix) {
			n++
		}
	}
	return n
}
