package h1

import (
	"bufio"
)

// Response is a parsed response head. Like Request, its slices point into
// a buffer it owns and reuses, valid until the next Reset or ReadResponse.
type Response struct {
	// StatusCode is the three-digit status code, 100 to 599.
	StatusCode int
	// Reason is the reason-phrase, possibly empty.
	Reason []byte
	// ProtoMinor is 0 for HTTP/1.0 and 1 for HTTP/1.1.
	ProtoMinor int
	// Headers holds every field line in order.
	Headers []Header
	// ContentLength is the Content-Length value, or -1 when absent. It is
	// kept for BodyNone responses too (a HEAD response's length).
	ContentLength int64
	// Chunked reports Transfer-Encoding: chunked, even when BodyMode is
	// BodyNone.
	Chunked bool
	// KeepAlive reports whether the upstream connection may be reused
	// after the body (RFC 9112 §9.3); false for BodyUntilClose.
	KeepAlive bool
	// BodyMode is how the body is framed: BodyNone, BodyLength,
	// BodyChunked or BodyUntilClose (RFC 9112 §6.3).
	BodyMode int

	buf  []byte
	ends []int32
}

// Reset clears r for reuse, keeping its buffers.
func (r *Response) Reset() {
	*r = Response{buf: r.buf[:0], ends: r.ends[:0], Headers: r.Headers[:0], ContentLength: -1}
}

// Header returns the value of the first field named name (compared
// case-insensitively), or nil if there is none.
func (r *Response) Header(name string) []byte {
	return lookup(r.Headers, name)
}

// ReadResponse reads one response head from br into r. requestMethod is the
// method of the request it answers, which decides whether a body follows
// (HEAD, and 2xx to CONNECT, have none). 1xx responses are returned as
// they are, with BodyMode BodyNone; the caller loops to read the final
// response. Errors are as for ReadRequest, except that every protocol
// violation is an *Error with Status 502: the upstream is at fault.
func ReadResponse(br *bufio.Reader, r *Response, lim Limits, requestMethod []byte) error {
	r.Reset()
	lim = lim.withDefaults()
	buf, ends, hdrStart, err := readHead(br, r.buf, r.ends, lim, false)
	r.buf, r.ends = buf, ends
	if err != nil {
		return err
	}
	if e := r.parseStatusLine(buf[:hdrStart-2]); e != nil {
		return e
	}
	var f framing
	for i := range ends {
		name, value, ok := parseFieldLine(fieldLine(buf, ends, i, hdrStart))
		if !ok {
			return errorf(502, "invalid field line in response")
		}
		r.Headers = append(r.Headers, Header{Name: name, Value: value})
		f.add(name, value)
	}
	return r.applyFraming(&f, requestMethod)
}

// parseStatusLine parses HTTP-version SP 3DIGIT SP reason-phrase
// (RFC 9112 §4). Like nginx, a missing " reason" after the code is
// accepted; the reason may hold HTAB, SP, VCHAR and obs-text only.
func (r *Response) parseStatusLine(line []byte) error {
	if len(line) < 12 || line[8] != ' ' {
		return errorf(502, "malformed status line")
	}
	minor, st := parseVersion(line[:8])
	if st != 0 {
		return errorf(502, "unsupported HTTP version in response")
	}
	r.ProtoMinor = minor
	code := 0
	for _, c := range line[9:12] {
		if !isDigit(c) {
			return errorf(502, "invalid status code")
		}
		code = code*10 + int(c-'0')
	}
	if code < 100 || code > 599 {
		return errorf(502, "invalid status code")
	}
	r.StatusCode = code
	if len(line) > 12 {
		if line[12] != ' ' || !validFieldValue(line[13:]) {
			return errorf(502, "invalid reason phrase")
		}
		r.Reason = line[13:]
	} else {
		r.Reason = line[12:]
	}
	return nil
}

// applyFraming decides the body mode (RFC 9112 §6.3). Like nginx, the only
// transfer coding accepted from an upstream is a single "chunked", and
// Content-Length together with Transfer-Encoding is an error (RFC 9112
// §6.1 says it "ought to be handled as an error").
func (r *Response) applyFraming(f *framing, method []byte) error {
	if f.clBad {
		return errorf(502, "invalid Content-Length in response")
	}
	if f.te {
		switch {
		case r.ProtoMinor == 0:
			// RFC 9112 §6.1: Transfer-Encoding in an HTTP/1.0 message
			// means faulty framing.
			return errorf(502, "Transfer-Encoding in HTTP/1.0 response")
		case f.clSeen:
			return errorf(502, "both Content-Length and Transfer-Encoding in response")
		case f.teBad || f.teOther || f.chunkedN != 1:
			return errorf(502, "unsupported Transfer-Encoding in response")
		}
		r.Chunked = true
	}
	if f.clSeen {
		r.ContentLength = f.cl
	}
	code := r.StatusCode
	switch {
	case string(method) == "HEAD" || code < 200 || code == 204 || code == 304:
		// RFC 9112 §6.3 item 1.
		r.BodyMode = BodyNone
	case string(method) == "CONNECT" && code < 300:
		// RFC 9112 §6.3 item 2: the connection becomes a tunnel.
		r.BodyMode = BodyNone
	case r.Chunked:
		r.BodyMode = BodyChunked
	case f.clSeen:
		r.BodyMode = BodyLength
	default:
		// RFC 9112 §6.3 item 8.
		r.BodyMode = BodyUntilClose
	}
	r.KeepAlive = f.keepAlive(r.ProtoMinor) && r.BodyMode != BodyUntilClose
	return nil
}
