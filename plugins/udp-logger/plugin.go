// Package udplogger implements APISIX's udp-logger plugin: log entries,
// gathered in batches, sent to a UDP server.
package udplogger

import (
	"context"
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
	Name     = "udp-logger"
	Priority = 400
)

// maxDatagram is the largest UDP payload over IPv4.
const maxDatagram = 65507

func init() {
	plugin.Register(plugin.Descriptor{
		Name:      Name,
		Priority:  Priority,
		NewConfig: func() plugin.Config { return NewConfig() },
		New:       newUDPLogger,
		Schema:    logentry.Schema(NewConfig(), "host", "port"),
	})
}

func newUDPLogger(cfg plugin.Config, deps plugin.Deps) (any, error) {
	c := cfg.(*Config)
	b, err := logentry.New(logentry.Options{Plugin: Name, Settings: c.Settings, Metadata: deps.Metadata})
	if err != nil {
		return nil, err
	}
	maxPending := batch.MaxPendingFrom(deps.Metadata)
	addr := net.JoinHostPort(c.Host, strconv.Itoa(*c.Port))
	key := fmt.Sprintf("%s addr=%s timeout=%d pending=%d %s", Name, addr, c.Timeout, maxPending, c.Config.Key())
	p, err := batch.Get(deps.Lasting, key, func() (batch.Options, error) {
		s := &sink{addr: addr, timeout: time.Duration(c.Timeout) * time.Second, single: c.BatchMaxSize == 1}
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
	single  bool
}

// send writes the batch as one datagram (a JSON array, or the lone entry when
// batch_max_size is 1). A batch too large for one datagram, which APISIX
// would fail to send, goes as several arrays, each as large as fits.
func (s *sink) send(ctx context.Context, entries [][]byte) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "udp", s.addr)
	if err != nil {
		return fmt.Errorf("udp-logger: %s: %w", s.addr, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetWriteDeadline(dl)
	}
	sent := 0
	for sent < len(entries) {
		n, size := 0, 2
		for sent+n < len(entries) && (n == 0 || size+len(entries[sent+n])+1 <= maxDatagram) {
			size += len(entries[sent+n]) + 1
			n++
		}
		if _, err := conn.Write(batch.JSONArray(entries[sent:sent+n], s.single)); err != nil {
			return &batch.PartialError{Sent: sent, Err: fmt.Errorf("udp-logger: sending to %s: %w", s.addr, err)}
		}
		sent += n
	}
	return nil
}

var _ plugin.Config = (*Config)(nil)
