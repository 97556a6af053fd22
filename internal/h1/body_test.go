package h1

import (
	"bufio"
	"bytes"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func readBody(raw string, mode int, cl int64, oneByte bool, lim Limits) (string, []Header, string, error) {
	var src io.Reader = strings.NewReader(raw)
	if oneByte {
		src = iotest.OneByteReader(src)
	}
	br := bufio.NewReaderSize(src, 16)
	b := BodyReader{Limits: lim}
	b.Reset(br, mode, cl)
	data, err := io.ReadAll(&b)
	rest, _ := io.ReadAll(br)
	return string(data), b.Trailers(), string(rest), err
}

func TestChunkedBody(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 5000)
	tests := []struct {
		desc     string
		raw      string
		status   int // 0 ok, -1 non-*Error (unexpected EOF)
		body     string
		trailers string // "k=v;k=v"
	}{
		{desc: "simple", raw: "5\r\nhello\r\n0\r\n\r\n", body: "hello"},
		{desc: "several", raw: "3\r\nabc\r\n1\r\nd\r\n0\r\n\r\n", body: "abcd"},
		{desc: "upper hex", raw: "A\r\n0123456789\r\n0\r\n\r\n", body: "0123456789"},
		{desc: "leading zeros", raw: "0005\r\nhello\r\n000\r\n\r\n", body: "hello"},
		{desc: "empty body", raw: "0\r\n\r\n", body: ""},
		{desc: "extensions", raw: "5;a=b;c\r\nhello\r\n0;last\r\n\r\n", body: "hello"},
		{desc: "ext BWS", raw: "5 ;\ta = \"q\\\"x\"\r\nhello\r\n0\r\n\r\n", body: "hello"},
		{desc: "trailers", raw: "5\r\nhello\r\n0\r\nA: 1\r\nb-c:  two \r\n\r\n", body: "hello", trailers: "A=1;b-c=two"},

		{desc: "no size", raw: "\r\nhello\r\n0\r\n\r\n", status: 400},
		{desc: "0x prefix", raw: "0x5\r\nhello\r\n0\r\n\r\n", status: 400},
		{desc: "plus sign", raw: "+5\r\nhello\r\n0\r\n\r\n", status: 400},
		{desc: "minus sign", raw: "-5\r\nhello\r\n0\r\n\r\n", status: 400},
		{desc: "leading space", raw: " 5\r\nhello\r\n0\r\n\r\n", status: 400},
		{desc: "trailing space", raw: "5 \r\nhello\r\n0\r\n\r\n", status: 400},
		{desc: "trailing tab", raw: "5\t\r\nhello\r\n0\r\n\r\n", status: 400},
		{desc: "non-hex", raw: "5g\r\nhello\r\n0\r\n\r\n", status: 400},
		{desc: "overflow", raw: "8000000000000000\r\nhello\r\n0\r\n\r\n", status: 400},
		{desc: "huge overflow", raw: "fffffffffffffffffff\r\nhello\r\n0\r\n\r\n", status: 400},
		{desc: "bare LF size line", raw: "5\nhello\r\n0\r\n\r\n", status: 400},
		{desc: "bare CR size line", raw: "5\rhello\r\n0\r\n\r\n", status: 400},
		{desc: "data too long", raw: "5\r\nhello!\r\n0\r\n\r\n", status: 400},
		{desc: "data LF only", raw: "5\r\nhello\n0\r\n\r\n", status: 400},
		{desc: "data no CRLF", raw: "5\r\nhello0\r\n\r\n", status: 400},
		{desc: "empty ext", raw: "5;\r\nhello\r\n0\r\n\r\n", status: 400},
		{desc: "ext bad name", raw: "5;a@b\r\nhello\r\n0\r\n\r\n", status: 400},
		{desc: "ext missing value", raw: "5;a=\r\nhello\r\n0\r\n\r\n", status: 400},
		{desc: "ext unterminated quote", raw: "5;a=\"b\r\nhello\r\n0\r\n\r\n", status: 400},
		{desc: "ext junk after value", raw: "5;a=b c\r\nhello\r\n0\r\n\r\n", status: 400},
		{desc: "ext NUL", raw: "5;a=\"\x00\"\r\nhello\r\n0\r\n\r\n", status: 400},
		{desc: "ext too long", raw: "5;a=" + long + "\r\nhello\r\n0\r\n\r\n", status: 400},
		{desc: "trailer obs-fold", raw: "0\r\nA: 1\r\n 2\r\n\r\n", status: 400},
		{desc: "trailer space before colon", raw: "0\r\nA : 1\r\n\r\n", status: 400},
		{desc: "trailer bare LF", raw: "0\r\nA: 1\n\r\n", status: 400},
		{desc: "trailer end bare LF", raw: "0\r\n\n", status: 400},
		{desc: "trailer too large", raw: "0\r\nA: " + long + "\r\n\r\n", status: 400},
		{desc: "truncated data", raw: "5\r\nhel", status: -1},
		{desc: "truncated size", raw: "5", status: -1},
		{desc: "missing last chunk", raw: "5\r\nhello\r\n", status: -1},
		{desc: "missing final CRLF", raw: "0\r\n", status: -1},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			for _, oneByte := range []bool{false, true} {
				body, trailers, rest, err := readBody(tc.raw+"NEXT", BodyChunked, -1, oneByte, Limits{MaxHeaderBytes: 4096})
				if tc.status == -1 {
					body, trailers, rest, err = readBody(tc.raw, BodyChunked, -1, oneByte, Limits{})
					if err != io.ErrUnexpectedEOF {
						t.Fatalf("err = %v, want unexpected EOF", err)
					}
					continue
				}
				if got := statusOf(err); got != tc.status {
					t.Fatalf("oneByte=%v: status %d (%v), want %d", oneByte, got, err, tc.status)
				}
				if err != nil {
					continue
				}
				var tr []string
				for _, h := range trailers {
					tr = append(tr, string(h.Name)+"="+string(h.Value))
				}
				if body != tc.body || strings.Join(tr, ";") != tc.trailers || rest != "NEXT" {
					t.Errorf("body %q trailers %q rest %q", body, tr, rest)
				}
			}
		})
	}
}

func TestLengthBody(t *testing.T) {
	t.Parallel()
	for _, oneByte := range []bool{false, true} {
		body, _, rest, err := readBody("helloNEXT", BodyLength, 5, oneByte, Limits{})
		if err != nil || body != "hello" || rest != "NEXT" {
			t.Errorf("got %q %q %v", body, rest, err)
		}
		_, _, _, err = readBody("hel", BodyLength, 5, oneByte, Limits{})
		if err != io.ErrUnexpectedEOF {
			t.Errorf("short body: %v", err)
		}
		body, _, _, err = readBody("all of it", BodyUntilClose, -1, oneByte, Limits{})
		if err != nil || body != "all of it" {
			t.Errorf("until close %q %v", body, err)
		}
		body, _, rest, err = readBody("NEXT", BodyNone, 7, oneByte, Limits{})
		if err != nil || body != "" || rest != "NEXT" {
			t.Errorf("none %q %q %v", body, rest, err)
		}
		body, _, rest, err = readBody("NEXT", BodyLength, 0, oneByte, Limits{})
		if err != nil || body != "" || rest != "NEXT" {
			t.Errorf("zero length %q %q %v", body, rest, err)
		}
	}
}

// TestEOFWithLastBytes checks that a fully buffered chunked body reports
// io.EOF together with its last bytes, so a proxy needs no extra Read.
func TestEOFWithLastBytes(t *testing.T) {
	t.Parallel()
	br := bufio.NewReader(strings.NewReader("5\r\nhello\r\n0\r\n\r\n"))
	var b BodyReader
	b.Reset(br, BodyChunked, -1)
	p := make([]byte, 64)
	n, err := b.Read(p)
	if n != 5 || err != io.EOF || !b.Done() {
		t.Fatalf("n=%d err=%v", n, err)
	}
	br = bufio.NewReader(strings.NewReader("hello"))
	b.Reset(br, BodyLength, 5)
	if n, err := b.Read(p); n != 5 || err != io.EOF {
		t.Fatalf("length: n=%d err=%v", n, err)
	}
}

func TestChunkedRoundTrip(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	bw := bufio.NewWriterSize(&out, 64)
	var cw ChunkedWriter
	cw.Reset(bw)
	var want bytes.Buffer
	for i := 0; i < 50; i++ {
		p := bytes.Repeat([]byte{byte('a' + i%26)}, i*7+1)
		want.Write(p)
		if n, err := cw.Write(p); n != len(p) || err != nil {
			t.Fatal(n, err)
		}
	}
	if n, err := cw.Write(nil); n != 0 || err != nil {
		t.Fatal("empty write", n, err)
	}
	trailers := []Header{{Name: []byte("X-Checksum"), Value: []byte("abc")}, {Name: []byte("Grpc-Status"), Value: []byte("0")}}
	if err := cw.Close(trailers); err != nil {
		t.Fatal(err)
	}
	if _, err := cw.Write([]byte("x")); err == nil {
		t.Fatal("write after close")
	}
	bw.Flush()
	for _, oneByte := range []bool{false, true} {
		got, tr, rest, err := readBody(out.String(), BodyChunked, -1, oneByte, Limits{})
		if err != nil || got != want.String() || rest != "" {
			t.Fatalf("round trip: err %v, len %d/%d, rest %q", err, len(got), want.Len(), rest)
		}
		if len(tr) != 2 || string(tr[0].Name) != "X-Checksum" || string(tr[1].Value) != "0" {
			t.Fatalf("trailers %q", tr)
		}
	}
}

func TestChunkedWriterRejectsBadTrailer(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	bw := bufio.NewWriter(&out)
	var cw ChunkedWriter
	cw.Reset(bw)
	err := cw.Close([]Header{{Name: []byte("X"), Value: []byte("a\r\nInjected: 1")}})
	if err == nil {
		t.Fatal("accepted CRLF in trailer value")
	}
	bw.Flush()
	if out.Len() != 0 {
		t.Fatalf("wrote %q", out.String())
	}
}

func TestAppendHelpers(t *testing.T) {
	t.Parallel()
	var b []byte
	b = AppendStatusLine(b, 1, 200, nil)
	b = AppendStatusLine(b, 0, 404, []byte("Nope"))
	b = AppendRequestLine(b, []byte("GET"), []byte("/x?y"), 1)
	b = AppendRequestLine(b, []byte("GET"), []byte("/"), 0)
	b = AppendHeader(b, []byte("Host"), []byte("h"))
	b = AppendHeaderString(b, "Via", "1.1 sluice")
	b = AppendContentLength(b, 1234)
	b = AppendHeaders(b, []Header{{Name: []byte("A"), Value: []byte("b")}})
	want := "HTTP/1.1 200 OK\r\nHTTP/1.0 404 Nope\r\nGET /x?y HTTP/1.1\r\nGET / HTTP/1.0\r\n" +
		"Host: h\r\nVia: 1.1 sluice\r\nContent-Length: 1234\r\nA: b\r\n"
	if string(b) != want {
		t.Fatalf("got %q", b)
	}
	for _, n := range []string{"Connection", "keep-alive", "TE", "Trailer", "Transfer-Encoding", "Upgrade", "Proxy-Connection"} {
		if !IsHopByHop([]byte(n)) {
			t.Errorf("%s not hop-by-hop", n)
		}
	}
	if IsHopByHop([]byte("Host")) || IsHopByHop([]byte("Content-Length")) {
		t.Error("end-to-end field reported hop-by-hop")
	}
}
