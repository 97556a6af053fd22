// Package control serves the control API (127.0.0.1:9090 by default): what a
// node is serving, for operators and probes. It reads the runtime; it never
// changes anything.
package control

import (
	"encoding/json"
	"net/http"

	"github.com/sluicegw/sluice/internal/runtime"
)

// StoreStatus reports the health of the store a node reads from.
type StoreStatus func() (reachable bool, err error)

// Handler serves the control API.
type Handler struct {
	rt        *runtime.Runtime
	storeType string
	store     StoreStatus
	mux       *http.ServeMux
}

// New returns the control API for rt. store may be nil for stores that cannot
// become unreachable (file, embedded).
func New(rt *runtime.Runtime, storeType string, store StoreStatus) *Handler {
	h := &Handler{rt: rt, storeType: storeType, store: store, mux: http.NewServeMux()}
	h.mux.HandleFunc("GET /v1/status", h.status)
	h.mux.HandleFunc("GET /v1/ready", h.ready)
	// APISIX's status server paths, for probes written against APISIX.
	h.mux.HandleFunc("GET /status", h.alive)
	h.mux.HandleFunc("GET /status/ready", h.ready)
	h.mux.HandleFunc("GET /v1/routes", h.routes)
	h.mux.HandleFunc("GET /v1/route/{id}", h.route)
	h.mux.HandleFunc("GET /v1/upstreams", h.upstreams)
	// Upstream keys hold slashes ("upstreams/1", "routes/r1/upstream").
	h.mux.HandleFunc("GET /v1/upstream/{key...}", h.upstream)
	h.mux.HandleFunc("GET /v1/schema", h.schema)
	h.mux.HandleFunc("GET /v1/healthcheck", h.healthchecks)
	h.mux.HandleFunc("GET /v1/healthcheck/{type}/{id}", h.healthcheck)
	return h
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// Status is the body of GET /v1/status.
type Status struct {
	// Revision is the store revision of the configuration being served; 0
	// before the first good load. Nodes of a cluster serving the same
	// revision serve the same configuration.
	Revision int64 `json:"revision"`
	Routes   int   `json:"routes"`
	Store    struct {
		Type      string `json:"type"`
		Reachable bool   `json:"reachable"`
		Error     string `json:"error,omitempty"`
	} `json:"store"`
}

func (h *Handler) status(w http.ResponseWriter, _ *http.Request) {
	var st Status
	if snap := h.rt.Load(); snap != nil {
		st.Revision, st.Routes = snap.Revision, len(snap.Routes)
	}
	st.Store.Type, st.Store.Reachable = h.storeType, true
	if h.store != nil {
		ok, err := h.store()
		st.Store.Reachable = ok
		if err != nil {
			st.Store.Error = err.Error()
		}
	}
	writeJSON(w, http.StatusOK, st)
}

// ready answers 200 once a configuration is served, 503 before: a load
// balancer or Kubernetes probe sends no traffic to a node with no routes yet.
// An unreachable store does not make a serving node unready: it keeps serving
// its last good configuration.
func (h *Handler) ready(w http.ResponseWriter, _ *http.Request) {
	if h.rt.Load() == nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "no configuration loaded yet"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// alive answers 200 while the process serves the control API: a liveness
// probe. Readiness (a configuration loaded) is /v1/ready.
func (h *Handler) alive(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
