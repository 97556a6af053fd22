package h1

import (
	"bufio"
	"errors"
	"strconv"
)

// ChunkedWriter writes a body with the chunked transfer coding (RFC 9112
// §7.1) to a *bufio.Writer. It does not flush: the caller decides when.
// The zero value must be Reset before use.
type ChunkedWriter struct {
	w      *bufio.Writer
	closed bool
}

// Reset makes c write a new body to w.
func (c *ChunkedWriter) Reset(w *bufio.Writer) {
	c.w, c.closed = w, false
}

// Write writes p as one chunk. An empty p writes nothing, since a
// zero-size chunk would end the body.
func (c *ChunkedWriter) Write(p []byte) (int, error) {
	if c.closed {
		return 0, errors.New("h1: write after ChunkedWriter.Close")
	}
	if len(p) == 0 {
		return 0, nil
	}
	if c.w.Available() < 18 {
		if err := c.w.Flush(); err != nil {
			return 0, err
		}
	}
	// Format the size in place in the bufio buffer: no allocation.
	b := strconv.AppendUint(c.w.AvailableBuffer(), uint64(len(p)), 16)
	b = append(b, '\r', '\n')
	if _, err := c.w.Write(b); err != nil {
		return 0, err
	}
	if _, err := c.w.Write(p); err != nil {
		return 0, err
	}
	if _, err := c.w.WriteString("\r\n"); err != nil {
		return len(p), err
	}
	return len(p), nil
}

// Close ends the body: the last chunk "0\r\n", the trailer fields, and the
// final CRLF (RFC 9112 §7.1.2). Trailers with an invalid name or value are
// refused before anything is written, so a value cannot inject lines.
func (c *ChunkedWriter) Close(trailers []Header) error {
	if c.closed {
		return errors.New("h1: ChunkedWriter closed twice")
	}
	for i := range trailers {
		if !isToken(trailers[i].Name) || !validFieldValue(trailers[i].Value) {
			return errors.New("h1: invalid trailer field")
		}
	}
	c.closed = true
	b := c.w.AvailableBuffer()
	b = append(b, "0\r\n"...)
	b = AppendHeaders(b, trailers)
	b = append(b, '\r', '\n')
	_, err := c.w.Write(b)
	return err
}

// AppendStatusLine appends "HTTP/1.<minor> <code> <reason>\r\n" to dst. An
// empty reason is replaced by StatusText(code).
func AppendStatusLine(dst []byte, minor int, code int, reason []byte) []byte {
	dst = append(dst, "HTTP/1.0 "...)
	if minor == 1 {
		dst[len(dst)-2] = '1'
	}
	if code < 100 || code > 999 {
		code = 500
	}
	dst = append(dst, byte('0'+code/100), byte('0'+code/10%10), byte('0'+code%10), ' ')
	if len(reason) == 0 {
		dst = append(dst, StatusText(code)...)
	} else {
		dst = append(dst, reason...)
	}
	return append(dst, '\r', '\n')
}

// AppendRequestLine appends "<method> <target> HTTP/1.<minor>\r\n" to dst.
func AppendRequestLine(dst, method, target []byte, minor int) []byte {
	dst = append(dst, method...)
	dst = append(dst, ' ')
	dst = append(dst, target...)
	dst = append(dst, " HTTP/1.0\r\n"...)
	if minor == 1 {
		dst[len(dst)-3] = '1'
	}
	return dst
}

// AppendHeader appends "<name>: <value>\r\n" to dst. The caller is
// responsible for name and value being valid (e.g. taken from a parsed
// message).
func AppendHeader(dst, name, value []byte) []byte {
	dst = append(dst, name...)
	dst = append(dst, ':', ' ')
	dst = append(dst, value...)
	return append(dst, '\r', '\n')
}

// AppendHeaderString is AppendHeader for string arguments.
func AppendHeaderString(dst []byte, name, value string) []byte {
	dst = append(dst, name...)
	dst = append(dst, ':', ' ')
	dst = append(dst, value...)
	return append(dst, '\r', '\n')
}

// AppendHeaders appends every header in hs with AppendHeader.
func AppendHeaders(dst []byte, hs []Header) []byte {
	for i := range hs {
		dst = AppendHeader(dst, hs[i].Name, hs[i].Value)
	}
	return dst
}

// AppendContentLength appends "Content-Length: <n>\r\n" to dst.
func AppendContentLength(dst []byte, n int64) []byte {
	dst = append(dst, "Content-Length: "...)
	dst = strconv.AppendInt(dst, n, 10)
	return append(dst, '\r', '\n')
}

// IsHopByHop reports whether name is a hop-by-hop field that a proxy must
// not forward (RFC 9110 §7.6.1), besides those named by Connection (see
// HasToken). Keep-Alive and Proxy-Connection are included because some
// implementations still send them.
func IsHopByHop(name []byte) bool {
	switch len(name) {
	case 2:
		return EqualFold(name, "te")
	case 7:
		return EqualFold(name, "upgrade") || EqualFold(name, "trailer")
	case 10:
		return EqualFold(name, "connection") || EqualFold(name, "keep-alive")
	case 16:
		return EqualFold(name, "proxy-connection")
	case 17:
		return EqualFold(name, "transfer-encoding")
	}
	return false
}

// HasToken reports whether any field named field in hs lists token as one
// of its comma-separated members (RFC 9110 §5.6.1), ignoring case. With
// field "Connection" it tells whether a header is nominated as
// hop-by-hop (RFC 9110 §7.6.1).
func HasToken(hs []Header, field string, token []byte) bool {
	for i := range hs {
		if !EqualFold(hs[i].Name, field) {
			continue
		}
		v := hs[i].Value
		for more := true; more; {
			var elem []byte
			elem, v, more = nextListElem(v)
			if len(elem) == len(token) && equalFoldBytes(elem, token) {
				return true
			}
		}
	}
	return false
}

func equalFoldBytes(a, b []byte) bool {
	for i := range a {
		if a[i] != b[i] && lower(a[i]) != lower(b[i]) {
			return false
		}
	}
	return true
}

// StatusText returns the standard reason phrase for code (RFC 9110 §15),
// or "Unknown".
func StatusText(code int) string {
	switch code {
	case 100:
		return "Continue"
	case 101:
		return "Switching Protocols"
	case 103:
		return "Early Hints"
	case 200:
		return "OK"
	case 201:
		return "Created"
	case 202:
		return "Accepted"
	case 204:
		return "No Content"
	case 206:
		return "Partial Content"
	case 301:
		return "Moved Permanently"
	case 302:
		return "Found"
	case 303:
		return "See Other"
	case 304:
		return "Not Modified"
	case 307:
		return "Temporary Redirect"
	case 308:
		return "Permanent Redirect"
	case 400:
		return "Bad Request"
	case 401:
		return "Unauthorized"
	case 403:
		return "Forbidden"
	case 404:
		return "Not Found"
	case 405:
		return "Method Not Allowed"
	case 408:
		return "Request Timeout"
	case 411:
		return "Length Required"
	case 413:
		return "Content Too Large"
	case 414:
		return "URI Too Long"
	case 417:
		return "Expectation Failed"
	case 429:
		return "Too Many Requests"
	case 431:
		return "Request Header Fields Too Large"
	case 500:
		return "Internal Server Error"
	case 501:
		return "Not Implemented"
	case 502:
		return "Bad Gateway"
	case 503:
		return "Service Unavailable"
	case 504:
		return "Gateway Timeout"
	case 505:
		return "HTTP Version Not Supported"
	}
	return "Unknown"
}
