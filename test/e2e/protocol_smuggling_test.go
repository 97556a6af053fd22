package e2e

import (
	"bufio"
	"net"
	"strconv"
	"testing"
	"time"
)

// protoVector is a hostile request and how each engine answers it.
type protoVector struct {
	name string
	raw  string
	fast int // the fast engine's status
	// std is the std engine's (Go net/http) status when it differs; 0 means
	// the same as fast.
	std int
	// stdAccepts: net/http accepts the request (the comment on the case says
	// how it reads it); the test asserts 200 and one whole upstream request.
	stdAccepts bool
	// stdWaits: net/http with h2c enabled waits for the 24 bytes of a
	// possible HTTP/2 preface before parsing, so a shorter request gets no
	// answer until more bytes come or read_header expires.
	stdWaits bool
}

const protoHead = "POST /smuggle HTTP/1.1\r\nHost: example.com\r\n"

// Differences of the std engine (net/http) are marked per case. None of them
// lets a request hide inside another towards the upstream: net/http re-frames
// every request it forwards. They matter when sluice runs behind another
// proxy that reads the same bytes differently.
var protoVectors = []protoVector{
	// net/http reads CL+TE as chunked, drops Content-Length, and keeps the
	// connection open (RFC 9112 §6.3 allows processing it if the connection
	// is closed afterwards; net/http does not close it).
	{name: "cl-and-te", raw: protoHead + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", fast: 400, stdAccepts: true},
	{name: "te-and-cl", raw: protoHead + "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n", fast: 400, stdAccepts: true},
	{name: "cl-duplicate-differing", raw: protoHead + "Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", fast: 400},
	{name: "cl-plus", raw: protoHead + "Content-Length: +5\r\n\r\nhello", fast: 400},
	{name: "cl-negative", raw: protoHead + "Content-Length: -1\r\n\r\n", fast: 400},
	{name: "cl-list-differing", raw: protoHead + "Content-Length: 5, 6\r\n\r\nhello!", fast: 400},
	{name: "cl-hex", raw: protoHead + "Content-Length: 0x5\r\n\r\nhello", fast: 400},
	// RFC 9112 §6.3: chunked not final is 400; net/http answers 501
	// ("unsupported transfer encoding") and closes.
	{name: "te-chunked-identity", raw: protoHead + "Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n", fast: 400, std: 501},
	{name: "te-xchunked", raw: protoHead + "Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", fast: 400, std: 501},
	{name: "te-chunked-twice", raw: protoHead + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", fast: 400, std: 501},
	// A coding we do not implement, applied before chunked: 501 (RFC 9112 §6.1).
	{name: "te-gzip-chunked", raw: protoHead + "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", fast: 501},
	// net/http ignores Transfer-Encoding in HTTP/1.0: no body, and the
	// connection closes after the answer (HTTP/1.0 without keep-alive).
	{name: "te-chunked-http10", raw: "POST /smuggle HTTP/1.0\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", fast: 400, stdAccepts: true},
	{name: "te-space-before-colon", raw: protoHead + "Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n", fast: 400},
	{name: "space-before-colon", raw: protoHead + "X-Foo : bar\r\nContent-Length: 0\r\n\r\n", fast: 400},
	// net/http unfolds obs-fold into a space (RFC 9112 §5.2 allows that
	// instead of 400).
	{name: "obs-fold", raw: protoHead + "X-Foo: a\r\n b\r\nContent-Length: 0\r\n\r\n", fast: 400, stdAccepts: true},
	{name: "obs-fold-te", raw: protoHead + "Transfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n", fast: 400, stdAccepts: true},
	// Chunk errors surface while the body streams: net/http has sent the
	// head upstream by then (the upstream sees a truncated body); the
	// client gets 400.
	{name: "chunk-size-zz", raw: protoHead + "Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", fast: 400},
	{name: "chunk-size-0x", raw: protoHead + "Transfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n", fast: 400},
	{name: "chunk-size-overflow", raw: protoHead + "Transfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\nhello\r\n0\r\n\r\n", fast: 400},
	// net/http trims whitespace after the chunk size.
	{name: "chunk-size-space", raw: protoHead + "Transfer-Encoding: chunked\r\n\r\n5 \r\nhello\r\n0\r\n\r\n", fast: 400, stdAccepts: true},
	{name: "chunk-missing-crlf", raw: protoHead + "Transfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n", fast: 400},
	{name: "chunk-bare-lf", raw: protoHead + "Transfer-Encoding: chunked\r\n\r\n5\nhello\n0\n\n", fast: 400},
	{name: "nul-in-value", raw: protoHead + "X-Foo: a\x00b\r\nContent-Length: 0\r\n\r\n", fast: 400},
	{name: "cr-in-value", raw: protoHead + "X-Foo: a\rb\r\nContent-Length: 0\r\n\r\n", fast: 400},
	// net/http accepts a bare LF as a line end (RFC 9112 §2.2 allows it).
	{name: "bare-lf-header", raw: protoHead + "X-Foo: a\nContent-Length: 0\r\n\r\n", fast: 400, stdAccepts: true},
	{name: "request-line-garbage", raw: "GARBAGE\r\n\r\n", fast: 400, stdWaits: true},
	{name: "request-line-binary", raw: "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", fast: 400},
	{name: "request-line-long-garbage", raw: "THIS IS NOT HTTP AT ALL, NOT EVEN CLOSE\r\n\r\n", fast: 400},
	{name: "request-line-double-space", raw: "GET  / HTTP/1.1\r\nHost: x\r\n\r\n", fast: 400},
	{name: "request-line-http09", raw: "GET /\r\n\r\n", fast: 400, stdWaits: true},
	{name: "request-line-lowercase-version", raw: "GET / http/1.1\r\nHost: x\r\n\r\n", fast: 400},
	{name: "http2-version-on-h1", raw: "GET / HTTP/2.0\r\nHost: x\r\n\r\n", fast: 505},
	{name: "http3-version-on-h1", raw: "GET / HTTP/3.0\r\nHost: x\r\n\r\n", fast: 505},
	{name: "missing-host", raw: "GET / HTTP/1.1\r\n\r\n", fast: 400},
	{name: "missing-host-long", raw: "GET /a/longer/path/here HTTP/1.1\r\n\r\n", fast: 400},
	{name: "double-host", raw: "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", fast: 400},
}

// TestProtoSmuggling sends each hostile request on its own connection: the
// gateway must answer the exact error status, close the connection, and send
// no request to the upstream.
func TestProtoSmuggling(t *testing.T) {
	for _, engine := range protoEngines {
		t.Run(engine, func(t *testing.T) {
			up := protoNewUpstream(t, nil)
			g := protoGateway(t, engine, up.Addr, "")
			for _, v := range protoVectors {
				t.Run(v.name, func(t *testing.T) {
					want := v.fast
					if engine == "std" && v.std != 0 {
						want = v.std
					}
					accepted := engine == "std" && v.stdAccepts
					waits := engine == "std" && v.stdWaits
					timeout := 3 * time.Second
					if accepted || waits {
						timeout = 500 * time.Millisecond
					}
					before := len(up.Seen())
					resp, closed := RawRequest(t, g.Addr, v.raw, timeout)
					time.Sleep(30 * time.Millisecond) // let a late upstream request show
					seen := up.Seen()[before:]
					switch {
					case waits:
						if resp != "" || len(seen) != 0 {
							t.Fatalf("net/http answered %q, upstream saw %d", resp, len(seen))
						}
						return
					case accepted:
						if StatusOf(resp) != 200 || len(seen) != 1 || seen[0].BodyErr != nil {
							t.Fatalf("std: got %q; upstream saw %+v", resp, seen)
						}
						return
					}
					if got := StatusOf(resp); got != want {
						t.Errorf("status %d, want %d; response:\n%s", got, want, resp)
					}
					if !closed {
						t.Errorf("connection left open after %d", StatusOf(resp))
					}
					if n := protoCountResponses(resp); n != 1 {
						t.Errorf("%d responses, want 1:\n%s", n, resp)
					}
					for _, s := range seen {
						// The fast engine never sends anything upstream before
						// the request is known good; net/http may have sent the
						// head of a body that then fails, never a whole request.
						if engine == "fast" || s.BodyErr == nil {
							t.Errorf("upstream received %s %s (body %q, err %v)", s.Method, s.URI, s.Body, s.BodyErr)
						}
					}
				})
			}
			protoAlive(t, g)
		})
	}
}

// TestProtoSmugglingPipelined hides a request inside a valid request's body:
// the upstream must see exactly one request, carrying the hidden one as body.
func TestProtoSmugglingPipelined(t *testing.T) {
	smuggled := "GET /admin HTTP/1.1\r\nHost: example.com\r\n\r\n"
	cases := []struct{ name, raw string }{
		{"content-length", "POST /upload HTTP/1.1\r\nHost: example.com\r\nContent-Length: " +
			strconv.Itoa(len(smuggled)) + "\r\n\r\n" + smuggled},
		{"chunked", "POST /upload HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n" +
			strconv.FormatInt(int64(len(smuggled)), 16) + "\r\n" + smuggled + "\r\n0\r\n\r\n"},
	}
	for _, engine := range protoEngines {
		t.Run(engine, func(t *testing.T) {
			up := protoNewUpstream(t, nil)
			g := protoGateway(t, engine, up.Addr, "")
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					before := len(up.Seen())
					c, err := net.Dial("tcp", g.Addr)
					if err != nil {
						t.Fatal(err)
					}
					defer c.Close()
					c.Write([]byte(tc.raw))
					br := bufio.NewReader(c)
					c.SetReadDeadline(time.Now().Add(3 * time.Second))
					resp, body := protoReadResponse(t, br, "POST")
					if resp.StatusCode != 200 || body != "ok" {
						t.Fatalf("got %d %q", resp.StatusCode, body)
					}
					// Nothing more may come: a second response would mean the
					// body was taken for a request.
					c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
					if extra, _ := br.Peek(1); len(extra) > 0 {
						rest, _ := br.Peek(br.Buffered())
						t.Fatalf("extra bytes after the response: %q", rest)
					}
					seen := up.Seen()[before:]
					if len(seen) != 1 {
						t.Fatalf("upstream saw %d requests, want 1: %+v", len(seen), seen)
					}
					if seen[0].URI != "/upload" || string(seen[0].Body) != smuggled {
						t.Fatalf("upstream saw %s with body %q", seen[0].URI, seen[0].Body)
					}
				})
			}
		})
	}
}
