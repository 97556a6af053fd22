package proxy

import (
	"net/http"
	"strings"
)

// hopHeaders are the hop-by-hop fields of RFC 9110 §7.6.1 (plus the historical
// Proxy-Connection and Keep-Alive) that a proxy must not forward. Like nginx,
// Proxy-Authorization is passed on: APISIX users rely on it reaching upstreams.
var hopHeaders = [...]string{
	"Connection",
	"Proxy-Connection",
	"Keep-Alive",
	"Te",
	"Trailer",
	"Transfer-Encoding",
	"Upgrade",
}

// removeHopHeaders deletes hop-by-hop fields from h, including every field the
// Connection header names (RFC 9110 §7.6.1).
func removeHopHeaders(h http.Header) {
	for _, v := range h["Connection"] {
		for tok := range strings.SplitSeq(v, ",") {
			if tok = strings.TrimSpace(tok); tok != "" {
				h.Del(tok)
			}
		}
	}
	for _, name := range hopHeaders {
		h.Del(name)
	}
}

// connectionHasToken reports whether a Connection-style header value lists tok.
func connectionHasToken(v, tok string) bool {
	for v != "" {
		var t string
		t, v, _ = strings.Cut(v, ",")
		if strings.EqualFold(strings.TrimSpace(t), tok) {
			return true
		}
	}
	return false
}
