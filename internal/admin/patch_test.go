package admin

import (
	"fmt"
	"net/http"
	"testing"
)

func TestPatchMerge(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.expect("PUT", "/apisix/admin/routes/1",
		`{"uri":"/a","name":"n","methods":["GET","POST"],"labels":{"a":"1","b":"2"},"upstream":`+upstreamBody+`}`,
		http.StatusCreated, "")
	e.clock.Add(5)
	// Objects merge, null removes, arrays replace.
	e.expect("PATCH", "/apisix/admin/routes/1",
		`{"labels":{"b":null,"c":"3"},"name":null,"methods":["PUT"],"upstream":{"type":"chash","key":"remote_addr"}}`,
		http.StatusOK, fmt.Sprintf(`{"key":"/apisix/routes/1","value":{"id":"1","uri":"/a","methods":["PUT"],"labels":{"a":"1","c":"3"},`+
			`"upstream":{"type":"chash","key":"remote_addr","nodes":{"127.0.0.1:8080":1}},"create_time":%d,"update_time":%d}}`, t0, t0+5))

	// The stored value is what the answer showed.
	r := e.expect("GET", "/apisix/admin/routes/1", "", http.StatusOK, "")
	if got := field(t, r.body, "value.upstream.type"); got != "chash" {
		t.Errorf("stored upstream.type = %v", got)
	}
	// An update_time in the body is kept, as in APISIX.
	e.expect("PATCH", "/apisix/admin/routes/1", `{"update_time":42}`, http.StatusOK, "")
	if got := field(t, e.call("GET", "/apisix/admin/routes/1", "").body, "value.update_time"); got != 42.0 {
		t.Errorf("update_time = %v, want 42", got)
	}
}

func TestPatchSubPath(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.expect("PUT", "/apisix/admin/routes/1", `{"uri":"/a","methods":["GET"],"upstream":`+upstreamBody+`}`, http.StatusCreated, "")
	e.clock.Add(7)
	e.expect("PATCH", "/apisix/admin/routes/1/upstream/nodes", `[{"host":"127.0.0.2","port":81,"weight":3}]`,
		http.StatusOK, fmt.Sprintf(`{"key":"/apisix/routes/1","value":{"id":"1","uri":"/a","methods":["GET"],`+
			`"upstream":{"type":"roundrobin","nodes":[{"host":"127.0.0.2","port":81,"weight":3}]},"create_time":%d,"update_time":%d}}`, t0, t0+7))
	e.expect("PATCH", "/apisix/admin/routes/1/methods", `["POST","PUT"]`, http.StatusOK, "")
	e.expect("PATCH", "/apisix/admin/routes/1/desc", `"a description"`, http.StatusOK, "")
	// Missing objects along the path are created.
	e.expect("PATCH", "/apisix/admin/routes/1/labels/env", `"prod"`, http.StatusOK, "")
	r := e.expect("GET", "/apisix/admin/routes/1", "", http.StatusOK, "")
	jsonEqual(t, mustJSON(t, field(t, r.body, "value")), fmt.Sprintf(`{"id":"1","uri":"/a","methods":["POST","PUT"],"desc":"a description",`+
		`"labels":{"env":"prod"},"upstream":{"type":"roundrobin","nodes":[{"host":"127.0.0.2","port":81,"weight":3}]},"create_time":%d,"update_time":%d}`, t0, t0+7))

	// A scalar along the path is APISIX's invalid sub-path.
	e.expect("PATCH", "/apisix/admin/routes/1/uri/x", `"y"`, http.StatusBadRequest, `{"error_msg":"invalid sub-path: /uri"}`)
	// The patched result is validated; nothing is stored when it fails.
	e.expect("PATCH", "/apisix/admin/routes/1/uri", `"no-slash"`, http.StatusBadRequest,
		`{"error_msg":"invalid configuration: uri: must start with \"/\""}`)
	e.expect("PATCH", "/apisix/admin/routes/1/upstream/nodes/0", `{"host":"h"}`, http.StatusBadRequest, "")
	if got := field(t, e.call("GET", "/apisix/admin/routes/1", "").body, "value.uri"); got != "/a" {
		t.Errorf("uri after refused patches = %v", got)
	}
}

func TestPatchErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.expect("PATCH", "/apisix/admin/routes/9", `{"uri":"/b"}`, http.StatusNotFound, `{"message":"Key not found"}`)
	e.expect("PUT", "/apisix/admin/routes/1", routeBody, http.StatusCreated, "")
	e.expect("PATCH", "/apisix/admin/routes/1", `{"id":"2"}`, http.StatusBadRequest, `{"error_msg":"wrong route id"}`)
	e.expect("PATCH", "/apisix/admin/routes/1", ``, http.StatusBadRequest, `{"error_msg":"missing new configuration"}`)
	e.expect("PATCH", "/apisix/admin/routes/1", `[1]`, http.StatusBadRequest, `{"error_msg":"invalid configuration"}`)
	e.expect("PATCH", "/apisix/admin/routes", `{"uri":"/b"}`, http.StatusBadRequest, `{"error_msg":"missing route id"}`)
	e.expect("PATCH", "/apisix/admin/routes/1", `{"upstream_id":"nope","upstream":null}`, http.StatusBadRequest,
		`{"error_msg":"failed to fetch upstream info by upstream id [nope], response code: 404"}`)
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	return string(encodeJSON(v))
}
