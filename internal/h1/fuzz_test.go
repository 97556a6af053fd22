package h1

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"strings"
	"testing"
	"testing/iotest"
)

var requestSeeds = []string{
	browserRequest,
	"GET / HTTP/1.0\r\n\r\n",
	"\r\nGET http://a.b:8/x?y HTTP/1.1\r\nHost: z\r\n\r\n",
	"POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello",
	"POST /p HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5;e=\"v\"\r\nhello\r\n0\r\nT: 1\r\n\r\n",
	"POST /p HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\nContent-Length: 3\r\n\r\n",
	"CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n",
	"OPTIONS * HTTP/1.1\r\nHost: h\r\nConnection: upgrade\r\nUpgrade: x\r\nExpect: 100-continue\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: [::1]:80\r\nContent-Length: 1, 1\r\n\r\nx",
}

// headString renders a request's parsed state for comparisons.
func headString(r *Request) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%q %q %q %q(%v) %d %q cl=%d ch=%v ka=%v up=%v ex=%v",
		r.Method, r.RequestURI, r.Path, r.Query, r.Query == nil, r.ProtoMinor, r.Host,
		r.ContentLength, r.Chunked, r.KeepAlive, r.Upgrade, r.ExpectContinue)
	for _, h := range r.Headers {
		fmt.Fprintf(&b, " %q=%q", h.Name, h.Value)
	}
	return b.String()
}

func FuzzReadRequest(f *testing.F) {
	for _, s := range requestSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var r, r2 Request
		br := bufio.NewReader(bytes.NewReader(data))
		err := ReadRequest(br, &r, Limits{})
		// Streaming must not change the outcome.
		err2 := ReadRequest(bufio.NewReaderSize(iotest.OneByteReader(bytes.NewReader(data)), 16), &r2, Limits{})
		if statusOf(err) != statusOf(err2) || (err == nil && headString(&r) != headString(&r2)) {
			t.Fatalf("one-byte reader disagrees: %v vs %v\n%s\n%s", err, err2, headString(&r), headString(&r2))
		}
		if err != nil {
			if s := statusOf(err); s != -1 && s != 400 && s != 414 && s != 431 && s != 501 && s != 505 {
				t.Fatalf("unexpected status %d", s)
			}
			return
		}
		checkRequestInvariants(t, &r)
		// A re-serialized head must parse to the same request.
		head := AppendRequestLine(nil, r.Method, r.RequestURI, r.ProtoMinor)
		head = append(AppendHeaders(head, r.Headers), '\r', '\n')
		var r3 Request
		if err := ReadRequest(bufio.NewReader(bytes.NewReader(head)), &r3, Limits{}); err != nil || headString(&r) != headString(&r3) {
			t.Fatalf("re-parse: %v\n%s\n%s", err, headString(&r), headString(&r3))
		}
		// The body must terminate on finite input.
		var body BodyReader
		body.Reset(br, r.BodyMode(), r.ContentLength)
		io.Copy(io.Discard, &body)

		differentialRequest(t, data, &r)
	})
}

func checkRequestInvariants(t *testing.T, r *Request) {
	t.Helper()
	if r.ContentLength >= 0 && r.Chunked {
		t.Fatal("both Content-Length and chunked")
	}
	if r.ProtoMinor != 0 && r.ProtoMinor != 1 {
		t.Fatal("bad ProtoMinor")
	}
	if r.ProtoMinor == 1 && r.Host == nil {
		t.Fatal("HTTP/1.1 without Host")
	}
	if r.Chunked && r.ProtoMinor == 0 {
		t.Fatal("chunked HTTP/1.0")
	}
	if !isToken(r.Method) || len(r.RequestURI) == 0 {
		t.Fatal("bad request line")
	}
	if string(r.Method) != "CONNECT" && len(r.Path) == 0 {
		t.Fatal("empty Path")
	}
	n := 0
	for _, h := range r.Headers {
		if !isToken(h.Name) || !validFieldValue(h.Value) || len(trimOWS(h.Value)) != len(h.Value) {
			t.Fatalf("bad header %q: %q", h.Name, h.Value)
		}
		if EqualFold(h.Name, "host") {
			n++
		}
	}
	if n > 1 {
		t.Fatal("several Host")
	}
}

// differentialRequest compares with net/http when it accepts the input too.
func differentialRequest(t *testing.T, data []byte, r *Request) {
	hr, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(data)))
	if err != nil {
		return
	}
	if hr.Method != string(r.Method) || hr.RequestURI != string(r.RequestURI) || hr.Host != string(r.Host) {
		t.Fatalf("net/http: %q %q %q; h1: %q %q %q", hr.Method, hr.RequestURI, hr.Host, r.Method, r.RequestURI, r.Host)
	}
	if r.Chunked != (len(hr.TransferEncoding) == 1 && hr.TransferEncoding[0] == "chunked") {
		t.Fatalf("chunked: net/http %q, h1 %v", hr.TransferEncoding, r.Chunked)
	}
	if r.ContentLength >= 0 && hr.ContentLength != r.ContentLength {
		t.Fatalf("content-length: net/http %d, h1 %d", hr.ContentLength, r.ContentLength)
	}
	if r.ContentLength < 0 && !r.Chunked && hr.ContentLength != 0 {
		t.Fatalf("no body: net/http content-length %d", hr.ContentLength)
	}
	if hr.Close == r.KeepAlive {
		t.Fatalf("keep-alive: net/http close=%v, h1 keep-alive=%v", hr.Close, r.KeepAlive)
	}
}

func FuzzReadResponse(f *testing.F) {
	for _, s := range []string{
		smallResponse + "0123456789abc",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
		"HTTP/1.0 200\r\n\r\nuntil close",
		"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
		"HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\nConnection: close\r\n\r\n",
	} {
		for m := byte(0); m < 4; m++ {
			f.Add([]byte(s), m)
		}
	}
	methods := []string{"GET", "HEAD", "CONNECT", "POST"}
	f.Fuzz(func(t *testing.T, data []byte, m byte) {
		method := []byte(methods[int(m)%len(methods)])
		var r, r2 Response
		br := bufio.NewReader(bytes.NewReader(data))
		err := ReadResponse(br, &r, Limits{}, method)
		err2 := ReadResponse(bufio.NewReaderSize(iotest.OneByteReader(bytes.NewReader(data)), 16), &r2, Limits{}, method)
		if statusOf(err) != statusOf(err2) || (err == nil && fmt.Sprint(r.StatusCode, r.BodyMode, r.ContentLength, r.KeepAlive, string(r.Reason), len(r.Headers)) !=
			fmt.Sprint(r2.StatusCode, r2.BodyMode, r2.ContentLength, r2.KeepAlive, string(r2.Reason), len(r2.Headers))) {
			t.Fatalf("one-byte reader disagrees: %v vs %v", err, err2)
		}
		if err != nil {
			if s := statusOf(err); s != -1 && s != 502 {
				t.Fatalf("unexpected status %d", s)
			}
			return
		}
		if r.Chunked && r.ContentLength >= 0 {
			t.Fatal("both Content-Length and chunked")
		}
		switch r.BodyMode {
		case BodyNone:
		case BodyLength:
			if r.ContentLength < 0 {
				t.Fatal("BodyLength without length")
			}
		case BodyChunked:
			if !r.Chunked {
				t.Fatal("BodyChunked without chunked")
			}
		case BodyUntilClose:
			if r.KeepAlive {
				t.Fatal("until-close keep-alive")
			}
		default:
			t.Fatal("bad BodyMode")
		}
		if r.StatusCode < 100 || r.StatusCode > 599 {
			t.Fatal("bad status")
		}
		var body BodyReader
		body.Reset(br, r.BodyMode, r.ContentLength)
		io.Copy(io.Discard, &body)
		if hr, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(data)), nil); err == nil && hr.StatusCode != r.StatusCode {
			t.Fatalf("status: net/http %d, h1 %d", hr.StatusCode, r.StatusCode)
		}
	})
}

type chunkResult struct {
	body     string
	trailers string
	status   int
}

func readChunked(data []byte, oneByte bool) chunkResult {
	var src io.Reader = bytes.NewReader(data)
	size := 4096
	if oneByte {
		src, size = iotest.OneByteReader(src), 16
	}
	var b BodyReader
	b.Reset(bufio.NewReaderSize(src, size), BodyChunked, -1)
	body, err := io.ReadAll(&b)
	res := chunkResult{body: string(body), status: statusOf(err)}
	if err == nil {
		for _, h := range b.Trailers() {
			res.trailers += string(h.Name) + ": " + string(h.Value) + "\n"
		}
	}
	return res
}

func FuzzChunkedBody(f *testing.F) {
	for _, s := range []string{
		"5\r\nhello\r\n0\r\n\r\n",
		"3;a=b;c=\"d\\\"\"\r\nabc\r\n0\r\nX: y\r\nZ:\r\n\r\n",
		"A \t;x\r\n0123456789\r\n00\r\n\r\n",
		chunkedInput(100, 3),
	} {
		f.Add([]byte(s), uint8(7))
	}
	f.Fuzz(func(t *testing.T, data []byte, split uint8) {
		res := readChunked(data, false)
		if res2 := readChunked(data, true); res != res2 {
			t.Fatalf("one-byte reader disagrees: %+v vs %+v", res, res2)
		}
		if res.status != 0 {
			if res.status != 400 && res.status != -1 {
				t.Fatalf("unexpected status %d", res.status)
			}
			return
		}
		// Re-encode with other chunk boundaries and decode again.
		var out bytes.Buffer
		bw := bufio.NewWriterSize(&out, 16)
		var cw ChunkedWriter
		cw.Reset(bw)
		n := int(split) + 1
		for p := []byte(res.body); len(p) > 0; {
			k := min(n, len(p))
			cw.Write(p[:k])
			p = p[k:]
		}
		var b BodyReader
		b.Reset(bufio.NewReader(bytes.NewReader(data)), BodyChunked, -1)
		io.Copy(io.Discard, &b)
		if err := cw.Close(b.Trailers()); err != nil {
			t.Fatal(err)
		}
		bw.Flush()
		if res2 := readChunked(out.Bytes(), false); res2 != res {
			t.Fatalf("round trip: %+v vs %+v", res, res2)
		}
		// net/http's chunked reader must see the same data when it accepts.
		got, err := io.ReadAll(httputil.NewChunkedReader(bytes.NewReader(data)))
		if err == nil && string(got) != res.body {
			t.Fatalf("net/http body %q, h1 %q", got, res.body)
		}
	})
}
