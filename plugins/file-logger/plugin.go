// Package filelogger implements APISIX's file-logger plugin: one JSON log
// entry per line, appended to a file. Unlike APISIX, which writes in the log
// phase, entries go through a batch processor that writes whatever is queued
// at once (no timer), so a slow disk never holds a request; the file is
// opened once and reopened when it was moved or removed (log rotation).
package filelogger

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/sluicegw/sluice/internal/expr"
	"github.com/sluicegw/sluice/plugin"
	"github.com/sluicegw/sluice/plugin/batch"
	"github.com/sluicegw/sluice/plugin/logentry"
)

// Name and Priority are APISIX's.
const (
	Name     = "file-logger"
	Priority = 399
)

func init() {
	plugin.Register(plugin.Descriptor{
		Name:      Name,
		Priority:  Priority,
		NewConfig: func() plugin.Config { return NewConfig() },
		New:       newFileLogger,
		Schema:    logentry.Schema(NewConfig()),
	})
}

func newFileLogger(cfg plugin.Config, deps plugin.Deps) (any, error) {
	c := cfg.(*Config)
	path := c.Path
	if path == "" {
		path, _ = deps.Metadata["path"].(string)
	}
	if path == "" {
		return nil, errors.New(`path: is not set in either the plugin conf or the metadata`)
	}
	match, err := compileMatch(c.Match)
	if err != nil {
		return nil, err
	}
	b, err := logentry.New(logentry.Options{Plugin: Name, Settings: c.Settings, Metadata: deps.Metadata})
	if err != nil {
		return nil, err
	}
	maxPending := batch.MaxPendingFrom(deps.Metadata)
	// One writer per file, shared by every route logging to it, so lines
	// never interleave.
	key := fmt.Sprintf("%s path=%q pending=%d", Name, path, maxPending)
	p, err := batch.Get(deps.Lasting, key, func() (batch.Options, error) {
		w := &writer{path: path}
		bc := batch.NewConfig("file logger")
		return batch.Options{Config: bc, Send: w.send, MaxPending: maxPending, Eager: true,
			Log: deps.Logger(Name), OnClose: w.close}, nil
	})
	if err != nil {
		return nil, err
	}
	return b.Instance(func(ctx *plugin.Ctx) {
		if p == nil || !matches(match, ctx) {
			return
		}
		line := b.Append(make([]byte, 0, 1024), ctx)
		p.Push(append(line, '\n'))
	}), nil
}

// matches reports whether no match is set or one of its expressions holds.
func matches(match []*expr.Expr, c *plugin.Ctx) bool {
	if len(match) == 0 {
		return true
	}
	for _, e := range match {
		if e.Eval(c) {
			return true
		}
	}
	return false
}

// writer appends lines to a file it keeps open; only the processor's
// goroutine uses it.
type writer struct {
	path string
	f    *os.File
}

// send writes a batch of lines in one write, reopening the file first if it
// was rotated away.
func (w *writer) send(_ context.Context, lines [][]byte) error {
	if w.f != nil {
		cur, err1 := w.f.Stat()
		now, err2 := os.Stat(w.path)
		if err1 != nil || err2 != nil || !os.SameFile(cur, now) {
			w.close()
		}
	}
	if w.f == nil {
		f, err := os.OpenFile(w.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			return fmt.Errorf("file-logger: opening %s: %w", w.path, err)
		}
		w.f = f
	}
	n := 0
	for _, l := range lines {
		n += len(l)
	}
	buf := make([]byte, 0, n)
	for _, l := range lines {
		buf = append(buf, l...)
	}
	if _, err := w.f.Write(buf); err != nil {
		w.close()
		return fmt.Errorf("file-logger: writing %s: %w", w.path, err)
	}
	return nil
}

func (w *writer) close() {
	if w.f != nil {
		w.f.Close()
		w.f = nil
	}
}

var _ plugin.Config = (*Config)(nil)
