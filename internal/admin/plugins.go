package admin

import (
	"net/http"

	"github.com/sluicegw/sluice/plugin"
)

// PluginControl is what the Admin API's /plugins endpoints need from the
// gateway: the enabled plugin names, and a reload of that list.
type PluginControl struct {
	// Enabled returns the names of the enabled plugins, highest priority first.
	Enabled func() []string
	// Reload re-reads the enabled list from the gateway config (and the
	// custom Lua plugin directories) and recompiles the configuration with
	// it.
	Reload func() error
	// Lookup returns an enabled plugin's descriptor, built-in or custom;
	// nil looks up built-in plugins only.
	Lookup func(name string) (plugin.Descriptor, bool)
}

// servePlugins answers /apisix/admin/plugins/list, /plugins/reload and
// /plugins/<name>, as APISIX does.
func (a *API) servePlugins(w http.ResponseWriter, r *http.Request, segs []string) {
	if len(segs) != 2 {
		writeJSON(w, http.StatusNotFound, errorBody{Msg: "not found"})
		return
	}
	switch {
	case segs[1] == "list" && r.Method == http.MethodGet:
		names := []string{}
		if a.plugins.Enabled != nil {
			names = a.plugins.Enabled()
		}
		writeJSON(w, http.StatusOK, names)
	case segs[1] == "reload" && r.Method == http.MethodPut:
		if a.plugins.Reload == nil {
			writeJSON(w, http.StatusInternalServerError, errorBody{Msg: "plugin reload is not available"})
			return
		}
		if err := a.plugins.Reload(); err != nil {
			writeJSON(w, http.StatusBadRequest, errorBody{Msg: "reload failed: " + err.Error()})
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte("done"))
	case r.Method == http.MethodGet:
		lookup := a.plugins.Lookup
		if lookup == nil {
			lookup = plugin.Lookup
		}
		d, ok := lookup(segs[1])
		if !ok || !a.pluginEnabled(segs[1]) {
			writeJSON(w, http.StatusNotFound, errorBody{Msg: "plugin not found"})
			return
		}
		if r.URL.Query().Get("schema_type") == "consumer" {
			if s := plugin.ConsumerSchemaOf(d); s != nil {
				writeJSON(w, http.StatusOK, s)
				return
			}
		}
		writeJSON(w, http.StatusOK, plugin.SchemaOf(d))
	default:
		writeJSON(w, http.StatusMethodNotAllowed, errorBody{Msg: "method not allowed"})
	}
}

func (a *API) pluginEnabled(name string) bool {
	if a.plugins.Enabled == nil {
		return true
	}
	for _, n := range a.plugins.Enabled() {
		if n == name {
			return true
		}
	}
	return false
}
