package admin

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/sluicegw/sluice/internal/store"
)

// get answers one item, or the list when there is no id.
func (a *API) get(r *http.Request, req *request) response {
	if req.id == "" {
		return a.list(r, req)
	}
	var (
		it  store.Item
		err error
	)
	if a.w != nil {
		it, err = a.w.Get(r.Context(), req.res.kind, req.id)
	} else {
		it, err = a.getFromListing(r, req.res.kind, req.id)
	}
	if err != nil {
		return storeError(err)
	}
	return response{http.StatusOK, itemBody{
		Key:           itemKey(it.Kind, it.ID),
		Value:         stripSecrets(it.Kind, it.Value),
		CreatedIndex:  it.CreateRev,
		ModifiedIndex: it.ModRev,
	}}
}

func (a *API) getFromListing(r *http.Request, kind store.Kind, id string) (store.Item, error) {
	l, err := a.st.List(r.Context())
	if err != nil {
		return store.Item{}, err
	}
	if it := findItem(l, kind, id); it != nil {
		return *it, nil
	}
	return store.Item{}, store.ErrNotFound
}

// put creates or replaces an item: 201 when created, 200 when replaced.
func (a *API) put(r *http.Request, req *request) response {
	if a.w == nil {
		return badRequest(readOnlyMsg)
	}
	conf, resp, ok := a.bodyConf(req, true)
	if !ok {
		return resp
	}
	id, resp, ok := a.resolveID(req, conf, true)
	if !ok {
		return resp
	}
	return a.commit(r, req.res, id, func(cur *store.Item) (object, response, bool) {
		v := cloneObject(conf)
		if req.res.stamps {
			a.stampPut(v, cur)
		}
		return v, response{}, true
	})
}

// post creates an item with a generated id (201).
func (a *API) post(r *http.Request, req *request) response {
	if a.w == nil {
		return badRequest(readOnlyMsg)
	}
	conf, resp, ok := a.bodyConf(req, true)
	if !ok {
		return resp
	}
	if _, has := conf["id"]; has || req.id != "" {
		return badRequest("wrong " + req.res.word + " id, do not need it")
	}
	id, err := a.w.NewID(r.Context())
	if err != nil {
		return storeError(err)
	}
	conf["id"] = id
	return a.commit(r, req.res, id, func(cur *store.Item) (object, response, bool) {
		if cur != nil {
			// NewID promises a fresh id; never overwrite if a backend breaks that.
			return nil, fail(http.StatusConflict, "generated id "+id+" is already in use"), false
		}
		v := cloneObject(conf)
		a.stampPut(v, nil)
		return v, response{}, true
	})
}

// bodyConf decodes the request body as a JSON object for PUT and POST, and
// refuses the server-managed timestamps (APISIX: "the property is forbidden").
func (a *API) bodyConf(req *request, forbidTimes bool) (object, response, bool) {
	if req.body == nil {
		return nil, badRequest("missing configurations"), false
	}
	conf, err := decodeObject(req.body)
	if err != nil {
		return nil, badRequest("invalid configuration: " + err.Error()), false
	}
	if forbidTimes {
		if msg := forbiddenTimes(conf); msg != "" {
			return nil, badRequest(msg), false
		}
	}
	normalizeIDs(conf)
	return conf, response{}, true
}

// forbiddenTimes reports create_time or update_time set by the client at the
// top level, in the inline upstream or in plugins.
func forbiddenTimes(conf object) string {
	for _, k := range []string{"create_time", "update_time"} {
		if _, ok := conf[k]; ok {
			return "the property is forbidden: " + k
		}
		for _, sub := range []string{"upstream", "plugins"} {
			if m, ok := conf[sub].(object); ok {
				if _, ok := m[k]; ok {
					return "the property is forbidden: " + sub + "." + k
				}
			}
		}
	}
	return ""
}

// resolveID finds the item's id for PUT as APISIX's check_conf does, and
// stores it in conf for resources whose value carries its id.
func (a *API) resolveID(req *request, conf object, needID bool) (string, response, bool) {
	switch req.res.ids {
	case idUsername:
		name, _ := conf["username"].(string)
		if name == "" {
			return "", badRequest("invalid configuration: username: is required"), false
		}
		if req.id != "" && req.id != name {
			return "", badRequest("wrong username"), false
		}
		return name, response{}, true
	case idName:
		if req.id == "" {
			return "", badRequest("missing plugin name"), false
		}
		return req.id, response{}, true
	}
	id := req.id
	bodyID, hasBodyID := idString(conf["id"])
	if _, present := conf["id"]; present && !hasBodyID {
		return "", badRequest("invalid configuration: id: must be a string or an integer"), false
	}
	if id == "" {
		id = bodyID
	}
	if needID && id == "" {
		return "", badRequest("missing " + req.res.word + " id"), false
	}
	if hasBodyID && bodyID != id {
		return "", badRequest("wrong " + req.res.word + " id"), false
	}
	conf["id"] = id
	return id, response{}, true
}

// stampPut sets the timestamps of a PUT or POST: create_time is kept from the
// item being replaced, update_time is now.
func (a *API) stampPut(v object, cur *store.Item) {
	now := json.Number(strconv.FormatInt(a.now().Unix(), 10))
	v["create_time"] = now
	if cur != nil {
		if old, err := decodeObject(cur.Value); err == nil {
			if ct, ok := old["create_time"]; ok {
				v["create_time"] = ct
			}
		}
	}
	v["update_time"] = now
}

// delete removes an item, refusing while other resources reference it
// unless ?force=true.
func (a *API) delete(r *http.Request, req *request) response {
	if a.w == nil {
		return badRequest(readOnlyMsg)
	}
	if req.id == "" {
		return badRequest("missing " + req.res.word + " id")
	}
	force := req.args.Get("force") == "true"
	a.writeMu.Lock()
	defer a.writeMu.Unlock()
	for attempt := range maxAttempts {
		l, err := a.w.List(r.Context())
		if err != nil {
			return storeError(err)
		}
		cur := findItem(l, req.res.kind, req.id)
		if cur == nil {
			return keyNotFound()
		}
		if !force {
			if msg := stillUsed(req.res, req.id, l); msg != "" {
				return badRequest(msg)
			}
		}
		_, err = a.w.Delete(r.Context(), req.res.kind, req.id, cur.ModRev)
		if isConflict(err) {
			backoff(r, attempt)
			continue
		}
		if err != nil {
			return storeError(err)
		}
		a.log.Info("admin api: deleted", "kind", req.res.kind, "id", req.id, "force", force)
		return response{http.StatusOK, deletedBody{Deleted: "1", Key: itemKey(req.res.kind, req.id)}}
	}
	return conflictExhausted()
}
