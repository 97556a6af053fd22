package admin

import (
	"net/http"
	"testing"
)

func TestAuth(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.expect("PUT", "/apisix/admin/routes/1", routeBody, http.StatusCreated, "")
	tests := []struct {
		desc, method, path string
		hdr                []string
		status             int
		why                string // description of a 401
	}{
		{desc: "no key", method: "GET", path: "/apisix/admin/routes", hdr: []string{"X-API-KEY", ""},
			status: 401, why: "missing apikey"},
		{desc: "wrong key", method: "GET", path: "/apisix/admin/routes", hdr: []string{"X-API-KEY", "nope"},
			status: 401, why: "wrong apikey"},
		{desc: "key prefix is wrong", method: "GET", path: "/apisix/admin/routes", hdr: []string{"X-API-KEY", testAdminKey[:10]},
			status: 401, why: "wrong apikey"},
		{desc: "header key", method: "GET", path: "/apisix/admin/routes", status: 200},
		{desc: "query key", method: "GET", path: "/apisix/admin/routes?api_key=" + testAdminKey,
			hdr: []string{"X-API-KEY", ""}, status: 200},
		{desc: "query key wins over header", method: "GET", path: "/apisix/admin/routes?api_key=nope",
			status: 401, why: "wrong apikey"},
		{desc: "viewer reads", method: "GET", path: "/apisix/admin/routes/1", hdr: []string{"X-API-KEY", testViewerKey}, status: 200},
		{desc: "viewer cannot write", method: "PUT", path: "/apisix/admin/routes/2", hdr: []string{"X-API-KEY", testViewerKey},
			status: 401, why: "invalid method for role viewer"},
		{desc: "viewer cannot delete", method: "DELETE", path: "/apisix/admin/routes/1", hdr: []string{"X-API-KEY", testViewerKey},
			status: 401, why: "invalid method for role viewer"},
		{desc: "viewer cannot validate", method: "POST", path: "/apisix/admin/schema/validate/routes",
			hdr: []string{"X-API-KEY", testViewerKey}, status: 401, why: "invalid method for role viewer"},
		{desc: "dyups needs a key", method: "GET", path: "/list", hdr: []string{"X-API-KEY", ""}, status: 401, why: "missing apikey"},
		{desc: "dyups viewer cannot write", method: "POST", path: "/upstream/x", hdr: []string{"X-API-KEY", testViewerKey},
			status: 401, why: "invalid method for role viewer"},
		{desc: "HEAD probe needs no key", method: "HEAD", path: "/apisix/admin", hdr: []string{"X-API-KEY", ""}, status: 200},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			r := e.call(tc.method, tc.path, routeBody, tc.hdr...)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			if r.header.Get("X-API-VERSION") != "v3" {
				t.Errorf("X-API-VERSION = %q", r.header.Get("X-API-VERSION"))
			}
			if tc.why != "" {
				jsonEqual(t, r.body, `{"error_msg":"failed to check token","description":"`+tc.why+`"}`)
			}
		})
	}
	// The route was neither replaced nor deleted by the refused writes.
	e.expect("GET", "/apisix/admin/routes/2", "", http.StatusNotFound, "")
	e.expect("GET", "/apisix/admin/routes/1", "", http.StatusOK, "")
}

func TestAuthCookie(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.call("GET", "/apisix/admin/routes", "", "X-API-KEY", "", "Cookie", "X-API-KEY="+testAdminKey)
	if r.status != http.StatusOK {
		t.Fatalf("cookie key: status %d: %s", r.status, r.body)
	}
}

func TestNoKeysRefusesEverything(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withKeys())
	for _, p := range []string{"/apisix/admin/routes", "/list"} {
		r := e.call("GET", p, "", "X-API-KEY", "")
		if r.status != http.StatusUnauthorized {
			t.Errorf("GET %s without key: %d", p, r.status)
		}
		r = e.call("GET", p, "")
		if r.status != http.StatusUnauthorized {
			t.Errorf("GET %s with an unconfigured key: %d", p, r.status)
		}
	}
}
