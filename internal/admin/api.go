// Package admin serves sluice's Admin API: Apache APISIX v3's Admin API
// (/apisix/admin/...) over a store.Writer, and the nginx dyups module's
// upstream API (/upstream/<name>, /list, /detail) for operators coming from
// nginx. Every write is validated twice before it is stored: the resource
// alone (config.DecodeKind), then the whole prospective listing through the
// same function the runtime compiles snapshots with, so the Admin API never
// accepts what the data plane would refuse.
package admin

import (
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/sluicegw/sluice/internal/store"
)

// Role is what an Admin API key may do.
type Role int

// Roles, as APISIX's deployment.admin.admin_key[].role.
const (
	// RoleAdmin may read and write.
	RoleAdmin Role = iota
	// RoleViewer may only GET; any other method answers 401, as in APISIX.
	RoleViewer
)

// Key is one accepted Admin API key and its role.
type Key struct {
	Key  string
	Role Role
}

// Options configure an API.
type Options struct {
	// Store holds the resources. When it is also a store.Writer the API is
	// writable; otherwise (the file store) every write answers 400.
	Store store.Store
	// Keys are the accepted X-API-KEY values. With none, every request is
	// refused: there is no anonymous access.
	Keys []Key
	// Validate checks a whole prospective listing before a write is stored;
	// runtime.ValidateListing in production. Nil skips this step.
	Validate func(store.Listing) error
	// Log receives write and failure logs; nil discards them.
	Log *slog.Logger
	// Now is the clock for create_time and update_time; nil means time.Now.
	Now func() time.Time
	// Plugins serves /apisix/admin/plugins/*.
	Plugins PluginControl
}

// API is the Admin API handler. It is safe for concurrent use.
type API struct {
	st       store.Store
	w        store.Writer // nil when the store is read-only
	keys     []hashedKey
	validate func(store.Listing) error
	log      *slog.Logger
	now      func() time.Time
	decode   func(kind store.Kind, id string, data []byte) error
	plugins  PluginControl

	// writeMu serializes this process's read-validate-write cycles. Admin
	// writes are rare, and serializing them makes the whole-listing
	// validation see exactly the state the write lands on. Writers in other
	// processes (an etcd cluster) are still caught by compare-and-set.
	writeMu sync.Mutex
}

// New returns an API serving opts.Store.
func New(opts Options) *API {
	a := &API{
		st:       opts.Store,
		validate: opts.Validate,
		log:      opts.Log,
		now:      opts.Now,
		decode:   decodeResource,
		plugins:  opts.Plugins,
	}
	if w, ok := opts.Store.(store.Writer); ok {
		a.w = w
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	if a.now == nil {
		a.now = time.Now
	}
	for _, k := range opts.Keys {
		a.keys = append(a.keys, hashKey(k))
	}
	return a
}

// adminPrefix is where APISIX mounts its Admin API.
const adminPrefix = "/apisix/admin"

// ServeHTTP routes a request to the Admin API or the dyups API.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-API-VERSION", "v3")
	p := r.URL.Path
	switch {
	case p == adminPrefix && r.Method == http.MethodHead:
		// APISIX answers HEAD /apisix/admin without a key, as a liveness probe.
		w.WriteHeader(http.StatusOK)
		return
	case p == adminPrefix || strings.HasPrefix(p, adminPrefix+"/"):
		if !a.authorize(w, r) {
			return
		}
		a.serveAdmin(w, r, strings.TrimPrefix(p, adminPrefix))
	case p == "/list" || p == "/detail" || strings.HasPrefix(p, "/upstream/"):
		if !a.authorize(w, r) {
			return
		}
		a.serveDyups(w, r)
	default:
		writeJSON(w, http.StatusNotFound, errorBody{Msg: "not found"})
	}
}

// serveAdmin dispatches /apisix/admin/<resource>[/<id>[/<sub path>]].
func (a *API) serveAdmin(w http.ResponseWriter, r *http.Request, rest string) {
	segs := splitPath(rest)
	if len(segs) == 0 {
		writeJSON(w, http.StatusNotFound, errorBody{Msg: "not found"})
		return
	}
	if segs[0] == "plugins" {
		a.servePlugins(w, r, segs)
		return
	}
	if segs[0] == "schema" && len(segs) >= 2 && segs[1] == "validate" {
		if r.Method != http.MethodPost {
			writeJSON(w, http.StatusNotFound, errorBody{Msg: "not found"})
			return
		}
		name := ""
		if len(segs) > 2 {
			name = segs[2]
		}
		a.schemaValidate(w, r, name)
		return
	}
	res := resourceByName(segs[0])
	if res == nil {
		writeJSON(w, http.StatusNotFound, errorBody{Msg: "Unsupported resource type: " + segs[0]})
		return
	}
	req := &request{res: res, args: r.URL.Query()}
	if len(segs) > 1 {
		req.id = segs[1]
	}
	if len(segs) > 2 {
		req.subPath = strings.Join(segs[2:], "/")
	}
	method := strings.ToLower(r.Method)
	switch r.Method {
	case http.MethodGet, http.MethodPut, http.MethodPost, http.MethodPatch, http.MethodDelete:
	default:
		writeJSON(w, http.StatusNotFound, errorBody{Msg: "not found"})
		return
	}
	if !res.allows(method) {
		writeJSON(w, http.StatusMethodNotAllowed, errorBody{
			Msg: "not supported `" + r.Method + "` method for " + res.word})
		return
	}
	if r.Method != http.MethodGet {
		body, ok := readBody(w, r)
		if !ok {
			return
		}
		req.body = body
	}
	var resp response
	switch r.Method {
	case http.MethodGet:
		resp = a.get(r, req)
	case http.MethodPut:
		resp = a.put(r, req)
	case http.MethodPost:
		resp = a.post(r, req)
	case http.MethodPatch:
		resp = a.patch(r, req)
	case http.MethodDelete:
		resp = a.delete(r, req)
	}
	writeJSON(w, resp.status, resp.body)
}

// splitPath splits a URL path into its non-empty segments, as APISIX's
// core.utils.split_uri does for the Admin API.
func splitPath(p string) []string {
	var out []string
	for s := range strings.SplitSeq(p, "/") {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}
