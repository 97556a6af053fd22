package admin

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/sluicegw/sluice/internal/store"
)

// patch updates part of an item, as APISIX's resource.lua patch does:
//   - without a sub path the body (an object) is merged into the item: objects
//     merge key by key, a null removes the key, anything else (arrays too)
//     replaces the old value;
//   - with a sub path (PATCH /routes/1/upstream/nodes) the body, any JSON value,
//     replaces the value at that path; missing objects along the path are
//     created, and a null body removes the key.
//
// The result is validated like a PUT and written compare-and-set on the
// revision read, retrying on a concurrent change (see commit).
func (a *API) patch(r *http.Request, req *request) response {
	if a.w == nil {
		return badRequest(readOnlyMsg)
	}
	if req.id == "" {
		return badRequest("missing " + req.res.word + " id")
	}
	if req.body == nil {
		return badRequest("missing new configuration")
	}
	body, err := decodeJSON(req.body)
	if err != nil {
		return badRequest("invalid configuration: " + err.Error())
	}
	conf, isObject := body.(object)
	if req.subPath == "" && !isObject {
		return badRequest("invalid configuration")
	}
	return a.commit(r, req.res, req.id, func(cur *store.Item) (object, response, bool) {
		if cur == nil {
			return nil, keyNotFound(), false
		}
		v, err := decodeObject(cur.Value)
		if err != nil {
			return nil, fail(http.StatusInternalServerError, "stored value is not an object: "+err.Error()), false
		}
		now := json.Number(strconv.FormatInt(a.now().Unix(), 10))
		if req.subPath != "" {
			if err := setPath(v, req.subPath, cloneValue(body)); err != nil {
				return nil, badRequest(err.Error()), false
			}
			if req.res.stamps {
				v["update_time"] = now
			}
		} else {
			mergeObject(v, cloneObject(conf))
			if _, given := conf["update_time"]; req.res.stamps && !given {
				v["update_time"] = now
			}
		}
		normalizeIDs(v)
		if req.res.ids == idField {
			if got, ok := idString(v["id"]); ok && got != req.id {
				return nil, badRequest("wrong " + req.res.word + " id"), false
			}
			v["id"] = req.id
		}
		return v, response{}, true
	})
}

// mergeObject merges patch into dst in place (APISIX's core.table.merge):
// nested objects merge, null deletes, every other value replaces.
func mergeObject(dst, patch object) {
	for k, pv := range patch {
		switch p := pv.(type) {
		case nil:
			delete(dst, k)
		case object:
			if d, ok := dst[k].(object); ok {
				mergeObject(d, p)
			} else {
				dst[k] = withoutNulls(p)
			}
		default:
			dst[k] = pv
		}
	}
}

// withoutNulls drops null members from an object that replaces a non-object,
// since a null means "absent" in a patch.
func withoutNulls(m object) object {
	for k, v := range m {
		switch x := v.(type) {
		case nil:
			delete(m, k)
		case object:
			withoutNulls(x)
		}
	}
	return m
}

// setPath sets the value at a "/"-separated path below root. Objects missing
// along the way are created; a non-object along the way is APISIX's
// "invalid sub-path" error. A nil value removes the key.
func setPath(root object, path string, value any) error {
	segs := strings.Split(strings.Trim(path, "/"), "/")
	cur := root
	for i, s := range segs[:len(segs)-1] {
		next, exists := cur[s]
		if !exists || next == nil {
			n := object{}
			cur[s] = n
			cur = n
			continue
		}
		m, ok := next.(object)
		if !ok {
			return errors.New("invalid sub-path: /" + strings.Join(segs[:i+1], "/"))
		}
		cur = m
	}
	last := segs[len(segs)-1]
	if value == nil {
		delete(cur, last)
		return nil
	}
	cur[last] = value
	return nil
}
