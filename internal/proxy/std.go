package proxy

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicegw/sluice/internal/accesslog"
	"github.com/sluicegw/sluice/internal/balancer"
	"github.com/sluicegw/sluice/internal/runtime"
	"github.com/sluicegw/sluice/internal/upstream"
	"github.com/sluicegw/sluice/plugin"
)

// copyBufSize is the streaming buffer of the net/http engine: 32 KiB, as
// io.Copy uses, so a large body moves in few syscalls.
const copyBufSize = 32 << 10

var copyBufPool = sync.Pool{New: func() any { b := make([]byte, copyBufSize); return &b }}

// ServeHTTP is the net/http engine: it serves HTTP/2 and TLS clients, h2c, and
// every client when the gateway runs with engine "std".
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	g.requests.Add(1)
	rawPath := r.RequestURI
	if i := strings.IndexByte(rawPath, '?'); i >= 0 {
		rawPath = rawPath[:i]
	}
	if strings.HasPrefix(rawPath, "http://") || strings.HasPrefix(rawPath, "https://") {
		rawPath = r.URL.EscapedPath()
	}
	path, structural, err := normalizePath(rawPath)
	q := newStdRequest(r, path)
	entry := accesslog.Entry{Time: start, Client: q.remoteAddr, Method: r.Method, Host: r.Host, URI: r.RequestURI}
	status := 0
	var bytes int64
	defer func() {
		if g.access != nil {
			entry.Status, entry.Bytes, entry.Latency = status, bytes, time.Since(start)
			g.access.Log(&entry)
		}
	}()
	if err != nil {
		status, bytes = writeStdError(w, http.StatusBadRequest, "text/html", errorPage(400))
		return
	}
	if g.maxBody > 0 {
		if r.ContentLength > g.maxBody {
			if r.ProtoMajor == 1 {
				// The body is not read: the connection cannot carry another request.
				w.Header().Set("Connection", "close")
			}
			status, bytes = writeStdError(w, http.StatusRequestEntityTooLarge, "text/html",
				nginxPage("413 Request Entity Too Large"))
			return
		}
		if r.Body != nil && r.Body != http.NoBody {
			// A chunked (or HTTP/2) body over the limit fails mid-stream and is
			// answered 413 by forwardStd.
			r.Body = http.MaxBytesReader(w, r.Body, g.maxBody)
		}
	}
	snap := g.rt.Load()
	var route *runtime.Route
	ok := false
	if snap != nil {
		route, ok = snap.Router.Match(&q)
	}
	if !ok {
		status, bytes = writeStdError(w, http.StatusNotFound, "application/json", body404)
		if snap != nil && snap.NoRouteMetrics != nil {
			// APISIX counts unmatched requests when a global rule has prometheus.
			var pc plugin.Ctx
			pc.Served = plugin.Served{Start: start, Status: status, BodyBytesSent: bytes,
				BytesSent: bytes + headerSize(w.Header()), RequestLength: stdRequestLength(r), Latency: time.Since(start)}
			snap.NoRouteMetrics.Observe(&pc)
		}
		return
	}
	entry.RouteID = route.ID
	var sp *stdPlugins
	if route.Chain != nil {
		sp = &stdPlugins{chain: route.Chain, consumers: route.ConsumerChains}
		sp.req.q = &q
		sp.ctx.Reset(&sp.req)
		sp.ctx.RouteID, sp.ctx.ServiceID, sp.ctx.RouteName = route.ID, route.ServiceID, route.Name
		sp.ctx.Served.Start = start
		defer func() {
			// The consumer's chain, if it switched.
			sp.ctx.Served = plugin.Served{
				Start: start, Status: status, BodyBytesSent: bytes, BytesSent: bytes + headerSize(w.Header()),
				RequestLength: stdRequestLength(r), Latency: time.Since(start),
				UpstreamAddr: entry.UpstreamAddr, UpstreamStatus: entry.UpstreamStatus,
				UpstreamStart: sp.upStart, UpstreamLatency: entry.UpstreamLatency,
			}
			sp.chain.Log(&sp.ctx)
			if route.Metrics != nil {
				route.Metrics.Observe(&sp.ctx)
			}
		}()
		if e := sp.runRequestPhases(); e != nil {
			status, bytes = sp.writeExit(w, e)
			return
		}
	}
	up := route.Upstream
	if sp != nil {
		up = route.UpstreamFor(&sp.ctx) // a plugin may have chosen another (traffic-split)
	}
	if up == nil {
		status, bytes = writeStdError(w, http.StatusServiceUnavailable, "application/json", body503)
		return
	}
	var aborted bool
	status, bytes, aborted = g.forwardStd(w, r, &q, route, up, structural, &entry, sp)
	if aborted {
		// The upstream failed mid-body after the status line went out: abort
		// so the client sees a broken response, not a silently short one.
		// The deferred access-log entry still records what was sent.
		panic(http.ErrAbortHandler)
	}
}

// headerSize approximates the bytes of a response head with header h.
func headerSize(h http.Header) int64 {
	n := int64(len("HTTP/1.1 200 OK\r\n") + 2)
	for k, vs := range h {
		for _, v := range vs {
			n += int64(len(k) + 2 + len(v) + 2)
		}
	}
	return n
}

// stdRequestLength approximates $request_length for a net/http request.
func stdRequestLength(r *http.Request) int64 {
	n := int64(len(r.Method)+1+len(r.RequestURI)+len(" HTTP/1.1\r\n")) + headerSize(r.Header)
	if r.ContentLength > 0 {
		n += r.ContentLength
	}
	return n
}

func writeStdError(w http.ResponseWriter, status int, ctype string, body []byte) (int, int64) {
	h := w.Header()
	h.Set("Content-Type", ctype)
	h.Set("Server", "sluice")
	w.WriteHeader(status)
	n, _ := w.Write(body)
	return status, int64(n)
}

// replayableBody lets a request body survive a failed connection attempt: the
// transport closes the body it was given on every error, but a retry on another
// node must still read it. It also records whether any byte was consumed, since
// only an untouched body can be sent again.
type replayableBody struct {
	io.ReadCloser
	read atomic.Bool
	// failed holds the client's own error reading the body (malformed
	// chunking, a body over max_body_bytes, a client gone mid-body), so a
	// failed exchange is answered as the client's fault and not with 502.
	failed atomic.Pointer[error]
	// src's trailers are copied into trailer at the end of the body.
	src     *http.Request
	trailer http.Header
}

func (b *replayableBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 {
		b.read.Store(true)
	}
	if err == io.EOF && b.src != nil {
		for k, vv := range b.src.Trailer {
			if len(vv) > 0 {
				b.trailer[k] = vv
			}
		}
	}
	if err != nil && err != io.EOF {
		b.failed.CompareAndSwap(nil, &err)
	}
	return n, err
}

// clientError returns the status for an exchange that failed because the
// client's body could not be read: 413 over the body limit, else 400; 0 when
// the body did not fail.
func (b *replayableBody) clientError() (int, error) {
	if b == nil {
		return 0, nil
	}
	p := b.failed.Load()
	if p == nil {
		return 0, nil
	}
	var mbe *http.MaxBytesError
	if errors.As(*p, &mbe) {
		return http.StatusRequestEntityTooLarge, *p
	}
	return http.StatusBadRequest, *p
}

func (b *replayableBody) Close() error { return nil }

// forwardStd proxies r to up (the route's upstream, or the one a plugin
// chose). aborted reports a failure after the response head was sent, which
// the caller turns into an abort.
func (g *Gateway) forwardStd(w http.ResponseWriter, r *http.Request, q *stdRequest, route *runtime.Route,
	up *upstream.Upstream, structural bool, entry *accesslog.Entry, sp *stdPlugins) (status int, n int64, aborted bool) {
	out := r.Clone(r.Context())
	out.RequestURI = ""
	out.Close = false
	out.URL.Scheme = "http"
	if up.TLSEnabled() {
		out.URL.Scheme = "https"
	}
	if structural {
		out.URL.Path, out.URL.RawPath = q.path, ""
	}
	var body *replayableBody
	if r.Body != nil && r.Body != http.NoBody {
		body = &replayableBody{ReadCloser: r.Body}
		out.Body = body
		if r.ContentLength < 0 {
			// Trailers come with the end of the body, after out was cloned:
			// the body copies them into the map the transport sends from.
			out.Trailer = make(http.Header, len(r.Trailer))
			body.src, body.trailer = r, out.Trailer
		}
	}
	upgrade := ""
	if route.EnableWebsocket && connectionHasToken(r.Header.Get("Connection"), "upgrade") {
		upgrade = r.Header.Get("Upgrade")
	}
	wantTrailers := connectionHasToken(r.Header.Get("Te"), "trailers")
	removeHopHeaders(out.Header)
	if upgrade != "" {
		out.Header.Set("Connection", "Upgrade")
		out.Header.Set("Upgrade", upgrade)
	}
	if wantTrailers {
		out.Header.Set("Te", "trailers")
	}
	setForwardedHeaders(out.Header, q.host, q.remoteAddr, q.scheme, q.serverPort, r.Header.Values("X-Forwarded-For"))
	// Set only by the gateway, from the consumer an auth plugin identified.
	out.Header.Del("X-Consumer-Username")
	out.Header.Del("X-Credential-Identifier")
	if up.PassHost == "rewrite" {
		out.Host = up.UpstreamHost
	}
	hostSet := false
	if sp != nil {
		sp.req.apply(out)
		hostSet = sp.req.setHost
		if sp.req.buffered {
			body = nil // replayable: each attempt gets a fresh reader below
		}
	}

	var tried balancer.Tried
	var retryDeadline time.Time
	if up.RetryTimeout > 0 {
		retryDeadline = time.Now().Add(up.RetryTimeout)
	}
	tm := route.TimeoutsFor(up)
	for attempt := 0; ; attempt++ {
		node, err := up.Picker.Pick(q, tried)
		if err != nil {
			status, n = writeStdError(w, http.StatusBadGateway, "text/html", errorPage(502))
			return status, n, false
		}
		tried.Add(node)
		t := up.Targets[node.Index()]
		out.URL.Host = t.Node.Addr
		if up.PassHost == "node" && !hostSet {
			out.Host = t.HostHeader
		}
		entry.UpstreamAddr = t.Node.Addr
		if sp != nil {
			// $upstream_addr is known from here on, as in nginx.
			sp.ctx.Served.UpstreamAddr = t.Node.Addr
		}
		ctx, cancel := context.WithCancel(upstream.WithConnectTimeout(r.Context(), tm.Connect))
		var timedOut atomic.Bool
		watchdog := time.AfterFunc(tm.Connect+tm.Send+tm.Read, func() { timedOut.Store(true); cancel() })
		// Once the request is sent, the response head must come within the read
		// timeout (nginx's proxy_read_timeout), not whatever is left of the total.
		trace := &httptrace.ClientTrace{WroteRequest: func(httptrace.WroteRequestInfo) { watchdog.Reset(tm.Read) }}
		req := out.WithContext(httptrace.WithClientTrace(ctx, trace))
		if out.GetBody != nil && attempt > 0 {
			req.Body, _ = out.GetBody()
		}
		if up.MaxRequests > 0 && !up.HTTP2() {
			// keepalive_pool.requests: the connection's last request asks for
			// it to close. GotConn runs before the request is written.
			trace.GotConn = func(info httptrace.GotConnInfo) {
				req.Close = upstream.CountRequest(info.Conn, up.MaxRequests)
			}
		}
		upStart := time.Now()
		if sp != nil {
			sp.upStart = upStart
		}
		resp, err := up.HTTPTransport.RoundTrip(req)
		if err != nil {
			watchdog.Stop()
			cancel()
			res := balancer.Result{Latency: time.Since(upStart), Failed: true, Timeout: timedOut.Load() || isTimeout(err)}
			if status, _ := body.clientError(); status != 0 {
				// The client's body failed, not the node: passive health
				// checks must not count it.
				res = balancer.Result{Latency: res.Latency}
			}
			up.Picker.Done(node, res)
			entry.UpstreamLatency = time.Since(upStart)
			if isDialError(err) && attempt < up.Retries && (body == nil || !body.read.Load()) &&
				(retryDeadline.IsZero() || time.Now().Before(retryDeadline)) && r.Context().Err() == nil {
				g.log.Warn("upstream connect failed; retrying", "route", route.ID, "node", t.Node.Addr, "err", err)
				continue
			}
			if status, cerr := body.clientError(); status != 0 {
				g.log.Debug("client request body failed", "route", route.ID, "status", status, "err", cerr)
				page := errorPage(status)
				if status == http.StatusRequestEntityTooLarge {
					page = nginxPage("413 Request Entity Too Large")
				}
				status, n = writeStdError(w, status, "text/html", page)
				return status, n, false
			}
			status = http.StatusBadGateway
			if timedOut.Load() || isTimeout(err) {
				status = http.StatusGatewayTimeout
			}
			g.log.Error("upstream request failed", "route", route.ID, "node", t.Node.Addr, "status", status, "err", err)
			status, n = writeStdError(w, status, "text/html", errorPage(status))
			return status, n, false
		}
		entry.UpstreamStatus = resp.StatusCode
		if sp != nil {
			sp.ctx.Served.UpstreamStatus = resp.StatusCode
		}
		if resp.StatusCode == http.StatusSwitchingProtocols && upgrade == "" {
			// An upgrade the route did not allow: never hand the raw
			// connection over (the fast engine answers 502 too).
			resp.Body.Close()
			watchdog.Stop()
			cancel()
			// The node answered, wrongly: count its status like any other.
			up.Picker.Done(node, balancer.Result{Latency: time.Since(upStart), Status: resp.StatusCode})
			entry.UpstreamLatency = time.Since(upStart)
			g.log.Error("upstream switched protocols without an allowed upgrade", "route", route.ID, "node", t.Node.Addr)
			status, n = writeStdError(w, http.StatusBadGateway, "text/html", errorPage(502))
			return status, n, false
		}
		n, aborted = g.copyStdResponse(w, resp, watchdog, tm.Read, &timedOut, upgrade != "", sp)
		watchdog.Stop()
		cancel()
		// Done before any abort: least_conn and ewma count this attempt as
		// finished either way.
		up.Picker.Done(node, balancer.Result{Latency: time.Since(upStart), Failed: aborted, Status: resp.StatusCode})
		entry.UpstreamLatency = time.Since(upStart)
		return resp.StatusCode, n, aborted
	}
}

// setForwardedHeaders sets the X-Forwarded-* family and X-Real-IP. The client's
// own X-Forwarded-For is extended (nginx's $proxy_add_x_forwarded_for); the
// others are overwritten, since a client could otherwise spoof its scheme or host.
func setForwardedHeaders(h http.Header, host, clientIP, scheme, port string, prior []string) {
	xff := clientIP
	if len(prior) > 0 {
		xff = strings.Join(prior, ", ") + ", " + clientIP
	}
	h.Set("X-Forwarded-For", xff)
	h.Set("X-Real-Ip", clientIP)
	h.Set("X-Forwarded-Proto", scheme)
	h.Set("X-Forwarded-Host", host)
	h.Set("X-Forwarded-Port", port)
}

// copyStdResponse streams resp to w. aborted reports an upstream failure after
// the head was sent.
func (g *Gateway) copyStdResponse(w http.ResponseWriter, resp *http.Response, watchdog *time.Timer,
	read time.Duration, timedOut *atomic.Bool, upgrade bool, sp *stdPlugins) (written int64, aborted bool) {
	defer resp.Body.Close()
	h := w.Header()
	for k, vv := range resp.Header {
		h[k] = vv
	}
	if resp.StatusCode == http.StatusSwitchingProtocols && upgrade {
		// An upgraded connection lives as long as its peers want: the read
		// timeout applied to the handshake only.
		watchdog.Stop()
		return g.switchProtocols(w, resp), false
	}
	removeHopHeaders(h)
	streaming := resp.ContentLength < 0 || strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream")
	status := resp.StatusCode
	filtering := false
	if sp != nil {
		status = sp.headerFilter(h, status)
		if filtering = sp.chain.FiltersBody(&sp.ctx); filtering {
			h.Del("Content-Length") // the filter may change the length
		}
	}
	w.WriteHeader(status)
	rc := http.NewResponseController(w)
	if streaming {
		_ = rc.Flush()
	}
	bp := copyBufPool.Get().(*[]byte)
	defer copyBufPool.Put(bp)
	buf := *bp
	for {
		watchdog.Reset(read)
		n, err := resp.Body.Read(buf)
		out := buf[:n]
		if filtering && (n > 0 || err == io.EOF) {
			out = sp.chain.BodyFilter(&sp.ctx, out, err == io.EOF)
		}
		if len(out) > 0 {
			m, werr := w.Write(out)
			written += int64(m)
			if werr != nil {
				return written, false // the client went away
			}
			if streaming {
				_ = rc.Flush()
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			if timedOut.Load() {
				g.log.Error("upstream read timed out mid-body", "err", err)
			}
			// The status line is gone; send what arrived before aborting.
			_ = rc.Flush()
			return written, true
		}
	}
	for k, vv := range resp.Trailer {
		h[http.TrailerPrefix+k] = vv
	}
	return written, false
}

// switchProtocols completes a WebSocket (or other) upgrade: it hands the client
// connection and the upstream connection to each other and copies both ways.
func (g *Gateway) switchProtocols(w http.ResponseWriter, resp *http.Response) int64 {
	upConn, ok := resp.Body.(io.ReadWriteCloser)
	if !ok {
		return 0
	}
	defer upConn.Close()
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		g.log.Error("upgrade: cannot hijack client connection", "err", err)
		return 0
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Time{})
	resp.Body = nil
	if err := resp.Write(brw); err != nil {
		return 0
	}
	if err := brw.Flush(); err != nil {
		return 0
	}
	return spliceConns(conn, brw.Reader, upConn)
}

// spliceConns copies client→upstream and upstream→client until either side
// ends, then closes both so the other copy returns too. It returns the bytes
// sent to the client.
func spliceConns(client net.Conn, clientBuffered io.Reader, up io.ReadWriteCloser) int64 {
	var toClient int64
	done := make(chan struct{}, 2)
	go func() {
		_, _ = io.Copy(up, clientBuffered)
		done <- struct{}{}
	}()
	go func() {
		toClient, _ = io.Copy(client, up)
		done <- struct{}{}
	}()
	<-done
	client.Close()
	up.Close()
	<-done
	return toClient
}

func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}
