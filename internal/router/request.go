// Package router compiles routes into an immutable matcher: hosts (exact and
// *.wildcard), URIs (exact, prefix /*, :params) in a radix tree, methods, client
// addresses and vars expressions, with APISIX's precedence (documented with
// examples in docs/routing.md). It does no I/O, and matching allocates nothing.
package router

import "net/netip"

// Request is the read-only view of an incoming request that matching needs. Each
// HTTP engine (net/http, the fast HTTP/1.1 path) implements it without allocating.
type Request interface {
	// Method is the request method in upper case, e.g. "GET".
	Method() string
	// Host is the request host, lower case, without port.
	Host() string
	// Path is the normalized request path without query (nginx's $uri).
	Path() string
	// RemoteIP is the client address.
	RemoteIP() netip.Addr
	// Var returns an nginx/APISIX request variable such as "uri", "host",
	// "arg_name", "http_x_header" (dashes as underscores, lower case),
	// "cookie_name", "remote_addr", "request_method", "scheme", "server_port",
	// "request_uri", "args". ok is false when the variable is not set.
	Var(name string) (value string, ok bool)
}
