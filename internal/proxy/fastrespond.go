package proxy

import (
	"io"
	"time"

	"github.com/sluicegw/sluice/internal/h1"
	"github.com/sluicegw/sluice/internal/upstream"
)

// respond writes the upstream response in c.resp to the client and streams its
// body. The upstream connection goes back to its pool when the exchange ended
// cleanly and both sides allow keepalive.
func (c *fastConn) respond(uc *upstream.Conn, t *upstream.Target, tm upstream.Timeouts,
	upgrade, keep bool) (int, int64, bool) {
	resp := &c.resp
	req := &c.req
	switching := resp.StatusCode == 101
	if switching && !upgrade {
		// An upgrade the route did not allow: never hand the raw connection over.
		uc.Conn.Close()
		s, n := c.writeSimple(502, "text/html", page502, false)
		return s, n, false
	}
	mode := resp.BodyMode
	status := resp.StatusCode
	var rops headerOps
	if c.chain != nil && !switching {
		// Body filters may look at the response (BodyWanter) even on
		// routes without header filters.
		c.presp.reset(status, resp.Headers, nil)
		c.pctx.Response = &c.presp
		if c.chain.HasHeaderFilter() {
			c.chain.HeaderFilter(&c.pctx)
			status, rops = c.presp.status, c.presp.ops
		}
	}
	// A body filter may change the length: the body then goes out chunked.
	filtering := c.chain.HasBodyFilter() && !switching && mode != h1.BodyNone && c.chain.FiltersBody(&c.pctx)
	// How the body is framed towards the client: chunked when its length is
	// unknown and the client speaks HTTP/1.1, else delimited by closing.
	chunkOut := false
	if mode == h1.BodyChunked || mode == h1.BodyUntilClose || filtering {
		if req.ProtoMinor == 1 {
			chunkOut = true
		} else {
			keep = false
		}
	}
	if !c.reqBody.Done() {
		// The upstream answered before reading the whole request body; the
		// rest of it cannot be skipped reliably, so the connection ends.
		keep = false
	}
	if switching {
		keep = false
	}
	if c.opts.Draining != nil && c.opts.Draining.Load() {
		// Shutting down: tell the client not to send another request here,
		// as net/http does, instead of closing under its next one.
		keep = false
	}

	h := c.head[:0]
	reason := resp.Reason
	if status != resp.StatusCode {
		reason = nil // the standard phrase for the new status
	}
	h = h1.AppendStatusLine(h, 1, status, reason)
	hasConnection := resp.Header("Connection") != nil
	for i := range resp.Headers {
		f := &resp.Headers[i]
		// A 101 keeps its Upgrade field, though "Connection: upgrade" names it.
		keepUpgrade := switching && h1.EqualFold(f.Name, "upgrade")
		if h1.IsHopByHop(f.Name) && !keepUpgrade {
			continue
		}
		if hasConnection && !keepUpgrade && h1.HasToken(resp.Headers, "Connection", f.Name) {
			continue
		}
		if h1.EqualFold(f.Name, "content-length") {
			continue // regenerated below from the parsed framing
		}
		if rops != nil && rops.deletes(bstr(f.Name)) {
			continue
		}
		h = h1.AppendHeader(h, f.Name, f.Value)
	}
	if rops != nil {
		h = appendOps(h, rops)
	}
	switch {
	case switching:
		h = append(h, "Connection: upgrade\r\n"...)
	case !keep:
		h = append(h, "Connection: close\r\n"...)
	case req.ProtoMinor == 0:
		h = append(h, "Connection: keep-alive\r\n"...)
	}
	if chunkOut {
		h = append(h, "Transfer-Encoding: chunked\r\n"...)
	} else if resp.ContentLength >= 0 && (mode == h1.BodyLength || mode == h1.BodyNone) && !switching {
		// BodyNone keeps a HEAD response's length; 204/304 never carry one.
		if resp.StatusCode != 204 && resp.StatusCode != 304 {
			h = h1.AppendContentLength(h, resp.ContentLength)
		}
	}
	h = append(h, "\r\n"...)
	c.head = h
	c.setWriteDeadline()
	if _, err := c.bw.Write(h); err != nil {
		uc.Conn.Close()
		return resp.StatusCode, 0, false
	}
	if switching {
		if err := c.bw.Flush(); err != nil {
			uc.Conn.Close()
			return 101, 0, false
		}
		_ = c.nc.SetDeadline(time.Time{})
		_ = uc.Conn.SetDeadline(time.Time{})
		n := spliceConns(c.nc, io.MultiReader(bytesReader(c.br), c.nc), &bufferedConn{uc: uc})
		return 101, n, false
	}

	c.upBody.Limits = c.opts.Limits
	c.upBody.Reset(uc.BR, mode, resp.ContentLength)
	n, err := c.copyBody(uc, tm, chunkOut, filtering)
	if err != nil {
		// Mid-body failure: the status line is gone, so the only honest signal
		// left is to cut the connection (and not finish a chunked body).
		uc.Conn.Close()
		c.bw.Flush()
		if isTimeoutErr(err) {
			c.g.log.Error("upstream read timed out mid-body", "node", t.Node.Addr)
		}
		return resp.StatusCode, n, false
	}
	if chunkOut {
		c.cw.Reset(c.bw)
		_ = c.cw.Close(filterTrailers(c.upBody.Trailers()))
	}
	if err := c.bw.Flush(); err != nil {
		keep = false
	}
	if resp.KeepAlive && c.upBody.Done() {
		t.Pool.Put(uc)
	} else {
		uc.Conn.Close()
	}
	return status, n, keep
}

// copyBody streams the upstream body to the client. It flushes whenever no
// more upstream bytes are waiting, so event streams reach the client at once
// while back-to-back data still leaves in large writes.
func (c *fastConn) copyBody(uc *upstream.Conn, tm upstream.Timeouts, chunkOut, filtering bool) (int64, error) {
	var total int64
	if chunkOut {
		c.cw.Reset(c.bw)
	}
	lastDeadline := time.Now()
	for {
		if uc.BR.Buffered() == 0 {
			if c.bw.Buffered() > 0 {
				c.setWriteDeadline()
				if err := c.bw.Flush(); err != nil {
					return total, err
				}
			}
			if tm.Read > 0 {
				// Refresh the read deadline only when waiting is possible; the
				// deadline then bounds the gap between reads, as nginx's does.
				if now := time.Now(); now.Sub(lastDeadline) > tm.Read/8 {
					_ = uc.Conn.SetReadDeadline(now.Add(tm.Read))
					lastDeadline = now
				}
			}
		}
		n, err := c.upBody.Read(c.buf)
		out := c.buf[:n]
		if filtering && (n > 0 || err == io.EOF) {
			out = c.chain.BodyFilter(&c.pctx, out, err == io.EOF)
		}
		if len(out) > 0 {
			var werr error
			if chunkOut {
				_, werr = c.cw.Write(out)
			} else {
				_, werr = c.bw.Write(out)
			}
			total += int64(len(out))
			if werr != nil {
				return total, werr
			}
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// filterTrailers drops fields that must not appear as trailers (RFC 9110
// §6.5.1): framing, routing and authentication fields.
func filterTrailers(hs []h1.Header) []h1.Header {
	out := hs[:0]
	for _, f := range hs {
		switch {
		case h1.IsHopByHop(f.Name), h1.EqualFold(f.Name, "content-length"), h1.EqualFold(f.Name, "host"),
			h1.EqualFold(f.Name, "authorization"), h1.EqualFold(f.Name, "set-cookie"):
			continue
		}
		out = append(out, f)
	}
	return out
}

// bufferedConn reads an upstream connection through its buffer, so bytes that
// arrived with the 101 response are not lost when the connection is spliced.
type bufferedConn struct{ uc *upstream.Conn }

func (b *bufferedConn) Read(p []byte) (int, error)  { return b.uc.BR.Read(p) }
func (b *bufferedConn) Write(p []byte) (int, error) { return b.uc.Conn.Write(p) }
func (b *bufferedConn) Close() error                { return b.uc.Conn.Close() }
