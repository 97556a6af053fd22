package h1

import (
	"bufio"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// statusOf returns the Status of an *Error, 0 for nil, -1 for other errors.
func statusOf(err error) int {
	if err == nil {
		return 0
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	return -1
}

func readReq(t *testing.T, raw string, lim Limits) (*Request, error) {
	t.Helper()
	var r Request
	err := ReadRequest(bufio.NewReader(strings.NewReader(raw)), &r, lim)
	// The same input fed one byte at a time must give the same result.
	var r2 Request
	err2 := ReadRequest(bufio.NewReaderSize(iotest.OneByteReader(strings.NewReader(raw)), 16), &r2, lim)
	if statusOf(err) != statusOf(err2) {
		t.Fatalf("one-byte reader disagrees: %v vs %v", err, err2)
	}
	return &r, err
}

func TestReadRequestStatus(t *testing.T) {
	t.Parallel()
	const h = "Host: example.com\r\n"
	long := strings.Repeat("a", 9000)
	tests := []struct {
		desc   string
		raw    string
		status int // 0: accepted
	}{
		{"simple GET", "GET / HTTP/1.1\r\n" + h + "\r\n", 0},
		{"HTTP/1.0 without Host", "GET / HTTP/1.0\r\n\r\n", 0},
		{"leading empty lines skipped (RFC 9112 §2.2)", "\r\n\r\nGET / HTTP/1.1\r\n" + h + "\r\n", 0},
		{"leading bare LF", "\nGET / HTTP/1.1\r\n" + h + "\r\n", 400},

		// Request line (RFC 9112 §3).
		{"lower-case method token ok", "get / HTTP/1.1\r\n" + h + "\r\n", 0},
		{"method not a token", "G(T / HTTP/1.1\r\n" + h + "\r\n", 400},
		{"empty method", " / HTTP/1.1\r\n" + h + "\r\n", 400},
		{"two spaces after method", "GET  / HTTP/1.1\r\n" + h + "\r\n", 400},
		{"two spaces before version", "GET /  HTTP/1.1\r\n" + h + "\r\n", 400},
		{"tab separator", "GET\t/ HTTP/1.1\r\n" + h + "\r\n", 400},
		{"trailing space", "GET / HTTP/1.1 \r\n" + h + "\r\n", 400},
		{"space in target", "GET /a b HTTP/1.1\r\n" + h + "\r\n", 400},
		{"CTL in target", "GET /a\x01b HTTP/1.1\r\n" + h + "\r\n", 400},
		{"DEL in target", "GET /a\x7fb HTTP/1.1\r\n" + h + "\r\n", 400},
		{"fragment in target", "GET /a#b HTTP/1.1\r\n" + h + "\r\n", 400},
		{"HTTP/0.9 style", "GET /\r\n\r\n", 400},
		{"HTTP/2.0", "GET / HTTP/2.0\r\n" + h + "\r\n", 505},
		{"HTTP/1.2", "GET / HTTP/1.2\r\n" + h + "\r\n", 505},
		{"HTTP/3.1", "GET / HTTP/3.1\r\n" + h + "\r\n", 505},
		{"lower-case version", "GET / http/1.1\r\n" + h + "\r\n", 400},
		{"version garbage", "GET / HTTP/1.1x\r\n" + h + "\r\n", 400},
		{"version HTTP/11", "GET / HTTP/11\r\n" + h + "\r\n", 400},
		{"request line bare LF", "GET / HTTP/1.1\n" + h + "\r\n", 400},
		{"request line bare CR", "GET / HTTP/1.1\r" + h + "\r\n", 400},
		{"request line too long", "GET /" + long + " HTTP/1.1\r\n" + h + "\r\n", 414},
		{"asterisk-form OPTIONS", "OPTIONS * HTTP/1.1\r\n" + h + "\r\n", 0},
		{"asterisk-form GET", "GET * HTTP/1.1\r\n" + h + "\r\n", 400},
		{"authority-form CONNECT", "CONNECT example.com:443 HTTP/1.1\r\n" + h + "\r\n", 0},
		{"CONNECT without port", "CONNECT example.com HTTP/1.1\r\n" + h + "\r\n", 400},
		{"CONNECT origin-form", "CONNECT / HTTP/1.1\r\n" + h + "\r\n", 400},
		{"absolute-form", "GET http://example.com/a?b HTTP/1.1\r\n" + h + "\r\n", 0},
		{"absolute-form https upper", "GET HTTPS://example.com HTTP/1.1\r\n" + h + "\r\n", 0},
		{"absolute-form userinfo", "GET http://u@example.com/ HTTP/1.1\r\n" + h + "\r\n", 400},
		{"absolute-form empty host", "GET http:///a HTTP/1.1\r\n" + h + "\r\n", 400},
		{"absolute-form other scheme", "GET ftp://example.com/ HTTP/1.1\r\n" + h + "\r\n", 400},
		{"relative target", "GET a/b HTTP/1.1\r\n" + h + "\r\n", 400},

		// Field lines (RFC 9112 §5, RFC 9110 §5.5).
		{"obs-fold", "GET / HTTP/1.1\r\n" + h + "X-A: a\r\n b\r\n\r\n", 400},
		{"obs-fold tab", "GET / HTTP/1.1\r\n" + h + "X-A: a\r\n\tb\r\n\r\n", 400},
		{"whitespace before first field", "GET / HTTP/1.1\r\n " + h + "\r\n", 400},
		{"space before colon", "GET / HTTP/1.1\r\n" + h + "X-A : a\r\n\r\n", 400},
		{"tab before colon", "GET / HTTP/1.1\r\n" + h + "X-A\t: a\r\n\r\n", 400},
		{"empty name", "GET / HTTP/1.1\r\n" + h + ": a\r\n\r\n", 400},
		{"no colon", "GET / HTTP/1.1\r\n" + h + "X-A a\r\n\r\n", 400},
		{"bad name char", "GET / HTTP/1.1\r\n" + h + "X@A: a\r\n\r\n", 400},
		{"non-ASCII name", "GET / HTTP/1.1\r\n" + h + "X\xc3\xa9: a\r\n\r\n", 400},
		{"NUL in value", "GET / HTTP/1.1\r\n" + h + "X-A: a\x00b\r\n\r\n", 400},
		{"bare CR in value", "GET / HTTP/1.1\r\n" + h + "X-A: a\rb\r\n\r\n", 400},
		{"bare LF line", "GET / HTTP/1.1\r\n" + h + "X-A: a\n\r\n", 400},
		{"bare LF end of head", "GET / HTTP/1.1\r\n" + h + "\n", 400},
		{"DEL in value", "GET / HTTP/1.1\r\n" + h + "X-A: a\x7f\r\n\r\n", 400},
		{"VT in value", "GET / HTTP/1.1\r\n" + h + "X-A: \x0b\r\n\r\n", 400},
		{"obs-text in value ok", "GET / HTTP/1.1\r\n" + h + "X-A: caf\xc3\xa9\r\n\r\n", 0},
		{"tab in value ok", "GET / HTTP/1.1\r\n" + h + "X-A: a\tb\r\n\r\n", 0},
		{"empty value ok", "GET / HTTP/1.1\r\n" + h + "X-A:\r\n\r\n", 0},

		// Host (RFC 9112 §3.2).
		{"1.1 without Host", "GET / HTTP/1.1\r\n\r\n", 400},
		{"1.1 absolute-form without Host", "GET http://a/ HTTP/1.1\r\n\r\n", 400},
		{"two Host", "GET / HTTP/1.1\r\n" + h + h + "\r\n", 400},
		{"two Host in 1.0", "GET / HTTP/1.0\r\n" + h + h + "\r\n", 400},
		{"empty Host ok", "GET / HTTP/1.1\r\nHost:\r\n\r\n", 0},
		{"Host with port", "GET / HTTP/1.1\r\nHost: a.b:8080\r\n\r\n", 0},
		{"Host IPv6", "GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n", 0},
		{"Host userinfo", "GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", 400},
		{"Host with path", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400},
		{"Host with space", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400},
		{"Host bad port", "GET / HTTP/1.1\r\nHost: a:8x\r\n\r\n", 400},
		{"Host only port", "GET / HTTP/1.1\r\nHost: :80\r\n\r\n", 400},
		{"Host bad pct", "GET / HTTP/1.1\r\nHost: a%zz\r\n\r\n", 400},
		{"Host unclosed bracket", "GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", 400},

		// Content-Length (RFC 9110 §8.6, RFC 9112 §6.3).
		{"CL", "POST / HTTP/1.1\r\n" + h + "Content-Length: 5\r\n\r\n", 0},
		{"CL leading zeros", "POST / HTTP/1.1\r\n" + h + "Content-Length: 005\r\n\r\n", 0},
		{"CL identical duplicates", "POST / HTTP/1.1\r\n" + h + "Content-Length: 5\r\nContent-Length: 5\r\n\r\n", 0},
		{"CL identical list", "POST / HTTP/1.1\r\n" + h + "Content-Length: 5, 5\r\n\r\n", 0},
		{"CL differing duplicates", "POST / HTTP/1.1\r\n" + h + "Content-Length: 5\r\nContent-Length: 6\r\n\r\n", 400},
		{"CL differing list", "POST / HTTP/1.1\r\n" + h + "Content-Length: 5, 6\r\n\r\n", 400},
		{"CL empty list member", "POST / HTTP/1.1\r\n" + h + "Content-Length: 5,\r\n\r\n", 400},
		{"CL plus", "POST / HTTP/1.1\r\n" + h + "Content-Length: +5\r\n\r\n", 400},
		{"CL minus", "POST / HTTP/1.1\r\n" + h + "Content-Length: -1\r\n\r\n", 400},
		{"CL inner space", "POST / HTTP/1.1\r\n" + h + "Content-Length:  5 5\r\n\r\n", 400},
		{"CL hex", "POST / HTTP/1.1\r\n" + h + "Content-Length: 0x5\r\n\r\n", 400},
		{"CL empty", "POST / HTTP/1.1\r\n" + h + "Content-Length:\r\n\r\n", 400},
		{"CL overflow", "POST / HTTP/1.1\r\n" + h + "Content-Length: 9223372036854775808\r\n\r\n", 400},
		{"CL max int64", "POST / HTTP/1.1\r\n" + h + "Content-Length: 9223372036854775807\r\n\r\n", 0},
		{"CL decimal point", "POST / HTTP/1.1\r\n" + h + "Content-Length: 5.0\r\n\r\n", 400},

		// Transfer-Encoding (RFC 9112 §6.1, §6.3, §7).
		{"TE chunked", "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\n\r\n", 0},
		{"TE Chunked case", "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: ChUnKeD\r\n\r\n", 0},
		{"TE chunked trailing OWS", "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked \t\r\n\r\n", 0},
		{"TE + CL", "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", 400},
		{"CL + TE", "POST / HTTP/1.1\r\n" + h + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
		{"TE gzip, chunked", "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: gzip, chunked\r\n\r\n", 501},
		{"TE gzip then chunked lines", "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n", 501},
		{"TE chunked, gzip", "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked, gzip\r\n\r\n", 400},
		{"TE chunked then gzip lines", "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n", 400},
		{"TE gzip", "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: gzip\r\n\r\n", 400},
		{"TE identity", "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: identity\r\n\r\n", 400},
		{"TE xchunked", "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: xchunked\r\n\r\n", 400},
		{"TE chunkedx", "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: chunkedx\r\n\r\n", 400},
		{"TE chunked, chunked", "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked, chunked\r\n\r\n", 400},
		{"TE chunked twice lines", "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
		{"TE trailing comma", "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked,\r\n\r\n", 400},
		{"TE leading comma", "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: , chunked\r\n\r\n", 400},
		{"TE empty", "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding:\r\n\r\n", 400},
		{"TE inner space", "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: chun ked\r\n\r\n", 400},
		{"TE vertical tab", "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: \x0bchunked\r\n\r\n", 400},
		{"TE form feed", "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\x0c\r\n\r\n", 400},
		{"TE name space", "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding : chunked\r\n\r\n", 400},
		{"TE obs-fold", "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding:\r\n chunked\r\n\r\n", 400},
		{"TE chunked with param", "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked;q=1\r\n\r\n", 400},
		{"TE quoted", "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: \"chunked\"\r\n\r\n", 400},
		{"TE in HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
		{"TE underscore name is another field", "POST / HTTP/1.1\r\n" + h + "Transfer_Encoding: chunked\r\n\r\n", 0},

		// Limits (RFC 9112 §3, RFC 6585 §5).
		{"header section too large", "GET / HTTP/1.1\r\n" + h + "X-A: " + strings.Repeat("b", 40000) + "\r\n\r\n", 431},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			_, err := readReq(t, tc.raw, Limits{})
			if got := statusOf(err); got != tc.status {
				t.Fatalf("status = %d (%v), want %d", got, err, tc.status)
			}
		})
	}
}

func TestReadRequestLimits(t *testing.T) {
	t.Parallel()
	lim := Limits{MaxRequestLine: 20, MaxHeaderBytes: 40, MaxHeaderCount: 2}
	tests := []struct {
		desc   string
		raw    string
		status int
	}{
		{"line at limit", "GET /" + strings.Repeat("a", 6) + " HTTP/1.1\r\nHost: a\r\n\r\n", 0},
		{"line over limit", "GET /" + strings.Repeat("a", 7) + " HTTP/1.1\r\nHost: a\r\n\r\n", 414},
		{"count at limit", "GET / HTTP/1.1\r\nHost: a\r\nA: b\r\n\r\n", 0},
		{"count over limit", "GET / HTTP/1.1\r\nHost: a\r\nA: b\r\nC: d\r\n\r\n", 431},
		{"bytes at limit", "GET / HTTP/1.1\r\nHost: a\r\nA: " + strings.Repeat("b", 24) + "\r\n\r\n", 0},
		{"bytes over limit", "GET / HTTP/1.1\r\nHost: a\r\nA: " + strings.Repeat("b", 25) + "\r\n\r\n", 431},
		{"empty lines bounded", strings.Repeat("\r\n", 11) + "GET / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			_, err := readReq(t, tc.raw, lim)
			if got := statusOf(err); got != tc.status {
				t.Fatalf("status = %d (%v), want %d", got, err, tc.status)
			}
		})
	}
}

func TestReadRequestFields(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc                      string
		raw                       string
		method, path, query, host string
		noQuery                   bool
		minor                     int
		cl                        int64
		chunked, keep, up, expect bool
	}{
		{desc: "origin-form", raw: "GET /a/b?c=d&e HTTP/1.1\r\nHost: h\r\n\r\n",
			method: "GET", path: "/a/b", query: "c=d&e", host: "h", minor: 1, cl: -1, keep: true},
		{desc: "no query", raw: "GET /a HTTP/1.1\r\nHost: h\r\n\r\n",
			method: "GET", path: "/a", noQuery: true, host: "h", minor: 1, cl: -1, keep: true},
		{desc: "empty query", raw: "GET /a? HTTP/1.1\r\nHost: h\r\n\r\n",
			method: "GET", path: "/a", host: "h", minor: 1, cl: -1, keep: true},
		{desc: "absolute-form overrides Host", raw: "GET http://x.y:81/p?q HTTP/1.1\r\nHost: other\r\n\r\n",
			method: "GET", path: "/p", query: "q", host: "x.y:81", minor: 1, cl: -1, keep: true},
		{desc: "absolute-form empty path", raw: "GET http://x.y?q HTTP/1.1\r\nHost: x.y\r\n\r\n",
			method: "GET", path: "/", query: "q", host: "x.y", minor: 1, cl: -1, keep: true},
		{desc: "absolute-form no path", raw: "GET http://x.y HTTP/1.1\r\nHost: x.y\r\n\r\n",
			method: "GET", path: "/", noQuery: true, host: "x.y", minor: 1, cl: -1, keep: true},
		{desc: "1.0 default close", raw: "GET / HTTP/1.0\r\n\r\n",
			method: "GET", path: "/", noQuery: true, minor: 0, cl: -1},
		{desc: "1.0 keep-alive", raw: "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n",
			method: "GET", path: "/", noQuery: true, minor: 0, cl: -1, keep: true},
		{desc: "1.1 close", raw: "GET / HTTP/1.1\r\nHost: h\r\nConnection: foo, CLOSE\r\n\r\n",
			method: "GET", path: "/", noQuery: true, host: "h", minor: 1, cl: -1},
		{desc: "upgrade", raw: "GET /ws HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n",
			method: "GET", path: "/ws", noQuery: true, host: "h", minor: 1, cl: -1, keep: true, up: true},
		{desc: "upgrade without Connection option", raw: "GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\r\n",
			method: "GET", path: "/ws", noQuery: true, host: "h", minor: 1, cl: -1, keep: true},
		{desc: "upgrade ignored in 1.0", raw: "GET /ws HTTP/1.0\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n",
			method: "GET", path: "/ws", noQuery: true, minor: 0, cl: -1},
		{desc: "expect", raw: "PUT /u HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\n",
			method: "PUT", path: "/u", noQuery: true, host: "h", minor: 1, cl: 3, keep: true, expect: true},
		{desc: "expect ignored in 1.0", raw: "PUT /u HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n",
			method: "PUT", path: "/u", noQuery: true, minor: 0, cl: 3},
		{desc: "chunked", raw: "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n",
			method: "POST", path: "/", noQuery: true, host: "h", minor: 1, cl: -1, chunked: true, keep: true},
		{desc: "CL list", raw: "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 7 ,7\r\n\r\n",
			method: "POST", path: "/", noQuery: true, host: "h", minor: 1, cl: 7, keep: true},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			r, err := readReq(t, tc.raw, Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if string(r.Method) != tc.method || string(r.Path) != tc.path || string(r.Query) != tc.query ||
				(r.Query == nil) != tc.noQuery || string(r.Host) != tc.host {
				t.Errorf("method %q path %q query %q (nil %v) host %q", r.Method, r.Path, r.Query, r.Query == nil, r.Host)
			}
			if r.ProtoMinor != tc.minor || r.ContentLength != tc.cl || r.Chunked != tc.chunked ||
				r.KeepAlive != tc.keep || r.Upgrade != tc.up || r.ExpectContinue != tc.expect {
				t.Errorf("minor %d cl %d chunked %v keep %v upgrade %v expect %v",
					r.ProtoMinor, r.ContentLength, r.Chunked, r.KeepAlive, r.Upgrade, r.ExpectContinue)
			}
		})
	}
}

func TestRequestHeaders(t *testing.T) {
	t.Parallel()
	raw := "GET / HTTP/1.1\r\nHost: h\r\nX-Foo:  bar \t\r\nx-foo: second\r\nConnection: close, X-Foo\r\n\r\n"
	r, err := readReq(t, raw, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Headers) != 4 || string(r.Headers[1].Name) != "X-Foo" || string(r.Headers[1].Value) != "bar" {
		t.Fatalf("headers %q", r.Headers)
	}
	if got := r.Header("X-FOO"); string(got) != "bar" {
		t.Errorf("Header = %q", got)
	}
	if r.Header("missing") != nil {
		t.Error("missing header not nil")
	}
	if !HasToken(r.Headers, "Connection", []byte("x-foo")) || HasToken(r.Headers, "Connection", []byte("x-fo")) {
		t.Error("HasToken")
	}
	if r.BodyMode() != BodyNone {
		t.Error("BodyMode")
	}
}

func TestReadRequestEOF(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc string
		raw  string
		want error
	}{
		{"empty", "", io.EOF},
		{"stray CRLF then close", "\r\n", io.EOF},
		{"partial line", "GET / HT", io.ErrUnexpectedEOF},
		{"partial head", "GET / HTTP/1.1\r\nHost: a\r\n", io.ErrUnexpectedEOF},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			_, err := readReq(t, tc.raw, Limits{})
			if err != tc.want {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

// TestPipelined reads several requests with bodies from one buffer and
// checks that slices of an earlier request survive reading later bytes.
func TestPipelined(t *testing.T) {
	t.Parallel()
	raw := "POST /one HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello" +
		"POST /two HTTP/1.1\r\nHost: b\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\nT: v\r\n\r\n" +
		"\r\nGET /three?x HTTP/1.1\r\nHost: c\r\n\r\n"
	for _, oneByte := range []bool{false, true} {
		var src io.Reader = strings.NewReader(raw)
		if oneByte {
			src = iotest.OneByteReader(src)
		}
		br := bufio.NewReaderSize(src, 16)
		var reqs [3]Request
		var body BodyReader
		wantPaths := []string{"/one", "/two", "/three"}
		wantBodies := []string{"hello", "abcde", ""}
		for i := range reqs {
			r := &reqs[i]
			if err := ReadRequest(br, r, Limits{}); err != nil {
				t.Fatalf("request %d: %v", i, err)
			}
			body.Reset(br, r.BodyMode(), r.ContentLength)
			b, err := io.ReadAll(&body)
			if err != nil {
				t.Fatalf("body %d: %v", i, err)
			}
			if string(b) != wantBodies[i] {
				t.Errorf("body %d = %q", i, b)
			}
		}
		if len(body.Trailers()) != 0 {
			t.Error("trailers not reset")
		}
		for i := range reqs {
			if string(reqs[i].Path) != wantPaths[i] {
				t.Errorf("path %d = %q", i, reqs[i].Path)
			}
		}
		if string(reqs[0].Host) != "a" || string(reqs[1].Host) != "b" {
			t.Errorf("hosts %q %q", reqs[0].Host, reqs[1].Host)
		}
		var r Request
		if err := ReadRequest(br, &r, Limits{}); err != io.EOF {
			t.Fatalf("after last: %v", err)
		}
	}
}
