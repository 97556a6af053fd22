package proxy

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicegw/sluice/internal/accesslog"
	"github.com/sluicegw/sluice/internal/h1"
	"github.com/sluicegw/sluice/internal/metrics"
	"github.com/sluicegw/sluice/internal/pipeline"
	"github.com/sluicegw/sluice/internal/runtime"
	"github.com/sluicegw/sluice/plugin"
)

// FastOptions bound what a client may send to the fast HTTP/1.1 engine.
type FastOptions struct {
	Limits            h1.Limits
	ReadHeaderTimeout time.Duration // from the first byte of a request to the end of its head
	IdleTimeout       time.Duration // between requests on a keepalive connection
	BodyTimeout       time.Duration // between two reads of a request body (nginx client_body_timeout)
	SendTimeout       time.Duration // between two writes to the client (nginx send_timeout)
	MaxBodyBytes      int64         // 0: unlimited
	// Draining, once true, makes connections end instead of waiting for
	// another request; busy ones finish their current request first.
	Draining *atomic.Bool
}

// Client-side buffer sizes: 4 KiB reads any ordinary request head at once
// (larger heads grow into h1.Request's own buffer); 16 KiB of write buffer
// carries a head plus a typical small body in one write.
const (
	clientReadBufSize  = 4 << 10
	clientWriteBufSize = 16 << 10
	bodyBufSize        = 16 << 10
)

// fastConn is the per-connection state of the fast engine, reused for every
// request on the connection so steady-state requests allocate nothing.
type fastConn struct {
	g       *Gateway
	opts    *FastOptions
	nc      net.Conn
	br      *bufio.Reader
	bw      *bufio.Writer
	req     h1.Request
	reqBody h1.BodyReader
	resp    h1.Response
	upBody  h1.BodyReader
	cw      h1.ChunkedWriter
	view    fastRequest
	head    []byte // scratch for the upstream request head and client response head
	hostBuf []byte // lower-cased host for matching
	buf     []byte // body copy buffer
	entry   accesslog.Entry
	// Plugin state of the current request; chain is nil when the route
	// runs no plugin.
	chain          *pipeline.Chain
	consumerChains *runtime.ConsumerChains
	pctx           plugin.Ctx
	preq           fastPluginRequest
	presp          fastPluginResponse
	// metrics counts the request after the log phase (prometheus); nil
	// when nothing asks for it.
	metrics *metrics.RouteMetrics
	// upStart is when the last upstream attempt began (Served.UpstreamStart).
	upStart time.Time
	// continued is set once "100 Continue" went to the client.
	continued bool
	// The connection's own client address; a plugin (real-ip) may replace
	// the view's for one request.
	connIP             netip.Addr
	connAddr, connPort string
}

// sendContinue answers a client's Expect: 100-continue, once, before its body
// is read (nginx does the same rather than relaying the upstream's).
func (c *fastConn) sendContinue() {
	if c.req.ExpectContinue && !c.continued {
		c.continued = true
		c.bw.WriteString("HTTP/1.1 100 Continue\r\n\r\n")
		c.bw.Flush()
	}
}

// bodyBuffered reports whether a plugin read or replaced the request body.
func (c *fastConn) bodyBuffered() bool { return c.chain != nil && c.preq.buffered }

var fastConnPool = sync.Pool{New: func() any {
	return &fastConn{
		br:   bufio.NewReaderSize(nil, clientReadBufSize),
		bw:   bufio.NewWriterSize(nil, clientWriteBufSize),
		head: make([]byte, 0, 1024),
		buf:  make([]byte, bodyBufSize),
	}
}}

// h2Preface starts every HTTP/2 prior-knowledge (h2c) connection; its first
// four bytes cannot begin an HTTP/1.1 request we accept (PRI is HTTP/2's).
const h2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// ServeFast serves one client connection with the fast HTTP/1.1 engine until
// the client or the server ends it. scheme is "http" or "https" (the TLS
// handshake is already done). A connection that opens with the HTTP/2 preface
// is handed to h2c, with the bytes already read. idle is kept true while the
// connection waits between requests, for the server's drain.
func (g *Gateway) ServeFast(nc net.Conn, scheme string, opts *FastOptions, h2c func(net.Conn), idle *atomic.Bool) {
	c := fastConnPool.Get().(*fastConn)
	c.g, c.opts, c.nc = g, opts, nc
	c.br.Reset(nc)
	c.bw.Reset(nc)
	handedOff := false
	defer func() {
		if !handedOff {
			nc.Close()
		}
		c.br.Reset(nil)
		c.bw.Reset(nil)
		c.nc, c.g, c.opts = nil, nil, nil
		fastConnPool.Put(c)
	}()
	c.initConnVars(scheme)
	for {
		// Mark idle before checking Draining: a shutdown sets Draining, then
		// wakes idle connections, so one of the two always sees the other.
		idle.Store(true)
		if opts.Draining != nil && opts.Draining.Load() {
			return
		}
		if opts.IdleTimeout > 0 {
			_ = nc.SetReadDeadline(time.Now().Add(opts.IdleTimeout))
		}
		_, err := c.br.Peek(1)
		idle.Store(false)
		if err != nil {
			return
		}
		if h2c != nil {
			if p, _ := c.br.Peek(4); string(p) == h2Preface[:4] {
				_ = nc.SetReadDeadline(time.Time{})
				handedOff = true
				h2c(&prefixedConn{Conn: nc, r: io.MultiReader(bytesReader(c.br), nc)})
				return
			}
			h2c = nil // only the first request may switch
		}
		if opts.ReadHeaderTimeout > 0 {
			_ = nc.SetReadDeadline(time.Now().Add(opts.ReadHeaderTimeout))
		}
		c.req.Reset()
		if err := h1.ReadRequest(c.br, &c.req, opts.Limits); err != nil {
			c.rejectRequest(err)
			return
		}
		// The read-header deadline stays set: body reads set their own, and
		// the next request's wait sets the idle one, so clearing it would only
		// cost a timer update per request.
		if !c.serveRequest() {
			return
		}
	}
}

// bytesReader returns what br has buffered, for a handoff of the connection.
func bytesReader(br *bufio.Reader) io.Reader {
	b, _ := br.Peek(br.Buffered())
	return &sliceReader{b: append([]byte(nil), b...)}
}

type sliceReader struct{ b []byte }

func (s *sliceReader) Read(p []byte) (int, error) {
	if len(s.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, s.b)
	s.b = s.b[n:]
	return n, nil
}

// prefixedConn is a connection whose first bytes were already read.
type prefixedConn struct {
	net.Conn
	r io.Reader
}

func (p *prefixedConn) Read(b []byte) (int, error) { return p.r.Read(b) }

func (c *fastConn) initConnVars(scheme string) {
	v := &c.view
	*v = fastRequest{req: &c.req, scheme: scheme}
	if ap, err := netip.ParseAddrPort(c.nc.RemoteAddr().String()); err == nil {
		v.remoteIP = ap.Addr().Unmap()
		v.remoteAddr = v.remoteIP.String()
		v.remotePort = itoa(int(ap.Port()))
	}
	c.connIP, c.connAddr, c.connPort = v.remoteIP, v.remoteAddr, v.remotePort
	if ap, err := netip.ParseAddrPort(c.nc.LocalAddr().String()); err == nil {
		v.serverPort = itoa(int(ap.Port()))
	}
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	if n == 0 {
		return "0"
	}
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return string(b[i:])
}

// rejectRequest answers a request that could not be parsed and closes: after a
// framing error the connection's byte stream cannot be trusted (RFC 9112 §11.2).
func (c *fastConn) rejectRequest(err error) {
	var he *h1.Error
	if !errors.As(err, &he) {
		// I/O errors and a head that never completed in time: like nginx,
		// close without an answer.
		return
	}
	body := nginxPage(itoa(he.Status) + " " + h1.StatusText(he.Status))
	c.writeSimple(he.Status, "text/html", body, false)
}

// writeSimple writes a complete response the gateway itself generates.
func (c *fastConn) writeSimple(status int, ctype string, body []byte, keepAlive bool) (int, int64) {
	h := c.head[:0]
	h = h1.AppendStatusLine(h, 1, status, nil)
	h = append(h, "Server: sluice\r\nContent-Type: "...)
	h = append(h, ctype...)
	h = append(h, "\r\n"...)
	h = h1.AppendContentLength(h, int64(len(body)))
	if !keepAlive {
		h = append(h, "Connection: close\r\n"...)
	}
	h = append(h, "\r\n"...)
	c.head = h
	c.setWriteDeadline()
	c.bw.Write(h)
	c.bw.Write(body)
	c.bw.Flush()
	return status, int64(len(body))
}

func (c *fastConn) setWriteDeadline() {
	if c.opts.SendTimeout > 0 {
		_ = c.nc.SetWriteDeadline(time.Now().Add(c.opts.SendTimeout))
	}
}

// serveRequest handles one parsed request; it reports whether the connection
// may carry another.
func (c *fastConn) serveRequest() bool {
	start := time.Now()
	req := &c.req
	v := &c.view
	v.method = bstr(req.Method)
	v.query = bstr(req.Query)
	c.hostBuf = append(c.hostBuf[:0], hostWithoutPort(bstr(req.Host))...)
	v.host = bstr(lowerHostInPlace(c.hostBuf))
	e := &c.entry
	*e = accesslog.Entry{Time: start, Client: v.remoteAddr, Method: v.method, Host: bstr(req.Host), URI: bstr(req.RequestURI)}
	keep := req.KeepAlive
	c.chain, c.metrics = nil, nil
	c.g.requests.Add(1)
	v.remoteIP, v.remoteAddr, v.remotePort = c.connIP, c.connAddr, c.connPort
	e.Client = v.remoteAddr
	status, n, keep := c.route(keep)
	e.Status, e.Bytes, e.Latency = status, n, time.Since(start)
	if c.chain != nil {
		c.fillServed(start)
		c.chain.Log(&c.pctx)
	}
	if c.metrics != nil {
		if c.chain == nil { // no route matched: the context was not set up
			c.pctx.Reset(nil)
			c.fillServed(start)
		}
		c.metrics.Observe(&c.pctx)
	}
	if c.g.access != nil {
		c.g.access.Log(e)
	}
	return keep
}

// fillServed records the answer in the plugin context for the log phase.
func (c *fastConn) fillServed(start time.Time) {
	e := &c.entry
	c.pctx.Served = plugin.Served{
		Start: start, Status: e.Status, BodyBytesSent: e.Bytes, BytesSent: e.Bytes + int64(len(c.head)),
		RequestLength: requestLength(&c.req), Latency: e.Latency,
		UpstreamAddr: e.UpstreamAddr, UpstreamStatus: e.UpstreamStatus, UpstreamLatency: e.UpstreamLatency,
	}
	if e.UpstreamAddr != "" {
		c.pctx.Served.UpstreamStart = c.upStart
	}
}

// requestLength approximates nginx's $request_length from the parsed head
// (the bytes on the wire differ only in optional whitespace) and the
// declared body length.
func requestLength(r *h1.Request) int64 {
	n := int64(len(r.Method) + 1 + len(r.RequestURI) + len(" HTTP/1.1\r\n") + 2)
	for i := range r.Headers {
		n += int64(len(r.Headers[i].Name) + len(": ") + len(r.Headers[i].Value) + 2)
	}
	if r.ContentLength > 0 {
		n += r.ContentLength
	}
	return n
}

func (c *fastConn) route(keep bool) (status int, n int64, keepAlive bool) {
	req := &c.req
	path, structural, err := normalizePath(bstr(req.Path))
	if err != nil {
		status, n = c.writeSimple(400, "text/html", page400, false)
		return status, n, false
	}
	c.view.path = path
	if c.opts.MaxBodyBytes > 0 && req.ContentLength > c.opts.MaxBodyBytes {
		status, n = c.writeSimple(413, "text/html", nginxPage("413 Request Entity Too Large"), false)
		return status, n, false
	}
	snap := c.g.rt.Load()
	var route *runtime.Route
	ok := false
	if snap != nil {
		route, ok = snap.Router.Match(&c.view)
	}
	if !ok {
		if snap != nil {
			c.metrics = snap.NoRouteMetrics
		}
		// The body was not read; only a request without one leaves the
		// connection in a known state.
		keep = keep && c.reqHasNoBody()
		status, n = c.writeSimple(404, "application/json", body404, keep)
		return status, n, keep
	}
	keepAfterExit := func() bool { return keep && (c.reqHasNoBody() || c.reqBody.Done()) }
	c.entry.RouteID = route.ID
	c.chain = route.Chain
	c.metrics = route.Metrics
	c.consumerChains = route.ConsumerChains
	c.continued = false
	c.reqBody.Limits = c.opts.Limits
	c.reqBody.Reset(c.br, req.BodyMode(), req.ContentLength)
	if c.chain != nil {
		c.preq.reset(c)
		c.pctx.Reset(&c.preq)
		c.pctx.RouteID, c.pctx.ServiceID, c.pctx.RouteName = route.ID, route.ServiceID, route.Name
		c.pctx.Served.Start = c.entry.Time
		if e := c.runRequestPhases(); e != nil {
			keep = keepAfterExit()
			status, n = c.writeExit(e, keep)
			return status, n, keep
		}
	}
	up := route.Upstream
	if c.chain != nil {
		up = route.UpstreamFor(&c.pctx) // a plugin may have chosen another (traffic-split)
	}
	if up == nil {
		keep = keepAfterExit()
		status, n = c.writeSimple(503, "application/json", body503, keep)
		return status, n, keep
	}
	return c.forward(route, up, structural, keep)
}

// runRequestPhases runs rewrite, access and before_proxy, and passes the
// consumer an auth plugin identified on to the upstream.
func (c *fastConn) runRequestPhases() *plugin.Exit {
	if e := c.chain.Rewrite(&c.pctx); e != nil {
		return e
	}
	var e *plugin.Exit
	if c.chain, e = consumerChain(c.chain, c.consumerChains, &c.pctx, true); e != nil {
		return e
	}
	if ip, port, ok := realIP(&c.pctx); ok {
		v := &c.view
		v.remoteIP, v.remoteAddr = ip, ip.String()
		if port != "" {
			v.remotePort = port
		}
		c.entry.Client = v.remoteAddr
	}
	if e := c.chain.Access(&c.pctx); e != nil {
		return e
	}
	c.chain, _ = consumerChain(c.chain, c.consumerChains, &c.pctx, false)
	if cons := c.pctx.Consumer; cons != nil {
		c.preq.SetHeader("X-Consumer-Username", cons.Username)
		if cons.CredentialID != "" {
			c.preq.SetHeader("X-Credential-Identifier", cons.CredentialID)
		}
	}
	return c.chain.BeforeProxy(&c.pctx)
}

// writeExit answers a request a plugin ended, through the header_filter
// phase like any response (so cors headers land on a 401 too).
func (c *fastConn) writeExit(e *plugin.Exit, keep bool) (int, int64) {
	c.presp.reset(e.Status, nil, e.Headers)
	c.pctx.Response = &c.presp
	c.chain.HeaderFilter(&c.pctx)
	body := e.Body
	if c.chain.FiltersBody(&c.pctx) {
		body = c.chain.BodyFilter(&c.pctx, body, true)
	}
	h := c.head[:0]
	h = h1.AppendStatusLine(h, 1, c.presp.status, nil)
	h = append(h, "Server: sluice\r\n"...)
	for _, f := range e.Headers {
		if !c.presp.ops.deletes(f.Name) && !equalFoldString(f.Name, "content-length") {
			h = h1.AppendHeaderString(h, f.Name, f.Value)
		}
	}
	h = appendOps(h, c.presp.ops)
	h = h1.AppendContentLength(h, int64(len(body)))
	if !keep {
		h = append(h, "Connection: close\r\n"...)
	}
	h = append(h, "\r\n"...)
	c.head = h
	c.setWriteDeadline()
	c.bw.Write(h)
	c.bw.Write(body)
	c.bw.Flush()
	return c.presp.status, int64(len(body))
}

func (c *fastConn) reqHasNoBody() bool {
	return !c.req.Chunked && c.req.ContentLength <= 0
}

// isTimeoutErr reports a deadline expiry on a connection.
func isTimeoutErr(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}
