package e2e

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// protoRawUpstream is a TCP upstream whose handler gets each connection with
// its first request already parsed; it records every request head.
type protoRawUpstream struct {
	Addr string
	mu   sync.Mutex
	reqs []*http.Request
}

func protoNewRawUpstream(t testing.TB, h func(c net.Conn, br *bufio.Reader, r *http.Request)) *protoRawUpstream {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &protoRawUpstream{Addr: l.Addr().String()}
	var wg sync.WaitGroup
	t.Cleanup(func() { l.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				br := bufio.NewReader(c)
				r, err := http.ReadRequest(br)
				if err != nil {
					return
				}
				u.mu.Lock()
				u.reqs = append(u.reqs, r)
				u.mu.Unlock()
				h(c, br, r)
			}()
		}
	}()
	return u
}

func (u *protoRawUpstream) Requests() []*http.Request {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]*http.Request(nil), u.reqs...)
}

// protoWSUpstream answers an Upgrade with 101 plus a greeting sent in the same
// write, then echoes; anything else gets 200 "no upgrade".
func protoWSUpstream(t testing.TB) *protoRawUpstream {
	return protoNewRawUpstream(t, func(c net.Conn, br *bufio.Reader, r *http.Request) {
		if strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			c.Write([]byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
				"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\nhello-from-upstream"))
			io.Copy(c, br)
			return
		}
		io.Copy(io.Discard, r.Body)
		c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 10\r\nConnection: close\r\n\r\nno upgrade"))
	})
}

const protoWSRequest = "GET /ws HTTP/1.1\r\nHost: example.com\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n" +
	"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"

// TestProtoWebSocket: with enable_websocket the upgrade reaches the upstream,
// the 101 comes back and bytes flow both ways (including bytes that arrive
// together with the request or the 101); without it the upstream never sees
// the Upgrade.
func TestProtoWebSocket(t *testing.T) {
	for _, engine := range protoEngines {
		t.Run(engine+"/enabled", func(t *testing.T) {
			up := protoWSUpstream(t)
			g := StartGateway(t, GatewayOptions{Resources: protoResources("", "    enable_websocket: true\n", up.Addr), Engine: engine})
			c, err := net.Dial("tcp", g.Addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			// The first frame bytes ride along with the request.
			c.Write([]byte(protoWSRequest + "early-bytes|"))
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, &http.Request{Method: "GET"})
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != 101 || !strings.EqualFold(resp.Header.Get("Upgrade"), "websocket") ||
				!strings.Contains(strings.ToLower(resp.Header.Get("Connection")), "upgrade") ||
				resp.Header.Get("Sec-Websocket-Accept") != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
				t.Fatalf("got %d %v", resp.StatusCode, resp.Header)
			}
			greeting := make([]byte, len("hello-from-upstream"))
			if _, err := io.ReadFull(br, greeting); err != nil || string(greeting) != "hello-from-upstream" {
				t.Fatalf("greeting %q %v", greeting, err)
			}
			echo := make([]byte, len("early-bytes|"))
			if _, err := io.ReadFull(br, echo); err != nil || string(echo) != "early-bytes|" {
				t.Fatalf("early bytes echoed as %q %v", echo, err)
			}
			// Both directions at once: a large payload written while the
			// echo is read back.
			big := bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB
			go c.Write(big)
			got := make([]byte, len(big))
			if _, err := io.ReadFull(br, got); err != nil || !bytes.Equal(got, big) {
				t.Fatalf("echo of 1 MiB: %v (equal %v)", err, bytes.Equal(got, big))
			}
			reqs := up.Requests()
			if len(reqs) != 1 {
				t.Fatalf("upstream saw %d requests", len(reqs))
			}
			r := reqs[0]
			if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") || !strings.EqualFold(r.Header.Get("Connection"), "upgrade") ||
				r.Header.Get("Sec-Websocket-Key") != "dGhlIHNhbXBsZSBub25jZQ==" || r.URL.Path != "/ws" {
				t.Fatalf("upstream saw %s %v", r.URL, r.Header)
			}
			// Closing the client ends the upstream side too.
			c.Close()
			protoAlive(t, g)
		})

		t.Run(engine+"/disabled", func(t *testing.T) {
			up := protoWSUpstream(t)
			g := StartGateway(t, GatewayOptions{Resources: protoResources("", "", up.Addr), Engine: engine})
			c, err := net.Dial("tcp", g.Addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			c.Write([]byte(protoWSRequest))
			resp, body := protoReadResponse(t, bufio.NewReader(c), "GET")
			if resp.StatusCode != 200 || body != "no upgrade" || resp.Header.Get("Upgrade") != "" {
				t.Fatalf("got %d %q %v", resp.StatusCode, body, resp.Header)
			}
			reqs := up.Requests()
			if len(reqs) != 1 {
				t.Fatalf("upstream saw %d requests", len(reqs))
			}
			if h := reqs[0].Header; h.Get("Upgrade") != "" || strings.Contains(strings.ToLower(h.Get("Connection")), "upgrade") {
				t.Fatalf("upstream saw the upgrade: %v", h)
			}
		})

		// An upstream that switches protocols on a request that did not
		// (validly) ask for it must not get the raw client connection.
		t.Run(engine+"/rogue-101", func(t *testing.T) {
			up := protoNewRawUpstream(t, func(c net.Conn, br *bufio.Reader, r *http.Request) {
				if r.URL.Path != "/x" {
					c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"))
					return
				}
				c.Write([]byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nrogue"))
				io.Copy(c, br)
			})
			g := StartGateway(t, GatewayOptions{Resources: protoResources("", "", up.Addr), Engine: engine})
			resp, closed := RawRequest(t, g.Addr, "GET /x HTTP/1.1\r\nHost: example.com\r\n\r\n", time.Second)
			if StatusOf(resp) != 502 || strings.Contains(resp, "rogue") {
				t.Fatalf("got %q", resp)
			}
			// The fast engine closes after any 502; net/http keeps the
			// client connection (its request was complete).
			if engine == "fast" && !closed {
				t.Fatal("connection left open")
			}
			protoAlive(t, g)
		})
	}
}

// TestProtoHopByHop: hop-by-hop fields (the fixed set and those the
// Connection header names) are not forwarded either way; X-Forwarded-For is
// appended to, X-Real-IP and X-Forwarded-Proto/Host/Port are overwritten.
func TestProtoHopByHop(t *testing.T) {
	for _, engine := range protoEngines {
		t.Run(engine, func(t *testing.T) {
			up := protoNewRawUpstream(t, func(c net.Conn, br *bufio.Reader, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				c.Write([]byte("HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Resp-Hop\r\nX-Resp-Hop: secret\r\n" +
					"Keep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nUpgrade: h2c\r\nTrailer: X-Nope\r\n" +
					"X-Resp-Keep: yes\r\nContent-Length: 2\r\n\r\nok"))
			})
			g := protoGateway(t, engine, up.Addr, "")
			_, port, _ := net.SplitHostPort(g.Addr)
			raw := "POST /hop HTTP/1.1\r\nHost: example.com\r\nConnection: keep-alive, X-Secret-Hop, x-other-hop\r\n" +
				"X-Secret-Hop: 1\r\nX-Other-Hop: 2\r\nKeep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\n" +
				"Upgrade: websocket\r\nTrailer: X-T\r\nX-Forwarded-For: 1.2.3.4\r\nX-Forwarded-For: 5.6.7.8\r\n" +
				"X-Real-IP: 6.6.6.6\r\nX-Forwarded-Proto: gopher\r\nX-Forwarded-Host: evil.example\r\n" +
				"X-Forwarded-Port: 1\r\nX-Keep: yes\r\nContent-Length: 4\r\n\r\nbody"
			c, err := net.Dial("tcp", g.Addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			c.Write([]byte(raw))
			resp, body := protoReadResponse(t, bufio.NewReader(c), "POST")
			if resp.StatusCode != 200 || body != "ok" || resp.Header.Get("X-Resp-Keep") != "yes" {
				t.Fatalf("got %d %q %v", resp.StatusCode, body, resp.Header)
			}
			for _, h := range []string{"X-Resp-Hop", "Keep-Alive", "Proxy-Connection", "Upgrade", "Trailer"} {
				if v := resp.Header.Values(h); len(v) > 0 {
					t.Errorf("client got hop-by-hop %s: %q", h, v)
				}
			}
			if v := resp.Header.Get("Connection"); strings.Contains(strings.ToLower(v), "x-resp-hop") {
				t.Errorf("client got Connection: %q", v)
			}
			reqs := up.Requests()
			if len(reqs) != 1 {
				t.Fatalf("upstream saw %d requests", len(reqs))
			}
			h := reqs[0].Header
			for _, name := range []string{"X-Secret-Hop", "X-Other-Hop", "Keep-Alive", "Proxy-Connection", "Upgrade", "Trailer"} {
				if v := h.Values(name); len(v) > 0 {
					t.Errorf("upstream got hop-by-hop %s: %q", name, v)
				}
			}
			if v := h.Get("Connection"); strings.Contains(strings.ToLower(v), "hop") || strings.Contains(strings.ToLower(v), "upgrade") {
				t.Errorf("upstream got Connection: %q", v)
			}
			want := map[string]string{
				"X-Forwarded-For":   "1.2.3.4, 5.6.7.8, 127.0.0.1",
				"X-Real-Ip":         "127.0.0.1",
				"X-Forwarded-Proto": "http",
				"X-Forwarded-Host":  "example.com",
				"X-Forwarded-Port":  port,
				"X-Keep":            "yes",
			}
			for k, v := range want {
				if got := h.Values(k); len(got) != 1 || got[0] != v {
					t.Errorf("upstream %s = %q, want %q", k, got, v)
				}
			}
			if reqs[0].Host != "example.com" {
				t.Errorf("upstream Host %q", reqs[0].Host)
			}
		})
	}
}
