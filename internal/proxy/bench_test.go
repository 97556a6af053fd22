package proxy

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/sluicegw/sluice/internal/config"
	"github.com/sluicegw/sluice/internal/runtime"
	_ "github.com/sluicegw/sluice/plugins/key-auth"
	_ "github.com/sluicegw/sluice/plugins/limit-count"
)

// rawUpstream is a minimal keepalive HTTP/1.1 server: it answers every request
// head with the same fixed response, so the benchmark measures the gateway.
func rawUpstream(tb testing.TB, body []byte) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { l.Close() })
	resp := []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " +
		strconv.Itoa(len(body)) + "\r\n\r\n" + string(body))
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					// Read one head: lines until an empty one.
					for {
						line, err := br.ReadSlice('\n')
						if err != nil {
							return
						}
						if len(line) <= 2 {
							break
						}
					}
					if _, err := c.Write(resp); err != nil {
						return
					}
				}
			}()
		}
	}()
	return l.Addr().String()
}

func newBenchGateway(tb testing.TB, resources *config.Resources) (*Gateway, *runtime.Runtime) {
	log := slog.New(slog.DiscardHandler)
	rt := runtime.New(nil, runtime.Defaults{}, log)
	snap, err := runtime.Compile(resources, 1, rt.Deps())
	if err != nil {
		tb.Fatal(err)
	}
	rt.Swap(snap)
	return New(rt, log, nil), rt
}

func benchResources(upAddr string, routes int) *config.Resources {
	res := &config.Resources{Upstreams: []config.Upstream{{ID: "1", Nodes: config.Nodes{{Host: "127.0.0.1", Port: mustPort(upAddr), Weight: 1}}}}}
	for i := 0; i < routes; i++ {
		res.Routes = append(res.Routes, config.Route{ID: "r" + strconv.Itoa(i), URI: fmt.Sprintf("/r%d/*", i), UpstreamID: "1"})
	}
	res.Routes = append(res.Routes, config.Route{ID: "bench", URI: "/bench/*", UpstreamID: "1"})
	return res
}

func mustPort(addr string) int {
	_, p, _ := net.SplitHostPort(addr)
	n, _ := strconv.Atoi(p)
	return n
}

// BenchmarkFastProxy measures one keepalive request through the fast engine:
// client → gateway → upstream → gateway → client, over loopback sockets.
func BenchmarkFastProxy(b *testing.B) {
	for _, routes := range []int{1, 1000} {
		b.Run(fmt.Sprintf("routes=%d", routes), func(b *testing.B) {
			up := rawUpstream(b, []byte("hello world"))
			benchFastProxy(b, benchResources(up, routes))
		})
	}
}

// BenchmarkFastProxyPlugins is BenchmarkFastProxy with key-auth and a local
// limit-count on the route (the bench/ keyauth-count scenario), to show what
// the plugin path costs on top of the plain proxy.
func BenchmarkFastProxyPlugins(b *testing.B) {
	for _, tc := range []struct {
		name    string
		plugins map[string]any
	}{
		{"key-auth", map[string]any{"key-auth": map[string]any{}}},
		{"key-auth+limit-count", map[string]any{"key-auth": map[string]any{},
			"limit-count": map[string]any{"count": 1e9, "time_window": 60, "key": "consumer_name"}}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			up := rawUpstream(b, []byte("hello world"))
			res := benchResources(up, 1)
			res.Routes[len(res.Routes)-1].Plugins = tc.plugins
			res.Consumers = []config.Consumer{{Username: "jack",
				Plugins: map[string]any{"key-auth": map[string]any{"key": "bench-key-0123456789"}}}}
			benchFastProxy(b, res)
		})
	}
}

func benchFastProxy(b *testing.B, res *config.Resources) {
	{
		{
			gw, _ := newBenchGateway(b, res)
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			opts := &FastOptions{}
			go func() {
				for {
					c, err := l.Accept()
					if err != nil {
						return
					}
					go gw.ServeFast(c, "http", opts, nil, new(atomic.Bool))
				}
			}()
			c, err := net.Dial("tcp", l.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			req := []byte("GET /bench/x HTTP/1.1\r\nHost: example.com\r\nUser-Agent: bench\r\nAccept: */*\r\n" +
				"apikey: bench-key-0123456789\r\n\r\n")
			br := bufio.NewReaderSize(c, 4096)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := c.Write(req); err != nil {
					b.Fatal(err)
				}
				if err := readOneResponse(br); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
}

var clHeader = []byte("Content-Length: ")

func readOneResponse(br *bufio.Reader) error {
	n := -1
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return err
		}
		if len(line) <= 2 {
			break
		}
		if bytes.HasPrefix(line, clHeader) {
			n, _ = strconv.Atoi(string(bytes.TrimSpace(line[len(clHeader):])))
		}
	}
	if n < 0 {
		return fmt.Errorf("no content-length")
	}
	_, err := br.Discard(n)
	if err == io.EOF {
		return nil
	}
	return err
}
