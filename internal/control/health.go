package control

import (
	"fmt"
	"net/http"

	"github.com/sluicegw/sluice/internal/health"
)

// healthchecks answers GET /v1/healthcheck: every checked upstream of the
// configuration served, in APISIX's shape (name, type, nodes with ip, port,
// hostname, status and counter). An upstream whose checks were never
// committed (a configuration that failed to load) is not listed.
func (h *Handler) healthchecks(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, h.rt.HealthStatus())
}

// healthcheck answers GET /v1/healthcheck/{src_type}/{src_id} for routes,
// services and upstreams, with APISIX's status codes and messages.
func (h *Handler) healthcheck(w http.ResponseWriter, r *http.Request) {
	typ, id := r.PathValue("type"), r.PathValue("id")
	switch typ {
	case "routes", "services", "upstreams":
	default:
		writeJSON(w, http.StatusBadRequest, map[string]string{"error_msg": "invalid src type " + typ})
		return
	}
	name := health.Name(typ + "/" + id)
	for _, us := range h.rt.HealthStatus() {
		if us.Name == name {
			writeJSON(w, http.StatusOK, us)
			return
		}
	}
	msg := fmt.Sprintf("%s[%s] not found", typ, id)
	if h.served(typ, id) {
		msg = fmt.Sprintf("no checker for %s[%s]", typ, id)
	}
	writeJSON(w, http.StatusNotFound, map[string]string{"error_msg": msg})
}

// served reports whether the snapshot has the route, or an upstream of the
// service or upstream, named by typ and id.
func (h *Handler) served(typ, id string) bool {
	snap := h.rt.Load()
	if snap == nil {
		return false
	}
	for _, rt := range snap.Routes {
		switch {
		case typ == "routes" && rt.ID == id:
			return true
		case rt.Upstream == nil:
		case typ == "upstreams" && rt.Upstream.Key == "upstreams/"+id,
			typ == "services" && rt.Upstream.Key == "services/"+id+"/upstream":
			return true
		}
	}
	return false
}
