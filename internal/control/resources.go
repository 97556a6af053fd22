package control

import (
	"net/http"
	"sort"

	"github.com/sluicegw/sluice/internal/runtime"
	"github.com/sluicegw/sluice/internal/store"
	"github.com/sluicegw/sluice/internal/upstream"
	"github.com/sluicegw/sluice/plugin"
)

// The bodies below describe the compiled configuration a node serves, not
// the stored JSON (the Admin API serves that): defaults are resolved,
// timeouts are the effective ones and plugins are listed in run order.

// RouteInfo is one element of GET /v1/routes and the body of
// GET /v1/route/{id}.
type RouteInfo struct {
	ID              string        `json:"id"`
	Name            string        `json:"name,omitempty"`
	ServiceID       string        `json:"service_id,omitempty"`
	EnableWebsocket bool          `json:"enable_websocket"`
	Timeout         TimeoutInfo   `json:"timeout"`
	Plugins         []string      `json:"plugins"`
	Upstream        *UpstreamInfo `json:"upstream"`
}

// TimeoutInfo is an effective timeout in seconds, as APISIX spells them.
type TimeoutInfo struct {
	Connect float64 `json:"connect"`
	Send    float64 `json:"send"`
	Read    float64 `json:"read"`
}

// UpstreamInfo is one element of GET /v1/upstreams and the body of
// GET /v1/upstream/{key}. Key is the compiled upstream's identity:
// "upstreams/<id>", or the owner of an inline upstream
// ("routes/<id>/upstream", "services/<id>/upstream").
type UpstreamInfo struct {
	Key          string      `json:"key"`
	Scheme       string      `json:"scheme"`
	PassHost     string      `json:"pass_host"`
	UpstreamHost string      `json:"upstream_host,omitempty"`
	Retries      int         `json:"retries"`
	RetryTimeout float64     `json:"retry_timeout"`
	Timeout      TimeoutInfo `json:"timeout"`
	Nodes        []NodeInfo  `json:"nodes"`
}

// NodeInfo is one node of an upstream, in pick order (descending priority).
type NodeInfo struct {
	Address  string `json:"address"`
	Host     string `json:"host"`
	Port     int    `json:"port"`
	Weight   int    `json:"weight"`
	Priority int    `json:"priority"`
}

// Schema is the body of GET /v1/schema.
type Schema struct {
	// Main lists the resource kinds the store holds, spelled as APISIX's
	// etcd directories.
	Main    []string                `json:"main"`
	Plugins map[string]PluginSchema `json:"plugins"`
}

// PluginSchema describes one registered plugin.
type PluginSchema struct {
	Priority       int            `json:"priority"`
	Schema         map[string]any `json:"schema"`
	ConsumerSchema map[string]any `json:"consumer_schema,omitempty"`
}

type errorBody struct {
	ErrorMsg string `json:"error_msg"`
}

func timeoutInfo(t upstream.Timeouts) TimeoutInfo {
	return TimeoutInfo{Connect: t.Connect.Seconds(), Send: t.Send.Seconds(), Read: t.Read.Seconds()}
}

func routeInfo(r *runtime.Route) RouteInfo {
	ri := RouteInfo{
		ID:              r.ID,
		Name:            r.Name,
		ServiceID:       r.ServiceID,
		EnableWebsocket: r.EnableWebsocket,
		Timeout:         timeoutInfo(r.Timeouts),
		Plugins:         r.Chain.Names(),
	}
	if ri.Plugins == nil {
		ri.Plugins = []string{}
	}
	if r.Upstream != nil {
		u := upstreamInfo(r.Upstream)
		ri.Upstream = &u
	}
	return ri
}

func upstreamInfo(u *upstream.Upstream) UpstreamInfo {
	ui := UpstreamInfo{
		Key:          u.Key,
		Scheme:       u.Scheme,
		PassHost:     u.PassHost,
		UpstreamHost: u.UpstreamHost,
		Retries:      u.Retries,
		RetryTimeout: u.RetryTimeout.Seconds(),
		Timeout:      timeoutInfo(u.Timeouts),
		Nodes:        make([]NodeInfo, 0, len(u.Targets)),
	}
	for _, t := range u.Targets {
		ui.Nodes = append(ui.Nodes, NodeInfo{
			Address:  t.Node.Addr,
			Host:     t.Node.Host,
			Port:     t.Node.Port,
			Weight:   t.Node.Weight,
			Priority: t.Node.Priority,
		})
	}
	return ui
}

// compiledUpstreams returns the snapshot's compiled upstreams, by key. Only
// upstreams some route uses are compiled into routes, so only those show.
func compiledUpstreams(snap *runtime.Snapshot) []*upstream.Upstream {
	seen := map[string]bool{}
	var out []*upstream.Upstream
	for _, r := range snap.Routes {
		if u := r.Upstream; u != nil && !seen[u.Key] {
			seen[u.Key] = true
			out = append(out, u)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

func notFound(w http.ResponseWriter) {
	writeJSON(w, http.StatusNotFound, errorBody{ErrorMsg: "not found"})
}

func (h *Handler) routes(w http.ResponseWriter, _ *http.Request) {
	out := []RouteInfo{}
	if snap := h.rt.Load(); snap != nil {
		for _, r := range snap.Routes {
			out = append(out, routeInfo(r))
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (h *Handler) route(w http.ResponseWriter, req *http.Request) {
	id := req.PathValue("id")
	if snap := h.rt.Load(); snap != nil {
		for _, r := range snap.Routes {
			if r.ID == id {
				writeJSON(w, http.StatusOK, routeInfo(r))
				return
			}
		}
	}
	notFound(w)
}

func (h *Handler) upstreams(w http.ResponseWriter, _ *http.Request) {
	out := []UpstreamInfo{}
	if snap := h.rt.Load(); snap != nil {
		for _, u := range compiledUpstreams(snap) {
			out = append(out, upstreamInfo(u))
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (h *Handler) upstream(w http.ResponseWriter, req *http.Request) {
	key := req.PathValue("key")
	if snap := h.rt.Load(); snap != nil {
		for _, u := range compiledUpstreams(snap) {
			if u.Key == key {
				writeJSON(w, http.StatusOK, upstreamInfo(u))
				return
			}
		}
	}
	notFound(w)
}

// schema serves every registered plugin: the runtime's enabled-plugin list
// is not exported, so plugins disabled by configuration show too.
func (h *Handler) schema(w http.ResponseWriter, _ *http.Request) {
	s := Schema{Main: make([]string, 0, len(store.Kinds)), Plugins: map[string]PluginSchema{}}
	for _, k := range store.Kinds {
		s.Main = append(s.Main, string(k))
	}
	sort.Strings(s.Main)
	// Like APISIX, only the plugins this node runs (custom Lua plugins
	// included).
	for _, d := range h.rt.Plugins() {
		s.Plugins[d.Name] = PluginSchema{
			Priority:       d.Priority,
			Schema:         plugin.SchemaOf(d),
			ConsumerSchema: plugin.ConsumerSchemaOf(d),
		}
	}
	writeJSON(w, http.StatusOK, s)
}
