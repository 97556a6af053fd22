package config

import "strings"

func validateUpstream(u *Upstream, p string, es *FieldErrors) {
	validateMeta(p, u.ID, u.Name, u.Desc, u.Labels, es)

	// APISIX: oneOf {required nodes} {required service_name, discovery_type}.
	hasNodes := u.Nodes != nil
	hasDiscovery := u.ServiceName != "" && u.DiscoveryType != ""
	switch {
	case hasNodes && hasDiscovery:
		es.add(join(p, "nodes"), "must not be set together with service_name and discovery_type")
	case !hasNodes && !hasDiscovery:
		es.add(join(p, "nodes"), "is required (or set service_name and discovery_type)")
	}
	if len(u.ServiceName) > maxServiceName {
		es.add(join(p, "service_name"), "must be at most %d characters", maxServiceName)
	}
	for i := range u.Nodes {
		validateNode(index(join(p, "nodes"), i), &u.Nodes[i], es)
	}

	if u.Retries != nil && *u.Retries < 0 {
		es.add(join(p, "retries"), "must be >= 0")
	}
	if u.RetryTimeout != nil && !(*u.RetryTimeout >= 0) {
		es.add(join(p, "retry_timeout"), "must be >= 0")
	}
	if u.Timeout != nil {
		validateTimeout(join(p, "timeout"), u.Timeout, es)
	}
	if u.TLS != nil {
		validateUpstreamTLS(join(p, "tls"), u.TLS, es)
	}
	if k := u.KeepalivePool; k != nil {
		kp := join(p, "keepalive_pool")
		if k.Size < 1 {
			es.add(join(kp, "size"), "must be >= 1")
		}
		if !(k.IdleTimeout >= 0) {
			es.add(join(kp, "idle_timeout"), "must be >= 0")
		}
		if k.Requests < 1 {
			es.add(join(kp, "requests"), "must be >= 1")
		}
	}
	if u.Checks != nil {
		validateChecks(join(p, "checks"), u.Checks, es)
	}

	typ := orDefault(u.Type, DefaultUpstreamType)
	switch typ {
	case "roundrobin", "chash", "least_conn", "ewma":
	default:
		es.add(join(p, "type"), "must be one of roundrobin, chash, least_conn, ewma")
	}
	hashOn := orDefault(u.HashOn, DefaultHashOn)
	switch hashOn {
	case "vars", "header", "cookie", "consumer", "vars_combinations":
		if typ == "chash" {
			validateHashKey(join(p, "key"), hashOn, u.Key, es)
		}
	default:
		es.add(join(p, "hash_on"), "must be one of vars, header, cookie, consumer, vars_combinations")
	}

	// APISIX also accepts tcp, tls, udp and kafka here for its stream and kafka
	// proxies. sluice proxies HTTP and gRPC only, so an upstream with one of those
	// schemes could never work and is rejected rather than silently misused.
	switch orDefault(u.Scheme, DefaultScheme) {
	case "http", "https", "grpc", "grpcs":
	default:
		es.add(join(p, "scheme"), "must be one of http, https, grpc, grpcs")
	}

	switch orDefault(u.PassHost, DefaultPassHost) {
	case "pass", "node":
	case "rewrite":
		if u.UpstreamHost == "" {
			es.add(join(p, "upstream_host"), "is required when pass_host is rewrite")
		}
	default:
		es.add(join(p, "pass_host"), "must be one of pass, node, rewrite")
	}
	if u.UpstreamHost != "" {
		validateHost(join(p, "upstream_host"), u.UpstreamHost, es)
	}
}

func validateNode(p string, n *Node, es *FieldErrors) {
	switch {
	case n.Host == "":
		es.add(join(p, "host"), "must not be empty")
	case !validHost(n.Host):
		es.add(join(p, "host"), "must be a host name or IP address")
	}
	// Port 0 is "absent": the scheme's default port is used.
	if n.Port < 0 || n.Port > 65535 {
		es.add(join(p, "port"), "must be between 1 and 65535")
	}
	if n.Weight < 0 {
		es.add(join(p, "weight"), "must be >= 0")
	}
}

func validateUpstreamTLS(p string, t *UpstreamTLS, es *FieldErrors) {
	validateOptionalID(join(p, "client_cert_id"), t.ClientCertID, es)
	switch {
	case t.ClientCertID != "" && (t.ClientCert != "" || t.ClientKey != ""):
		es.add(join(p, "client_cert_id"), "must not be set together with client_cert and client_key")
	case t.ClientCert != "" && t.ClientKey == "":
		es.add(join(p, "client_key"), "is required when client_cert is set")
	case t.ClientKey != "" && t.ClientCert == "":
		es.add(join(p, "client_cert"), "is required when client_key is set")
	}
	if c := t.ClientCert; c != "" && (len(c) < minClientCert || len(c) > maxCertOrKeyLen) {
		es.add(join(p, "client_cert"), "must be between %d and %d characters", minClientCert, maxCertOrKeyLen)
	}
	if k := t.ClientKey; k != "" && (len(k) < minClientKey || len(k) > maxCertOrKeyLen) {
		es.add(join(p, "client_key"), "must be between %d and %d characters", minClientKey, maxCertOrKeyLen)
	}
}

// validateHashKey applies APISIX's chash key rules: a key is required unless
// hashing on the consumer, and its form depends on hash_on.
func validateHashKey(p, hashOn, key string, es *FieldErrors) {
	if hashOn == "consumer" {
		return
	}
	if key == "" {
		es.add(p, "is required when type is chash")
		return
	}
	switch hashOn {
	case "vars":
		if !validHashVar(key) {
			es.add(p, "must be one of uri, server_name, server_addr, request_uri, remote_port, "+
				"remote_addr, query_string, host, hostname, mqtt_client_id or arg_<name>")
		}
	case "header", "cookie":
		if !validHeaderName(key) {
			es.add(p, "must contain only a-z, A-Z, 0-9, '-' and '_'")
		}
	}
}

func validHashVar(key string) bool {
	switch key {
	case "uri", "server_name", "server_addr", "request_uri", "remote_port",
		"remote_addr", "query_string", "host", "hostname", "mqtt_client_id":
		return true
	}
	name, ok := strings.CutPrefix(key, "arg_")
	if !ok || name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		// APISIX's class is [0-9a-zA-z_-]; the A-z range also admits [\]^_`, and
		// the same keys are accepted here for compatibility.
		c := name[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'z' || c == '-') {
			return false
		}
	}
	return true
}

func validHeaderName(key string) bool {
	for i := 0; i < len(key); i++ {
		c := key[i]
		if !isAlnum(c) && c != '-' && c != '_' {
			return false
		}
	}
	return key != ""
}
