package e2e

import (
	"bufio"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestProtoStreamingUpload proves the request body is streamed: the client
// sends the rest of its body only after the upstream got the first part.
func TestProtoStreamingUpload(t *testing.T) {
	for _, engine := range protoEngines {
		t.Run(engine, func(t *testing.T) {
			gotFirst := make(chan struct{})
			up := protoNewUpstreamRaw(t, func(w http.ResponseWriter, r *http.Request) {
				first := make([]byte, len("part1:"))
				if _, err := io.ReadFull(r.Body, first); err != nil {
					http.Error(w, "first part: "+err.Error(), 500)
					return
				}
				close(gotFirst)
				rest, err := io.ReadAll(r.Body)
				if err != nil {
					http.Error(w, "rest: "+err.Error(), 500)
					return
				}
				io.WriteString(w, string(first)+string(rest))
			})
			g := protoGateway(t, engine, up, "")
			pr, pw := io.Pipe()
			writeErr := make(chan error, 1)
			go func() {
				pw.Write([]byte("part1:"))
				select {
				case <-gotFirst:
				case <-time.After(5 * time.Second):
					pw.CloseWithError(io.ErrUnexpectedEOF)
					writeErr <- errTimeout("upstream never saw the first part of a streamed body")
					return
				}
				pw.Write([]byte("part2"))
				pw.Close()
				writeErr <- nil
			}()
			req, _ := http.NewRequest("POST", g.URL+"/upload", pr)
			resp, err := http.DefaultClient.Do(req)
			if werr := <-writeErr; werr != nil {
				t.Fatal(werr)
			}
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(body) != "part1:part2" {
				t.Fatalf("got %d %q", resp.StatusCode, body)
			}
		})
	}
}

type errTimeout string

func (e errTimeout) Error() string { return string(e) }

// protoNewUpstreamRaw starts an httptest upstream with h as it is and returns
// its address.
func protoNewUpstreamRaw(t testing.TB, h http.HandlerFunc) string {
	t.Helper()
	u := protoNewUpstreamWith(t, h)
	return strings.TrimPrefix(u.URL, "http://")
}

// TestProtoSSE: each event must reach the client before the upstream sends
// the next one (the upstream waits for the client's acknowledgement).
func TestProtoSSE(t *testing.T) {
	const events = 3
	for _, engine := range protoEngines {
		for _, proto := range []string{"h1", "h2"} {
			t.Run(engine+"/"+proto, func(t *testing.T) {
				ack := make(chan int, events)
				upErr := make(chan string, 1)
				addr := protoNewUpstreamRaw(t, func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Content-Type", "text/event-stream")
					w.Header().Set("Cache-Control", "no-cache")
					rc := http.NewResponseController(w)
					for i := 1; i <= events; i++ {
						io.WriteString(w, "data: "+strconv.Itoa(i)+"\n\n")
						rc.Flush()
						select {
						case got := <-ack:
							if got != i {
								upErr <- "client acknowledged " + strconv.Itoa(got)
								return
							}
						case <-time.After(5 * time.Second):
							upErr <- "event " + strconv.Itoa(i) + " never reached the client"
							return
						}
					}
				})
				g := StartGateway(t, GatewayOptions{Resources: protoResources("", "", addr), Engine: engine, HTTPS: proto == "h2"})
				client, base := http.DefaultClient, g.URL
				if proto == "h2" {
					client, base = protoH2Client(t, g), "https://"+g.TLSAddr
				}
				resp, err := client.Get(base + "/events")
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
					t.Fatalf("got %d %v", resp.StatusCode, resp.Header)
				}
				if proto == "h2" && resp.ProtoMajor != 2 {
					t.Fatalf("proto %s", resp.Proto)
				}
				br := bufio.NewReader(resp.Body)
				for i := 1; i <= events; i++ {
					line, err := br.ReadString('\n')
					if err != nil {
						select {
						case e := <-upErr:
							t.Fatalf("event %d: %v (upstream: %s)", i, err, e)
						default:
						}
						t.Fatalf("event %d: %v", i, err)
					}
					blank, _ := br.ReadString('\n')
					if line != "data: "+strconv.Itoa(i)+"\n" || blank != "\n" {
						t.Fatalf("event %d: %q %q", i, line, blank)
					}
					ack <- i
				}
				if rest, err := io.ReadAll(br); err != nil || len(rest) != 0 {
					t.Fatalf("after the events: %q %v", rest, err)
				}
				select {
				case e := <-upErr:
					t.Fatal(e)
				default:
				}
			})
		}
	}
}

// protoH2Client is an HTTP/2 client over TLS that trusts g's certificate.
func protoH2Client(t testing.TB, g *Gateway) *http.Client {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(g.CertPEM) {
		t.Fatal("bad cert")
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 20 * time.Second}
}

// protoH1TLSClient is an HTTP/1.1-only client over TLS (ALPN http/1.1).
func protoH1TLSClient(t testing.TB, g *Gateway) *http.Client {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(g.CertPEM)
	p := new(http.Protocols)
	p.SetHTTP1(true)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, Protocols: p}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 20 * time.Second}
}

// protoH2CClient speaks HTTP/2 with prior knowledge over plain TCP.
func protoH2CClient(t testing.TB) *http.Client {
	t.Helper()
	p := new(http.Protocols)
	p.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: p}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 20 * time.Second}
}

// protoPRNG is a deterministic stream of n pseudo-random bytes.
type protoPRNG struct {
	r *rand.ChaCha8
	n int64
}

func protoRandom(seed byte, n int64) *protoPRNG {
	var s [32]byte
	s[0] = seed
	return &protoPRNG{r: rand.NewChaCha8(s), n: n}
}

func (p *protoPRNG) Read(b []byte) (int, error) {
	if p.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(b)) > p.n {
		b = b[:p.n]
	}
	p.r.Read(b)
	p.n -= int64(len(b))
	return len(b), nil
}

func protoSum(r io.Reader) (string, int64, error) {
	h := sha256.New()
	n, err := io.Copy(h, r)
	return hex.EncodeToString(h.Sum(nil)), n, err
}

// TestProtoLargeBodies moves 64 MiB each way with checksums and checks the
// gateway's peak RSS stays far below the body size (no whole-body buffering).
func TestProtoLargeBodies(t *testing.T) {
	const size = 64 << 20
	want, _, _ := protoSum(protoRandom(7, size))
	for _, engine := range protoEngines {
		for _, chunked := range []bool{false, true} {
			name := engine + "/content-length"
			if chunked {
				name = engine + "/chunked"
			}
			t.Run(name, func(t *testing.T) {
				addr := protoNewUpstreamRaw(t, func(w http.ResponseWriter, r *http.Request) {
					if r.Method == "POST" {
						sum, n, err := protoSum(r.Body)
						if err != nil {
							http.Error(w, err.Error(), 500)
							return
						}
						io.WriteString(w, sum+" "+strconv.FormatInt(n, 10))
						return
					}
					if !chunked {
						w.Header().Set("Content-Length", strconv.Itoa(size))
					}
					io.Copy(w, protoRandom(7, size))
				})
				g := protoGateway(t, engine, addr, "")
				_, base := protoRSS(t, g)

				var body io.Reader = protoRandom(7, size)
				if chunked {
					body = io.MultiReader(body) // hides the length: chunked
				}
				req, _ := http.NewRequest("POST", g.URL+"/up", body)
				if !chunked {
					req.ContentLength = size
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				got, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || string(got) != want+" "+strconv.Itoa(size) {
					t.Fatalf("upload: %d %q", resp.StatusCode, got)
				}

				resp, err = http.Get(g.URL + "/down")
				if err != nil {
					t.Fatal(err)
				}
				sum, n, err := protoSum(resp.Body)
				resp.Body.Close()
				if err != nil || sum != want || n != size {
					t.Fatalf("download: %d bytes, sum %s, err %v", n, sum, err)
				}
				rss, hwm := protoRSS(t, g)
				t.Logf("gateway RSS %d KiB, peak %d KiB (peak before %d KiB)", rss, hwm, base)
				// 64 MiB passed each way: a peak growth of 24 MiB proves no
				// whole-body buffering (the race detector's own overhead is
				// in the baseline).
				if hwm-base > 24<<10 {
					t.Fatalf("gateway peak RSS grew by %d KiB moving %d MiB bodies", hwm-base, size>>20)
				}
			})
		}
	}
}

// TestProtoTrailers: request trailers reach the upstream; response trailers
// reach HTTP/1.1 and HTTP/2 clients.
func TestProtoTrailers(t *testing.T) {
	for _, engine := range protoEngines {
		t.Run(engine, func(t *testing.T) {
			up := protoNewUpstream(t, func(w http.ResponseWriter, r *http.Request, seen *protoSeen) {
				w.Header().Set("Trailer", "X-Resp-Sum")
				w.Header().Set("Content-Type", "text/plain")
				io.WriteString(w, "body:")
				w.(http.Flusher).Flush()
				io.WriteString(w, string(seen.Body))
				w.Header().Set("X-Resp-Sum", "resp-"+seen.Trailer.Get("X-Req-Sum"))
			})
			g := StartGateway(t, GatewayOptions{Resources: protoResources("", "", up.Addr), Engine: engine, HTTPS: true})
			clients := []struct {
				name   string
				c      *http.Client
				base   string
				proto2 bool
			}{
				{"h1", http.DefaultClient, g.URL, false},
				{"h1-tls", protoH1TLSClient(t, g), "https://" + g.TLSAddr, false},
				{"h2", protoH2Client(t, g), "https://" + g.TLSAddr, true},
				{"h2c", protoH2CClient(t), g.URL, true},
			}
			for _, cl := range clients {
				t.Run(cl.name, func(t *testing.T) {
					pr, pw := io.Pipe()
					req, _ := http.NewRequest("POST", cl.base+"/trailers", pr)
					req.Trailer = http.Header{"X-Req-Sum": nil}
					go func() {
						pw.Write([]byte("hello "))
						pw.Write([]byte("trailers"))
						req.Trailer.Set("X-Req-Sum", "abc123")
						pw.Close()
					}()
					resp, err := cl.c.Do(req)
					if err != nil {
						t.Fatal(err)
					}
					body, err := io.ReadAll(resp.Body)
					resp.Body.Close()
					if err != nil || resp.StatusCode != 200 || string(body) != "body:hello trailers" {
						t.Fatalf("got %d %q %v", resp.StatusCode, body, err)
					}
					if (resp.ProtoMajor == 2) != cl.proto2 {
						t.Fatalf("proto %s", resp.Proto)
					}
					s := up.Last(t)
					if string(s.Body) != "hello trailers" || s.Trailer.Get("X-Req-Sum") != "abc123" {
						t.Errorf("upstream got body %q trailers %v", s.Body, s.Trailer)
					}
					if got := resp.Trailer.Get("X-Resp-Sum"); got != "resp-abc123" {
						t.Errorf("client got trailers %v, want X-Resp-Sum: resp-abc123", resp.Trailer)
					}
				})
			}
		})
	}
}
