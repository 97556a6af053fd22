package h1

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
)

const browserRequest = "GET /static/app/main.js?v=3f2a9c HTTP/1.1\r\n" +
	"Host: www.example.com\r\n" +
	"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36\r\n" +
	"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8\r\n" +
	"Accept-Language: en-US,en;q=0.9\r\n" +
	"Accept-Encoding: gzip, deflate, br, zstd\r\n" +
	"Referer: https://www.example.com/index.html\r\n" +
	"Cookie: session=8c3f0a1b2d4e5f60718293a4b5c6d7e8; theme=dark; _ga=GA1.2.123456789.1700000000\r\n" +
	"Connection: keep-alive\r\n" +
	"Sec-Fetch-Dest: script\r\n" +
	"Sec-Fetch-Mode: no-cors\r\n" +
	"Sec-Fetch-Site: same-origin\r\n" +
	"\r\n"

const smallResponse = "HTTP/1.1 200 OK\r\n" +
	"Server: backend\r\n" +
	"Date: Mon, 01 Jan 2024 00:00:00 GMT\r\n" +
	"Content-Type: application/json\r\n" +
	"Content-Length: 13\r\n" +
	"Cache-Control: no-cache\r\n" +
	"\r\n"

func BenchmarkReadRequest(b *testing.B) {
	src := strings.NewReader(browserRequest)
	br := bufio.NewReader(src)
	var r Request
	b.SetBytes(int64(len(browserRequest)))
	b.ReportAllocs()
	for b.Loop() {
		src.Reset(browserRequest)
		br.Reset(src)
		if err := ReadRequest(br, &r, Limits{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReadResponse(b *testing.B) {
	src := strings.NewReader(smallResponse)
	br := bufio.NewReader(src)
	var r Response
	method := []byte("GET")
	b.SetBytes(int64(len(smallResponse)))
	b.ReportAllocs()
	for b.Loop() {
		src.Reset(smallResponse)
		br.Reset(src)
		if err := ReadResponse(br, &r, Limits{}, method); err != nil {
			b.Fatal(err)
		}
	}
}

func chunkedInput(chunk, n int) string {
	var out bytes.Buffer
	bw := bufio.NewWriter(&out)
	var cw ChunkedWriter
	cw.Reset(bw)
	p := bytes.Repeat([]byte("x"), chunk)
	for i := 0; i < n; i++ {
		cw.Write(p)
	}
	cw.Close([]Header{{Name: []byte("X-T"), Value: []byte("1")}})
	bw.Flush()
	return out.String()
}

func benchmarkChunked(b *testing.B, chunk, n int) {
	in := chunkedInput(chunk, n)
	src := strings.NewReader(in)
	br := bufio.NewReader(src)
	var body BodyReader
	buf := make([]byte, 32*1024)
	b.SetBytes(int64(chunk * n))
	b.ReportAllocs()
	for b.Loop() {
		src.Reset(in)
		br.Reset(src)
		body.Reset(br, BodyChunked, -1)
		for {
			_, err := body.Read(buf)
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
		}
	}
}

func BenchmarkChunkedRead_16x1KiB(b *testing.B) { benchmarkChunked(b, 1024, 16) }
func BenchmarkChunkedRead_4x16KiB(b *testing.B) { benchmarkChunked(b, 16*1024, 4) }
func BenchmarkChunkedRead_64x100B(b *testing.B) { benchmarkChunked(b, 100, 64) }

func BenchmarkChunkedWrite(b *testing.B) {
	bw := bufio.NewWriter(io.Discard)
	var cw ChunkedWriter
	p := bytes.Repeat([]byte("x"), 1024)
	b.SetBytes(int64(len(p) * 16))
	b.ReportAllocs()
	for b.Loop() {
		cw.Reset(bw)
		for i := 0; i < 16; i++ {
			cw.Write(p)
		}
		cw.Close(nil)
	}
}

func BenchmarkAppendResponseHead(b *testing.B) {
	var r Response
	if err := ReadResponse(bufio.NewReader(strings.NewReader(smallResponse)), &r, Limits{}, []byte("GET")); err != nil {
		b.Fatal(err)
	}
	dst := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		dst = AppendStatusLine(dst[:0], 1, r.StatusCode, r.Reason)
		for _, h := range r.Headers {
			if !IsHopByHop(h.Name) && !HasToken(r.Headers, "Connection", h.Name) {
				dst = AppendHeader(dst, h.Name, h.Value)
			}
		}
		dst = append(dst, '\r', '\n')
	}
}

// BenchmarkNetHTTPReadRequest is the net/http baseline for
// BenchmarkReadRequest.
func BenchmarkNetHTTPReadRequest(b *testing.B) {
	src := strings.NewReader(browserRequest)
	br := bufio.NewReader(src)
	b.SetBytes(int64(len(browserRequest)))
	b.ReportAllocs()
	for b.Loop() {
		src.Reset(browserRequest)
		br.Reset(src)
		if _, err := http.ReadRequest(br); err != nil {
			b.Fatal(err)
		}
	}
}
