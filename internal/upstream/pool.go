package upstream

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"sync"
	"time"
)

// Buffer sizes for upstream connections on the fast path. 8 KiB reads a typical
// response head and a small body in one syscall; 4 KiB holds any request head we
// accept from clients except pathological ones, which bufio then writes through.
const (
	connReadBufSize  = 8 << 10
	connWriteBufSize = 4 << 10
)

// PoolKey identifies a keepalive pool: one per upstream node and settings, as
// APISIX keys its upstream keepalive pools.
type PoolKey struct {
	UpstreamKey string
	Addr        string
	TLS         bool
	ServerName  string
	Size        int
	IdleTimeout time.Duration
	MaxRequests int
}

// Conn is one upstream connection with its buffers.
type Conn struct {
	net.Conn
	BR        *bufio.Reader
	BW        *bufio.Writer
	requests  int
	idleSince time.Time
	// Reused reports whether the connection came from the pool (so a failure
	// before any response byte may be a stale keepalive connection).
	Reused bool
}

// Pool keeps idle keepalive connections to one node. A small mutex guards the
// idle stack: it is held for a few instructions per request and is uncontended
// at GOMAXPROCS=1; a lock-free stack would need ABA care for no measured gain.
type Pool struct {
	key    PoolKey
	tls    *tls.Config
	dialer net.Dialer

	mu     sync.Mutex
	idle   []*Conn
	closed bool
}

func newPool(key PoolKey, tlsConf *tls.Config) *Pool {
	return &Pool{key: key, tls: tlsConf, idle: make([]*Conn, 0, min(key.Size, 64))}
}

// Addr is the node address the pool dials.
func (p *Pool) Addr() string { return p.key.Addr }

// Get returns an idle connection, or nil when there is none. Connections idle
// longer than the pool's idle timeout are closed, not returned.
func (p *Pool) Get() *Conn {
	now := time.Now()
	p.mu.Lock()
	for n := len(p.idle); n > 0; n = len(p.idle) {
		c := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		if p.key.IdleTimeout > 0 && now.Sub(c.idleSince) > p.key.IdleTimeout {
			p.mu.Unlock()
			c.Conn.Close()
			p.mu.Lock()
			continue
		}
		p.mu.Unlock()
		c.Reused = true
		return c
	}
	p.mu.Unlock()
	return nil
}

// Dial opens a new connection within timeout (TCP connect plus TLS handshake).
func (p *Pool) Dial(ctx context.Context, timeout time.Duration) (*Conn, error) {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	nc, err := p.dialer.DialContext(ctx, "tcp", p.key.Addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", p.key.Addr, err)
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	if p.tls != nil {
		tc := tls.Client(nc, p.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, fmt.Errorf("tls handshake with %s: %w", p.key.Addr, err)
		}
		nc = tc
	}
	return &Conn{
		Conn: nc,
		BR:   bufio.NewReaderSize(nc, connReadBufSize),
		BW:   bufio.NewWriterSize(nc, connWriteBufSize),
	}, nil
}

// Put returns a healthy connection after a complete exchange. The connection is
// closed instead when the pool is full, closed, or the connection served its
// keepalive_pool.requests.
func (p *Pool) Put(c *Conn) {
	c.requests++
	if p.key.MaxRequests > 0 && c.requests >= p.key.MaxRequests {
		c.Conn.Close()
		return
	}
	c.idleSince = time.Now()
	c.Reused = false
	p.mu.Lock()
	if p.closed || len(p.idle) >= p.key.Size {
		p.mu.Unlock()
		c.Conn.Close()
		return
	}
	p.idle = append(p.idle, c)
	p.mu.Unlock()
}

// closeIdle closes idle connections older than the idle timeout, or all when
// all is set.
func (p *Pool) closeIdle(now time.Time, all bool) {
	p.mu.Lock()
	keep := p.idle[:0]
	var drop []*Conn
	for _, c := range p.idle {
		if all || (p.key.IdleTimeout > 0 && now.Sub(c.idleSince) > p.key.IdleTimeout) {
			drop = append(drop, c)
			continue
		}
		keep = append(keep, c)
	}
	clear(p.idle[len(keep):])
	p.idle = keep
	if all {
		p.closed = true
	}
	p.mu.Unlock()
	for _, c := range drop {
		c.Conn.Close()
	}
}
