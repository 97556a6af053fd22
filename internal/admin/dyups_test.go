package admin

import (
	"fmt"
	"net/http"
	"testing"
)

func (e *env) dyups(method, path, body string, status int, want string) {
	e.t.Helper()
	r := e.call(method, path, body)
	if r.status != status || r.body != want {
		e.t.Fatalf("%s %s: %d %q, want %d %q", method, path, r.status, r.body, status, want)
	}
}

func TestDyups(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.dyups("GET", "/list", "", http.StatusNoContent, "")
	e.dyups("GET", "/upstream/web", "", http.StatusNotFound, "")

	// Create: several servers per line, blank lines, trailing whitespace.
	e.dyups("POST", "/upstream/web", "server 127.0.0.1:8088 weight=3; server 127.0.0.1:8089;  \n\n"+
		"server [::1]:8090 backup;\nserver example.com;\t\n", http.StatusOK, "success")
	e.expect("GET", "/apisix/admin/upstreams/web", "", http.StatusOK, "")
	jsonEqual(t, string(e.item("upstreams", "web").Value), fmt.Sprintf(`{"id":"web","type":"roundrobin","nodes":[`+
		`{"host":"127.0.0.1","port":8088,"weight":3},{"host":"127.0.0.1","port":8089,"weight":1},`+
		`{"host":"::1","port":8090,"weight":1,"priority":-1},{"host":"example.com","port":80,"weight":1}],`+
		`"create_time":%d,"update_time":%d}`, t0, t0))
	e.dyups("GET", "/upstream/web", "", http.StatusOK,
		"server 127.0.0.1:8088\nserver 127.0.0.1:8089\nserver [::1]:8090\nserver example.com:80\n")

	// Replace: other fields of an existing upstream are kept.
	e.expect("PATCH", "/apisix/admin/upstreams/web", `{"name":"web servers","scheme":"http"}`, http.StatusOK, "")
	e.clock.Add(3)
	e.dyups("POST", "/upstream/web", "server 10.0.0.1:80 weight=2;", http.StatusOK, "success")
	jsonEqual(t, string(e.item("upstreams", "web").Value), fmt.Sprintf(`{"id":"web","type":"roundrobin","name":"web servers",`+
		`"scheme":"http","nodes":[{"host":"10.0.0.1","port":80,"weight":2}],"create_time":%d,"update_time":%d}`, t0, t0+3))

	e.dyups("POST", "/upstream/api", "server 10.0.0.2:81;", http.StatusOK, "success")
	e.dyups("GET", "/list", "", http.StatusOK, "api\nweb\n")
	e.dyups("GET", "/detail", "", http.StatusOK, "api\nserver 10.0.0.2:81 weight=1\n\nweb\nserver 10.0.0.1:80 weight=2\n\n")

	// Delete: refused while a route uses it, unless forced.
	e.expect("PUT", "/apisix/admin/routes/1", `{"uri":"/a","upstream_id":"api"}`, http.StatusCreated, "")
	e.dyups("DELETE", "/upstream/api", "", http.StatusBadRequest, "can not delete this upstream, route [1] is still using it now")
	e.dyups("DELETE", "/upstream/web", "", http.StatusOK, "success")
	e.dyups("DELETE", "/upstream/web", "", http.StatusNotFound, "not found upstream")
	e.dyups("DELETE", "/upstream/api?force=true", "", http.StatusOK, "success")
	e.dyups("GET", "/list", "", http.StatusNoContent, "")
}

func TestDyupsMalformed(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.dyups("POST", "/upstream/web", "server 127.0.0.1:8088;", http.StatusOK, "success")
	before := e.item("upstreams", "web")
	tests := []struct{ desc, body, want string }{
		{"bad port", "server 127.0.0.1:1;\n\nserver 127.0.0.1:99999;\n",
			`line 3: "server 127.0.0.1:99999;": invalid port in "127.0.0.1:99999": must be 1-65535`},
		{"missing semicolon", "server 127.0.0.1:1;\nserver 127.0.0.1:2\n",
			`line 2: "server 127.0.0.1:2": missing ';' after "server 127.0.0.1:2"`},
		{"unknown directive", "keepalive 16;", `line 1: "keepalive 16;": unknown directive "keepalive" (only "server" is supported)`},
		{"unsupported parameter", "server 127.0.0.1:1 max_fails=3;",
			`line 1: "server 127.0.0.1:1 max_fails=3;": unsupported parameter "max_fails=3" (supported: weight=N, backup, down)`},
		{"bad weight", "server a:1; server b:2 weight=x;",
			`line 1: "server a:1; server b:2 weight=x;": invalid weight "x": must be a positive integer`},
		{"no address", "server ;", `line 1: "server ;": server: missing address`},
		{"empty body", "\n \n", `no server in body: expected lines like "server 127.0.0.1:8080 weight=1;"`},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			e.dyups("POST", "/upstream/web", tc.body, http.StatusBadRequest, tc.want)
		})
	}
	// An invalid upstream name is refused by validation, and nothing is created.
	r := e.call("POST", "/upstream/bad%20name", "server 127.0.0.1:1;")
	if r.status != http.StatusBadRequest {
		t.Errorf("bad name: %d %q", r.status, r.body)
	}
	if after := e.item("upstreams", "web"); after.ModRev != before.ModRev {
		t.Fatalf("a refused POST changed the upstream: %s", after.Value)
	}
	e.dyups("GET", "/list", "", http.StatusOK, "web\n")
	e.dyups("PUT", "/upstream/web", "server 127.0.0.1:1;", http.StatusMethodNotAllowed, "method not allowed")
}
