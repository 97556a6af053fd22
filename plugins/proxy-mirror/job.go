package proxymirror

import (
	"net/url"
	"strings"
	"sync"

	"github.com/sluicegw/sluice/plugin"
	"github.com/sluicegw/sluice/plugin/ngxtmpl"
)

// job is one copy waiting to be sent: everything it needs is copied out of
// the request (whose buffers the gateway reuses) into the job's own buffers,
// which are pooled so that steady mirroring allocates nothing per request.
type job struct {
	method string
	target []byte // path?query, as on the request line
	host   []byte // the Host header
	// hdr holds header names and values back to back; ends[2i] ends name
	// i and ends[2i+1] its value.
	hdr  []byte
	ends []int32
	body []byte
	xff  []byte // the client's X-Forwarded-For values, joined

	// Filters for the header listing, set per request.
	connection                string // the Connection header's value
	keepConsumer, keepCredent bool
	// add is j.addHeader, made once per job: a method value passed to an
	// interface method would otherwise be allocated on every request.
	add func(name, value string)
}

// maxPooledBody keeps jobs that carried a large body out of the pool, so
// the pool does not pin max_body_bytes per idle job.
const maxPooledBody = 64 << 10

var jobPool = sync.Pool{New: func() any {
	j := &job{}
	j.add = j.addHeader
	return j
}}

func getJob() *job { return jobPool.Get().(*job) }

func putJob(j *job) {
	if cap(j.body) > maxPooledBody {
		j.body = nil
	}
	j.method, j.connection = "", ""
	j.target, j.host, j.hdr, j.ends, j.body, j.xff = j.target[:0], j.host[:0], j.hdr[:0], j.ends[:0], j.body[:0], j.xff[:0]
	jobPool.Put(j)
}

// headerLister is implemented by the gateway's requests: every header
// field as the upstream gets it (plugin/logentry.HeaderLister).
type headerLister interface {
	EachHeader(fn func(name, value string))
}

// fill copies the request into j: method, target, headers (with the
// forwarding headers the upstream gets) and body.
func (j *job) fill(p *mirror, c *plugin.Ctx, body []byte) {
	r := c.Request
	j.method = internMethod(r.Method())
	j.target = p.appendTarget(j.target[:0], r)
	j.connection = r.Header("Connection")
	j.keepConsumer = c.Consumer != nil
	j.keepCredent = c.Consumer != nil && c.Consumer.CredentialID != ""
	if hl, ok := r.(headerLister); ok {
		hl.EachHeader(j.add)
	} else {
		// A request that cannot list its headers (a test double) gives
		// the ones most mirrors look at.
		for _, name := range fallbackHeaders {
			if v := r.Header(name); v != "" {
				j.add(name, v)
			}
		}
	}
	if len(j.host) == 0 {
		j.host = append(j.host, r.Host()...)
	}
	j.forwarded(r)
	j.connection = ""
	j.body = append(j.body[:0], body...)
}

var fallbackHeaders = []string{"Host", "Content-Type", "User-Agent", "Accept", "Authorization", "X-Request-Id"}

// addHeader takes one header field of the listing, leaving out what the
// gateway regenerates as it does for the upstream: framing and hop-by-hop
// fields, the X-Forwarded-* family and the consumer fields only an auth
// plugin may set.
func (j *job) addHeader(name, value string) {
	switch classify(name) {
	case fieldHost:
		if len(j.host) == 0 {
			j.host = append(j.host, value...)
		}
		return
	case fieldDropped:
		return
	case fieldXFF:
		if len(j.xff) > 0 {
			j.xff = append(j.xff, ", "...)
		}
		j.xff = append(j.xff, value...)
		return
	case fieldConsumer:
		if !j.keepConsumer {
			return
		}
	case fieldCredential:
		if !j.keepCredent {
			return
		}
	}
	if j.connection != "" && hasToken(j.connection, name) {
		return
	}
	j.header(name, value)
}

// Kinds of header fields, for addHeader.
const (
	fieldKept = iota
	fieldHost
	fieldDropped
	fieldXFF
	fieldConsumer
	fieldCredential
)

// classify sorts a header name by its length first, so most fields cost one
// switch and at most two case-insensitive compares.
func classify(name string) int {
	eq := strings.EqualFold
	switch len(name) {
	case 2:
		if eq(name, "te") {
			return fieldDropped
		}
	case 4:
		if eq(name, "host") {
			return fieldHost
		}
	case 6:
		if eq(name, "expect") {
			return fieldDropped
		}
	case 7:
		if eq(name, "upgrade") || eq(name, "trailer") {
			return fieldDropped
		}
	case 9:
		if eq(name, "x-real-ip") {
			return fieldDropped
		}
	case 10:
		if eq(name, "connection") || eq(name, "keep-alive") {
			return fieldDropped
		}
	case 14:
		if eq(name, "content-length") {
			return fieldDropped
		}
	case 15:
		if eq(name, "x-forwarded-for") {
			return fieldXFF
		}
	case 16:
		if eq(name, "proxy-connection") || eq(name, "x-forwarded-host") || eq(name, "x-forwarded-port") {
			return fieldDropped
		}
	case 17:
		if eq(name, "transfer-encoding") || eq(name, "x-forwarded-proto") {
			return fieldDropped
		}
	case 19:
		if eq(name, "x-consumer-username") {
			return fieldConsumer
		}
	case 23:
		if eq(name, "x-credential-identifier") {
			return fieldCredential
		}
	}
	return fieldKept
}

func (j *job) header(name, value string) {
	j.hdr = append(j.hdr, name...)
	j.ends = append(j.ends, int32(len(j.hdr)))
	j.hdr = append(j.hdr, value...)
	j.ends = append(j.ends, int32(len(j.hdr)))
}

// forwarded adds the X-Forwarded-* family and X-Real-IP as the gateway
// sends them upstream: the client's X-Forwarded-For extended with its
// address, the others overwritten.
func (j *job) forwarded(r plugin.Request) {
	addr, _ := r.Var("remote_addr")
	if len(j.xff) > 0 {
		j.xff = append(j.xff, ", "...)
	}
	j.xff = append(j.xff, addr...)
	j.hdr = append(j.hdr, "X-Forwarded-For"...)
	j.ends = append(j.ends, int32(len(j.hdr)))
	j.hdr = append(j.hdr, j.xff...)
	j.ends = append(j.ends, int32(len(j.hdr)))
	j.header("X-Real-Ip", addr)
	scheme, _ := r.Var("scheme")
	j.header("X-Forwarded-Proto", scheme)
	j.header("X-Forwarded-Host", r.Host())
	port, _ := r.Var("server_port")
	j.header("X-Forwarded-Port", port)
}

// appendTarget appends the copy's path and query: the client's (see
// clientTarget), or the configured path in its place (replace) or in front
// of it (prefix).
func (p *mirror) appendTarget(dst []byte, r plugin.Request) []byte {
	path, query := clientTarget(r)
	switch {
	case p.path == "":
		dst = append(dst, path...)
	case p.prefix:
		dst = append(dst, p.path...)
		dst = append(dst, path...)
	default:
		dst = append(dst, p.path...)
	}
	if query != "" {
		dst = append(dst, '?')
		dst = append(dst, query...)
	}
	return dst
}

// clientTarget returns the request's path and query as the client sent
// them ($request_uri), which is what the upstream gets unless a plugin
// rewrote them: the raw path goes upstream byte for byte unless normalizing
// it merged slashes or resolved dot segments, in which case the normalized
// $uri, escaped, does.
func clientTarget(r plugin.Request) (path, query string) {
	ruri, ok := r.Var("request_uri")
	if !ok {
		return ngxtmpl.EscapeURI(r.Path()), r.RawQuery()
	}
	path, query, _ = strings.Cut(ruri, "?")
	if !forwardedAsIs(path) {
		path = ngxtmpl.EscapeURI(r.Path())
	}
	return path, query
}

// forwardedAsIs reports whether a raw request path is already normal: it
// starts with '/' and, once decoded, has no empty, "." or ".." segment.
func forwardedAsIs(raw string) bool {
	if raw == "" || raw[0] != '/' {
		return false
	}
	s := raw
	if strings.IndexByte(raw, '%') >= 0 {
		dec, err := url.PathUnescape(raw)
		if err != nil {
			return false
		}
		s = dec
	}
	for i := 0; i < len(s); {
		j := strings.IndexByte(s[i+1:], '/')
		end := len(s)
		if j >= 0 {
			end = i + 1 + j
		}
		seg := s[i+1 : end]
		if seg == "." || seg == ".." || (seg == "" && end < len(s)) {
			return false
		}
		i = end
	}
	return true
}

// internMethod returns the usual methods as constants, so a job does not
// keep a string that points into the gateway's request buffer.
func internMethod(m string) string {
	for _, k := range knownMethods {
		if m == k {
			return k
		}
	}
	return strings.Clone(m)
}

var knownMethods = []string{"GET", "POST", "PUT", "DELETE", "HEAD", "PATCH", "OPTIONS", "TRACE", "CONNECT", "PURGE"}

// hasToken reports whether a comma-separated header value lists token.
func hasToken(list, token string) bool {
	for list != "" {
		var t string
		t, list, _ = strings.Cut(list, ",")
		if strings.EqualFold(strings.TrimSpace(t), token) {
			return true
		}
	}
	return false
}
