package config

import (
	"encoding/json"
	"reflect"
	"testing"
)

// TestChecksDefaults checks that a minimal checks object decodes to APISIX's
// schema defaults, nested objects included.
func TestChecksDefaults(t *testing.T) {
	t.Parallel()
	u, err := DecodeUpstream([]byte(`{"nodes":[],"checks":{"active":{},"passive":{}}}`), FormatJSON)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if err := u.Validate(); err != nil {
		t.Fatalf("validate: %v", err)
	}
	want := &HealthChecks{
		Active: &ActiveCheck{
			Type: "http", Timeout: 1, Concurrency: 10, HTTPMethod: "GET", HTTPPath: "/",
			HTTPSVerifyCertificate: true,
			Healthy:                ActiveHealthy{Interval: 1, HTTPStatuses: []int{200, 302}, Successes: 2},
			Unhealthy: ActiveUnhealthy{Interval: 1, HTTPStatuses: []int{429, 404, 500, 501, 502, 503, 504, 505},
				HTTPFailures: 5, TCPFailures: 2, Timeouts: 3},
		},
		Passive: &PassiveCheck{
			Type: "http",
			Healthy: PassiveHealthy{Successes: 5, HTTPStatuses: []int{200, 201, 202, 203, 204, 205, 206, 207, 208,
				226, 300, 301, 302, 303, 304, 305, 306, 307, 308}},
			Unhealthy: PassiveUnhealthy{HTTPStatuses: []int{429, 500, 503}, HTTPFailures: 5, TCPFailures: 2, Timeouts: 7},
		},
	}
	if !reflect.DeepEqual(u.Checks, want) {
		got, _ := json.Marshal(u.Checks)
		exp, _ := json.Marshal(want)
		t.Errorf("defaults:\n got %s\nwant %s", got, exp)
	}
}

// TestChecksExplicitValuesKept checks that set values win over defaults and
// that an explicit passive 0 (disabling a count) is not replaced.
func TestChecksExplicitValuesKept(t *testing.T) {
	t.Parallel()
	doc := `{"nodes":[],"checks":{
		"active":{"type":"tcp","timeout":0.5,"concurrency":3,"host":"probe.example","port":8081,
			"http_path":"/status","https_verify_certificate":false,"req_headers":["X-A: 1"],
			"healthy":{"interval":2,"successes":1},"unhealthy":{"tcp_failures":1,"http_statuses":[500]}},
		"passive":{"unhealthy":{"tcp_failures":0,"timeouts":0},"healthy":{"successes":0}}}}`
	u, err := DecodeUpstream([]byte(doc), FormatJSON)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if err := u.Validate(); err != nil {
		t.Fatalf("validate: %v", err)
	}
	a, p := u.Checks.Active, u.Checks.Passive
	if a.Type != "tcp" || a.Timeout != 0.5 || a.Concurrency != 3 || a.Host != "probe.example" || a.Port != 8081 ||
		a.HTTPPath != "/status" || a.HTTPSVerifyCertificate || len(a.ReqHeaders) != 1 {
		t.Errorf("active top level: %+v", a)
	}
	if a.Healthy.Interval != 2 || a.Healthy.Successes != 1 || !reflect.DeepEqual(a.Healthy.HTTPStatuses, []int{200, 302}) {
		t.Errorf("active.healthy: %+v", a.Healthy)
	}
	if a.Unhealthy.TCPFailures != 1 || a.Unhealthy.Timeouts != 3 || !reflect.DeepEqual(a.Unhealthy.HTTPStatuses, []int{500}) {
		t.Errorf("active.unhealthy: %+v", a.Unhealthy)
	}
	if p.Unhealthy.TCPFailures != 0 || p.Unhealthy.Timeouts != 0 || p.Unhealthy.HTTPFailures != 5 || p.Healthy.Successes != 0 {
		t.Errorf("passive: %+v", p)
	}
}

// TestChecksDecodeErrors checks type mismatches and unknown keys anywhere
// in checks, with their paths.
func TestChecksDecodeErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc, json string
		want       []string
	}{
		{"not an object", `{"checks":1}`, []string{"upstream.checks: must be an object"}},
		{"unknown top key", `{"checks":{"active":{},"other":1}}`, []string{"upstream.checks.other: unknown field"}},
		{"unknown nested key", `{"checks":{"active":{"healthy":{"x":1}}}}`, []string{"upstream.checks.active.healthy.x: unknown field"}},
		{"timeout type", `{"checks":{"active":{"timeout":"1s"}}}`, []string{"upstream.checks.active.timeout: must be a number"}},
		{"successes type", `{"checks":{"active":{"healthy":{"successes":1.5}}}}`, []string{"upstream.checks.active.healthy.successes: must be an integer"}},
		{"statuses type", `{"checks":{"passive":{"unhealthy":{"http_statuses":"500"}}}}`, []string{"upstream.checks.passive.unhealthy.http_statuses: must be an array"}},
		{"verify type", `{"checks":{"active":{"https_verify_certificate":"yes"}}}`, []string{"upstream.checks.active.https_verify_certificate: must be a boolean"}},
		{"healthy not object", `{"checks":{"active":{"healthy":[]}}}`, []string{"upstream.checks.active.healthy: must be an object"}},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			_, err := DecodeUpstream([]byte(tt.json), FormatJSON)
			assertErrs(t, err, tt.want)
		})
	}
}

// TestChecksValidate checks every validation rule of checks, with paths.
func TestChecksValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc, checks string
		want         []string
	}{
		{"active required", `{"passive":{}}`, []string{"upstream.checks.active: is required"}},
		{"empty checks", `{}`, []string{"upstream.checks.active: is required"}},
		{"active type", `{"active":{"type":"udp"}}`, []string{"upstream.checks.active.type: must be one of http, https, tcp"}},
		{"passive type", `{"active":{},"passive":{"type":"grpc"}}`, []string{"upstream.checks.passive.type: must be one of http, https, tcp"}},
		{"timeout zero", `{"active":{"timeout":0}}`, []string{"upstream.checks.active.timeout: must be greater than 0"}},
		{"concurrency zero", `{"active":{"concurrency":0}}`, []string{"upstream.checks.active.concurrency: must be >= 1"}},
		{"host", `{"active":{"host":"a b"}}`, []string{`upstream.checks.active.host: must be a host name or address, optionally starting with "*" (e.g. "*.example.com")`}},
		{"port", `{"active":{"port":70000}}`, []string{"upstream.checks.active.port: must be between 1 and 65535"}},
		{"method", `{"active":{"http_method":"FETCH"}}`, []string{"upstream.checks.active.http_method: must be one of " + methodList}},
		{"path relative", `{"active":{"http_path":"status"}}`, []string{`upstream.checks.active.http_path: must start with "/" and contain no spaces or control characters`}},
		{"path injection", `{"active":{"http_path":"/a HTTP/1.1\r\nX: y"}}`, []string{`upstream.checks.active.http_path: must start with "/" and contain no spaces or control characters`}},
		{"headers empty", `{"active":{"req_headers":[]}}`, []string{"upstream.checks.active.req_headers: must have at least 1 item"}},
		{"header line", `{"active":{"req_headers":["X-Ok: 1","no colon","Bad Name: v","X: a\r\nY: b"]}}`, []string{
			`upstream.checks.active.req_headers[1]: must be a header line "Name: value"`,
			`upstream.checks.active.req_headers[2]: must be a header line "Name: value"`,
			`upstream.checks.active.req_headers[3]: must be a header line "Name: value"`,
		}},
		{"intervals", `{"active":{"healthy":{"interval":0},"unhealthy":{"interval":-1}}}`, []string{
			"upstream.checks.active.healthy.interval: must be >= 1",
			"upstream.checks.active.unhealthy.interval: must be >= 1",
		}},
		{"active counters low", `{"active":{"healthy":{"successes":0},"unhealthy":{"http_failures":0,"tcp_failures":0,"timeouts":0}}}`, []string{
			"upstream.checks.active.healthy.successes: must be between 1 and 254",
			"upstream.checks.active.unhealthy.http_failures: must be between 1 and 254",
			"upstream.checks.active.unhealthy.tcp_failures: must be between 1 and 254",
			"upstream.checks.active.unhealthy.timeouts: must be between 1 and 254",
		}},
		{"active counters high", `{"active":{"healthy":{"successes":255}}}`, []string{
			"upstream.checks.active.healthy.successes: must be between 1 and 254",
		}},
		{"passive counters", `{"active":{},"passive":{"healthy":{"successes":-1},"unhealthy":{"http_failures":255,"tcp_failures":-1,"timeouts":300}}}`, []string{
			"upstream.checks.passive.healthy.successes: must be between 0 and 254",
			"upstream.checks.passive.unhealthy.http_failures: must be between 0 and 254",
			"upstream.checks.passive.unhealthy.tcp_failures: must be between 0 and 254",
			"upstream.checks.passive.unhealthy.timeouts: must be between 0 and 254",
		}},
		{"statuses", `{"active":{"healthy":{"http_statuses":[]},"unhealthy":{"http_statuses":[199,500,500,600]}},
			"passive":{"healthy":{"http_statuses":[]},"unhealthy":{"http_statuses":[100]}}}`, []string{
			"upstream.checks.active.healthy.http_statuses: must have at least 1 item",
			"upstream.checks.active.unhealthy.http_statuses[0]: must be between 200 and 599",
			"upstream.checks.active.unhealthy.http_statuses[2]: duplicate value 500",
			"upstream.checks.active.unhealthy.http_statuses[3]: must be between 200 and 599",
			"upstream.checks.passive.healthy.http_statuses: must have at least 1 item",
			"upstream.checks.passive.unhealthy.http_statuses[0]: must be between 200 and 599",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			u, err := DecodeUpstream([]byte(`{"nodes":[],"checks":`+tt.checks+`}`), FormatJSON)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			assertErrs(t, u.Validate(), tt.want)
		})
	}
}

// TestChecksInlineRoutePath checks the path of an inline route upstream and
// that YAML goes through the same defaults.
func TestChecksInlineRoutePath(t *testing.T) {
	t.Parallel()
	r, err := DecodeRoute([]byte("uri: /\nupstream:\n  nodes: []\n  checks:\n    active:\n      healthy:\n        successes: 0\n"), FormatYAML)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	assertErrs(t, r.Validate(), []string{"route.upstream.checks.active.healthy.successes: must be between 1 and 254"})
	if r.Upstream.Checks.Active.Unhealthy.TCPFailures != DefaultActiveTCPFailures {
		t.Errorf("yaml defaults not applied: %+v", r.Upstream.Checks.Active.Unhealthy)
	}
}
