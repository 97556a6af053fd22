package proxy

import (
	"net/netip"
	"unsafe"

	"github.com/sluicegw/sluice/internal/h1"
)

// bstr views b as a string without copying. The fast engine uses it for values
// that live in a request's own buffer, which is not reused until the request is
// finished; nothing may keep such a string past that.
func bstr(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// fastRequest is the router.Request view of an h1.Request.
type fastRequest struct {
	req        *h1.Request
	method     string
	host       string
	path       string
	query      string
	remoteIP   netip.Addr
	remoteAddr string
	remotePort string
	scheme     string
	serverPort string
}

func (q *fastRequest) Method() string       { return q.method }
func (q *fastRequest) Host() string         { return q.host }
func (q *fastRequest) Path() string         { return q.path }
func (q *fastRequest) RemoteIP() netip.Addr { return q.remoteIP }

func (q *fastRequest) Var(n string) (string, bool) {
	return requestVar(q, n, &varFields{
		method: q.method, host: q.host, uri: q.path, query: q.query, requestURI: bstr(q.req.RequestURI),
		scheme: q.scheme, serverPort: q.serverPort, remoteAddr: q.remoteAddr, remotePort: q.remotePort,
		protocol: protocolName(q.req.ProtoMinor),
	})
}

func (q *fastRequest) header(suffix string) (string, bool) {
	for i := range q.req.Headers {
		h := &q.req.Headers[i]
		if headerVarMatches(suffix, bstr(h.Name)) {
			return bstr(h.Value), true
		}
	}
	return "", false
}

// lowerHostInPlace lower-cases an ASCII host in its own buffer, so the fast
// engine needs no copy to match hosts case-insensitively.
func lowerHostInPlace(b []byte) []byte {
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return b
}

func protocolName(minor int) string {
	if minor == 0 {
		return "HTTP/1.0"
	}
	return "HTTP/1.1"
}
