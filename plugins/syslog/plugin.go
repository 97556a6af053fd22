// Package syslog implements APISIX's syslog plugin: each log entry becomes an
// RFC 5424 message (facility SYSLOG, severity INFO, app "apisix", the JSON
// entry as its text), sent in batches to a syslog server over TCP, TLS or
// UDP.
package syslog

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/sluicegw/sluice/plugin"
	"github.com/sluicegw/sluice/plugin/batch"
	"github.com/sluicegw/sluice/plugin/logentry"
)

// Name and Priority are APISIX's.
const (
	Name     = "syslog"
	Priority = 401
)

// pri is <facility*8+severity>: SYSLOG (5) and INFO (6), as APISIX sends.
const pri = "<46>1 "

func init() {
	plugin.Register(plugin.Descriptor{
		Name:      Name,
		Priority:  Priority,
		NewConfig: func() plugin.Config { return NewConfig() },
		New:       newSyslog,
		Schema:    logentry.Schema(NewConfig(), "host", "port"),
	})
}

func newSyslog(cfg plugin.Config, deps plugin.Deps) (any, error) {
	c := cfg.(*Config)
	b, err := logentry.New(logentry.Options{Plugin: Name, Settings: c.Settings, Metadata: deps.Metadata})
	if err != nil {
		return nil, err
	}
	maxPending := batch.MaxPendingFrom(deps.Metadata)
	addr := net.JoinHostPort(c.Host, strconv.Itoa(*c.Port))
	key := fmt.Sprintf("%s addr=%s sock=%s tls=%t flush=%d drop=%d timeout=%d pending=%d %s", Name, addr, c.SockType,
		c.TLS, c.FlushLimit, c.DropLimit, c.Timeout, maxPending, c.Config.Key())
	var created *sink
	p, err := batch.Get(deps.Lasting, key, func() (batch.Options, error) {
		s := &sink{addr: addr, network: c.SockType, flushLimit: c.FlushLimit, dropLimit: c.DropLimit,
			timeout: time.Duration(c.Timeout) * time.Millisecond}
		if c.TLS {
			s.tls = &tls.Config{ServerName: c.Host, InsecureSkipVerify: true} //nolint:gosec // as APISIX's logger socket
		}
		created = s
		return batch.Options{Config: c.Config, Send: s.send, MaxPending: maxPending,
			Log: deps.Logger(Name), OnClose: s.close}, nil
	})
	if err != nil {
		return nil, err
	}
	if created != nil && p != nil {
		// Set before any entry can reach the processor: the instance that
		// pushes them is returned below, and the queue orders the rest.
		created.drop = func(n int) { p.Drop(n, "drop_limit") }
	}
	pid := strconv.Itoa(os.Getpid())
	return b.Instance(func(ctx *plugin.Ctx) {
		if p == nil {
			return
		}
		msg := make([]byte, 0, 1024)
		msg = append(msg, pri...)
		msg = ctx.Served.Start.Add(ctx.Served.Latency).UTC().AppendFormat(msg, "2006-01-02T15:04:05.000Z")
		msg = append(msg, ' ')
		host := ctx.Request.Host()
		if host == "" {
			host = "-"
		}
		msg = append(msg, host...)
		msg = append(msg, " apisix "...)
		msg = append(msg, pid...)
		msg = append(msg, " - - "...)
		msg = b.Append(msg, ctx)
		msg = append(msg, '\n')
		p.Push(msg)
	}), nil
}

// sink writes messages over one connection, kept between batches and
// reopened after an error. The processor's goroutine sends; close may run
// while a send is stuck (the close deadline passed), hence the lock around
// the connection (never held while writing).
type sink struct {
	addr, network         string
	flushLimit, dropLimit int
	timeout               time.Duration
	tls                   *tls.Config
	drop                  func(n int)
	mu                    sync.Mutex
	conn                  net.Conn
}

func (s *sink) dial(ctx context.Context) (net.Conn, error) {
	s.mu.Lock()
	conn := s.conn
	s.mu.Unlock()
	if conn != nil {
		return conn, nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	var err error
	if s.tls != nil {
		d := &tls.Dialer{Config: s.tls}
		conn, err = d.DialContext(ctx, "tcp", s.addr)
	} else {
		var d net.Dialer
		conn, err = d.DialContext(ctx, s.network, s.addr)
	}
	if err != nil {
		return nil, fmt.Errorf("syslog: connecting to %s: %w", s.addr, err)
	}
	s.mu.Lock()
	s.conn = conn
	s.mu.Unlock()
	return conn, nil
}

func (s *sink) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn != nil {
		s.conn.Close()
		s.conn = nil
	}
}

// send writes the batch: over TCP, whole messages gathered up to flush_limit
// bytes per write; over UDP, one datagram per message. Messages past
// drop_limit bytes in one batch are dropped.
func (s *sink) send(ctx context.Context, entries [][]byte) error {
	total := 0
	for i, e := range entries {
		total += len(e)
		if total > s.dropLimit {
			if s.drop != nil {
				s.drop(len(entries) - i)
			}
			entries = entries[:i]
			break
		}
	}
	conn, err := s.dial(ctx)
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetWriteDeadline(time.Now()) })
	defer stop()
	sent := 0
	buf := make([]byte, 0, s.flushLimit)
	for sent < len(entries) {
		n := 1
		if s.network == "tcp" {
			buf = append(buf[:0], entries[sent]...)
			for sent+n < len(entries) && len(buf)+len(entries[sent+n]) <= s.flushLimit {
				buf = append(buf, entries[sent+n]...)
				n++
			}
		} else {
			buf = entries[sent]
		}
		_ = conn.SetWriteDeadline(time.Now().Add(s.timeout))
		if _, err := conn.Write(buf); err != nil {
			s.close()
			return &batch.PartialError{Sent: sent, Err: fmt.Errorf("syslog: sending to %s: %w", s.addr, err)}
		}
		sent += n
	}
	return nil
}

var _ plugin.Config = (*Config)(nil)
