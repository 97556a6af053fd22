package health

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
)

// prober runs one upstream's active checks: every healthy.interval it probes
// the nodes taking traffic, every unhealthy.interval the others, at most
// concurrency at a time. A round that outlasts its interval delays the next
// one rather than stacking probes.
type prober struct {
	entry *entry
	rules *rules
	log   *slog.Logger
}

func (p *prober) run(ctx context.Context) {
	healthy := time.NewTicker(p.rules.healthy)
	defer healthy.Stop()
	sick := time.NewTicker(p.rules.sick)
	defer sick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-healthy.C:
			p.round(ctx, true)
		case <-sick.C:
			p.round(ctx, false)
		}
	}
}

// round probes the nodes of the live View whose traffic state is wantUp.
func (p *prober) round(ctx context.Context, wantUp bool) {
	p.entry.mu.Lock()
	v := p.entry.view
	p.entry.mu.Unlock()
	if v == nil {
		return
	}
	var todo []*target
	for _, t := range v.targets {
		if up(t.state.Load()) == wantUp {
			todo = append(todo, t)
		}
	}
	if len(todo) == 0 {
		return
	}
	work := make(chan *target)
	var wg sync.WaitGroup
	for range min(p.rules.conc, len(todo)) {
		wg.Go(func() {
			for t := range work {
				p.check(ctx, t)
			}
		})
	}
	for _, t := range todo {
		work <- t
	}
	close(work)
	wg.Wait()
}

// check probes t once and reports the outcome, unless the prober was stopped
// meanwhile (a replaced prober must not count against the new rules).
func (p *prober) check(ctx context.Context, t *target) {
	kind := p.probe(ctx, t)
	if kind < 0 || ctx.Err() != nil {
		return
	}
	t.report(kind, p.rules.active[kind])
}

// probe returns the counter kind of one probe's outcome, or -1 when the
// response status is in neither list (it counts for nothing, as in
// lua-resty-healthcheck).
func (p *prober) probe(ctx context.Context, t *target) int {
	r := p.rules
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	addr := net.JoinHostPort(t.host, strconv.Itoa(r.probePort(t)))
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return failure(err)
	}
	defer conn.Close()
	if r.typ == "tcp" {
		return ctrSuccess
	}
	deadline, _ := ctx.Deadline()
	_ = conn.SetDeadline(deadline)
	if r.typ == "https" {
		tc := tls.Client(conn, r.tlsConfig(t))
		if err := tc.HandshakeContext(ctx); err != nil {
			if isTimeout(err) {
				return ctrTimeout
			}
			// lua-resty-healthcheck counts a failed handshake as a TCP failure.
			return ctrTCP
		}
		conn = tc
	}
	host := r.host
	if host == "" {
		host = t.host
	}
	var b strings.Builder
	b.WriteString(r.request)
	b.WriteString("Host: " + host + "\r\n")
	if r.body != "" {
		b.WriteString("Content-Length: " + strconv.Itoa(len(r.body)) + "\r\n")
	}
	b.WriteString("\r\n" + r.body)
	if _, err := conn.Write([]byte(b.String())); err != nil {
		return failure(err)
	}
	line, err := bufio.NewReaderSize(conn, 512).ReadString('\n')
	if err != nil && line == "" {
		return failure(err)
	}
	code := statusCode(line)
	switch {
	case r.activeOK.has(code):
		return ctrSuccess
	case code == 0 || r.activeKO.has(code):
		return ctrHTTP
	}
	return -1
}

// statusCode parses "HTTP/x.y NNN ..."; 0 when the line is not a status line.
func statusCode(line string) int {
	rest, ok := strings.CutPrefix(line, "HTTP/")
	if !ok {
		return 0
	}
	_, rest, ok = strings.Cut(rest, " ")
	if !ok || len(rest) < 3 {
		return 0
	}
	code, err := strconv.Atoi(rest[:3])
	if err != nil || code < 100 || code > 999 {
		return 0
	}
	return code
}

// failure maps a connection error to its counter kind.
func failure(err error) int {
	if isTimeout(err) {
		return ctrTimeout
	}
	return ctrTCP
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}
