// Package upstream holds the compiled, immutable form of an Upstream (its nodes,
// picker and proxy settings) and the long-lived connection state that outlives
// snapshots: per-node keepalive pools and net/http transports, keyed by identity.
package upstream

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/sluicegw/sluice/internal/balancer"
)

// Timeouts are nginx's proxy_connect/send/read timeouts: connect bounds the dial
// (and TLS handshake); send and read bound the gap between two successive writes
// or reads, not the whole transfer.
type Timeouts struct {
	Connect, Send, Read time.Duration
}

// Upstream is one compiled upstream. It is immutable once built; the pools and
// transports it points at are shared with other snapshots through the Registry.
type Upstream struct {
	// Key is the stable identity (upstream id, or the owning route/service for an
	// inline upstream) under which balancer and pool state survive reloads.
	Key          string
	Scheme       string // http, https, grpc, grpcs
	PassHost     string // pass, node, rewrite
	UpstreamHost string
	Picker       balancer.Picker
	Targets      []*Target // same order as the nodes given to the picker
	Retries      int
	RetryTimeout time.Duration // 0: unbounded
	// MaxRequests is keepalive_pool.requests: a connection is closed after
	// carrying this many requests (0: unlimited).
	MaxRequests int
	Timeouts    Timeouts
	// HTTPTransport carries requests on the net/http engine and for protocols the
	// fast path does not speak (HTTP/2, gRPC).
	HTTPTransport *http.Transport
	// TLS is the client TLS config for https/grpcs nodes on the fast path.
	TLS *tls.Config
}

// Target is one node of an upstream with its keepalive pool.
type Target struct {
	Node balancer.Node
	// HostHeader is what pass_host "node" sends: host, plus ":port" unless the
	// port is the scheme's default.
	HostHeader string
	Pool       *Pool
}

// TLSEnabled reports whether connections to the nodes use TLS.
func (u *Upstream) TLSEnabled() bool { return u.Scheme == "https" || u.Scheme == "grpcs" }

// HTTP2 reports whether the upstream speaks HTTP/2 (gRPC).
func (u *Upstream) HTTP2() bool { return u.Scheme == "grpc" || u.Scheme == "grpcs" }

type connectTimeoutKey struct{}

// WithConnectTimeout returns ctx carrying the connect timeout that transports
// built by the registry apply to their dials. The timeout travels with the
// request because a route may override its upstream's.
func WithConnectTimeout(ctx context.Context, d time.Duration) context.Context {
	return context.WithValue(ctx, connectTimeoutKey{}, d)
}

// DialContext dials with the connect timeout carried by ctx, if any.
func DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	if t, ok := ctx.Value(connectTimeoutKey{}).(time.Duration); ok && t > 0 {
		d.Timeout = t
	}
	nc, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return &countedConn{Conn: nc}, nil
}

// countedConn counts the requests a net/http transport sends on a connection
// it dialed with DialContext, for keepalive_pool.requests (see CountRequest).
type countedConn struct {
	net.Conn
	requests atomic.Int64
}

// CountRequest records one more request on c, a connection from DialContext
// (or TLS over one), and reports whether it is the last one max allows, so
// the caller can ask for the connection to close after it. max <= 0 means
// unlimited.
func CountRequest(c net.Conn, max int) bool {
	if max <= 0 {
		return false
	}
	if tc, ok := c.(interface{ NetConn() net.Conn }); ok {
		c = tc.NetConn()
	}
	cc, ok := c.(*countedConn)
	return ok && cc.requests.Add(1) >= int64(max)
}
