package config

import (
	"encoding/json"
	"strconv"
	"strings"
)

// HealthChecks is an upstream's `checks`: APISIX's health checker schema
// (apisix/schema_def.lua), whose semantics are lua-resty-healthcheck's.
// Active probes run off the request path; passive checks count the outcomes
// of live traffic. APISIX requires active whenever checks is present.
//
// The decoder fills every default below for absent keys, nested objects
// included, so a decoded value is complete. (APISIX fills only keys whose
// parent object is present and leaves the rest to lua-resty-healthcheck,
// whose own defaults disable active probing when `healthy` or `unhealthy`
// is left out; sluice probes with the schema's defaults instead.)
type HealthChecks struct {
	Active  *ActiveCheck  `json:"active,omitempty"`
	Passive *PassiveCheck `json:"passive,omitempty"`
}

// ActiveCheck configures the probes a checker sends to every node.
type ActiveCheck struct {
	// Type is http (default), https or tcp (connect only).
	Type string `json:"type"`
	// Timeout bounds one probe, in seconds (default 1).
	Timeout float64 `json:"timeout"`
	// Concurrency bounds the probes in flight at once (default 10).
	Concurrency int `json:"concurrency"`
	// Host is the Host header (and TLS server name) of http(s) probes;
	// empty: the node's host.
	Host string `json:"host,omitempty"`
	// Port is the port probed instead of the node's own; 0: the node's.
	Port int `json:"port,omitempty"`
	// HTTPMethod is the probe's method (default GET).
	HTTPMethod string `json:"http_method"`
	// HTTPPath is the probe's request target (default "/").
	HTTPPath string `json:"http_path"`
	// HTTPReqBody is sent with a Content-Length when not empty.
	HTTPReqBody string `json:"http_req_body"`
	// HTTPSVerifyCertificate checks the node's certificate on https probes
	// (default true).
	HTTPSVerifyCertificate bool `json:"https_verify_certificate"`
	// ReqHeaders are extra probe headers, each "Name: value".
	ReqHeaders []string        `json:"req_headers,omitempty"`
	Healthy    ActiveHealthy   `json:"healthy"`
	Unhealthy  ActiveUnhealthy `json:"unhealthy"`
}

// ActiveHealthy says how often healthy nodes are probed and what makes an
// unhealthy node healthy again.
type ActiveHealthy struct {
	// Interval is the probe period of healthy nodes, in seconds (default 1).
	Interval int `json:"interval"`
	// HTTPStatuses count as successes (default 200, 302).
	HTTPStatuses []int `json:"http_statuses"`
	// Successes in a row make a node healthy (default 2).
	Successes int `json:"successes"`
}

// ActiveUnhealthy says how often unhealthy nodes are probed and what makes a
// healthy node unhealthy.
type ActiveUnhealthy struct {
	// Interval is the probe period of unhealthy nodes, in seconds (default 1).
	Interval int `json:"interval"`
	// HTTPStatuses count as HTTP failures (default 429, 404, 500-505).
	HTTPStatuses []int `json:"http_statuses"`
	// HTTPFailures, TCPFailures and Timeouts are the failures of each kind,
	// without a success in between, that make a node unhealthy (defaults 5,
	// 2 and 3).
	HTTPFailures int `json:"http_failures"`
	TCPFailures  int `json:"tcp_failures"`
	Timeouts     int `json:"timeouts"`
}

// PassiveCheck configures how live traffic outcomes count.
type PassiveCheck struct {
	// Type is http (default), https or tcp.
	Type      string           `json:"type"`
	Healthy   PassiveHealthy   `json:"healthy"`
	Unhealthy PassiveUnhealthy `json:"unhealthy"`
}

// PassiveHealthy says which responses count as successes.
type PassiveHealthy struct {
	// HTTPStatuses count as successes (default 200-208, 226, 300-308).
	HTTPStatuses []int `json:"http_statuses"`
	// Successes make a node healthy (default 5); 0 disables the count.
	Successes int `json:"successes"`
}

// PassiveUnhealthy says which outcomes count as failures.
type PassiveUnhealthy struct {
	// HTTPStatuses count as HTTP failures (default 429, 500, 503).
	HTTPStatuses []int `json:"http_statuses"`
	// Failures of each kind that make a node unhealthy (defaults 5, 2, 7);
	// 0 disables that kind.
	HTTPFailures int `json:"http_failures"`
	TCPFailures  int `json:"tcp_failures"`
	Timeouts     int `json:"timeouts"`
}

// Default values of APISIX's health checker schema.
const (
	DefaultCheckType               = "http"
	DefaultCheckTimeout            = 1
	DefaultCheckConcurrency        = 10
	DefaultCheckHTTPMethod         = "GET"
	DefaultCheckHTTPPath           = "/"
	DefaultCheckInterval           = 1
	DefaultActiveSuccesses         = 2
	DefaultActiveHTTPFailures      = 5
	DefaultActiveTCPFailures       = 2
	DefaultActiveTimeouts          = 3
	DefaultPassiveSuccesses        = 5
	DefaultPassiveHTTPFailures     = 5
	DefaultPassiveTCPFailures      = 2
	DefaultPassiveTimeouts         = 7
	maxCheckCounter                = 254 // lua-resty-healthcheck keeps 8-bit counters
	minCheckStatus, maxCheckStatus = 200, 599
)

// Default status lists of APISIX's health checker schema. They are functions
// so that no caller can change a shared slice.
func DefaultActiveHealthyStatuses() []int   { return []int{200, 302} }
func DefaultActiveUnhealthyStatuses() []int { return []int{429, 404, 500, 501, 502, 503, 504, 505} }
func DefaultPassiveHealthyStatuses() []int {
	return []int{200, 201, 202, 203, 204, 205, 206, 207, 208, 226, 300, 301, 302, 303, 304, 305, 306, 307, 308}
}
func DefaultPassiveUnhealthyStatuses() []int { return []int{429, 500, 503} }

// checksDefaults fills the schema defaults of a `checks` object for absent
// keys only, like keepaliveDefaults: passive counters of 0 are a valid
// explicit setting (they disable the count) that a zero-means-default rule
// could not tell from an absent key. Values of the wrong type are left for
// the walker's error.
func checksDefaults(m map[string]any) {
	if a, ok := m["active"].(map[string]any); ok {
		fill(a, "type", DefaultCheckType)
		fill(a, "timeout", num(DefaultCheckTimeout))
		fill(a, "concurrency", num(DefaultCheckConcurrency))
		fill(a, "http_method", DefaultCheckHTTPMethod)
		fill(a, "http_path", DefaultCheckHTTPPath)
		fill(a, "http_req_body", "")
		fill(a, "https_verify_certificate", true)
		if h := child(a, "healthy"); h != nil {
			fill(h, "interval", num(DefaultCheckInterval))
			fill(h, "http_statuses", nums(DefaultActiveHealthyStatuses()))
			fill(h, "successes", num(DefaultActiveSuccesses))
		}
		if u := child(a, "unhealthy"); u != nil {
			fill(u, "interval", num(DefaultCheckInterval))
			fill(u, "http_statuses", nums(DefaultActiveUnhealthyStatuses()))
			fill(u, "http_failures", num(DefaultActiveHTTPFailures))
			fill(u, "tcp_failures", num(DefaultActiveTCPFailures))
			fill(u, "timeouts", num(DefaultActiveTimeouts))
		}
	}
	if p, ok := m["passive"].(map[string]any); ok {
		fill(p, "type", DefaultCheckType)
		if h := child(p, "healthy"); h != nil {
			fill(h, "http_statuses", nums(DefaultPassiveHealthyStatuses()))
			fill(h, "successes", num(DefaultPassiveSuccesses))
		}
		if u := child(p, "unhealthy"); u != nil {
			fill(u, "http_statuses", nums(DefaultPassiveUnhealthyStatuses()))
			fill(u, "http_failures", num(DefaultPassiveHTTPFailures))
			fill(u, "tcp_failures", num(DefaultPassiveTCPFailures))
			fill(u, "timeouts", num(DefaultPassiveTimeouts))
		}
	}
}

func fill(m map[string]any, key string, v any) {
	if _, ok := m[key]; !ok {
		m[key] = v
	}
}

// child returns m[key] as an object, creating it when absent; nil when it
// holds something else.
func child(m map[string]any, key string) map[string]any {
	v, ok := m[key]
	if !ok || v == nil {
		c := map[string]any{}
		m[key] = c
		return c
	}
	c, _ := v.(map[string]any)
	return c
}

func num(n int) json.Number { return json.Number(strconv.Itoa(n)) }

func nums(ns []int) []any {
	out := make([]any, len(ns))
	for i, n := range ns {
		out[i] = num(n)
	}
	return out
}

// validateChecks applies APISIX's health checker schema to a decoded (and
// defaulted) checks object. It is stricter than APISIX where a value could
// never work: a probe timeout or concurrency that is not positive, a path
// or header that would break the probe's request head.
func validateChecks(p string, c *HealthChecks, es *FieldErrors) {
	if c.Active == nil {
		es.add(join(p, "active"), "is required")
	} else {
		validateActiveCheck(join(p, "active"), c.Active, es)
	}
	if c.Passive != nil {
		validatePassiveCheck(join(p, "passive"), c.Passive, es)
	}
}

func validateActiveCheck(p string, a *ActiveCheck, es *FieldErrors) {
	validateCheckType(join(p, "type"), a.Type, es)
	if !(a.Timeout > 0) {
		es.add(join(p, "timeout"), "must be greater than 0")
	}
	if a.Concurrency < 1 {
		es.add(join(p, "concurrency"), "must be >= 1")
	}
	if a.Host != "" {
		validateHost(join(p, "host"), a.Host, es)
	}
	if a.Port < 0 || a.Port > 65535 {
		es.add(join(p, "port"), "must be between 1 and 65535")
	}
	if !validMethod(a.HTTPMethod) {
		es.add(join(p, "http_method"), "must be one of "+methodList)
	}
	if a.HTTPPath == "" || a.HTTPPath[0] != '/' || strings.ContainsFunc(a.HTTPPath, isSpaceOrCtl) {
		es.add(join(p, "http_path"), `must start with "/" and contain no spaces or control characters`)
	}
	if a.ReqHeaders != nil {
		hp := join(p, "req_headers")
		if len(a.ReqHeaders) == 0 {
			es.add(hp, "must have at least 1 item")
		}
		for i, h := range a.ReqHeaders {
			name, value, ok := strings.Cut(h, ":")
			if !ok || !validHeaderToken(name) || strings.ContainsAny(value, "\r\n\x00") {
				es.add(index(hp, i), `must be a header line "Name: value"`)
			}
		}
	}
	validateInterval(join(join(p, "healthy"), "interval"), a.Healthy.Interval, es)
	validateStatuses(join(join(p, "healthy"), "http_statuses"), a.Healthy.HTTPStatuses, es)
	validateCounter(join(join(p, "healthy"), "successes"), a.Healthy.Successes, 1, es)
	validateInterval(join(join(p, "unhealthy"), "interval"), a.Unhealthy.Interval, es)
	validateStatuses(join(join(p, "unhealthy"), "http_statuses"), a.Unhealthy.HTTPStatuses, es)
	validateCounter(join(join(p, "unhealthy"), "http_failures"), a.Unhealthy.HTTPFailures, 1, es)
	validateCounter(join(join(p, "unhealthy"), "tcp_failures"), a.Unhealthy.TCPFailures, 1, es)
	validateCounter(join(join(p, "unhealthy"), "timeouts"), a.Unhealthy.Timeouts, 1, es)
}

func validatePassiveCheck(p string, c *PassiveCheck, es *FieldErrors) {
	validateCheckType(join(p, "type"), c.Type, es)
	validateStatuses(join(join(p, "healthy"), "http_statuses"), c.Healthy.HTTPStatuses, es)
	validateCounter(join(join(p, "healthy"), "successes"), c.Healthy.Successes, 0, es)
	validateStatuses(join(join(p, "unhealthy"), "http_statuses"), c.Unhealthy.HTTPStatuses, es)
	validateCounter(join(join(p, "unhealthy"), "http_failures"), c.Unhealthy.HTTPFailures, 0, es)
	validateCounter(join(join(p, "unhealthy"), "tcp_failures"), c.Unhealthy.TCPFailures, 0, es)
	validateCounter(join(join(p, "unhealthy"), "timeouts"), c.Unhealthy.Timeouts, 0, es)
}

func validateCheckType(p, typ string, es *FieldErrors) {
	switch typ {
	case "http", "https", "tcp":
	default:
		es.add(p, "must be one of http, https, tcp")
	}
}

func validateInterval(p string, n int, es *FieldErrors) {
	if n < 1 {
		es.add(p, "must be >= 1")
	}
}

func validateCounter(p string, n, lo int, es *FieldErrors) {
	if n < lo || n > maxCheckCounter {
		es.add(p, "must be between %d and %d", lo, maxCheckCounter)
	}
}

// validateStatuses applies minItems 1, uniqueItems and the 200-599 range.
func validateStatuses(p string, statuses []int, es *FieldErrors) {
	if len(statuses) == 0 {
		es.add(p, "must have at least 1 item")
		return
	}
	seen := make(map[int]bool, len(statuses))
	for i, s := range statuses {
		switch {
		case s < minCheckStatus || s > maxCheckStatus:
			es.add(index(p, i), "must be between %d and %d", minCheckStatus, maxCheckStatus)
		case seen[s]:
			es.add(index(p, i), "duplicate value %d", s)
		}
		seen[s] = true
	}
}

func isSpaceOrCtl(r rune) bool { return r <= ' ' || r == 0x7f }

// validHeaderToken reports whether s is an RFC 9110 token (a header name).
func validHeaderToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isAlnum(c) && !strings.ContainsRune("!#$%&'*+-.^_`|~", rune(c)) {
			return false
		}
	}
	return true
}
