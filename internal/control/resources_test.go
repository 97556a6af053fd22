package control_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"testing"

	"github.com/sluicegw/sluice/internal/config"
	"github.com/sluicegw/sluice/internal/control"
	"github.com/sluicegw/sluice/internal/runtime"
	"github.com/sluicegw/sluice/internal/store"
	"github.com/sluicegw/sluice/plugin"
	_ "github.com/sluicegw/sluice/plugins/key-auth"
	_ "github.com/sluicegw/sluice/plugins/request-id"
)

const testResources = `{
  "upstreams": [{"id": "1", "scheme": "https", "pass_host": "node", "retries": 3,
    "timeout": {"connect": 1, "send": 2, "read": 3},
    "nodes": [{"host": "127.0.0.1", "port": 8001, "weight": 5},
              {"host": "127.0.0.2", "port": 8002, "weight": 1, "priority": 10}]}],
  "services": [{"id": "s1", "upstream": {"nodes": {"127.0.0.3:8003": 2}}}],
  "global_rules": [{"id": "g1", "plugins": {"request-id": {}}}],
  "routes": [
    {"id": "r1", "name": "one", "uri": "/one", "upstream_id": "1",
     "timeout": {"connect": 4, "send": 5, "read": 0.5}, "plugins": {"key-auth": {}}},
    {"id": "r2", "uri": "/two", "service_id": "s1", "enable_websocket": true}
  ]
}`

func newServer(t *testing.T, resources string) *httptest.Server {
	t.Helper()
	rt := runtime.New(nil, runtime.Defaults{Timeouts: runtime.DefaultTimeouts()}, slog.New(slog.DiscardHandler))
	if resources != "" {
		var res config.Resources
		if err := json.Unmarshal([]byte(resources), &res); err != nil {
			t.Fatal(err)
		}
		snap, err := runtime.Compile(&res, 7, rt.Deps())
		if err != nil {
			t.Fatal(err)
		}
		rt.Swap(snap)
	}
	srv := httptest.NewServer(control.New(rt, "file", nil))
	t.Cleanup(srv.Close)
	return srv
}

// get returns the status and the decoded JSON body of GET path.
func get(t *testing.T, srv *httptest.Server, path string) (int, any) {
	t.Helper()
	resp, err := http.Get(srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("GET %s: Content-Type = %q", path, ct)
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("GET %s: %v in %s", path, err, b)
	}
	return resp.StatusCode, v
}

func decode(t *testing.T, s string) any {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func expect(t *testing.T, srv *httptest.Server, path string, wantCode int, want string) {
	t.Helper()
	code, got := get(t, srv, path)
	if code != wantCode {
		t.Errorf("GET %s: status %d, want %d", path, code, wantCode)
	}
	if w := decode(t, want); !reflect.DeepEqual(got, w) {
		gb, _ := json.Marshal(got)
		wb, _ := json.Marshal(w)
		t.Errorf("GET %s:\n got %s\nwant %s", path, gb, wb)
	}
}

// Nodes are listed in pick order: descending priority.
const upstream1 = `{"key": "upstreams/1", "scheme": "https", "pass_host": "node", "retries": 3,
  "retry_timeout": 0, "timeout": {"connect": 1, "send": 2, "read": 3},
  "nodes": [{"address": "127.0.0.2:8002", "host": "127.0.0.2", "port": 8002, "weight": 1, "priority": 10},
            {"address": "127.0.0.1:8001", "host": "127.0.0.1", "port": 8001, "weight": 5, "priority": 0}]}`

const upstreamS1 = `{"key": "services/s1/upstream", "scheme": "http", "pass_host": "pass", "retries": 0,
  "retry_timeout": 0, "timeout": {"connect": 60, "send": 60, "read": 60},
  "nodes": [{"address": "127.0.0.3:8003", "host": "127.0.0.3", "port": 8003, "weight": 2, "priority": 0}]}`

const route1 = `{"id": "r1", "name": "one", "enable_websocket": false,
  "timeout": {"connect": 4, "send": 5, "read": 0.5},
  "plugins": ["request-id", "key-auth"], "upstream": ` + upstream1 + `}`

const route2 = `{"id": "r2", "service_id": "s1", "enable_websocket": true,
  "timeout": {"connect": 60, "send": 60, "read": 60},
  "plugins": ["request-id"], "upstream": ` + upstreamS1 + `}`

func TestRoutes(t *testing.T) {
	srv := newServer(t, testResources)
	expect(t, srv, "/v1/routes", 200, `[`+route1+`,`+route2+`]`)
	expect(t, srv, "/v1/route/r1", 200, route1)
	expect(t, srv, "/v1/route/r2", 200, route2)
	expect(t, srv, "/v1/route/nope", 404, `{"error_msg": "not found"}`)
}

func TestUpstreams(t *testing.T) {
	srv := newServer(t, testResources)
	// By key; each upstream once although several routes may use it.
	expect(t, srv, "/v1/upstreams", 200, `[`+upstreamS1+`,`+upstream1+`]`)
	expect(t, srv, "/v1/upstream/upstreams/1", 200, upstream1)
	expect(t, srv, "/v1/upstream/services/s1/upstream", 200, upstreamS1)
	expect(t, srv, "/v1/upstream/upstreams/2", 404, `{"error_msg": "not found"}`)
	expect(t, srv, "/v1/upstream/1", 404, `{"error_msg": "not found"}`)
}

func TestRoutesBeforeFirstLoad(t *testing.T) {
	srv := newServer(t, "")
	expect(t, srv, "/v1/routes", 200, `[]`)
	expect(t, srv, "/v1/upstreams", 200, `[]`)
	expect(t, srv, "/v1/route/r1", 404, `{"error_msg": "not found"}`)
	expect(t, srv, "/v1/upstream/upstreams/1", 404, `{"error_msg": "not found"}`)
}

func TestSchema(t *testing.T) {
	srv := newServer(t, "")
	code, v := get(t, srv, "/v1/schema")
	if code != 200 {
		t.Fatalf("status %d", code)
	}
	body := v.(map[string]any)
	if len(body) != 2 {
		t.Errorf("top-level fields %v, want main and plugins", slices.Sorted(maps.Keys(body)))
	}
	var kinds []string
	for _, k := range store.Kinds {
		kinds = append(kinds, string(k))
	}
	slices.Sort(kinds)
	wantMain := roundTrip(t, kinds)
	if !reflect.DeepEqual(body["main"], wantMain) {
		t.Errorf("main = %v, want %v", body["main"], wantMain)
	}
	plugins := body["plugins"].(map[string]any)
	all := plugin.All()
	if len(plugins) != len(all) {
		t.Errorf("%d plugins, want every registered one (%d)", len(plugins), len(all))
	}
	for _, d := range all {
		want := map[string]any{"priority": float64(d.Priority), "schema": roundTrip(t, plugin.SchemaOf(d))}
		if cs := plugin.ConsumerSchemaOf(d); cs != nil {
			want["consumer_schema"] = roundTrip(t, cs)
		}
		if !reflect.DeepEqual(plugins[d.Name], want) {
			t.Errorf("plugins[%q] = %v, want %v", d.Name, plugins[d.Name], want)
		}
	}
	// Spot-check the two plugins this test links in.
	ka := plugins["key-auth"].(map[string]any)
	if ka["priority"] != float64(2500) || ka["consumer_schema"] == nil {
		t.Errorf("key-auth = %v", ka)
	}
	wantKey := decode(t, `{"type": "object", "properties": {"key": {"type": "string"}}}`)
	if !reflect.DeepEqual(ka["consumer_schema"], wantKey) {
		t.Errorf("key-auth consumer_schema = %v, want %v", ka["consumer_schema"], wantKey)
	}
	if _, ok := plugins["request-id"].(map[string]any)["consumer_schema"]; ok {
		t.Error("request-id has a consumer_schema; it is no auth plugin")
	}
}

func roundTrip(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return decode(t, string(b))
}

func TestSchemaListsOnlyEnabledPlugins(t *testing.T) {
	rt := runtime.New(nil, runtime.Defaults{}, slog.New(slog.DiscardHandler))
	rt.SetEnabledPlugins([]string{"key-auth"})
	srv := httptest.NewServer(control.New(rt, "file", nil))
	defer srv.Close()
	_, v := get(t, srv, "/v1/schema")
	plugins := v.(map[string]any)["plugins"].(map[string]any)
	if got := slices.Sorted(maps.Keys(plugins)); !reflect.DeepEqual(got, []string{"key-auth"}) {
		t.Errorf("plugins %v, want only the enabled key-auth", got)
	}
}

func TestStatusServerPaths(t *testing.T) {
	empty := newServer(t, "")
	expect(t, empty, "/status", 200, `{"status": "ok"}`)
	if code, _ := get(t, empty, "/status/ready"); code != 503 {
		t.Errorf("/status/ready before any configuration: %d, want 503", code)
	}
	loaded := newServer(t, testResources)
	expect(t, loaded, "/status/ready", 200, `{"status": "ready"}`)
}
