package h1

import (
	"bufio"
	"io"
	"strconv"
)

// Default limits, used for every zero (or negative) field of Limits.
const (
	DefaultMaxRequestLine = 8192
	DefaultMaxHeaderBytes = 32768
	DefaultMaxHeaderCount = 100
)

// Limits bounds the size of a message head. A zero field means the default.
type Limits struct {
	// MaxRequestLine is the longest start line (request line or status
	// line), in bytes without its CRLF. Longer request lines get 414
	// (RFC 9112 §3).
	MaxRequestLine int
	// MaxHeaderBytes bounds the header section (or trailer section),
	// counting every field line with its CRLF and the final empty line.
	// Larger sections get 431 (RFC 6585 §5).
	MaxHeaderBytes int
	// MaxHeaderCount bounds the number of field lines. More get 431.
	MaxHeaderCount int
}

func (l Limits) withDefaults() Limits {
	if l.MaxRequestLine <= 0 {
		l.MaxRequestLine = DefaultMaxRequestLine
	}
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if l.MaxHeaderCount <= 0 {
		l.MaxHeaderCount = DefaultMaxHeaderCount
	}
	return l
}

// Error is a protocol violation found while parsing. Status is the HTTP
// status a server should answer with before closing the connection: 400,
// 414, 431, 501 or 505 for requests, and 502 for anything wrong in an
// upstream response. The connection must not be reused after an Error.
type Error struct {
	Status int
	Reason string
}

// Error implements the error interface.
func (e *Error) Error() string {
	return "h1: " + strconv.Itoa(e.Status) + " " + e.Reason
}

func errorf(status int, reason string) *Error {
	return &Error{Status: status, Reason: reason}
}

// Header is one field line, as received. Name keeps its case; Value has
// its surrounding OWS removed (RFC 9110 §5.5).
type Header struct {
	Name, Value []byte
}

// appendLine appends bytes from br up to and including the next '\n' to
// buf. It reports tooLong, without consuming further, once more than max
// bytes would be appended. io.EOF is returned as-is.
func appendLine(br *bufio.Reader, buf []byte, max int) ([]byte, bool, error) {
	n := 0
	for {
		frag, err := br.ReadSlice('\n')
		n += len(frag)
		if n > max {
			return buf, true, nil
		}
		buf = append(buf, frag...)
		if err != bufio.ErrBufferFull {
			return buf, false, err
		}
	}
}

func endsCRLF(line []byte) bool {
	return len(line) >= 2 && line[len(line)-2] == '\r' && line[len(line)-1] == '\n'
}

// readHead copies a start line and header section from br into buf[:0]
// and records in ends the offset just past each field line. It returns
// the offset where the field lines start; the section's final CRLF is at
// len(buf)-2. For requests a malformed line is 400, an over-long start
// line 414 and an over-large section 431; for responses all are 502.
func readHead(br *bufio.Reader, buf []byte, ends []int32, lim Limits, request bool) ([]byte, []int32, int, error) {
	bad, fieldStatus := 502, 502
	if request {
		bad, fieldStatus = 400, 431
	}
	ends = ends[:0]
	buf, err := readStartLine(br, buf[:0], lim, request)
	if err != nil {
		return buf, ends, 0, err
	}
	hdrStart := len(buf)
	budget := lim.MaxHeaderBytes
	for {
		lineStart := len(buf)
		var tooLong bool
		buf, tooLong, err = appendLine(br, buf, budget)
		if tooLong {
			return buf, ends, 0, errorf(fieldStatus, "header section too large")
		}
		if err != nil {
			return buf, ends, 0, unexpected(err)
		}
		line := buf[lineStart:]
		budget -= len(line)
		if !endsCRLF(line) {
			return buf, ends, 0, errorf(bad, "field line not terminated by CRLF")
		}
		if len(line) == 2 {
			return buf, ends, hdrStart, nil
		}
		ends = append(ends, int32(len(buf)))
		if len(ends) > lim.MaxHeaderCount {
			return buf, ends, 0, errorf(fieldStatus, "too many header fields")
		}
	}
}

// readStartLine reads the request or status line into buf (empty), with
// its CRLF.
func readStartLine(br *bufio.Reader, buf []byte, lim Limits, request bool) ([]byte, error) {
	bad, lineStatus := 502, 502
	if request {
		bad, lineStatus = 400, 414
	}
	skipped := 0
	for {
		var tooLong bool
		var err error
		buf, tooLong, err = appendLine(br, buf[:0], lim.MaxRequestLine+2)
		if tooLong {
			return buf, errorf(lineStatus, "start line too long")
		}
		if err != nil {
			if err == io.EOF && len(buf) == 0 {
				// Clean close between messages, possibly after stray
				// CRLFs (RFC 9112 §2.2): io.EOF, untouched.
				return buf, io.EOF
			}
			return buf, unexpected(err)
		}
		// RFC 9112 §2.2: a server SHOULD ignore at least one empty line
		// received before the request-line. Bounded so that the skip
		// cannot go on forever.
		if request && len(buf) == 2 && buf[0] == '\r' {
			skipped += 2
			if skipped > lim.MaxRequestLine {
				return buf, errorf(bad, "too many empty lines")
			}
			continue
		}
		if !endsCRLF(buf) {
			return buf, errorf(bad, "start line not terminated by CRLF")
		}
		return buf, nil
	}
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// parseFieldLine splits a field line (without CRLF) into name and value
// (RFC 9112 §5). It rejects obs-fold and whitespace before the first field
// (a line starting with SP/HTAB, RFC 9112 §2.2, §5.2), whitespace between
// name and colon (RFC 9112 §5.1), empty or non-token names (RFC 9110
// §5.1) and CTLs in values (RFC 9110 §5.5).
func parseFieldLine(line []byte) (name, value []byte, ok bool) {
	colon := 0
	for colon < len(line) && isTchar(line[colon]) {
		colon++
	}
	if colon == 0 || colon == len(line) || line[colon] != ':' {
		return nil, nil, false
	}
	name = line[:colon]
	value = trimOWS(line[colon+1:])
	if !validFieldValue(value) {
		return nil, nil, false
	}
	return name, value, true
}

// fieldLine returns field line i (without CRLF) of a head read by
// readHead, whose ends[i] is the offset just past the line's LF.
func fieldLine(head []byte, ends []int32, i, hdrStart int) []byte {
	start := hdrStart
	if i > 0 {
		start = int(ends[i-1])
	}
	return head[start : ends[i]-2]
}
