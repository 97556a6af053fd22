package config

import (
	"errors"
	"strings"
	"testing"
)

// fieldErrs extracts FieldErrors from err as "path: msg" strings.
func fieldErrs(t *testing.T, err error) []string {
	t.Helper()
	if err == nil {
		return nil
	}
	var fes FieldErrors
	if !errors.As(err, &fes) {
		t.Fatalf("error %q is not FieldErrors", err)
	}
	out := make([]string, len(fes))
	for i, fe := range fes {
		out[i] = fe.Path + ": " + fe.Msg
	}
	return out
}

func assertErrs(t *testing.T, err error, want []string) {
	t.Helper()
	got := fieldErrs(t, err)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("errors:\n got: %q\nwant: %q", got, want)
	}
}

func TestRouteValidate(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("a", 257)
	tests := []struct {
		desc string
		json string
		want []string
	}{
		{desc: "minimal with upstream_id", json: `{"uri":"/a","upstream_id":"1"}`},
		{desc: "plugins only is allowed", json: `{"uri":"/a","plugins":{}}`},
		{desc: "service_id only", json: `{"uris":["/a","/b"],"service_id":"s1"}`},
		{desc: "script only", json: `{"uri":"/a","script":"local a = 1"}`},
		{desc: "integer ids", json: `{"id":7,"uri":"/a","upstream_id":1,"service_id":2}`},
		{desc: "wildcard host", json: `{"uri":"/a","host":"*.example.com","upstream_id":"1"}`},
		{desc: "catch-all host", json: `{"uri":"/a","hosts":["*","a.b"],"upstream_id":"1"}`},
		{desc: "remote addrs", json: `{"uri":"/a","remote_addrs":["10.0.0.1","10.0.0.0/8","::1","2001:db8::/32"],"upstream_id":"1"}`},
		{desc: "all methods", json: `{"uri":"/a","methods":["GET","POST","PUT","DELETE","PATCH","HEAD","OPTIONS","CONNECT","TRACE","PURGE"],"upstream_id":"1"}`},
		{desc: "vars array", json: `{"uri":"/a","vars":[["arg_a","==","1"]],"upstream_id":"1"}`},
		{desc: "status 0", json: `{"uri":"/a","status":0,"upstream_id":"1"}`},
		{
			desc: "no uri", json: `{"upstream_id":"1"}`,
			want: []string{"route.uri: is required (or set uris)"},
		},
		{
			desc: "uri and uris", json: `{"uri":"/a","uris":["/b"],"upstream_id":"1"}`,
			want: []string{"route.uris: must not be set together with uri"},
		},
		{
			desc: "uri without slash", json: `{"uri":"a","upstream_id":"1"}`,
			want: []string{`route.uri: must start with "/"`},
		},
		{
			desc: "uri too long", json: `{"uri":"/` + strings.Repeat("a", 4096) + `","upstream_id":"1"}`,
			want: []string{"route.uri: must be at most 4096 characters"},
		},
		{
			desc: "empty uris", json: `{"uris":[],"upstream_id":"1"}`,
			want: []string{"route.uris: must have at least 1 item"},
		},
		{
			desc: "duplicate uris", json: `{"uris":["/a","/a"],"upstream_id":"1"}`,
			want: []string{`route.uris[1]: duplicate value "/a"`},
		},
		{
			desc: "nothing to run", json: `{"uri":"/a"}`,
			want: []string{"route: must set at least one of upstream, upstream_id, service_id, plugins or script"},
		},
		{
			desc: "plugin_config_id alone is not enough", json: `{"uri":"/a","plugin_config_id":"p"}`,
			want: []string{"route: must set at least one of upstream, upstream_id, service_id, plugins or script"},
		},
		{
			desc: "script with plugins", json: `{"uri":"/a","script":"local a = 1","plugins":{}}`,
			want: []string{"route.script: must not be set together with plugins or plugin_config_id"},
		},
		{
			desc: "script too short", json: `{"uri":"/a","script":"x"}`,
			want: []string{"route.script: must be between 10 and 102400 characters"},
		},
		{
			desc: "bad method", json: `{"uri":"/a","methods":["GET","get","GET"],"upstream_id":"1"}`,
			want: []string{
				"route.methods[1]: must be one of GET, POST, PUT, DELETE, PATCH, HEAD, OPTIONS, CONNECT, TRACE, PURGE",
				`route.methods[2]: duplicate value "GET"`,
			},
		},
		{
			desc: "host and hosts", json: `{"uri":"/a","host":"a.com","hosts":["b.com"],"upstream_id":"1"}`,
			want: []string{"route.hosts: must not be set together with host"},
		},
		{
			desc: "bad host", json: `{"uri":"/a","host":"a b","hosts":null,"upstream_id":"1"}`,
			want: []string{`route.host: must be a host name or address, optionally starting with "*" (e.g. "*.example.com")`},
		},
		{
			desc: "bad wildcard in hosts", json: `{"uri":"/a","hosts":["a.*.com"],"upstream_id":"1"}`,
			want: []string{`route.hosts[0]: must be a host name or address, optionally starting with "*" (e.g. "*.example.com")`},
		},
		{
			desc: "empty hosts", json: `{"uri":"/a","hosts":[],"upstream_id":"1"}`,
			want: []string{"route.hosts: must have at least 1 item"},
		},
		{
			desc: "remote_addr and remote_addrs", json: `{"uri":"/a","remote_addr":"1.2.3.4","remote_addrs":["1.2.3.5"],"upstream_id":"1"}`,
			want: []string{"route.remote_addrs: must not be set together with remote_addr"},
		},
		{
			desc: "bad remote addrs", json: `{"uri":"/a","remote_addrs":["1.2.3.4/33","256.1.1.1","fe80::1%eth0","x"],"upstream_id":"1"}`,
			want: []string{
				"route.remote_addrs[0]: must be an IPv4 or IPv6 address or CIDR",
				"route.remote_addrs[1]: must be an IPv4 or IPv6 address or CIDR",
				"route.remote_addrs[2]: must be an IPv4 or IPv6 address or CIDR",
				"route.remote_addrs[3]: must be an IPv4 or IPv6 address or CIDR",
			},
		},
		{
			desc: "vars not an array", json: `{"uri":"/a","vars":{"a":1},"upstream_id":"1"}`,
			want: []string{"route.vars: must be an array"},
		},
		{
			desc: "filter_func", json: `{"uri":"/a","filter_func":"return true","upstream_id":"1"}`,
			want: []string{`route.filter_func: must be a Lua function of at least 10 characters starting with "function"`},
		},
		{
			desc: "timeout", json: `{"uri":"/a","timeout":{"connect":0,"send":-1},"upstream_id":"1"}`,
			want: []string{
				"route.timeout.connect: must be greater than 0",
				"route.timeout.send: must be greater than 0",
				"route.timeout.read: must be greater than 0",
			},
		},
		{
			desc: "status", json: `{"uri":"/a","status":2,"upstream_id":"1"}`,
			want: []string{"route.status: must be one of 0, 1"},
		},
		{
			desc: "id pattern", json: `{"id":"a/b","uri":"/a","upstream_id":"u 1"}`,
			want: []string{
				"route.id: must be 1-64 characters of a-z, A-Z, 0-9, '-', '_' and '.'",
				"route.upstream_id: must be 1-64 characters of a-z, A-Z, 0-9, '-', '_' and '.'",
			},
		},
		{
			desc: "id too long", json: `{"id":"` + strings.Repeat("a", 65) + `","uri":"/a","upstream_id":"1"}`,
			want: []string{"route.id: must be 1-64 characters of a-z, A-Z, 0-9, '-', '_' and '.'"},
		},
		{
			desc: "name and desc length", json: `{"name":"` + long + `","desc":"` + long + `","uri":"/a","upstream_id":"1"}`,
			want: []string{"route.name: must be at most 256 characters", "route.desc: must be at most 256 characters"},
		},
		{
			desc: "labels", json: `{"labels":{"env":"prod","bad":"a b","empty":"","k.x":"` + long + `"},"uri":"/a","upstream_id":"1"}`,
			want: []string{
				"route.labels.bad: must be 1-256 characters without whitespace",
				"route.labels.empty: must be 1-256 characters without whitespace",
				`route.labels["k.x"]: must be 1-256 characters without whitespace`,
			},
		},
		{
			desc: "inline upstream errors carry the route path", json: `{"uri":"/a","upstream":{"type":"x","nodes":[{"host":"h","port":0,"weight":1},{"host":"h","port":70000,"weight":1}]}}`,
			want: []string{
				"route.upstream.nodes[1].port: must be between 1 and 65535",
				"route.upstream.type: must be one of roundrobin, chash, least_conn, ewma",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			r, err := DecodeRoute([]byte(tt.json), FormatJSON)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			assertErrs(t, r.Validate(), tt.want)
		})
	}
}

func TestUpstreamValidate(t *testing.T) {
	t.Parallel()
	cert := strings.Repeat("c", 128)
	key := strings.Repeat("k", 64)
	tests := []struct {
		desc string
		json string
		want []string
	}{
		{desc: "map nodes", json: `{"nodes":{"127.0.0.1:80":1}}`},
		{desc: "empty nodes are allowed", json: `{"nodes":[]}`},
		{desc: "empty map nodes are allowed", json: `{"nodes":{}}`},
		{desc: "discovery", json: `{"service_name":"svc","discovery_type":"dns"}`},
		{desc: "chash on vars", json: `{"type":"chash","key":"remote_addr","nodes":[]}`},
		{desc: "chash on arg", json: `{"type":"chash","key":"arg_user-id","nodes":[]}`},
		{desc: "chash on header", json: `{"type":"chash","hash_on":"header","key":"X-User","nodes":[]}`},
		{desc: "chash on consumer needs no key", json: `{"type":"chash","hash_on":"consumer","nodes":[]}`},
		{desc: "chash on vars_combinations", json: `{"type":"chash","hash_on":"vars_combinations","key":"$host$uri","nodes":[]}`},
		{desc: "least_conn and ewma", json: `{"type":"least_conn","nodes":[]}`},
		{desc: "rewrite with host", json: `{"pass_host":"rewrite","upstream_host":"api.example.com","nodes":[]}`},
		{desc: "tls pair", json: `{"scheme":"https","tls":{"client_cert":"` + cert + `","client_key":"` + key + `"},"nodes":[]}`},
		{desc: "checks", json: `{"checks":{"active":{"http_path":"/h"},"passive":{}},"nodes":[]}`},
		{desc: "retries zero", json: `{"retries":0,"retry_timeout":0,"nodes":[]}`},
		{desc: "idle_timeout zero is explicit and valid", json: `{"keepalive_pool":{"idle_timeout":0},"nodes":[]}`},
		{
			desc: "no nodes", json: `{}`,
			want: []string{"upstream.nodes: is required (or set service_name and discovery_type)"},
		},
		{
			desc: "service_name without discovery_type", json: `{"service_name":"svc"}`,
			want: []string{"upstream.nodes: is required (or set service_name and discovery_type)"},
		},
		{
			desc: "nodes and discovery", json: `{"nodes":[],"service_name":"svc","discovery_type":"dns"}`,
			want: []string{"upstream.nodes: must not be set together with service_name and discovery_type"},
		},
		{
			desc: "bad type", json: `{"type":"random","nodes":[]}`,
			want: []string{"upstream.type: must be one of roundrobin, chash, least_conn, ewma"},
		},
		{
			desc: "chash without key", json: `{"type":"chash","nodes":[]}`,
			want: []string{"upstream.key: is required when type is chash"},
		},
		{
			desc: "chash bad var key", json: `{"type":"chash","key":"cookie_x","nodes":[]}`,
			want: []string{"upstream.key: must be one of uri, server_name, server_addr, request_uri, remote_port, remote_addr, query_string, host, hostname, mqtt_client_id or arg_<name>"},
		},
		{
			desc: "chash bad header key", json: `{"type":"chash","hash_on":"cookie","key":"a b","nodes":[]}`,
			want: []string{"upstream.key: must contain only a-z, A-Z, 0-9, '-' and '_'"},
		},
		{
			desc: "bad hash_on", json: `{"hash_on":"body","nodes":[]}`,
			want: []string{"upstream.hash_on: must be one of vars, header, cookie, consumer, vars_combinations"},
		},
		{
			desc: "bad scheme", json: `{"scheme":"tcp","nodes":[]}`,
			want: []string{"upstream.scheme: must be one of http, https, grpc, grpcs"},
		},
		{
			desc: "bad pass_host", json: `{"pass_host":"keep","nodes":[]}`,
			want: []string{"upstream.pass_host: must be one of pass, node, rewrite"},
		},
		{
			desc: "rewrite without host", json: `{"pass_host":"rewrite","nodes":[]}`,
			want: []string{"upstream.upstream_host: is required when pass_host is rewrite"},
		},
		{
			desc: "bad upstream_host", json: `{"upstream_host":"a/b","nodes":[]}`,
			want: []string{`upstream.upstream_host: must be a host name or address, optionally starting with "*" (e.g. "*.example.com")`},
		},
		{
			desc: "negative retries", json: `{"retries":-1,"retry_timeout":-0.5,"nodes":[]}`,
			want: []string{"upstream.retries: must be >= 0", "upstream.retry_timeout: must be >= 0"},
		},
		{
			desc: "timeout", json: `{"timeout":{"connect":1,"send":1,"read":0},"nodes":[]}`,
			want: []string{"upstream.timeout.read: must be greater than 0"},
		},
		{
			desc: "keepalive explicit zeros", json: `{"keepalive_pool":{"size":0,"requests":0,"idle_timeout":-1},"nodes":[]}`,
			want: []string{
				"upstream.keepalive_pool.size: must be >= 1",
				"upstream.keepalive_pool.idle_timeout: must be >= 0",
				"upstream.keepalive_pool.requests: must be >= 1",
			},
		},
		{
			desc: "tls cert without key", json: `{"tls":{"client_cert":"` + cert + `"},"nodes":[]}`,
			want: []string{"upstream.tls.client_key: is required when client_cert is set"},
		},
		{
			desc: "tls key without cert and too short", json: `{"tls":{"client_key":"k"},"nodes":[]}`,
			want: []string{"upstream.tls.client_cert: is required when client_key is set", "upstream.tls.client_key: must be between 64 and 65536 characters"},
		},
		{
			desc: "tls cert id with pair", json: `{"tls":{"client_cert_id":"1","client_cert":"` + cert + `","client_key":"` + key + `"},"nodes":[]}`,
			want: []string{"upstream.tls.client_cert_id: must not be set together with client_cert and client_key"},
		},
		{
			// Unknown keys inside checks are decode errors now (checks_test.go).
			desc: "checks without active", json: `{"checks":{"passive":{}},"nodes":[]}`,
			want: []string{"upstream.checks.active: is required"},
		},
		{
			desc: "bad nodes", json: `{"nodes":[{"host":"","weight":-1},{"host":"a b","port":65536,"weight":1}]}`,
			want: []string{
				"upstream.nodes[0].host: must not be empty",
				"upstream.nodes[0].weight: must be >= 0",
				"upstream.nodes[1].host: must be a host name or IP address",
				"upstream.nodes[1].port: must be between 1 and 65535",
			},
		},
		{
			desc: "map nodes negative weight", json: `{"nodes":{"b:80":1,"a:80":-1}}`,
			want: []string{"upstream.nodes[0].weight: must be >= 0"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			u, err := DecodeUpstream([]byte(tt.json), FormatJSON)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			assertErrs(t, u.Validate(), tt.want)
		})
	}
}

func TestServiceValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc string
		json string
		want []string
	}{
		{desc: "empty service is valid", json: `{}`},
		{desc: "full", json: `{"id":"s","name":"n","upstream_id":"u","plugins":{"a":{}},"hosts":["a.com"],"enable_websocket":true}`},
		{
			desc: "bad hosts and upstream", json: `{"hosts":["a.com","a.com"],"upstream":{"nodes":[],"type":"x"},"script":"short"}`,
			want: []string{
				"service.script: must be between 10 and 102400 characters",
				`service.hosts[1]: duplicate value "a.com"`,
				"service.upstream.type: must be one of roundrobin, chash, least_conn, ewma",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			s, err := DecodeService([]byte(tt.json), FormatJSON)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			assertErrs(t, s.Validate(), tt.want)
		})
	}
}
