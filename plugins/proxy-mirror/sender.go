package proxymirror

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// maxPendingBytes bounds the request bodies held by one sender (queued or
// being sent), so a slow mirror costs at most this much memory whatever
// queue_size and max_body_bytes say.
const maxPendingBytes = 64 << 20

// maxDrain is how much of a mirror's answer is read (and discarded) so its
// connection can be reused; a longer answer closes the connection instead.
const maxDrain = 1 << 20

// reportEvery spaces the warnings about dropped and failed copies: a dead
// mirror under load must not flood the error log.
const reportEvery = time.Second

// Stats are a sender's counters since it started.
type Stats struct {
	// Queued copies were accepted for sending.
	Queued uint64
	// Sent copies got an answer from the mirror (whatever its status).
	Sent uint64
	// Failed copies were sent but got no answer: the mirror refused the
	// connection, timed out, or the sender closed.
	Failed uint64
	// Dropped copies were never sent: the queue was full, the bodies
	// waiting already held maxPendingBytes, or the sender had closed.
	Dropped uint64
	// Skipped requests were sampled in but not mirrored because of their
	// body: larger than max_body_bytes, or of unknown length.
	Skipped uint64
}

// sender delivers copies to one mirror from the background: a bounded queue
// and a fixed pool of workers. The request side only ever does a
// non-blocking channel send, so a slow, hung or dead mirror costs clients
// nothing but dropped copies. A sender lives in plugin.Lasting, keyed by the
// mirror address and the plugin_attr settings.
type sender struct {
	base    url.URL // scheme and host of the mirror
	client  *http.Client
	tr      *http.Transport
	queue   chan *job
	stop    chan struct{}
	ctx     context.Context // cancelled by Close: aborts copies in flight
	cancel  context.CancelFunc
	workers sync.WaitGroup
	closed  atomic.Bool
	once    sync.Once
	// total bounds one copy from dial to the end of the answer.
	total   time.Duration
	pending atomic.Int64 // body bytes queued or being sent
	log     *slog.Logger
	// deliver sends one copy; tests of the request side swap it.
	deliver func(ctx context.Context, j *job) error

	queued, sent, failed, dropped, skipped atomic.Uint64
	dropReport, failReport, skipReport     report
}

// newSender starts a sender for the mirror at host (scheme://host[:port]).
func newSender(host string, a Attr, log *slog.Logger) (*sender, error) {
	scheme, hostPort, err := splitHost(host)
	if err != nil {
		return nil, fmt.Errorf("host: %w", err)
	}
	dialer := &net.Dialer{Timeout: a.Connect, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := dialer.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return &deadlineConn{Conn: c, send: a.Send, read: a.Read}, nil
		},
		// nginx does not verify a proxied server's certificate unless told
		// to (proxy_ssl_verify off), and APISIX's mirror location does not.
		TLSClientConfig:     &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // APISIX's behaviour, documented
		TLSHandshakeTimeout: a.Connect,
		MaxIdleConnsPerHost: a.Workers,
		IdleConnTimeout:     90 * time.Second,
		// The copy carries the client's Accept-Encoding, not Go's.
		DisableCompression: true,
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &sender{
		base:   url.URL{Scheme: scheme, Host: hostPort},
		tr:     tr,
		client: &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		queue:  make(chan *job, a.QueueSize),
		stop:   make(chan struct{}),
		ctx:    ctx,
		cancel: cancel,
		total:  a.Connect + a.Send + a.Read,
		log:    log,
	}
	s.deliver = s.send
	s.workers.Add(a.Workers)
	for range a.Workers {
		go s.work()
	}
	return s, nil
}

// enqueue hands j to the workers without blocking; the sender owns j from
// now on. It reports whether j was queued; otherwise it was dropped and
// counted.
func (s *sender) enqueue(j *job) bool {
	if s.closed.Load() {
		s.drop(j, "sender closed")
		return false
	}
	n := int64(len(j.body))
	if n > 0 && s.pending.Add(n) > maxPendingBytes {
		s.pending.Add(-n)
		s.drop(j, "bodies waiting exceed 64 MiB")
		return false
	}
	select {
	case s.queue <- j:
		s.queued.Add(1)
		return true
	default:
		s.pending.Add(-n)
		s.drop(j, "queue full")
		return false
	}
}

func (s *sender) work() {
	defer s.workers.Done()
	for {
		select {
		case <-s.stop:
			return
		case j := <-s.queue:
			if s.closed.Load() {
				// select picks at random among ready cases: a copy taken
				// after Close is dropped, not attempted.
				s.pending.Add(-int64(len(j.body)))
				s.drop(j, "sender closed")
				continue
			}
			err := s.deliver(s.ctx, j)
			s.pending.Add(-int64(len(j.body)))
			if err != nil {
				s.fail(err)
			} else {
				s.sent.Add(1)
			}
			putJob(j)
		}
	}
}

// send delivers one copy and reads the answer to its end (or maxDrain),
// discarding it: the mirror's answer never matters, as in APISIX.
func (s *sender) send(ctx context.Context, j *job) error {
	ctx, cancel := context.WithTimeout(ctx, s.total)
	defer cancel()
	req, body, err := j.request(ctx, &s.base)
	if err != nil {
		return err
	}
	if body != nil {
		defer s.release(j, body)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("mirroring %s %s: %w", j.method, s.base.Host, err)
	}
	_, err = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrain))
	resp.Body.Close()
	if err != nil {
		return fmt.Errorf("reading the answer of %s: %w", s.base.Host, err)
	}
	return nil
}

// release waits until the transport is done with the copy's body before the
// job (and its buffer) goes back to the pool. The transport may still be
// writing the body after Do returns, when the mirror answered before
// reading it all; it then closes the connection within moments (or the
// send timeout ends the write). Past the whole copy's time bound, the
// buffer is left to the transport and the job gets a new one.
func (s *sender) release(j *job, body *jobBody) {
	select {
	case <-body.done:
		return
	default:
	}
	t := time.NewTimer(s.total)
	defer t.Stop()
	select {
	case <-body.done:
	case <-t.C:
		j.body = nil
	}
}

// skip counts a sampled request that is not mirrored because of its body.
func (s *sender) skip(reason string) {
	total := s.skipped.Add(1)
	if n, ok := s.skipReport.due(); ok {
		s.log.Warn("proxy-mirror did not mirror requests", "mirror", s.base.Host, "reason", reason,
			"skipped", n, "skipped_total", total)
	}
}

func (s *sender) drop(j *job, reason string) {
	putJob(j)
	total := s.dropped.Add(1)
	if n, ok := s.dropReport.due(); ok {
		s.log.Warn("proxy-mirror dropped copies", "mirror", s.base.Host, "reason", reason,
			"dropped", n, "dropped_total", total)
	}
}

func (s *sender) fail(err error) {
	total := s.failed.Add(1)
	if n, ok := s.failReport.due(); ok {
		s.log.Warn("proxy-mirror copies failed", "mirror", s.base.Host, "err", err,
			"failed", n, "failed_total", total)
	}
}

// Stats returns the sender's counters.
func (s *sender) Stats() Stats {
	return Stats{Queued: s.queued.Load(), Sent: s.sent.Load(), Failed: s.failed.Load(),
		Dropped: s.dropped.Load(), Skipped: s.skipped.Load()}
}

// Close stops the sender: copies in flight are aborted (counted as failed),
// queued ones dropped and counted, idle connections closed. Later copies
// are dropped. It returns once the workers have stopped, which the aborts
// keep short.
func (s *sender) Close() error {
	s.once.Do(func() {
		s.closed.Store(true)
		s.cancel()
		close(s.stop)
		s.workers.Wait()
		for {
			select {
			case j := <-s.queue:
				s.pending.Add(-int64(len(j.body)))
				s.drop(j, "sender closed")
				continue
			default:
			}
			break
		}
		s.tr.CloseIdleConnections()
	})
	return nil
}

// report rate-limits a warning without a lock: it is due at most once per
// reportEvery, and then says how many events happened since the last one.
type report struct {
	last       atomic.Int64
	unreported atomic.Uint64
}

func (r *report) due() (uint64, bool) {
	r.unreported.Add(1)
	now := time.Now().UnixNano()
	last := r.last.Load()
	if now-last < int64(reportEvery) || !r.last.CompareAndSwap(last, now) {
		return 0, false
	}
	return r.unreported.Swap(0), true
}

// deadlineConn gives a mirror connection nginx's timeouts: each write must
// finish within send, and the answer must keep coming: every read that
// makes progress, and every write (a new request on the connection),
// pushes the read deadline read further. An idle pooled connection thus
// closes after read of silence.
type deadlineConn struct {
	net.Conn
	send, read time.Duration
}

func (c *deadlineConn) Write(b []byte) (int, error) {
	now := time.Now()
	_ = c.Conn.SetWriteDeadline(now.Add(c.send))
	_ = c.Conn.SetReadDeadline(now.Add(c.send + c.read))
	return c.Conn.Write(b)
}

func (c *deadlineConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		_ = c.Conn.SetReadDeadline(time.Now().Add(c.read))
	}
	return n, err
}

// jobBody is a copy's body; done is closed once the transport closed it,
// that is, once it will read it no more.
type jobBody struct {
	*bytes.Reader
	done chan struct{}
	once sync.Once
}

func (b *jobBody) Close() error {
	b.once.Do(func() { close(b.done) })
	return nil
}

// request builds the copy's HTTP request against base, and returns its
// body (nil when it has none).
func (j *job) request(ctx context.Context, base *url.URL) (*http.Request, *jobBody, error) {
	u := *base
	path, query, _ := strings.Cut(string(j.target), "?")
	if strings.HasPrefix(path, "//") {
		// An opaque "//x" would read as a host; let url escape the path.
		dec, err := url.PathUnescape(path)
		if err != nil {
			return nil, nil, fmt.Errorf("mirror path %q: %w", path, err)
		}
		u.Path, u.RawPath = dec, path
	} else {
		// Opaque keeps the path byte for byte on the request line.
		u.Opaque = path
	}
	u.RawQuery = query
	req, err := http.NewRequestWithContext(ctx, j.method, base.String(), http.NoBody)
	if err != nil {
		return nil, nil, fmt.Errorf("building the copy: %w", err)
	}
	req.URL = &u
	var body *jobBody
	if len(j.body) > 0 {
		body = &jobBody{Reader: bytes.NewReader(j.body), done: make(chan struct{})}
		req.Body, req.ContentLength = body, int64(len(j.body))
	}
	req.Host = string(j.host)
	h := make(http.Header, len(j.ends)/2+1)
	for i := 0; i+1 < len(j.ends); i += 2 {
		start := int32(0)
		if i > 0 {
			start = j.ends[i-1]
		}
		name := http.CanonicalHeaderKey(string(j.hdr[start:j.ends[i]]))
		h[name] = append(h[name], string(j.hdr[j.ends[i]:j.ends[i+1]]))
	}
	if _, ok := h["User-Agent"]; !ok {
		// Present but empty: Go then sends no User-Agent of its own.
		h["User-Agent"] = nil
	}
	req.Header = h
	return req, body, nil
}
