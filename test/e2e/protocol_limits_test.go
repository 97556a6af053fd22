package e2e

import (
	"bufio"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

const protoLimitsExtra = "limits:\n  max_request_line: 256\n  max_header_bytes: 1024\n  max_header_count: 10\n  max_body_bytes: 1000\n" +
	"timeouts:\n  read_header: 1s\n  idle: 1s\n"

// TestProtoLimits checks the request-size limits: each over-limit request is
// answered with its status, the connection closed, and nothing sent upstream.
func TestProtoLimits(t *testing.T) {
	longLine := "GET /" + strings.Repeat("a", 6000) + " HTTP/1.1\r\nHost: x\r\n\r\n"
	bigHeaders := "GET / HTTP/1.1\r\nHost: x\r\n"
	for i := range 3 {
		bigHeaders += "X-Big-" + strconv.Itoa(i) + ": " + strings.Repeat("b", 2000) + "\r\n"
	}
	bigHeaders += "\r\n"
	manyHeaders := "GET / HTTP/1.1\r\nHost: x\r\n"
	for i := range 11 {
		manyHeaders += "X-H" + strconv.Itoa(i) + ": v\r\n"
	}
	manyHeaders += "\r\n"
	body := strings.Repeat("z", 2000)
	chunkedBody := "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
	for range 4 {
		chunkedBody += "1f4\r\n" + strings.Repeat("z", 500) + "\r\n"
	}
	chunkedBody += "0\r\n\r\n"
	cases := []struct {
		name      string
		raw       string
		fast, std int
	}{
		// net/http has no request-line limit of its own: a line is bounded,
		// with the headers, by MaxHeaderBytes (max_header_bytes +
		// max_request_line, plus net/http's 4 KiB slack), and answered 431.
		{"request-line", longLine, 414, 431},
		{"header-bytes", bigHeaders, 431, 431},
		// net/http has no header-count limit: the std engine accepts.
		{"header-count", manyHeaders, 431, 200},
		{"body-content-length", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2000\r\n\r\n" + body, 413, 413},
		{"body-chunked", chunkedBody, 413, 413},
	}
	for _, engine := range protoEngines {
		t.Run(engine, func(t *testing.T) {
			up := protoNewUpstream(t, nil)
			g := protoGateway(t, engine, up.Addr, protoLimitsExtra)
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					want := tc.fast
					if engine == "std" {
						want = tc.std
					}
					before := len(up.Seen())
					resp, closed := RawRequest(t, g.Addr, tc.raw, 3*time.Second)
					if got := StatusOf(resp); got != want {
						t.Fatalf("status %d, want %d:\n%s", got, want, tail(resp, 500))
					}
					time.Sleep(50 * time.Millisecond)
					seen := up.Seen()[before:]
					if want == 200 {
						if len(seen) != 1 {
							t.Fatalf("upstream saw %d requests, want 1", len(seen))
						}
						return
					}
					if !closed {
						t.Errorf("connection left open after %d", want)
					}
					// The fast engine never contacts the upstream; net/http may
					// have sent the head of a streamed body, but never a whole request.
					for _, s := range seen {
						if engine == "fast" || s.BodyErr == nil {
							t.Errorf("upstream received %s %s (body %d bytes, err %v)", s.Method, s.URI, len(s.Body), s.BodyErr)
						}
					}
				})
			}
			// A body at the limit passes.
			resp, _ := RawRequest(t, g.Addr, "POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 1000\r\n\r\n"+body[:1000], 3*time.Second)
			if StatusOf(resp) != 200 || len(up.Last(t).Body) != 1000 {
				t.Fatalf("body at the limit: %s", tail(resp, 300))
			}
		})
	}
}

// TestProtoSlowClients checks read_header (a head that stalls half-way is cut
// off) and idle (a keepalive connection with no next request is closed).
func TestProtoSlowClients(t *testing.T) {
	for _, engine := range protoEngines {
		t.Run(engine, func(t *testing.T) {
			up := protoNewUpstream(t, nil)
			g := protoGateway(t, engine, up.Addr, protoLimitsExtra)

			t.Run("slowloris", func(t *testing.T) {
				start := time.Now()
				// Enough bytes that net/http (std) has decided it is not h2c.
				resp, closed := RawRequest(t, g.Addr, "GET /slow HTTP/1.1\r\nHost: example.com\r\nX-Slow: ", 4*time.Second)
				el := time.Since(start)
				if !closed {
					t.Fatalf("connection still open after %v", el)
				}
				if el < 800*time.Millisecond || el > 3*time.Second {
					t.Fatalf("closed after %v, want about 1s", el)
				}
				// Closing silently (nginx) or with 408 (net/http) are both fine.
				if s := StatusOf(resp); resp != "" && s != 408 {
					t.Fatalf("answered %q", resp)
				}
				if up.Requests() != 0 {
					t.Fatal("upstream saw the incomplete request")
				}
			})

			t.Run("slowloris-trickle", func(t *testing.T) {
				// One byte every 200ms: the deadline bounds the whole head,
				// not the gap between bytes.
				c, err := net.Dial("tcp", g.Addr)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				start := time.Now()
				head := "GET /trickle HTTP/1.1\r\nHost: example.com\r\nX-Trickle: " + strings.Repeat("a", 100)
				closed := make(chan time.Duration, 1)
				go func() {
					io.Copy(io.Discard, c)
					closed <- time.Since(start)
				}()
				for i := 0; i < len(head); i++ {
					if _, err := c.Write([]byte{head[i]}); err != nil {
						break
					}
					select {
					case el := <-closed:
						if el > 3*time.Second {
							t.Fatalf("trickling client cut off only after %v", el)
						}
						return
					case <-time.After(200 * time.Millisecond):
					}
					if time.Since(start) > 4*time.Second {
						t.Fatal("trickling client never cut off")
					}
				}
				t.Fatal("the whole head was trickled in without a cut-off")
			})

			t.Run("idle", func(t *testing.T) {
				c, err := net.Dial("tcp", g.Addr)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				br := bufio.NewReader(c)
				c.SetDeadline(time.Now().Add(5 * time.Second))
				c.Write([]byte("GET /idle HTTP/1.1\r\nHost: example.com\r\n\r\n"))
				resp, body := protoReadResponse(t, br, "GET")
				if resp.StatusCode != 200 || body != "ok" || resp.Close {
					t.Fatalf("got %d %q close=%v", resp.StatusCode, body, resp.Close)
				}
				start := time.Now()
				n, err := br.Read(make([]byte, 1))
				el := time.Since(start)
				if n != 0 || err == nil {
					t.Fatalf("read %d bytes, err %v", n, err)
				}
				if ne, ok := err.(net.Error); ok && ne.Timeout() {
					t.Fatalf("idle connection not closed after %v", el)
				}
				if el < 700*time.Millisecond || el > 3*time.Second {
					t.Fatalf("idle connection closed after %v, want about 1s", el)
				}
			})
			protoAlive(t, g)
		})
	}
}
