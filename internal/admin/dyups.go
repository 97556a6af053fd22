package admin

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/sluicegw/sluice/internal/config"
	"github.com/sluicegw/sluice/internal/store"
)

// The dyups API (github.com/yzprofile/ngx_http_dyups_module) lets scripts
// written for nginx manage sluice upstreams. An nginx upstream name is a
// sluice upstream id. Answers are plain text as in dyups: "success", or the
// error; GETs with nothing to show answer 204.
//
//	GET    /list              upstream ids, one per line
//	GET    /detail            each upstream: its id, then "server addr weight=N" lines, then a blank line
//	GET    /upstream/<name>   "server addr" per node
//	POST   /upstream/<name>   body "server addr [weight=N] [backup] [down];" ... replaces the nodes
//	DELETE /upstream/<name>   removes the upstream (refused while referenced, unless ?force=true)
func (a *API) serveDyups(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	name := strings.TrimPrefix(p, "/upstream/")
	if strings.HasPrefix(p, "/upstream/") && (name == "" || strings.Contains(name, "/")) {
		text(w, http.StatusNotFound, "not support this interface")
		return
	}
	switch {
	case r.Method == http.MethodGet && p == "/list":
		a.dyupsList(w, r, false)
	case r.Method == http.MethodGet && p == "/detail":
		a.dyupsList(w, r, true)
	case r.Method == http.MethodGet:
		a.dyupsShow(w, r, name)
	case r.Method == http.MethodPost && p != "/list" && p != "/detail":
		a.dyupsUpdate(w, r, name)
	case r.Method == http.MethodDelete && p != "/list" && p != "/detail":
		req := &request{res: resourceByName(string(store.Upstreams)), id: name, args: r.URL.Query()}
		dyupsReply(w, a.delete(r, req))
	default:
		text(w, http.StatusMethodNotAllowed, "method not allowed")
	}
}

// dyupsNode is one parsed "server" directive.
type dyupsNode struct {
	host     string
	port     int
	weight   int
	priority int
}

func (a *API) dyupsList(w http.ResponseWriter, r *http.Request, detail bool) {
	l, err := a.st.List(r.Context())
	if err != nil {
		text(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	var b strings.Builder
	for _, it := range sortedItems(l, store.Upstreams) {
		b.WriteString(it.ID + "\n")
		if detail {
			for _, n := range storedNodes(it.Value) {
				fmt.Fprintf(&b, "server %s weight=%d\n", nodeAddr(n), n.Weight)
			}
			b.WriteString("\n")
		}
	}
	textOrEmpty(w, b.String())
}

func (a *API) dyupsShow(w http.ResponseWriter, r *http.Request, name string) {
	var (
		it  store.Item
		err error
	)
	if a.w != nil {
		it, err = a.w.Get(r.Context(), store.Upstreams, name)
	} else {
		it, err = a.getFromListing(r, store.Upstreams, name)
	}
	if err != nil {
		resp := storeError(err)
		text(w, resp.status, "")
		return
	}
	var b strings.Builder
	for _, n := range storedNodes(it.Value) {
		b.WriteString("server " + nodeAddr(n) + "\n")
	}
	textOrEmpty(w, b.String())
}

func (a *API) dyupsUpdate(w http.ResponseWriter, r *http.Request, name string) {
	if a.w == nil {
		text(w, http.StatusBadRequest, readOnlyMsg)
		return
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		text(w, http.StatusBadRequest, "invalid request body: "+err.Error())
		return
	}
	nodes, err := parseDyups(string(data))
	if err != nil {
		text(w, http.StatusBadRequest, err.Error())
		return
	}
	res := resourceByName(string(store.Upstreams))
	resp := a.commit(r, res, name, func(cur *store.Item) (object, response, bool) {
		if cur == nil {
			v := object{"id": name, "type": "roundrobin", "nodes": nodes}
			a.stampPut(v, nil)
			return v, response{}, true
		}
		v, err := decodeObject(cur.Value)
		if err != nil {
			return nil, fail(http.StatusInternalServerError, "stored value is not an object: "+err.Error()), false
		}
		v["nodes"] = nodes
		v["update_time"] = json.Number(strconv.FormatInt(a.now().Unix(), 10))
		return v, response{}, true
	})
	dyupsReply(w, resp)
}

// parseDyups parses a dyups body: "server" directives ending in ";", any
// number per line, blank lines allowed. Errors name the 1-based line.
func parseDyups(body string) ([]any, error) {
	var nodes []any
	for i, line := range strings.Split(body, "\n") {
		stmts := strings.Split(line, ";")
		if rest := strings.TrimSpace(stmts[len(stmts)-1]); rest != "" {
			return nil, fmt.Errorf("line %d: %q: missing ';' after %q", i+1, strings.TrimSpace(line), rest)
		}
		for _, s := range stmts[:len(stmts)-1] {
			if strings.TrimSpace(s) == "" {
				continue
			}
			n, err := parseServer(strings.Fields(s))
			if err != nil {
				return nil, fmt.Errorf("line %d: %q: %w", i+1, strings.TrimSpace(line), err)
			}
			m := object{"host": n.host, "port": n.port, "weight": n.weight}
			if n.priority != 0 {
				m["priority"] = n.priority
			}
			nodes = append(nodes, m)
		}
	}
	if len(nodes) == 0 {
		return nil, fmt.Errorf("no server in body: expected lines like \"server 127.0.0.1:8080 weight=1;\"")
	}
	return nodes, nil
}

// parseServer parses "server addr [weight=N] [backup] [down]". backup maps to
// a lower node priority (tried when the others fail), down to weight 0.
func parseServer(f []string) (dyupsNode, error) {
	if f[0] != "server" {
		return dyupsNode{}, fmt.Errorf("unknown directive %q (only \"server\" is supported)", f[0])
	}
	if len(f) < 2 {
		return dyupsNode{}, fmt.Errorf("server: missing address")
	}
	host, port, err := parseDyupsAddr(f[1])
	if err != nil {
		return dyupsNode{}, err
	}
	n := dyupsNode{host: host, port: port, weight: 1}
	for _, p := range f[2:] {
		switch k, v, _ := strings.Cut(p, "="); k {
		case "weight":
			w, err := strconv.Atoi(v)
			if err != nil || w < 1 {
				return n, fmt.Errorf("invalid weight %q: must be a positive integer", v)
			}
			n.weight = w
		case "backup":
			n.priority = -1
		case "down":
			n.weight = 0
		default:
			return n, fmt.Errorf("unsupported parameter %q (supported: weight=N, backup, down)", p)
		}
	}
	return n, nil
}

// parseDyupsAddr splits host[:port]; nginx's default port is 80.
func parseDyupsAddr(addr string) (string, int, error) {
	if strings.HasPrefix(addr, "unix:") {
		return "", 0, fmt.Errorf("unix socket %q is not supported", addr)
	}
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		if strings.Count(addr, ":") > 0 && !strings.HasPrefix(addr, "[") {
			return "", 0, fmt.Errorf("invalid address %q", addr)
		}
		return strings.Trim(addr, "[]"), 80, nil
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 1 || port > 65535 {
		return "", 0, fmt.Errorf("invalid port in %q: must be 1-65535", addr)
	}
	if host == "" {
		return "", 0, fmt.Errorf("invalid address %q: missing host", addr)
	}
	return host, port, nil
}

// storedNodes reads an upstream's nodes in either APISIX form.
func storedNodes(v json.RawMessage) config.Nodes {
	var u struct {
		Nodes config.Nodes `json:"nodes"`
	}
	_ = json.Unmarshal(v, &u) // a malformed value shows no nodes
	return u.Nodes
}

func nodeAddr(n config.Node) string {
	if n.Port == 0 {
		if strings.Contains(n.Host, ":") {
			return "[" + n.Host + "]"
		}
		return n.Host
	}
	return net.JoinHostPort(n.Host, strconv.Itoa(n.Port))
}

// dyupsReply turns an Admin API result into dyups' plain-text answer.
func dyupsReply(w http.ResponseWriter, resp response) {
	if resp.status < 300 {
		text(w, http.StatusOK, "success")
		return
	}
	switch b := resp.body.(type) {
	case errorBody:
		text(w, resp.status, b.Msg)
	case notFoundBody:
		text(w, resp.status, "not found upstream")
	default:
		text(w, resp.status, http.StatusText(resp.status))
	}
}

func textOrEmpty(w http.ResponseWriter, s string) {
	if s == "" {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	text(w, http.StatusOK, s)
}

func text(w http.ResponseWriter, status int, s string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, s)
}
