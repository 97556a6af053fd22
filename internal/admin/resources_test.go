package admin

import (
	"fmt"
	"net/http"
	"regexp"
	"testing"

	"github.com/sluicegw/sluice/internal/store"
)

const (
	upstreamBody = `{"type":"roundrobin","nodes":{"127.0.0.1:8080":1}}`
	routeBody    = `{"uri":"/a","upstream":` + upstreamBody + `}`
)

// TestCRUDEveryResource walks each kind through create, read, replace, list
// and delete, comparing every answer with APISIX v3's shapes.
func TestCRUDEveryResource(t *testing.T) {
	t.Parallel()
	cert, key := selfSigned(t, "example.com")
	tests := []struct {
		desc string
		kind store.Kind
		id   string
		put  string // PUT path below /apisix/admin
		body string
		// value is the stored value's fields besides the managed ones.
		value string
		// replaced is a second body for the replacing PUT.
		replaced string
		// idInValue: the value carries "id" (not consumers, plugin_metadata).
		idInValue bool
		stamps    bool
	}{
		{desc: "route", kind: store.Routes, id: "1", put: "/routes/1", body: routeBody,
			replaced: `{"uri":"/b","upstream":` + upstreamBody + `}`, idInValue: true, stamps: true},
		{desc: "service", kind: store.Services, id: "s1", put: "/services/s1", body: `{"upstream":` + upstreamBody + `}`,
			replaced: `{"name":"svc","upstream":` + upstreamBody + `}`, idInValue: true, stamps: true},
		{desc: "upstream", kind: store.Upstreams, id: "u1", put: "/upstreams/u1", body: upstreamBody,
			replaced: `{"type":"least_conn","nodes":{"127.0.0.1:8081":2}}`, idInValue: true, stamps: true},
		{desc: "consumer without id in the path", kind: store.Consumers, id: "jack", put: "/consumers",
			body: `{"username":"jack","desc":"a consumer"}`, replaced: `{"username":"jack","desc":"changed"}`, stamps: true},
		{desc: "consumer group", kind: store.ConsumerGroups, id: "g1", put: "/consumer_groups/g1",
			body: `{"plugins":{"limit-count":{"count":1,"time_window":60}}}`, replaced: `{"plugins":{}}`,
			idInValue: true, stamps: true},
		{desc: "plugin config", kind: store.PluginConfigs, id: "pc1", put: "/plugin_configs/pc1",
			body: `{"plugins":{"limit-count":{"count":1,"time_window":60}}}`, replaced: `{"desc":"d","plugins":{}}`,
			idInValue: true, stamps: true},
		{desc: "global rule", kind: store.GlobalRules, id: "1", put: "/global_rules/1",
			body: `{"plugins":{"key-auth":{}}}`, replaced: `{"plugins":{"cors":{}}}`, idInValue: true, stamps: true},
		{desc: "ssl", kind: store.SSLs, id: "1", put: "/ssls/1",
			body:      fmt.Sprintf(`{"sni":"example.com","cert":%s,"key":%s}`, jsonString(cert), jsonString(key)),
			replaced:  fmt.Sprintf(`{"snis":["example.com"],"cert":%s,"key":%s}`, jsonString(cert), jsonString(key)),
			idInValue: true, stamps: true},
		{desc: "plugin metadata", kind: store.PluginMetadata, id: "http-logger", put: "/plugin_metadata/http-logger",
			body: `{"log_format":{"host":"$host"}}`, replaced: `{"log_format":{"uri":"$uri"}}`},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			key := "/apisix/" + string(tc.kind) + "/" + tc.id
			stored := func(body string, create, update int64) string {
				v := body[:len(body)-1]
				if tc.idInValue {
					v += `,"id":` + jsonString(tc.id)
				}
				if tc.stamps {
					v += fmt.Sprintf(`,"create_time":%d,"update_time":%d`, create, update)
				}
				return v + "}"
			}

			// Create: 201 with key and value (APISIX answers writes without revisions).
			want := stored(tc.body, t0, t0)
			e.expect("PUT", "/apisix/admin"+tc.put, tc.body, http.StatusCreated,
				fmt.Sprintf(`{"key":%q,"value":%s}`, key, want))

			// Read one: with the revisions.
			it := e.item(tc.kind, tc.id)
			getWant := want
			if tc.kind == store.SSLs {
				getWant = stored(fmt.Sprintf(`{"sni":"example.com","cert":%s}`, jsonString(cert)), t0, t0)
			}
			e.expect("GET", "/apisix/admin/"+string(tc.kind)+"/"+tc.id, "", http.StatusOK,
				fmt.Sprintf(`{"key":%q,"value":%s,"createdIndex":%d,"modifiedIndex":%d}`, key, getWant, it.CreateRev, it.ModRev))

			// Replace: 200; create_time kept, update_time moves.
			e.clock.Add(10)
			want = stored(tc.replaced, t0, t0+10)
			e.expect("PUT", "/apisix/admin"+tc.put, tc.replaced, http.StatusOK,
				fmt.Sprintf(`{"key":%q,"value":%s}`, key, want))
			it2 := e.item(tc.kind, tc.id)
			if it2.CreateRev != it.CreateRev || it2.ModRev <= it.ModRev {
				t.Errorf("revisions after replace: %+v, before %+v", it2, it)
			}

			// List.
			r := e.expect("GET", "/apisix/admin/"+string(tc.kind), "", http.StatusOK, "")
			if got := field(t, r.body, "total"); got != 1.0 {
				t.Errorf("list total = %v, want 1: %s", got, r.body)
			}
			if tc.kind == store.SSLs && regexp.MustCompile(`"key":"-----`).MatchString(r.body) {
				t.Errorf("list shows the private key: %s", r.body)
			}

			// Delete, then it is gone.
			e.expect("DELETE", "/apisix/admin/"+string(tc.kind)+"/"+tc.id, "", http.StatusOK,
				fmt.Sprintf(`{"deleted":"1","key":%q}`, key))
			e.expect("GET", "/apisix/admin/"+string(tc.kind)+"/"+tc.id, "", http.StatusNotFound, `{"message":"Key not found"}`)
			e.expect("DELETE", "/apisix/admin/"+string(tc.kind)+"/"+tc.id, "", http.StatusNotFound, `{"message":"Key not found"}`)
			e.expect("GET", "/apisix/admin/"+string(tc.kind), "", http.StatusOK, `{"list":[],"total":0}`)
		})
	}
}

func TestPost(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.expect("POST", "/apisix/admin/routes", routeBody, http.StatusCreated, "")
	id, _ := field(t, r.body, "value.id").(string)
	if !regexp.MustCompile(`^\d{20}$`).MatchString(id) {
		t.Fatalf("generated id %q is not APISIX's 20-digit form", id)
	}
	jsonEqual(t, r.body, fmt.Sprintf(`{"key":"/apisix/routes/%s","value":{"id":%q,"uri":"/a","upstream":%s,"create_time":%d,"update_time":%d}}`,
		id, id, upstreamBody, t0, t0))
	e.expect("GET", "/apisix/admin/routes/"+id, "", http.StatusOK, "")

	e.expect("POST", "/apisix/admin/routes", `{"id":"7","uri":"/a","upstream":`+upstreamBody+`}`,
		http.StatusBadRequest, `{"error_msg":"wrong route id, do not need it"}`)
	e.expect("POST", "/apisix/admin/routes/7", routeBody, http.StatusBadRequest, `{"error_msg":"wrong route id, do not need it"}`)
}

// TestMethodsPerResource checks APISIX's unsupported_methods.
func TestMethodsPerResource(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, tc := range []struct{ method, path, word string }{
		{"POST", "/consumers", "consumer"},
		{"PATCH", "/consumers/jack", "consumer"},
		{"POST", "/consumer_groups", "consumer group"},
		{"POST", "/plugin_configs", "plugin config"},
		{"POST", "/global_rules", "global rule"},
		{"POST", "/plugin_metadata", "plugin_metadata"},
		{"PATCH", "/plugin_metadata/http-logger", "plugin_metadata"},
	} {
		e.expect(tc.method, "/apisix/admin"+tc.path, `{}`, http.StatusMethodNotAllowed,
			fmt.Sprintf(`{"error_msg":"not supported `+"`%s`"+` method for %s"}`, tc.method, tc.word))
	}
	e.expect("GET", "/apisix/admin/stream_things", "", http.StatusNotFound, `{"error_msg":"Unsupported resource type: stream_things"}`)
}

func TestPutIDRules(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.expect("PUT", "/apisix/admin/routes/1", `{"id":"2","uri":"/a","upstream":`+upstreamBody+`}`,
		http.StatusBadRequest, `{"error_msg":"wrong route id"}`)
	e.expect("PUT", "/apisix/admin/routes", routeBody, http.StatusBadRequest, `{"error_msg":"missing route id"}`)
	// The id may come from the body alone, and as an integer.
	e.expect("PUT", "/apisix/admin/routes", `{"id":5,"uri":"/a","upstream":`+upstreamBody+`}`, http.StatusCreated, "")
	e.expect("GET", "/apisix/admin/routes/5", "", http.StatusOK, "")
	e.expect("PUT", "/apisix/admin/consumers/jack", `{"username":"jill"}`, http.StatusBadRequest, `{"error_msg":"wrong username"}`)
	e.expect("PUT", "/apisix/admin/routes/1", `{"uri":"/a","create_time":1,"upstream":`+upstreamBody+`}`,
		http.StatusBadRequest, `{"error_msg":"the property is forbidden: create_time"}`)
	e.expect("PUT", "/apisix/admin/routes/1", `{"uri":"/a","upstream":{"update_time":1,"nodes":{"127.0.0.1:1":1}}}`,
		http.StatusBadRequest, `{"error_msg":"the property is forbidden: upstream.update_time"}`)
	e.expect("PUT", "/apisix/admin/routes/1", ``, http.StatusBadRequest, `{"error_msg":"missing configurations"}`)
	r := e.expect("PUT", "/apisix/admin/routes/1", `{"uri":`, http.StatusBadRequest, "")
	if field(t, r.body, "req_body") != `{"uri":` {
		t.Errorf("bad JSON answer lacks req_body: %s", r.body)
	}
}

func TestValidationErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, tc := range []struct{ desc, path, body, want string }{
		{"field path", "/routes/1", `{"uri":"a","upstream":` + upstreamBody + `}`,
			`invalid configuration: uri: must start with "/"`},
		{"nested field path", "/routes/1", `{"uri":"/a","upstream":{"nodes":[{"host":"127.0.0.1","port":70000,"weight":1}]}}`,
			`invalid configuration: upstream.nodes[0].port: must be between 1 and 65535`},
		{"unknown field", "/upstreams/1", `{"nodes":{"127.0.0.1:80":1},"colour":"red"}`,
			`invalid configuration: colour: unknown field`},
		{"missing upstream", "/routes/1", `{"uri":"/a","upstream_id":"nope"}`,
			`failed to fetch upstream info by upstream id [nope], response code: 404`},
		{"missing service", "/routes/1", `{"uri":"/a","service_id":"nope"}`,
			`failed to fetch service info by service id [nope], response code: 404`},
		{"missing consumer group", "/consumers", `{"username":"jack","group_id":"g"}`,
			`failed to fetch consumer group info by consumer group id [g], response code: 404`},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			r := e.call("PUT", "/apisix/admin"+tc.path, tc.body)
			if r.status != http.StatusBadRequest {
				t.Fatalf("status %d, want 400: %s", r.status, r.body)
			}
			if got := field(t, r.body, "error_msg"); got != tc.want {
				t.Fatalf("error_msg = %q\nwant %q", got, tc.want)
			}
		})
	}
	// Nothing was written by any of them.
	e.expect("GET", "/apisix/admin/routes", "", http.StatusOK, `{"list":[],"total":0}`)
}

// TestListingValidation checks step 2: the whole prospective listing goes
// through runtime.ValidateListing, which catches what one resource alone
// cannot show.
func TestListingValidation(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.call("PUT", "/apisix/admin/routes/r1", `{"uri":"/a","vars":[["arg_x","~~","("]],"upstream":`+upstreamBody+`}`)
	if r.status != http.StatusBadRequest {
		t.Fatalf("status %d, want 400: %s", r.status, r.body)
	}
	msg, _ := field(t, r.body, "error_msg").(string)
	if !regexp.MustCompile(`^invalid configuration: .*routes\[id=r1\]`).MatchString(msg) {
		t.Fatalf("error_msg %q does not name the route by id", msg)
	}
}

func TestSchemaValidate(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.expect("POST", "/apisix/admin/schema/validate/routes", routeBody, http.StatusOK, "")
	if r.body != "" {
		t.Errorf("success body = %q, want empty", r.body)
	}
	e.expect("POST", "/apisix/admin/schema/validate/routes", `{"uri":"a","upstream":`+upstreamBody+`}`,
		http.StatusBadRequest, `{"error_msg":"invalid configuration: uri: must start with \"/\""}`)
	// References are not checked, as in APISIX.
	e.expect("POST", "/apisix/admin/schema/validate/routes", `{"uri":"/a","upstream_id":"nope"}`, http.StatusOK, "")
	e.expect("POST", "/apisix/admin/schema/validate/widgets", `{}`, http.StatusNotFound,
		`{"error_msg":"Unsupported resource type: widgets"}`)
	e.expect("GET", "/apisix/admin/routes", "", http.StatusOK, `{"list":[],"total":0}`)
}

func TestReadOnlyStore(t *testing.T) {
	t.Parallel()
	// A store that is not a store.Writer, like the file store.
	e := newEnv(t, withStore(func(s *store.Embedded) store.Store { return struct{ store.Store }{s} }))
	if _, err := e.st.Put(t.Context(), store.Routes, "1", []byte(routeBody), store.AnyRevision); err != nil {
		t.Fatal(err)
	}
	want := `{"error_msg":"` + readOnlyMsg + `"}`
	e.expect("PUT", "/apisix/admin/routes/1", routeBody, http.StatusBadRequest, want)
	e.expect("POST", "/apisix/admin/routes", routeBody, http.StatusBadRequest, want)
	e.expect("PATCH", "/apisix/admin/routes/1", `{"uri":"/b"}`, http.StatusBadRequest, want)
	e.expect("DELETE", "/apisix/admin/routes/1", "", http.StatusBadRequest, want)
	r := e.call("POST", "/upstream/u1", "server 127.0.0.1:80;")
	if r.status != http.StatusBadRequest || r.body != readOnlyMsg {
		t.Errorf("dyups POST on a read-only store: %d %q", r.status, r.body)
	}
	e.expect("GET", "/apisix/admin/routes/1", "", http.StatusOK, "")
	e.expect("GET", "/apisix/admin/routes", "", http.StatusOK, "")
	e.expect("GET", "/apisix/admin/routes/2", "", http.StatusNotFound, `{"message":"Key not found"}`)
}
