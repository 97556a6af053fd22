package h1

import (
	"bufio"
	"bytes"
)

// Body framing modes of a message (RFC 9112 §6.3), used by Response.BodyMode,
// Request.BodyMode and BodyReader.Reset.
const (
	// BodyNone means the message has no body.
	BodyNone = iota
	// BodyLength means exactly ContentLength bytes follow.
	BodyLength
	// BodyChunked means a chunked body follows (RFC 9112 §7.1).
	BodyChunked
	// BodyUntilClose means the body runs until the connection closes
	// (responses only, RFC 9112 §6.3 item 8).
	BodyUntilClose
)

// Request is a parsed request head. Its byte slices point into a buffer the
// Request owns and reuses; they stay valid until the next Reset or
// ReadRequest on it. The zero value is ready to use.
type Request struct {
	// Method is the request method, a token (RFC 9110 §9.1).
	Method []byte
	// RequestURI is the request-target exactly as received.
	RequestURI []byte
	// Path is the raw (not percent-decoded) path of the target: "*" for
	// asterisk-form, nil for authority-form (CONNECT). For absolute-form
	// ("http://h/p?q") it is the path part, "/" when empty.
	Path []byte
	// Query is the part after the first '?', without it; nil if there is
	// no '?'.
	Query []byte
	// ProtoMinor is 0 for HTTP/1.0 and 1 for HTTP/1.1.
	ProtoMinor int
	// Headers holds every field line in order, hop-by-hop ones included.
	Headers []Header
	// Host is the target host: the authority of an absolute-form or
	// authority-form target (which overrides the Host field, RFC 9112
	// §3.2.2, §3.2.3), else the Host field value. Nil only for an HTTP/1.0 request without either.
	Host []byte
	// ContentLength is the Content-Length value, or -1 when absent.
	ContentLength int64
	// Chunked reports Transfer-Encoding: chunked.
	Chunked bool
	// KeepAlive reports whether the connection may carry another request
	// after this one (RFC 9112 §9.3).
	KeepAlive bool
	// Upgrade reports an HTTP/1.1 request with an "upgrade" Connection
	// option and a non-empty Upgrade field (RFC 9110 §7.8).
	Upgrade bool
	// ExpectContinue reports "Expect: 100-continue" on HTTP/1.1 (RFC 9110
	// §10.1.1 says to ignore it for HTTP/1.0).
	ExpectContinue bool

	buf  []byte
	ends []int32
}

// Reset clears r for reuse, keeping its buffers.
func (r *Request) Reset() {
	*r = Request{buf: r.buf[:0], ends: r.ends[:0], Headers: r.Headers[:0], ContentLength: -1}
}

// Header returns the value of the first field named name (compared
// case-insensitively), or nil if there is none.
func (r *Request) Header(name string) []byte {
	return lookup(r.Headers, name)
}

// BodyMode returns how the request body is framed: BodyChunked,
// BodyLength, or BodyNone when neither Content-Length nor Transfer-Encoding
// is present (RFC 9112 §6.3 item 7).
func (r *Request) BodyMode() int {
	switch {
	case r.Chunked:
		return BodyChunked
	case r.ContentLength >= 0:
		return BodyLength
	}
	return BodyNone
}

func lookup(hs []Header, name string) []byte {
	for i := range hs {
		if EqualFold(hs[i].Name, name) {
			return hs[i].Value
		}
	}
	return nil
}

// ReadRequest reads one request head from br into r, copying it into r's
// own buffer so that the slices stay valid while the caller keeps reading
// br (for the body). It returns io.EOF, untouched, when the connection
// closed cleanly before the request began; io.ErrUnexpectedEOF when it
// closed in the middle; br's own errors as-is; and an *Error for every
// protocol violation, after which the connection must be closed.
func ReadRequest(br *bufio.Reader, r *Request, lim Limits) error {
	r.Reset()
	lim = lim.withDefaults()
	buf, ends, hdrStart, err := readHead(br, r.buf, r.ends, lim, true)
	r.ends = ends
	// Reserve a "/" after the head: the Path of an absolute-form target
	// with an empty path (RFC 9112 §3.2.2), without allocating.
	r.buf = append(buf, '/')
	if err != nil {
		return err
	}
	if e := r.parseRequestLine(r.buf[:hdrStart-2]); e != nil {
		return e
	}
	var f framing
	for i := range ends {
		name, value, ok := parseFieldLine(fieldLine(r.buf, ends, i, hdrStart))
		if !ok {
			return errorf(400, "invalid field line")
		}
		r.Headers = append(r.Headers, Header{Name: name, Value: value})
		f.add(name, value)
	}
	return r.applyFraming(&f)
}

// applyFraming validates the framing fields and fills r's derived fields.
func (r *Request) applyFraming(f *framing) error {
	// RFC 9112 §3.2: 400 for an HTTP/1.1 request without Host, for more
	// than one Host line, and for an invalid Host value.
	switch {
	case f.hostN > 1:
		return errorf(400, "multiple Host fields")
	case f.hostN == 0 && r.ProtoMinor == 1:
		return errorf(400, "missing Host")
	case f.hostN == 1 && len(f.host) > 0 && !validAuthority(f.host):
		return errorf(400, "invalid Host")
	}
	if r.Host == nil {
		r.Host = f.host
	}
	if f.clBad {
		return errorf(400, "invalid Content-Length")
	}
	if f.te {
		switch {
		case r.ProtoMinor == 0:
			// RFC 9112 §6.1: Transfer-Encoding in HTTP/1.0 means
			// faulty framing.
			return errorf(400, "Transfer-Encoding in HTTP/1.0")
		case f.clSeen:
			// RFC 9112 §6.1, §6.3 item 3: both fields is a smuggling
			// attempt; reject rather than prefer chunked.
			return errorf(400, "both Content-Length and Transfer-Encoding")
		case f.teBad || f.chunkedN > 1 || !f.lastIsCh:
			// RFC 9112 §6.3 item 4 (chunked not final), §7 (chunked
			// twice).
			return errorf(400, "invalid Transfer-Encoding")
		case f.teOther:
			// RFC 9112 §6.1: unimplemented transfer coding.
			return errorf(501, "unsupported transfer coding")
		}
		r.Chunked = true
	} else if f.clSeen {
		r.ContentLength = f.cl
	}
	r.KeepAlive = f.keepAlive(r.ProtoMinor)
	// RFC 9110 §7.8: ignore Upgrade in HTTP/1.0 requests.
	r.Upgrade = r.ProtoMinor == 1 && f.connUpgrade && f.upgradeHdr
	r.ExpectContinue = r.ProtoMinor == 1 && f.expect100
	return nil
}

// parseRequestLine parses method SP request-target SP HTTP-version
// (RFC 9112 §3) with exactly one SP between the parts.
func (r *Request) parseRequestLine(line []byte) error {
	sp1 := bytes.IndexByte(line, ' ')
	if sp1 <= 0 || !isToken(line[:sp1]) {
		return errorf(400, "invalid method")
	}
	r.Method = line[:sp1]
	rest := line[sp1+1:]
	sp2 := bytes.IndexByte(rest, ' ')
	if sp2 <= 0 {
		return errorf(400, "malformed request line")
	}
	target, version := rest[:sp2], rest[sp2+1:]
	minor, st := parseVersion(version)
	if st != 0 {
		return errorf(st, "unsupported HTTP version")
	}
	r.ProtoMinor = minor
	r.RequestURI = target
	return r.parseTarget(target)
}

// parseVersion accepts exactly "HTTP/1.0" and "HTTP/1.1" (RFC 9112 §2.3:
// HTTP-name is case-sensitive). A well-formed other version is 505
// (RFC 9110 §15.6.6); anything else is 400.
func parseVersion(v []byte) (minor, status int) {
	if len(v) != 8 || string(v[:5]) != "HTTP/" || !isDigit(v[5]) || v[6] != '.' || !isDigit(v[7]) {
		return 0, 400
	}
	if v[5] != '1' || v[7] > '1' {
		return 0, 505
	}
	return int(v[7] - '0'), 0
}

// parseTarget splits the request-target (RFC 9112 §3.2). It rejects CTLs,
// SP, DEL and '#' (a fragment is not part of any request-target form).
func (r *Request) parseTarget(t []byte) error {
	for _, c := range t {
		if c <= ' ' || c == 0x7f || c == '#' {
			return errorf(400, "invalid request-target")
		}
	}
	switch {
	case string(r.Method) == "CONNECT":
		// authority-form = uri-host ":" port, CONNECT only (RFC 9112
		// §3.2.3).
		c := bytes.LastIndexByte(t, ':')
		if c < 0 || c == len(t)-1 || !validAuthority(t) {
			return errorf(400, "invalid CONNECT target")
		}
		r.Host = t
	case t[0] == '/':
		r.splitPathQuery(t)
	case len(t) == 1 && t[0] == '*':
		// asterisk-form, OPTIONS only (RFC 9112 §3.2.4).
		if string(r.Method) != "OPTIONS" {
			return errorf(400, "asterisk-form target without OPTIONS")
		}
		r.Path = t
	default:
		return r.parseAbsoluteForm(t)
	}
	return nil
}

func (r *Request) splitPathQuery(pq []byte) {
	if q := bytes.IndexByte(pq, '?'); q >= 0 {
		r.Path, r.Query = pq[:q], pq[q+1:]
	} else {
		r.Path = pq
	}
}

// parseAbsoluteForm handles "http://authority/path?query" (RFC 9112
// §3.2.2). Only http and https are accepted, and the authority must be a
// non-empty host without userinfo (RFC 9110 §4.2.1, §4.2.4).
func (r *Request) parseAbsoluteForm(t []byte) error {
	var rest []byte
	switch {
	case len(t) > 7 && EqualFold(t[:7], "http://"):
		rest = t[7:]
	case len(t) > 8 && EqualFold(t[:8], "https://"):
		rest = t[8:]
	default:
		return errorf(400, "invalid request-target")
	}
	end := len(rest)
	for i, c := range rest {
		if c == '/' || c == '?' {
			end = i
			break
		}
	}
	auth := rest[:end]
	if !validAuthority(auth) {
		return errorf(400, "invalid authority in request-target")
	}
	r.Host = auth
	pq := rest[end:]
	if len(pq) == 0 || pq[0] == '?' {
		// Empty path: use the "/" reserved after the head.
		n := len(r.buf)
		slash := r.buf[n-1 : n : n]
		r.Path = slash
		if len(pq) > 0 {
			r.Query = pq[1:]
		}
		return nil
	}
	r.splitPathQuery(pq)
	return nil
}
