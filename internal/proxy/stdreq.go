package proxy

import (
	"net"
	"net/http"
	"net/netip"
)

// stdRequest is the router.Request view of a net/http request.
type stdRequest struct {
	r          *http.Request
	host       string
	path       string
	query      string
	remoteIP   netip.Addr
	remoteAddr string // IP text, as nginx's $remote_addr
	remotePort string
	scheme     string
	serverPort string
}

func newStdRequest(r *http.Request, path string) stdRequest {
	q := stdRequest{r: r, path: path, query: r.URL.RawQuery, scheme: "http"}
	if r.TLS != nil {
		q.scheme = "https"
	}
	q.host = lowerASCII(hostWithoutPort(r.Host))
	if h, p, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		q.remoteAddr, q.remotePort = h, p
		q.remoteIP, _ = netip.ParseAddr(h)
		q.remoteIP = q.remoteIP.Unmap()
	}
	if la, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		if _, p, err := net.SplitHostPort(la.String()); err == nil {
			q.serverPort = p
		}
	}
	return q
}

func (q *stdRequest) Method() string       { return q.r.Method }
func (q *stdRequest) Host() string         { return q.host }
func (q *stdRequest) Path() string         { return q.path }
func (q *stdRequest) RemoteIP() netip.Addr { return q.remoteIP }
func (q *stdRequest) Var(n string) (string, bool) {
	return requestVar(q, n, &varFields{
		method: q.r.Method, host: q.host, uri: q.path, query: q.query, requestURI: q.r.RequestURI,
		scheme: q.scheme, serverPort: q.serverPort, remoteAddr: q.remoteAddr, remotePort: q.remotePort,
		protocol: q.r.Proto,
	})
}

func (q *stdRequest) header(suffix string) (string, bool) {
	if suffix == "host" {
		return q.r.Host, q.r.Host != ""
	}
	for k, vv := range q.r.Header {
		if headerVarMatches(suffix, k) && len(vv) > 0 {
			return vv[0], true
		}
	}
	return "", false
}
