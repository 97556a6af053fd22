// Package tcplogger implements APISIX's tcp-logger plugin: log entries,
// gathered in batches, written to a TCP (optionally TLS) server, one
// connection per batch as APISIX does.
package tcplogger

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/sluicegw/sluice/plugin"
	"github.com/sluicegw/sluice/plugin/batch"
	"github.com/sluicegw/sluice/plugin/logentry"
)

// Name and Priority are APISIX's.
const (
	Name     = "tcp-logger"
	Priority = 405
)

func init() {
	plugin.Register(plugin.Descriptor{
		Name:      Name,
		Priority:  Priority,
		NewConfig: func() plugin.Config { return NewConfig() },
		New:       newTCPLogger,
		Schema:    logentry.Schema(NewConfig(), "host", "port"),
	})
}

func newTCPLogger(cfg plugin.Config, deps plugin.Deps) (any, error) {
	c := cfg.(*Config)
	b, err := logentry.New(logentry.Options{Plugin: Name, Settings: c.Settings, Metadata: deps.Metadata})
	if err != nil {
		return nil, err
	}
	maxPending := batch.MaxPendingFrom(deps.Metadata)
	addr := net.JoinHostPort(c.Host, strconv.Itoa(*c.Port))
	key := fmt.Sprintf("%s addr=%s tls=%t sni=%q timeout=%d pending=%d %s",
		Name, addr, c.TLS, c.TLSOptions, c.Timeout, maxPending, c.Config.Key())
	p, err := batch.Get(deps.Lasting, key, func() (batch.Options, error) {
		s := &sink{addr: addr, timeout: time.Duration(c.Timeout) * time.Millisecond, single: c.BatchMaxSize == 1}
		if c.TLS {
			sni := c.TLSOptions
			if sni == "" {
				sni = c.Host
			}
			s.tls = &tls.Config{ServerName: sni, InsecureSkipVerify: true} //nolint:gosec // APISIX does not verify either
		}
		return batch.Options{Config: c.Config, Send: s.send, MaxPending: maxPending, Log: deps.Logger(Name)}, nil
	})
	if err != nil {
		return nil, err
	}
	return b.Instance(func(ctx *plugin.Ctx) {
		if p != nil {
			p.Push(b.Append(make([]byte, 0, 1024), ctx))
		}
	}), nil
}

type sink struct {
	addr    string
	timeout time.Duration
	tls     *tls.Config
	single  bool
}

// send connects, writes the batch (a JSON array, or the lone entry when
// batch_max_size is 1) and closes, all within timeout.
func (s *sink) send(ctx context.Context, entries [][]byte) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	var conn net.Conn
	var err error
	if s.tls != nil {
		d := &tls.Dialer{Config: s.tls}
		conn, err = d.DialContext(ctx, "tcp", s.addr)
	} else {
		var d net.Dialer
		conn, err = d.DialContext(ctx, "tcp", s.addr)
	}
	if err != nil {
		return fmt.Errorf("tcp-logger: connecting to %s: %w", s.addr, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetWriteDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetWriteDeadline(time.Now()) })
	defer stop()
	if _, err := conn.Write(batch.JSONArray(entries, s.single)); err != nil {
		return fmt.Errorf("tcp-logger: sending to %s: %w", s.addr, err)
	}
	return nil
}

var _ plugin.Config = (*Config)(nil)
