package h1

import (
	"bufio"
	"strings"
	"testing"
	"testing/iotest"
)

func TestReadResponse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc   string
		raw    string
		method string
		status int // 0 accepted, else *Error status
		mode   int
		cl     int64
		keep   bool
		code   int
		reason string
	}{
		{desc: "200 CL", raw: "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n", mode: BodyLength, cl: 3, keep: true, code: 200, reason: "OK"},
		{desc: "200 chunked", raw: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", mode: BodyChunked, cl: -1, keep: true, code: 200, reason: "OK"},
		{desc: "until close", raw: "HTTP/1.1 200 OK\r\n\r\n", mode: BodyUntilClose, cl: -1, code: 200, reason: "OK"},
		{desc: "no reason no SP", raw: "HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", mode: BodyLength, cl: 0, keep: true, code: 200},
		{desc: "empty reason", raw: "HTTP/1.1 404 \r\nContent-Length: 0\r\n\r\n", mode: BodyLength, cl: 0, keep: true, code: 404},
		{desc: "reason with spaces", raw: "HTTP/1.1 404 Not  Found\r\nContent-Length: 0\r\n\r\n", mode: BodyLength, cl: 0, keep: true, code: 404, reason: "Not  Found"},
		{desc: "1.0 close", raw: "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n", mode: BodyLength, cl: 1, code: 200, reason: "OK"},
		{desc: "1.0 keep-alive", raw: "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\n", mode: BodyLength, cl: 1, keep: true, code: 200, reason: "OK"},
		{desc: "Connection close", raw: "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\n", mode: BodyLength, cl: 1, code: 200, reason: "OK"},
		{desc: "HEAD keeps CL", raw: "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", method: "HEAD", mode: BodyNone, cl: 10, keep: true, code: 200, reason: "OK"},
		{desc: "HEAD no framing stays keep-alive", raw: "HTTP/1.1 200 OK\r\n\r\n", method: "HEAD", mode: BodyNone, cl: -1, keep: true, code: 200, reason: "OK"},
		{desc: "204", raw: "HTTP/1.1 204 No Content\r\n\r\n", mode: BodyNone, cl: -1, keep: true, code: 204, reason: "No Content"},
		{desc: "304 with CL", raw: "HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\n\r\n", mode: BodyNone, cl: 50, keep: true, code: 304, reason: "Not Modified"},
		{desc: "100", raw: "HTTP/1.1 100 Continue\r\n\r\n", mode: BodyNone, cl: -1, keep: true, code: 100, reason: "Continue"},
		{desc: "101", raw: "HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n", mode: BodyNone, cl: -1, keep: true, code: 101, reason: "Switching Protocols"},
		{desc: "CONNECT 200", raw: "HTTP/1.1 200 OK\r\n\r\n", method: "CONNECT", mode: BodyNone, cl: -1, keep: true, code: 200, reason: "OK"},
		{desc: "CONNECT 407", raw: "HTTP/1.1 407 Auth\r\nContent-Length: 2\r\n\r\n", method: "CONNECT", mode: BodyLength, cl: 2, keep: true, code: 407, reason: "Auth"},
		{desc: "identical CLs", raw: "HTTP/1.1 200 OK\r\nContent-Length: 4\r\nContent-Length: 4\r\n\r\n", mode: BodyLength, cl: 4, keep: true, code: 200, reason: "OK"},

		// Errors: 502 (RFC 9112 §4, §5, §6.1, §6.3).
		{desc: "CL+TE", raw: "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", status: 502},
		{desc: "CL+TE on 204", raw: "HTTP/1.1 204 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", status: 502},
		{desc: "differing CLs", raw: "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", status: 502},
		{desc: "bad CL", raw: "HTTP/1.1 200 OK\r\nContent-Length: -3\r\n\r\n", status: 502},
		{desc: "TE gzip, chunked", raw: "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", status: 502},
		{desc: "TE gzip", raw: "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", status: 502},
		{desc: "TE chunked twice", raw: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", status: 502},
		{desc: "TE in 1.0", raw: "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", status: 502},
		{desc: "obs-fold", raw: "HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 0\r\n\r\n", status: 502},
		{desc: "space before colon", raw: "HTTP/1.1 200 OK\r\nContent-Length : 0\r\n\r\n", status: 502},
		{desc: "NUL in value", raw: "HTTP/1.1 200 OK\r\nX: \x00\r\n\r\n", status: 502},
		{desc: "bare LF", raw: "HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n", status: 502},
		{desc: "HTTP/2", raw: "HTTP/2.0 200 OK\r\n\r\n", status: 502},
		{desc: "lower-case version", raw: "http/1.1 200 OK\r\n\r\n", status: 502},
		{desc: "two-digit code", raw: "HTTP/1.1 20 OK\r\n\r\n", status: 502},
		{desc: "code 099", raw: "HTTP/1.1 099 OK\r\n\r\n", status: 502},
		{desc: "code 600", raw: "HTTP/1.1 600 OK\r\n\r\n", status: 502},
		{desc: "four-digit code", raw: "HTTP/1.1 2000 OK\r\n\r\n", status: 502},
		{desc: "CTL in reason", raw: "HTTP/1.1 200 O\x01K\r\n\r\n", status: 502},
		{desc: "leading CRLF", raw: "\r\nHTTP/1.1 200 OK\r\n\r\n", status: 502},
		{desc: "garbage", raw: "hello\r\n\r\n", status: 502},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			for _, oneByte := range []bool{false, true} {
				var br *bufio.Reader
				if oneByte {
					br = bufio.NewReaderSize(iotest.OneByteReader(strings.NewReader(tc.raw)), 16)
				} else {
					br = bufio.NewReader(strings.NewReader(tc.raw))
				}
				method := tc.method
				if method == "" {
					method = "GET"
				}
				var r Response
				err := ReadResponse(br, &r, Limits{}, []byte(method))
				if got := statusOf(err); got != tc.status {
					t.Fatalf("status = %d (%v), want %d", got, err, tc.status)
				}
				if err != nil {
					continue
				}
				if r.BodyMode != tc.mode || r.ContentLength != tc.cl || r.KeepAlive != tc.keep ||
					r.StatusCode != tc.code || string(r.Reason) != tc.reason {
					t.Errorf("mode %d cl %d keep %v code %d reason %q", r.BodyMode, r.ContentLength, r.KeepAlive, r.StatusCode, r.Reason)
				}
			}
		})
	}
}

func TestReadResponseInterim(t *testing.T) {
	t.Parallel()
	raw := "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Y: z\r\n\r\nok"
	br := bufio.NewReader(strings.NewReader(raw))
	var r Response
	codes := []int{}
	for {
		if err := ReadResponse(br, &r, Limits{}, []byte("POST")); err != nil {
			t.Fatal(err)
		}
		codes = append(codes, r.StatusCode)
		if r.StatusCode >= 200 {
			break
		}
	}
	if len(codes) != 3 || string(r.Header("x-y")) != "z" || r.BodyMode != BodyLength {
		t.Fatalf("codes %v headers %q", codes, r.Headers)
	}
}
