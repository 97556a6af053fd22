package admin

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/sluicegw/sluice/internal/store"
)

// TestConcurrentPatch: 50 writers each add a distinct label to one route at
// the same time; no update may be lost.
func TestConcurrentPatch(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.expect("PUT", "/apisix/admin/routes/1", routeBody, http.StatusCreated, "")
	const writers = 50
	var wg sync.WaitGroup
	errs := make(chan string, writers)
	for i := range writers {
		wg.Go(func() {
			r := e.call("PATCH", "/apisix/admin/routes/1", fmt.Sprintf(`{"labels":{"l%d":"v%d"}}`, i, i))
			if r.status != http.StatusOK {
				errs <- fmt.Sprintf("writer %d: %d %s", i, r.status, r.body)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	labels, _ := field(t, e.call("GET", "/apisix/admin/routes/1", "").body, "value.labels").(map[string]any)
	if len(labels) != writers {
		t.Fatalf("%d labels, want %d: %v", len(labels), writers, labels)
	}
	for i := range writers {
		if labels[fmt.Sprintf("l%d", i)] != fmt.Sprintf("v%d", i) {
			t.Errorf("label l%d missing", i)
		}
	}
}

// racingWriter is a store.Writer where another process changes the item
// between the API's read and its write, the first `races` times a Put runs.
type racingWriter struct {
	*store.Embedded
	races atomic.Int32
}

func (w *racingWriter) Put(ctx context.Context, kind store.Kind, id string, v json.RawMessage, prev int64) (store.Item, error) {
	if prev > 0 && w.races.Add(-1) >= 0 {
		// The other writer adds its own label, compare-and-set like us.
		cur, err := w.Embedded.Get(ctx, kind, id)
		if err != nil {
			return store.Item{}, err
		}
		var m map[string]any
		_ = json.Unmarshal(cur.Value, &m)
		labels, _ := m["labels"].(map[string]any)
		if labels == nil {
			labels = map[string]any{}
		}
		labels[fmt.Sprintf("other%d", w.races.Load())] = "x"
		m["labels"] = labels
		b, _ := json.Marshal(m)
		if _, err := w.Embedded.Put(ctx, kind, id, b, cur.ModRev); err != nil {
			return store.Item{}, err
		}
	}
	return w.Embedded.Put(ctx, kind, id, v, prev)
}

// TestPatchRetriesOnConflict: a PATCH that loses the compare-and-set to
// another process re-reads and merges again, keeping the other change.
func TestPatchRetriesOnConflict(t *testing.T) {
	t.Parallel()
	var rw *racingWriter
	e := newEnv(t, withStore(func(s *store.Embedded) store.Store {
		rw = &racingWriter{Embedded: s}
		return rw
	}))
	e.expect("PUT", "/apisix/admin/routes/1", routeBody, http.StatusCreated, "")
	rw.races.Store(3)
	e.expect("PATCH", "/apisix/admin/routes/1", `{"labels":{"mine":"y"}}`, http.StatusOK, "")
	labels, _ := field(t, e.call("GET", "/apisix/admin/routes/1", "").body, "value.labels").(map[string]any)
	if len(labels) != 4 || labels["mine"] != "y" {
		t.Fatalf("labels = %v, want mine plus the 3 concurrent ones", labels)
	}

	// A PUT replacing the item retries the same way (last writer wins, as
	// APISIX's unconditional etcd set, but validated against fresh state).
	rw.races.Store(2)
	e.expect("PUT", "/apisix/admin/routes/1", `{"uri":"/z","upstream":`+upstreamBody+`}`, http.StatusOK, "")

	// A writer that always wins exhausts the attempts: 409, nothing of ours stored.
	rw.races.Store(1000)
	r := e.call("PATCH", "/apisix/admin/routes/1", `{"desc":"never"}`)
	if r.status != http.StatusConflict {
		t.Fatalf("status %d, want 409: %s", r.status, r.body)
	}
	if field(t, e.call("GET", "/apisix/admin/routes/1", "").body, "value.desc") != nil {
		t.Fatal("the losing PATCH was stored")
	}
}
