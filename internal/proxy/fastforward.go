package proxy

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/sluicegw/sluice/internal/balancer"
	"github.com/sluicegw/sluice/internal/h1"
	"github.com/sluicegw/sluice/internal/runtime"
	"github.com/sluicegw/sluice/internal/upstream"
)

// errStale marks a failure on a pooled keepalive connection before the
// upstream sent anything: the upstream closed it while idle, so the same
// request may go again on a fresh connection without counting as a retry.
var errStale = errors.New("stale keepalive connection")

// forward proxies the current request to up (route's upstream, or the one a
// plugin chose) and streams the response back. It reports the status sent,
// body bytes sent, and whether the client connection may carry another
// request.
func (c *fastConn) forward(route *runtime.Route, up *upstream.Upstream, structural, keep bool) (int, int64, bool) {
	if up.HTTP2() {
		c.g.log.Error("route needs an HTTP/2 client: gRPC upstreams are reached over HTTP/2 only",
			"route", route.ID, "scheme", up.Scheme)
		s, n := c.writeSimple(502, "text/html", page502, false)
		return s, n, false
	}
	req := &c.req
	tm := route.TimeoutsFor(up)
	upgrade := route.EnableWebsocket && req.Upgrade
	if !c.bodyBuffered() {
		// Answer the client's expectation ourselves (as nginx does) so its
		// body arrives while the upstream is being picked.
		c.sendContinue()
	}
	// A buffered body can be sent again; a streamed one only once.
	hasBody := !c.reqHasNoBody() && !c.bodyBuffered()

	var tried balancer.Tried
	var retryDeadline time.Time
	if up.RetryTimeout > 0 {
		retryDeadline = time.Now().Add(up.RetryTimeout)
	}
	for attempt := 0; ; attempt++ {
		node, err := up.Picker.Pick(&c.view, tried)
		if err != nil {
			s, n := c.writeSimple(502, "text/html", page502, false)
			return s, n, false
		}
		tried.Add(node)
		t := up.Targets[node.Index()]
		c.entry.UpstreamAddr = t.Node.Addr
		if c.chain != nil {
			// $upstream_addr is known from here on, as in nginx (header
			// filters and Lua read it before the log phase).
			c.pctx.Served.UpstreamAddr = t.Node.Addr
		}
		upStart := time.Now()
		c.upStart = upStart
		uc, err := c.exchange(up, t, tm, structural, upgrade, hasBody)
		if err != nil {
			res := balancer.Result{Latency: time.Since(upStart), Failed: true, Timeout: isTimeoutErr(err)}
			if clientAtFault(err) {
				// The client's body broke or was too large: the node did
				// nothing wrong, so passive health checks must not count it.
				res = balancer.Result{Latency: res.Latency}
			}
			up.Picker.Done(node, res)
			c.entry.UpstreamLatency = time.Since(upStart)
			var de *dialError
			if errors.As(err, &de) && attempt < up.Retries &&
				(retryDeadline.IsZero() || time.Now().Before(retryDeadline)) {
				// Nothing of the request was sent, so another node may take it.
				c.g.log.Warn("upstream connect failed; retrying", "route", route.ID, "node", t.Node.Addr, "err", err)
				continue
			}
			var cbe *clientBodyError
			switch {
			case errors.As(err, &cbe):
				s, n := c.writeSimple(400, "text/html", page400, false)
				return s, n, false
			case clientAtFault(err):
				s, n := c.writeSimple(413, "text/html", nginxPage("413 Request Entity Too Large"), false)
				return s, n, false
			}
			status := 502
			if isTimeoutErr(err) {
				status = 504
			}
			c.g.log.Error("upstream request failed", "route", route.ID, "node", t.Node.Addr, "status", status, "err", err)
			s, n := c.writeSimple(status, "text/html", errorPage(status), false)
			return s, n, false
		}
		headLatency := time.Since(upStart)
		c.entry.UpstreamStatus = c.resp.StatusCode
		if c.chain != nil {
			c.pctx.Served.UpstreamStatus = c.resp.StatusCode
		}
		s, n, k := c.respond(uc, t, tm, upgrade, keep)
		c.entry.UpstreamLatency = time.Since(upStart)
		// Done after the body: least_conn counts a streaming response as in
		// flight until it ends, as nginx's least_conn counts connections.
		up.Picker.Done(node, balancer.Result{Latency: headLatency, Status: c.resp.StatusCode})
		return s, n, k
	}
}

// clientAtFault reports an exchange that failed because of the client's
// request body (broken framing, too large), not because of the node.
func clientAtFault(err error) bool {
	var cbe *clientBodyError
	var he *h1.Error
	return errors.As(err, &cbe) || (errors.As(err, &he) && he.Status == 413)
}

// dialError wraps a failure to connect, the one failure retried on another node.
type dialError struct{ err error }

func (e *dialError) Error() string { return e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

// exchange sends the request head and body to target and reads the response
// head into c.resp. A stale pooled connection is replaced by a fresh one once.
func (c *fastConn) exchange(up *upstream.Upstream, t *upstream.Target, tm upstream.Timeouts,
	structural, upgrade, hasBody bool) (*upstream.Conn, error) {
	for {
		uc := t.Pool.Get()
		if uc == nil {
			var err error
			uc, err = t.Pool.Dial(context.Background(), tm.Connect)
			if err != nil {
				return nil, &dialError{err}
			}
		}
		err := c.sendRequest(uc, up, t, tm, structural, upgrade)
		if err == nil {
			err = c.readResponseHead(uc, tm)
		}
		if err == nil {
			return uc, nil
		}
		uc.Conn.Close()
		if errors.Is(err, errStale) && !hasBody {
			continue
		}
		return nil, err
	}
}

func (c *fastConn) sendRequest(uc *upstream.Conn, up *upstream.Upstream, t *upstream.Target,
	tm upstream.Timeouts, structural, upgrade bool) error {
	req := &c.req
	pr := &c.preq
	plugins := c.chain != nil
	h := c.head[:0]
	method := req.Method
	if plugins && pr.setMethod {
		method = []byte(pr.method)
	}
	if plugins && (pr.setPath || pr.setQuery) {
		// A plugin rewrote the target (proxy-rewrite).
		h = append(h, method...)
		h = append(h, ' ')
		switch {
		case pr.setPath:
			h = append(h, pr.path...)
		case structural:
			h = append(h, escapePath(c.view.path)...)
		default:
			h = append(h, req.Path...)
		}
		q := bstr(req.Query)
		if pr.setQuery {
			q = pr.query
		}
		if q != "" {
			h = append(h, '?')
			h = append(h, q...)
		}
		h = append(h, " HTTP/1.1\r\n"...)
	} else if structural || len(req.RequestURI) == 0 || req.RequestURI[0] != '/' || (plugins && pr.setMethod) {
		// Absolute-form targets and normalized paths are rebuilt in origin form.
		h = append(h, method...)
		h = append(h, ' ')
		if structural {
			h = append(h, escapePath(c.view.path)...)
		} else {
			h = append(h, req.Path...)
		}
		if req.Query != nil {
			h = append(h, '?')
			h = append(h, req.Query...)
		}
		h = append(h, " HTTP/1.1\r\n"...)
	} else {
		h = h1.AppendRequestLine(h, req.Method, req.RequestURI, 1)
	}
	h = append(h, "Host: "...)
	switch {
	case plugins && pr.setHost:
		h = append(h, pr.host...)
	case up.PassHost == "node":
		h = append(h, t.HostHeader...)
	case up.PassHost == "rewrite":
		h = append(h, up.UpstreamHost...)
	default:
		h = append(h, req.Host...)
	}
	h = append(h, "\r\n"...)
	var xff []byte
	hasConnection := req.Header("Connection") != nil
	for i := range req.Headers {
		f := &req.Headers[i]
		switch {
		case h1.IsHopByHop(f.Name), h1.EqualFold(f.Name, "host"), h1.EqualFold(f.Name, "expect"),
			h1.EqualFold(f.Name, "content-length"):
			// Framing is regenerated below: a client may legally send
			// "Content-Length: 5, 5", which some upstreams would refuse.
			continue
		case h1.EqualFold(f.Name, "x-forwarded-for"):
			if xff != nil {
				xff = append(xff, ", "...)
			}
			xff = append(xff, f.Value...)
			continue
		case h1.EqualFold(f.Name, "x-real-ip"), h1.EqualFold(f.Name, "x-forwarded-proto"),
			h1.EqualFold(f.Name, "x-forwarded-host"), h1.EqualFold(f.Name, "x-forwarded-port"),
			// Set only by the gateway, from the consumer an auth plugin
			// identified: a client must not claim an identity.
			h1.EqualFold(f.Name, "x-consumer-username"), h1.EqualFold(f.Name, "x-credential-identifier"):
			continue
		case hasConnection && h1.HasToken(req.Headers, "Connection", f.Name):
			continue
		case plugins && pr.ops.deletes(bstr(f.Name)):
			continue
		}
		h = h1.AppendHeader(h, f.Name, f.Value)
	}
	if plugins {
		h = appendOps(h, pr.ops)
	}
	v := &c.view
	h = append(h, "X-Forwarded-For: "...)
	if xff != nil {
		h = append(h, xff...)
		h = append(h, ", "...)
	}
	h = append(h, v.remoteAddr...)
	h = append(h, "\r\nX-Real-IP: "...)
	h = append(h, v.remoteAddr...)
	h = append(h, "\r\nX-Forwarded-Proto: "...)
	h = append(h, v.scheme...)
	h = append(h, "\r\nX-Forwarded-Host: "...)
	h = append(h, v.host...) // nginx's $host: lower case, no port, as APISIX sends
	h = append(h, "\r\nX-Forwarded-Port: "...)
	h = append(h, v.serverPort...)
	h = append(h, "\r\n"...)
	switch {
	case c.bodyBuffered():
		h = h1.AppendContentLength(h, int64(len(pr.body)))
	case req.Chunked:
		h = append(h, "Transfer-Encoding: chunked\r\n"...)
	case req.ContentLength >= 0:
		h = h1.AppendContentLength(h, req.ContentLength)
	}
	if upgrade {
		h = append(h, "Connection: upgrade\r\nUpgrade: "...)
		h = append(h, req.Header("Upgrade")...)
		h = append(h, "\r\n"...)
	}
	h = append(h, "\r\n"...)
	c.head = h
	if tm.Send > 0 {
		_ = uc.Conn.SetWriteDeadline(time.Now().Add(tm.Send))
	}
	if _, err := uc.BW.Write(h); err != nil {
		return c.staleIf(uc, err)
	}
	if c.bodyBuffered() {
		if _, err := uc.BW.Write(pr.body); err != nil {
			return c.staleIf(uc, err)
		}
	} else if !c.reqHasNoBody() {
		if err := c.sendBody(uc, tm); err != nil {
			return err
		}
	}
	if err := uc.BW.Flush(); err != nil {
		return c.staleIf(uc, err)
	}
	return nil
}

// staleIf classifies a failure on a connection from the pool as stale.
func (c *fastConn) staleIf(uc *upstream.Conn, err error) error {
	if uc.Reused {
		return errors.Join(errStale, err)
	}
	return err
}

// sendBody streams the client's body to the upstream, re-framing chunked
// bodies (trailers included) and bounding the total by MaxBodyBytes.
func (c *fastConn) sendBody(uc *upstream.Conn, tm upstream.Timeouts) error {
	var w io.Writer = uc.BW
	if c.req.Chunked {
		c.cw.Reset(uc.BW)
		w = &c.cw
	}
	var total int64
	for {
		if c.br.Buffered() == 0 {
			// The next read may wait for the client: send what is buffered
			// first, so a streamed body reaches the upstream as it comes.
			if uc.BW.Buffered() > 0 {
				if tm.Send > 0 {
					_ = uc.Conn.SetWriteDeadline(time.Now().Add(tm.Send))
				}
				if err := uc.BW.Flush(); err != nil {
					return err
				}
			}
			if c.opts.BodyTimeout > 0 {
				_ = c.nc.SetReadDeadline(time.Now().Add(c.opts.BodyTimeout))
			}
		}
		n, err := c.reqBody.Read(c.buf)
		if n > 0 {
			total += int64(n)
			if c.opts.MaxBodyBytes > 0 && total > c.opts.MaxBodyBytes {
				return &h1.Error{Status: 413, Reason: "request body too large"}
			}
			if tm.Send > 0 {
				_ = uc.Conn.SetWriteDeadline(time.Now().Add(tm.Send))
			}
			if _, werr := w.Write(c.buf[:n]); werr != nil {
				return werr
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return &clientBodyError{err}
		}
	}
	_ = c.nc.SetReadDeadline(time.Time{})
	if c.req.Chunked {
		return c.cw.Close(c.reqBody.Trailers())
	}
	return nil
}

// clientBodyError is a failure reading the client's body: the client's fault,
// answered with 400, not 502.
type clientBodyError struct{ err error }

func (e *clientBodyError) Error() string { return "reading client body: " + e.err.Error() }
func (e *clientBodyError) Unwrap() error { return e.err }

func (c *fastConn) readResponseHead(uc *upstream.Conn, tm upstream.Timeouts) error {
	for {
		if tm.Read > 0 {
			_ = uc.Conn.SetReadDeadline(time.Now().Add(tm.Read))
		}
		c.resp.Reset()
		if err := h1.ReadResponse(uc.BR, &c.resp, c.opts.Limits, c.req.Method); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return c.staleIf(uc, err)
			}
			return err
		}
		// Interim responses other than 101 are consumed here: the client's
		// 100-continue was already answered.
		if c.resp.StatusCode >= 200 || c.resp.StatusCode == 101 {
			return nil
		}
	}
}
