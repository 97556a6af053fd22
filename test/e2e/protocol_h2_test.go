package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// TestProtoHTTP2 proxies HTTP/2 (TLS with ALPN h2, and h2c with prior
// knowledge) and HTTPS with HTTP/1.1 to an HTTP/1.1 upstream.
func TestProtoHTTP2(t *testing.T) {
	for _, engine := range protoEngines {
		t.Run(engine, func(t *testing.T) {
			up := protoNewUpstream(t, func(w http.ResponseWriter, r *http.Request, seen *protoSeen) {
				w.Header().Set("X-Upstream-Proto", r.Proto)
				io.WriteString(w, "got:"+string(seen.Body))
			})
			g := StartGateway(t, GatewayOptions{Resources: protoResources("", "", up.Addr), Engine: engine, HTTPS: true})
			_, tlsPort, _ := net.SplitHostPort(g.TLSAddr)
			_, plainPort, _ := net.SplitHostPort(g.Addr)
			cases := []struct {
				name, base, scheme, port string
				c                        *http.Client
				major                    int
			}{
				{"h2-tls", "https://" + g.TLSAddr, "https", tlsPort, protoH2Client(t, g), 2},
				{"h2c-prior-knowledge", g.URL, "http", plainPort, protoH2CClient(t), 2},
				{"h1-tls", "https://" + g.TLSAddr, "https", tlsPort, protoH1TLSClient(t, g), 1},
			}
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					for i, method := range []string{"GET", "POST"} {
						var body io.Reader
						if method == "POST" {
							body = strings.NewReader("payload-" + tc.name)
						}
						before := up.Requests()
						req, _ := http.NewRequest(method, tc.base+"/p/"+tc.name+"?i=1", body)
						req.Header.Set("X-Client", "c1")
						resp, err := tc.c.Do(req)
						if err != nil {
							t.Fatal(err)
						}
						got, _ := io.ReadAll(resp.Body)
						resp.Body.Close()
						if resp.ProtoMajor != tc.major {
							t.Fatalf("client spoke %s, want HTTP/%d", resp.Proto, tc.major)
						}
						wantBody := "got:"
						if method == "POST" {
							wantBody += "payload-" + tc.name
						}
						if resp.StatusCode != 200 || string(got) != wantBody || resp.Header.Get("X-Upstream-Proto") != "HTTP/1.1" {
							t.Fatalf("%s: got %d %q %v", method, resp.StatusCode, got, resp.Header)
						}
						if up.Requests() != before+1 {
							t.Fatalf("upstream saw %d requests, want 1", up.Requests()-before)
						}
						s := up.Last(t)
						if s.Method != method || s.URI != "/p/"+tc.name+"?i=1" || s.Header.Get("X-Client") != "c1" ||
							s.Header.Get("X-Forwarded-Proto") != tc.scheme || s.Header.Get("X-Forwarded-Port") != tc.port ||
							s.Header.Get("X-Forwarded-For") != "127.0.0.1" || !strings.HasPrefix(s.Host, "127.0.0.1:") {
							t.Fatalf("request %d: upstream saw %s %s host %s %v", i, s.Method, s.URI, s.Host, s.Header)
						}
					}
				})
			}
		})
	}
}

// protoGRPCUpstream starts a gRPC server with the health service, in plain
// h2c or (tlsOn) TLS with a fresh self-signed certificate.
func protoGRPCUpstream(t testing.TB, tlsOn bool) (addr string, hs *health.Server) {
	t.Helper()
	var opts []grpc.ServerOption
	if tlsOn {
		dir := t.TempDir()
		certPath, keyPath := filepath.Join(dir, "up.pem"), filepath.Join(dir, "up.key")
		selfSigned(t, certPath, keyPath)
		cert, err := tls.LoadX509KeyPair(certPath, keyPath)
		if err != nil {
			t.Fatal(err)
		}
		opts = append(opts, grpc.Creds(credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{cert}})))
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(opts...)
	hs = health.NewServer()
	healthpb.RegisterHealthServer(srv, hs)
	go srv.Serve(l)
	t.Cleanup(srv.Stop)
	return l.Addr().String(), hs
}

// TestProtoGRPC proxies a real gRPC health service over grpc (h2c) and grpcs
// (TLS, not verified by the gateway) upstreams, to clients over h2c and TLS:
// unary Check, server-streaming Watch, and an error status in trailers.
func TestProtoGRPC(t *testing.T) {
	for _, engine := range protoEngines {
		for _, scheme := range []string{"grpc", "grpcs"} {
			t.Run(engine+"/"+scheme, func(t *testing.T) {
				addr, hs := protoGRPCUpstream(t, scheme == "grpcs")
				g := StartGateway(t, GatewayOptions{Resources: protoResources(scheme, "", addr), Engine: engine, HTTPS: true})
				pool := x509.NewCertPool()
				pool.AppendCertsFromPEM(g.CertPEM)
				clients := []struct {
					name   string
					target string
					creds  credentials.TransportCredentials
				}{
					{"h2c", g.Addr, insecure.NewCredentials()},
					{"tls", g.TLSAddr, credentials.NewTLS(&tls.Config{RootCAs: pool})},
				}
				for _, cl := range clients {
					t.Run(cl.name, func(t *testing.T) {
						svc := "svc." + cl.name
						hs.SetServingStatus(svc, healthpb.HealthCheckResponse_SERVING)
						conn, err := grpc.NewClient(cl.target, grpc.WithTransportCredentials(cl.creds))
						if err != nil {
							t.Fatal(err)
						}
						defer conn.Close()
						hc := healthpb.NewHealthClient(conn)
						ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
						defer cancel()

						res, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: svc})
						if err != nil || res.GetStatus() != healthpb.HealthCheckResponse_SERVING {
							t.Fatalf("Check: %v %v", res, err)
						}

						_, err = hc.Check(ctx, &healthpb.HealthCheckRequest{Service: "no.such.service"})
						if st, _ := status.FromError(err); st.Code() != codes.NotFound || st.Message() != "unknown service" {
							t.Fatalf("Check of an unknown service: %v, want NotFound", err)
						}

						stream, err := hc.Watch(ctx, &healthpb.HealthCheckRequest{Service: svc})
						if err != nil {
							t.Fatal(err)
						}
						first, err := stream.Recv()
						if err != nil || first.GetStatus() != healthpb.HealthCheckResponse_SERVING {
							t.Fatalf("Watch first: %v %v", first, err)
						}
						// The next message exists only after the client got the
						// first: it proves the stream is not buffered.
						hs.SetServingStatus(svc, healthpb.HealthCheckResponse_NOT_SERVING)
						second, err := stream.Recv()
						if err != nil || second.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
							t.Fatalf("Watch second: %v %v", second, err)
						}
						// The client cancels: the stream ends with Canceled.
						cancel()
						if _, err := stream.Recv(); status.Code(err) != codes.Canceled {
							t.Fatalf("after cancel: %v", err)
						}
					})
				}
			})
		}
	}
}
