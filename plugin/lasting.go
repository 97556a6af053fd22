package plugin

import (
	"io"
	"log/slog"
	"sync"
)

// Lasting holds objects that must outlive one configuration: a logger's
// batch queue and its connection, a tracer's exporter. Plugin instances are
// rebuilt on every configuration change; an instance asks Lasting for its
// object by a key that captures every setting the object depends on, and
// gets the same object back for as long as some configuration uses that
// key. After a new configuration goes live, objects it no longer asked for
// are closed (when they implement io.Closer).
//
// A validation-only compile (the Admin API checking a write, `sluice
// validate`) passes a nil *Lasting: Get then returns nil without calling
// build, and the instance, which will never serve a request, must accept
// that.
type Lasting struct {
	mu   sync.Mutex
	objs map[string]any
	used map[string]bool
	log  *slog.Logger
	// closing counts objects Sweep is still closing.
	closing sync.WaitGroup
}

// NewLasting returns an empty Lasting; log receives close errors.
func NewLasting(log *slog.Logger) *Lasting {
	return &Lasting{objs: make(map[string]any), used: make(map[string]bool), log: log}
}

// Get returns the object kept under key, building it on first use. build
// runs under Lasting's lock, so it must not block: start goroutines, dial
// lazily. A build error is returned and nothing is kept.
func (l *Lasting) Get(key string, build func() (any, error)) (any, error) {
	if l == nil {
		return nil, nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.used[key] = true
	if o, ok := l.objs[key]; ok {
		return o, nil
	}
	o, err := build()
	if err != nil {
		delete(l.used, key)
		return nil, err
	}
	l.objs[key] = o
	return o, nil
}

// BeginCompile starts recording which keys the next configuration uses.
func (l *Lasting) BeginCompile() {
	l.mu.Lock()
	clear(l.used)
	l.mu.Unlock()
}

// Sweep forgets every object not asked for since BeginCompile and closes
// it in the background: a logger flushing to a dead sink may take seconds
// to close, and the next configuration must not wait for it. Requests still
// on the old configuration may use a closed object, which must then fail
// softly (a logger drops the entry, counted).
func (l *Lasting) Sweep() {
	for _, o := range l.unused() {
		if c, ok := o.(io.Closer); ok {
			l.closing.Add(1)
			go func() {
				defer l.closing.Done()
				l.close(c)
			}()
		}
	}
}

func (l *Lasting) unused() []any {
	l.mu.Lock()
	defer l.mu.Unlock()
	var drop []any
	for k, o := range l.objs {
		if !l.used[k] {
			drop = append(drop, o)
			delete(l.objs, k)
		}
	}
	return drop
}

func (l *Lasting) close(c io.Closer) {
	if err := c.Close(); err != nil && l.log != nil {
		l.log.Warn("closing an object no configuration uses", "err", err)
	}
}

// Close closes every object, flushing what they buffer, and waits for
// those Sweep is still closing (at shutdown). Objects close concurrently,
// so the wait is that of the slowest.
func (l *Lasting) Close() {
	l.BeginCompile()
	l.Sweep()
	l.closing.Wait()
}
