package admin

import (
	"net/http"
	"testing"
)

func TestDeleteReferenced(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc   string
		setup  [][2]string // PUT path, body
		delete string
		want   string
	}{
		{desc: "upstream used by a route",
			setup:  [][2]string{{"/upstreams/u1", upstreamBody}, {"/routes/1", `{"uri":"/a","upstream_id":"u1"}`}},
			delete: "/upstreams/u1", want: "can not delete this upstream, route [1] is still using it now"},
		{desc: "upstream used by a service",
			setup:  [][2]string{{"/upstreams/u1", upstreamBody}, {"/services/s1", `{"upstream_id":"u1"}`}},
			delete: "/upstreams/u1", want: "can not delete this upstream, service [s1] is still using it now"},
		{desc: "upstream used by traffic-split in a plugin config",
			setup: [][2]string{{"/upstreams/u1", upstreamBody}, {"/plugin_configs/pc", `{"plugins":{"traffic-split":` +
				`{"rules":[{"weighted_upstreams":[{"upstream_id":"u1","weight":1}]}]}}}`}},
			delete: "/upstreams/u1", want: "can not delete this upstream, plugin in plugin_config [pc] is still using it now"},
		{desc: "service used by a route",
			setup:  [][2]string{{"/services/s1", `{"upstream":` + upstreamBody + `}`}, {"/routes/r1", `{"uri":"/a","service_id":"s1"}`}},
			delete: "/services/s1", want: "can not delete this service directly, route [r1] is still using it now"},
		{desc: "plugin config used by a route",
			setup: [][2]string{{"/plugin_configs/pc", `{"plugins":{"cors":{}}}`},
				{"/routes/r1", `{"uri":"/a","plugin_config_id":"pc","upstream":` + upstreamBody + `}`}},
			delete: "/plugin_configs/pc", want: "can not delete this plugin config, route [r1] is still using it now"},
		{desc: "consumer group used by a consumer",
			setup:  [][2]string{{"/consumer_groups/g", `{"plugins":{"cors":{}}}`}, {"/consumers", `{"username":"jack","group_id":"g"}`}},
			delete: "/consumer_groups/g", want: "can not delete this consumer group, consumer [jack] is still using it now"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			for _, s := range tc.setup {
				e.expect("PUT", "/apisix/admin"+s[0], s[1], http.StatusCreated, "")
			}
			e.expect("DELETE", "/apisix/admin"+tc.delete, "", http.StatusBadRequest, `{"error_msg":`+jsonString(tc.want)+`}`)
			e.expect("GET", "/apisix/admin"+tc.delete, "", http.StatusOK, "")
			e.expect("DELETE", "/apisix/admin"+tc.delete+"?force=false", "", http.StatusBadRequest, "")
			e.expect("DELETE", "/apisix/admin"+tc.delete+"?force=true", "", http.StatusOK, "")
			e.expect("GET", "/apisix/admin"+tc.delete, "", http.StatusNotFound, "")
		})
	}
}

// TestDeleteUnreferenced: once the user is gone, the delete goes through.
func TestDeleteUnreferenced(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.expect("PUT", "/apisix/admin/upstreams/u1", upstreamBody, http.StatusCreated, "")
	e.expect("PUT", "/apisix/admin/routes/1", `{"uri":"/a","upstream_id":"u1"}`, http.StatusCreated, "")
	e.expect("DELETE", "/apisix/admin/upstreams/u1", "", http.StatusBadRequest, "")
	e.expect("PATCH", "/apisix/admin/routes/1", `{"upstream_id":null,"upstream":`+upstreamBody+`}`, http.StatusOK, "")
	e.expect("DELETE", "/apisix/admin/upstreams/u1", "", http.StatusOK, `{"deleted":"1","key":"/apisix/upstreams/u1"}`)
	e.expect("DELETE", "/apisix/admin/routes", "", http.StatusBadRequest, `{"error_msg":"missing route id"}`)
}
