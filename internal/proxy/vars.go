package proxy

import "strings"

// These helpers give nginx's request variables ($arg_*, $cookie_*, $http_*) the
// same meaning on every engine, without allocating: values are substrings of
// what the client sent, and, as in nginx, $arg_* is not URL-decoded.

// queryArg returns the raw value of the first name=value pair in a raw query.
func queryArg(query, name string) (string, bool) {
	for query != "" {
		var pair string
		pair, query, _ = strings.Cut(query, "&")
		// nginx compares argument names case-insensitively, and a bare
		// "name" without '=' is no value at all ($arg_name is not found).
		k, v, ok := strings.Cut(pair, "=")
		if ok && strings.EqualFold(k, name) {
			return v, true
		}
	}
	return "", false
}

// cookieValue returns the value of cookie name in a Cookie header value.
func cookieValue(header, name string) (string, bool) {
	for header != "" {
		var part string
		part, header, _ = strings.Cut(header, ";")
		part = strings.TrimLeft(part, " \t")
		k, v, ok := strings.Cut(part, "=")
		if ok && k == name {
			return strings.TrimSpace(v), true
		}
	}
	return "", false
}

// headerVarMatches reports whether a header name is the one a $http_* variable
// suffix names: nginx lower-cases the header name and maps '-' to '_'.
func headerVarMatches(suffix, header string) bool {
	if len(suffix) != len(header) {
		return false
	}
	for i := 0; i < len(suffix); i++ {
		h := header[i]
		if h == '-' {
			h = '_'
		} else if 'A' <= h && h <= 'Z' {
			h += 'a' - 'A'
		}
		if h != suffix[i] {
			return false
		}
	}
	return true
}

// hostWithoutPort strips a port from a Host value, keeping IPv6 brackets out.
func hostWithoutPort(h string) string {
	if h == "" {
		return h
	}
	if h[0] == '[' {
		if i := strings.IndexByte(h, ']'); i > 0 {
			return h[1:i]
		}
		return h
	}
	if i := strings.LastIndexByte(h, ':'); i >= 0 && strings.IndexByte(h[:i], ':') < 0 {
		return h[:i]
	}
	return h
}

// lowerASCII lower-cases s, allocating only when s has an upper-case letter.
func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'A' <= c && c <= 'Z' {
			return strings.ToLower(s)
		}
	}
	return s
}

// varFields are the request facts behind nginx's plain variables.
type varFields struct {
	method, host, uri, query, requestURI, scheme, serverPort, remoteAddr, remotePort string
	protocol                                                                         string // "HTTP/1.1"
}

// headerSource is an engine's own header lookup, by $http_* suffix.
type headerSource interface {
	header(suffix string) (string, bool)
}

// requestVar resolves an nginx variable for any engine: headers and cookies
// through the engine's headers, the rest from f.
func requestVar(hs headerSource, name string, f *varFields) (string, bool) {
	if s, ok := strings.CutPrefix(name, "http_"); ok {
		return hs.header(s)
	}
	if s, ok := strings.CutPrefix(name, "cookie_"); ok {
		c, ok := hs.header("cookie")
		if !ok {
			return "", false
		}
		return cookieValue(c, s)
	}
	return commonVar(name, f)
}

// commonVar resolves the variables every engine answers the same way.
func commonVar(name string, f *varFields) (string, bool) {
	if a, ok := strings.CutPrefix(name, "arg_"); ok {
		return queryArg(f.query, a)
	}
	switch name {
	case "uri":
		return f.uri, true
	case "host":
		return f.host, true
	case "request_method":
		return f.method, true
	case "request_uri":
		return f.requestURI, true
	case "args", "query_string":
		return f.query, f.query != ""
	case "is_args":
		if f.query != "" {
			return "?", true
		}
		return "", true
	case "scheme":
		return f.scheme, true
	case "server_port":
		return f.serverPort, f.serverPort != ""
	case "remote_addr":
		return f.remoteAddr, f.remoteAddr != ""
	case "remote_port":
		return f.remotePort, f.remotePort != ""
	case "server_protocol":
		return f.protocol, f.protocol != ""
	}
	return "", false
}
