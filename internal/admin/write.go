package admin

import (
	"errors"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/sluicegw/sluice/internal/store"
)

// maxAttempts bounds the read-validate-write cycles of one request when
// compare-and-set keeps losing to writers in other processes.
const maxAttempts = 8

// buildFunc computes the value to store from the current item (nil when
// absent). It returns ok=false with the response to send instead.
type buildFunc func(cur *store.Item) (object, response, bool)

// commit runs one write as a compare-and-set cycle: read the listing, build
// the new value from the current item, validate it alone and within the
// whole prospective listing, and Put it conditioned on the revision read. A
// lost race (store.ErrConflict) repeats the cycle on fresh state, so PUT and
// PATCH never overwrite a concurrent change they did not see; after
// maxAttempts the request answers 409.
func (a *API) commit(r *http.Request, res *resource, id string, build buildFunc) response {
	a.writeMu.Lock()
	defer a.writeMu.Unlock()
	ctx := r.Context()
	for attempt := range maxAttempts {
		l, err := a.w.List(ctx)
		if err != nil {
			return storeError(err)
		}
		cur := findItem(l, res.kind, id)
		v, resp, ok := build(cur)
		if !ok {
			return resp
		}
		data := encodeJSON(v)
		if resp, ok := a.check(res, id, v, data, l); !ok {
			return resp
		}
		prev := int64(0)
		if cur != nil {
			prev = cur.ModRev
		}
		it, err := a.w.Put(ctx, res.kind, id, data, prev)
		if isConflict(err) {
			backoff(r, attempt)
			continue
		}
		if err != nil {
			return storeError(err)
		}
		status := http.StatusCreated
		if cur != nil {
			status = http.StatusOK
		}
		a.log.Info("admin api: stored", "kind", res.kind, "id", id, "revision", it.ModRev)
		return response{status, writtenBody{Key: itemKey(res.kind, id), Value: data}}
	}
	return conflictExhausted()
}

func isConflict(err error) bool { return errors.Is(err, store.ErrConflict) }

func conflictExhausted() response {
	return fail(http.StatusConflict, "value changed before overwritten: concurrent writers kept winning, retry the request")
}

// backoff waits a short, growing, jittered time before another attempt so
// competing writers spread out.
func backoff(r *http.Request, attempt int) {
	d := time.Duration(1+rand.IntN(1<<min(attempt, 6))) * time.Millisecond
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-r.Context().Done():
	}
}

func findItem(l store.Listing, kind store.Kind, id string) *store.Item {
	for i := range l.Items {
		if l.Items[i].Kind == kind && l.Items[i].ID == id {
			return &l.Items[i]
		}
	}
	return nil
}

// withItem returns l with the item (kind, id) set to value, replacing it or
// appending it; l itself is not modified.
func withItem(l store.Listing, kind store.Kind, id string, value []byte) store.Listing {
	out := store.Listing{Revision: l.Revision, Items: make([]store.Item, 0, len(l.Items)+1)}
	found := false
	for _, it := range l.Items {
		if it.Kind == kind && it.ID == id {
			it.Value = value
			found = true
		}
		out.Items = append(out.Items, it)
	}
	if !found {
		out.Items = append(out.Items, store.Item{Kind: kind, ID: id, Value: value})
	}
	return out
}

// cloneObject deep-copies a decoded JSON object, so a retried build starts
// from the request as received.
func cloneObject(m object) object {
	out := make(object, len(m))
	for k, v := range m {
		out[k] = cloneValue(v)
	}
	return out
}

func cloneValue(v any) any {
	switch x := v.(type) {
	case object:
		return cloneObject(x)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = cloneValue(e)
		}
		return out
	}
	return v
}
