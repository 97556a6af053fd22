package config

import (
	"bytes"
	"net/netip"
	"slices"
	"strings"
)

// Limits from APISIX's schema (apisix/schema_def.lua).
const (
	maxIDLen        = 64
	maxNameLen      = 256
	maxDescLen      = 256
	maxLabelLen     = 256
	maxURILen       = 4096
	minScriptLen    = 10
	maxScriptLen    = 102400
	minFilterLen    = 10
	maxServiceName  = 256
	minClientCert   = 128
	minClientKey    = 64
	maxCertOrKeyLen = 64 * 1024
)

// Validate checks a single route against APISIX's rules and returns every
// problem as FieldErrors with paths starting at "route". It is pure: references
// to other resources are checked by Resources.Validate.
func (r *Route) Validate() error {
	var es FieldErrors
	validateRoute(r, "route", &es)
	return es.err()
}

// Validate checks a single service like Route.Validate, with paths starting at
// "service".
func (s *Service) Validate() error {
	var es FieldErrors
	validateService(s, "service", &es)
	return es.err()
}

// Validate checks a single upstream like Route.Validate, with paths starting at
// "upstream".
func (u *Upstream) Validate() error {
	var es FieldErrors
	validateUpstream(u, "upstream", &es)
	return es.err()
}

func validateRoute(r *Route, p string, es *FieldErrors) {
	validateMeta(p, r.ID, r.Name, r.Desc, r.Labels, es)

	// APISIX: oneOf {required uri} {required uris}.
	switch {
	case r.URI != "" && r.URIs != nil:
		es.add(join(p, "uris"), "must not be set together with uri")
	case r.URI == "" && r.URIs == nil:
		es.add(join(p, "uri"), "is required (or set uris)")
	}
	if r.URI != "" {
		validateURI(join(p, "uri"), r.URI, es)
	}
	if r.URIs != nil {
		validateList(join(p, "uris"), r.URIs, es, validateURI)
	}

	if r.Host != "" && r.Hosts != nil {
		es.add(join(p, "hosts"), "must not be set together with host")
	}
	if r.Host != "" {
		validateHost(join(p, "host"), r.Host, es)
	}
	if r.Hosts != nil {
		validateList(join(p, "hosts"), r.Hosts, es, validateHost)
	}

	if r.RemoteAddr != "" && r.RemoteAddrs != nil {
		es.add(join(p, "remote_addrs"), "must not be set together with remote_addr")
	}
	if r.RemoteAddr != "" {
		validateRemoteAddr(join(p, "remote_addr"), r.RemoteAddr, es)
	}
	if r.RemoteAddrs != nil {
		validateList(join(p, "remote_addrs"), r.RemoteAddrs, es, validateRemoteAddr)
	}

	validateMethods(join(p, "methods"), r.Methods, es)

	if len(r.Vars) > 0 {
		if b := bytes.TrimSpace(r.Vars); len(b) == 0 || b[0] != '[' {
			es.add(join(p, "vars"), "must be an array")
		}
	}
	if r.FilterFunc != "" && (len(r.FilterFunc) < minFilterLen || !strings.HasPrefix(r.FilterFunc, "function")) {
		es.add(join(p, "filter_func"), `must be a Lua function of at least 10 characters starting with "function"`)
	}
	if r.Timeout != nil {
		validateTimeout(join(p, "timeout"), r.Timeout, es)
	}
	if r.Status != nil && *r.Status != 0 && *r.Status != 1 {
		es.add(join(p, "status"), "must be one of 0, 1")
	}

	// APISIX: anyOf {plugins|upstream|upstream_id|service_id|script} with uri(s).
	// A route with only plugins is allowed (e.g. one that always answers from a
	// plugin such as mocking or redirect).
	if r.Plugins == nil && r.Upstream == nil && r.UpstreamID == "" && r.ServiceID == "" && r.Script == "" {
		es.add(p, "must set at least one of upstream, upstream_id, service_id, plugins or script")
	}
	validateScript(join(p, "script"), r.Script, es)
	if r.Script != "" && (r.Plugins != nil || r.PluginConfigID != "") {
		es.add(join(p, "script"), "must not be set together with plugins or plugin_config_id")
	}
	validateOptionalID(join(p, "script_id"), r.ScriptID, es)
	validateOptionalID(join(p, "plugin_config_id"), r.PluginConfigID, es)
	validateOptionalID(join(p, "service_id"), r.ServiceID, es)
	validateOptionalID(join(p, "upstream_id"), r.UpstreamID, es)
	if r.Upstream != nil {
		validateUpstream(r.Upstream, join(p, "upstream"), es)
	}
}

func validateService(s *Service, p string, es *FieldErrors) {
	validateMeta(p, s.ID, s.Name, s.Desc, s.Labels, es)
	validateScript(join(p, "script"), s.Script, es)
	if s.Hosts != nil {
		validateList(join(p, "hosts"), s.Hosts, es, validateHost)
	}
	validateOptionalID(join(p, "upstream_id"), s.UpstreamID, es)
	if s.Upstream != nil {
		validateUpstream(s.Upstream, join(p, "upstream"), es)
	}
}

func validateScript(p, script string, es *FieldErrors) {
	if script != "" && (len(script) < minScriptLen || len(script) > maxScriptLen) {
		es.add(p, "must be between %d and %d characters", minScriptLen, maxScriptLen)
	}
}

// validateMeta checks the fields every resource kind shares. The id is optional
// here because APISIX's Admin API puts it in the URL; Resources.Validate
// requires it for file entries.
func validateMeta(p, id, name, desc string, labels map[string]string, es *FieldErrors) {
	validateOptionalID(join(p, "id"), id, es)
	if len(name) > maxNameLen {
		es.add(join(p, "name"), "must be at most %d characters", maxNameLen)
	}
	if len(desc) > maxDescLen {
		es.add(join(p, "desc"), "must be at most %d characters", maxDescLen)
	}
	for _, k := range sortedStringKeys(labels) {
		v := labels[k]
		if v == "" || len(v) > maxLabelLen || strings.ContainsAny(v, " \t\n\v\f\r") {
			es.add(join(join(p, "labels"), k), "must be 1-%d characters without whitespace", maxLabelLen)
		}
	}
}

func validateOptionalID(p, id string, es *FieldErrors) {
	if id != "" && !validID(id) {
		es.add(p, "must be 1-64 characters of a-z, A-Z, 0-9, '-', '_' and '.'")
	}
}

// validID matches APISIX's id pattern ^[a-zA-Z0-9-_.]+$ with length 1..64.
func validID(id string) bool {
	if id == "" || len(id) > maxIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !isAlnum(c) && c != '-' && c != '_' && c != '.' {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// validateURI requires a leading "/". APISIX's schema only bounds the length,
// but its router matches request paths, which always start with "/", so a uri
// without one can never match; rejecting it catches the typo early.
func validateURI(p, uri string, es *FieldErrors) {
	switch {
	case uri == "":
		es.add(p, "must not be empty")
	case len(uri) > maxURILen:
		es.add(p, "must be at most %d characters", maxURILen)
	case uri[0] != '/':
		es.add(p, `must start with "/"`)
	}
}

// validHost matches APISIX's host pattern ^\*$|^\*?[0-9a-zA-Z-._\[\]:]+$: a
// name or address, optionally with a leading "*" wildcard (e.g. "*.example.com").
func validHost(h string) bool {
	if h == "*" {
		return true
	}
	h = strings.TrimPrefix(h, "*")
	if h == "" {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !isAlnum(c) && !strings.ContainsRune("-._[]:", rune(c)) {
			return false
		}
	}
	return true
}

func validateHost(p, h string, es *FieldErrors) {
	if !validHost(h) {
		es.add(p, `must be a host name or address, optionally starting with "*" (e.g. "*.example.com")`)
	}
}

// validateRemoteAddr accepts an IPv4 or IPv6 address or CIDR. This is stricter
// than APISIX's IPv6/CIDR regular expression, which admits strings such as ":/8".
func validateRemoteAddr(p, a string, es *FieldErrors) {
	var ok bool
	if strings.Contains(a, "/") {
		pfx, err := netip.ParsePrefix(a)
		ok = err == nil && pfx.Addr().Zone() == ""
	} else {
		addr, err := netip.ParseAddr(a)
		ok = err == nil && addr.Zone() == ""
	}
	if !ok {
		es.add(p, "must be an IPv4 or IPv6 address or CIDR")
	}
}

// validateList checks APISIX's minItems 1 and uniqueItems, then each item.
func validateList(p string, items []string, es *FieldErrors, each func(string, string, *FieldErrors)) {
	if len(items) == 0 {
		es.add(p, "must have at least 1 item")
		return
	}
	seen := make(map[string]bool, len(items))
	for i, v := range items {
		if seen[v] {
			es.add(index(p, i), "duplicate value %q", v)
			continue
		}
		seen[v] = true
		each(index(p, i), v, es)
	}
}

const methodList = "GET, POST, PUT, DELETE, PATCH, HEAD, OPTIONS, CONNECT, TRACE, PURGE"

func validMethod(m string) bool {
	switch m {
	case "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "CONNECT", "TRACE", "PURGE":
		return true
	}
	return false
}

func validateMethods(p string, methods []string, es *FieldErrors) {
	// APISIX allows an empty methods array (no minItems): it matches any method.
	seen := make(map[string]bool, len(methods))
	for i, m := range methods {
		switch {
		case seen[m]:
			es.add(index(p, i), "duplicate value %q", m)
		case !validMethod(m):
			es.add(index(p, i), "must be one of "+methodList)
		}
		seen[m] = true
	}
}

func validateTimeout(p string, t *Timeout, es *FieldErrors) {
	// APISIX requires all three and each > 0; an omitted one decodes as 0.
	if !(t.Connect > 0) {
		es.add(join(p, "connect"), "must be greater than 0")
	}
	if !(t.Send > 0) {
		es.add(join(p, "send"), "must be greater than 0")
	}
	if !(t.Read > 0) {
		es.add(join(p, "read"), "must be greater than 0")
	}
}

func sortedStringKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
