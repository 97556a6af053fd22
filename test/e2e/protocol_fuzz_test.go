package e2e

import (
	"math/rand/v2"
	"net"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

var protoFuzzSeeds = []string{
	"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n",
	"GET /a/b?x=1&y=%20 HTTP/1.1\r\nHost: example.com:8080\r\nAccept: */*\r\nCookie: a=b\r\n\r\n",
	"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
	"POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-T: 1\r\n\r\n",
	"GET http://example.com/abs?q HTTP/1.1\r\nHost: other\r\n\r\n",
	"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n",
	"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
	"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
	"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
	"GET /../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc",
	"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
}

var protoFuzzTokens = []string{
	"\r\n", "\n", "\r", "\x00", " ", "\t", ":", ",", ";", "\r\n ", "chunked", "Transfer-Encoding: ",
	"Content-Length: ", "-1", "99999999999999999999", "0x10", "HTTP/1.1", "HTTP/2.0", "%00", "%2e%2e/",
	"\xff\xfe", "Host: ", "Connection: close\r\n", "Expect: 100-continue\r\n", "\r\n\r\n", "GET ",
}

// protoMutate returns a random mutation of a seed request.
func protoMutate(r *rand.Rand) string {
	b := []byte(protoFuzzSeeds[r.IntN(len(protoFuzzSeeds))])
	for n := 1 + r.IntN(4); n > 0; n-- {
		if len(b) == 0 {
			break
		}
		i := r.IntN(len(b))
		switch r.IntN(6) {
		case 0: // flip a byte
			b[i] = byte(r.IntN(256))
		case 1: // insert a token
			tok := protoFuzzTokens[r.IntN(len(protoFuzzTokens))]
			b = append(b[:i], append([]byte(tok), b[i:]...)...)
		case 2: // delete a range
			j := min(len(b), i+1+r.IntN(8))
			b = append(b[:i], b[j:]...)
		case 3: // duplicate a line
			s := string(b)
			lines := strings.SplitAfter(s, "\n")
			k := r.IntN(len(lines))
			lines = append(lines[:k+1], lines[k:]...)
			b = []byte(strings.Join(lines, ""))
		case 4: // truncate
			b = b[:i]
		case 5: // random bytes
			for k := r.IntN(16); k > 0; k-- {
				b = append(b[:i], append([]byte{byte(r.IntN(256))}, b[i:]...)...)
			}
		}
	}
	return string(b)
}

const h2PrefaceProto = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

var protoStatusLine = regexp.MustCompile(`^HTTP/1\.[01] [1-5][0-9][0-9][ \r]`)

// TestProtoFuzzHeads sends 2,000 mutated request heads (seeded) per engine:
// each must get a well-formed status line or a close, within a bound, and the
// gateway must be healthy afterwards.
func TestProtoFuzzHeads(t *testing.T) {
	const n = 2000
	for _, engine := range protoEngines {
		t.Run(engine, func(t *testing.T) {
			up := protoNewUpstream(t, nil)
			g := protoGateway(t, engine, up.Addr, "timeouts:\n  read_header: 1s\n  idle: 1s\n")
			r := rand.New(rand.NewPCG(2026, 1129))
			inputs := make([]string, n)
			for i := range inputs {
				inputs[i] = protoMutate(r)
			}
			var mu sync.Mutex
			var failures []string
			work := make(chan int)
			var wg sync.WaitGroup
			for range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range work {
						if msg := protoFuzzOne(g.Addr, inputs[i]); msg != "" {
							mu.Lock()
							failures = append(failures, msg)
							mu.Unlock()
						}
					}
				}()
			}
			start := time.Now()
			for i := range inputs {
				work <- i
			}
			close(work)
			wg.Wait()
			// 100 more, all at once, from clients that keep their side open:
			// read_header and idle (1s) must end every one of them.
			var open sync.WaitGroup
			for i := range 100 {
				open.Add(1)
				go func() {
					defer open.Done()
					if msg := protoFuzzOneOpen(g.Addr, inputs[i*7]); msg != "" {
						mu.Lock()
						failures = append(failures, msg)
						mu.Unlock()
					}
				}()
			}
			open.Wait()
			t.Logf("%d heads in %v; upstream saw %d requests", n+100, time.Since(start), up.Requests())
			for i, f := range failures {
				if i == 10 {
					t.Errorf("... and %d more", len(failures)-10)
					break
				}
				t.Error(f)
			}
			protoAlive(t, g)
		})
	}
}

// protoFuzzOne sends one input, half-closes, and checks the answer. It
// returns a description of a failure, or "".
func protoFuzzOne(addr, input string) string { return protoFuzzSend(addr, input, true) }

// protoFuzzOneOpen is protoFuzzOne with the client's side left open.
func protoFuzzOneOpen(addr, input string) string { return protoFuzzSend(addr, input, false) }

func protoFuzzSend(addr, input string, halfClose bool) string {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return "dial: " + err.Error()
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(6 * time.Second))
	if _, err := c.Write([]byte(input)); err != nil {
		return "" // closed on us while writing: fine
	}
	if halfClose {
		c.(*net.TCPConn).CloseWrite()
	}
	var out []byte
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		out = append(out, buf[:n]...)
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				return "no answer nor close within 6s for " + quoteProto(input) + "; got " + quoteProto(string(out))
			}
			break
		}
	}
	if strings.HasPrefix(input, h2PrefaceProto) {
		return "" // an intact HTTP/2 preface gets HTTP/2 frames (h2c)
	}
	if len(out) > 0 && !protoStatusLine.Match(out) {
		return "malformed answer " + quoteProto(string(out[:min(len(out), 80)])) + " to " + quoteProto(input)
	}
	return ""
}

func quoteProto(s string) string {
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return strings.ReplaceAll(strings.ReplaceAll(strings.ReplaceAll(s, "\r", `\r`), "\n", `\n`), "\x00", `\0`)
}
