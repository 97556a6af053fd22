package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/sluicegw/sluice/internal/config"
)

// pollInterval is how often File looks at its file. Polling, not fsnotify:
// editors and Kubernetes ConfigMap mounts replace files by rename or symlink
// swap, which drops inotify watches on the old inode and needs re-arming logic
// that is easy to get wrong; network and overlay file systems may deliver no
// events at all. A stat twice a second costs nothing and sees every one of
// those cases, and APISIX itself polls apisix.yaml (once a second).
const pollInterval = 500 * time.Millisecond

// fullReadEvery forces a read and hash every this many polls even when mtime and
// size look unchanged: a rewrite with the same size inside the file system's
// mtime granularity would otherwise go unnoticed.
const fullReadEvery = 4

// File is a Store serving an APISIX standalone resources file (apisix.yaml or
// apisix.json). The file is accepted or rejected as a whole: a version with any
// invalid resource, a broken reference or (for YAML) no trailing #END is logged,
// one record per problem, and ignored, and the last good version stays served.
// Each accepted change gets the next revision and is delivered to watchers as a
// Reset batch carrying the full listing.
type File struct {
	path     string
	logger   *slog.Logger
	interval time.Duration

	// readMu serialises reads of the file between the poller and Reload.
	readMu  sync.Mutex
	seen    fileSig // the file state examined last, good or bad
	lastIO  string  // last I/O error logged, so a missing file is logged once
	goodSum [sha256.Size]byte

	// mu guards the served state below.
	mu      sync.Mutex
	loaded  bool
	listing Listing
	items   map[itemKey]Item
	lastErr error         // why the newest version was rejected; nil once accepted
	changed chan struct{} // closed and replaced on every accepted change

	done      chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup
}

type fileSig struct {
	modTime time.Time
	size    int64
	sum     [sha256.Size]byte
	read    bool
}

type itemKey struct {
	kind Kind
	id   string
}

// NewFile loads the resources file at path and starts watching it. A missing or
// invalid file is not fatal: List reports why until a good version appears.
// A nil logger discards logs.
func NewFile(path string, logger *slog.Logger) *File {
	return newFile(path, logger, pollInterval)
}

func newFile(path string, logger *slog.Logger, interval time.Duration) *File {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	f := &File{
		path:     path,
		logger:   logger.With("file", path),
		interval: interval,
		items:    map[itemKey]Item{},
		changed:  make(chan struct{}),
		done:     make(chan struct{}),
	}
	_ = f.check(checkForce) // the outcome is logged and kept for List
	f.wg.Add(1)
	go f.poll()
	return f
}

type checkMode int

const (
	checkStat  checkMode = iota // read only when mtime or size changed
	checkRead                   // read and hash; process only if the content changed
	checkForce                  // read and process even if unchanged
)

func (f *File) poll() {
	defer f.wg.Done()
	t := time.NewTicker(f.interval)
	defer t.Stop()
	for n := 1; ; n++ {
		select {
		case <-f.done:
			return
		case <-t.C:
			mode := checkStat
			if n%fullReadEvery == 0 {
				mode = checkRead
			}
			_ = f.check(mode) // logged inside
		}
	}
}

// Reload re-reads the file now (use it on SIGHUP). It returns nil when the file
// is valid, whether or not it changed, and otherwise the rejection error, which
// is also logged; the last good version stays served either way.
func (f *File) Reload() error {
	select {
	case <-f.done:
		return errors.New("store: file store is closed")
	default:
	}
	return f.check(checkForce)
}

func (f *File) check(mode checkMode) error {
	f.readMu.Lock()
	defer f.readMu.Unlock()
	st, err := os.Stat(f.path)
	if err != nil {
		return f.rejectIO(err, mode)
	}
	if mode == checkStat && f.seen.read && st.ModTime().Equal(f.seen.modTime) && st.Size() == f.seen.size {
		return nil
	}
	data, err := os.ReadFile(f.path)
	if err != nil {
		return f.rejectIO(err, mode)
	}
	f.lastIO = ""
	sig := fileSig{modTime: st.ModTime(), size: st.Size(), sum: sha256.Sum256(data), read: true}
	unchanged := f.seen.read && sig.sum == f.seen.sum
	f.seen = sig
	if unchanged && mode != checkForce {
		return nil // already processed (and, if bad, already logged)
	}

	res, err := config.ParseResourcesFile(data, f.path)
	if err == nil {
		err = res.Validate()
	}
	if err != nil {
		err = fmt.Errorf("store: resources file rejected: %w", err)
		f.reject(err)
		return err
	}
	if f.isLoaded() && sig.sum == f.goodSum {
		f.setErr(nil) // back to the version already served: nothing to deliver
		return nil
	}
	items, err := itemsOf(res)
	if err != nil {
		err = fmt.Errorf("store: encode resources: %w", err)
		f.reject(err)
		return err
	}
	f.goodSum = sig.sum
	f.accept(items)
	return nil
}

func (f *File) rejectIO(err error, mode checkMode) error {
	err = fmt.Errorf("store: read resources file: %w", err)
	f.seen = fileSig{} // read again as soon as the file is back
	if msg := err.Error(); msg != f.lastIO || mode == checkForce {
		f.lastIO = msg
		f.logger.Error("cannot read resources file; keeping the last good version", "error", err)
	}
	f.setErr(err)
	return err
}

// reject logs every problem as its own record, with its field path, so each can
// be found and filtered on; then it records the error for List.
func (f *File) reject(err error) {
	var fes config.FieldErrors
	if errors.As(err, &fes) {
		for _, fe := range fes {
			f.logger.Error("invalid resource", "path", fe.Path, "error", fe.Msg)
		}
	} else {
		f.logger.Error("invalid resources file", "error", err)
	}
	f.mu.Lock()
	rev := f.listing.Revision
	f.mu.Unlock()
	f.logger.Warn("resources file rejected; keeping the last good version", "revision", rev)
	f.setErr(err)
}

func (f *File) setErr(err error) {
	f.mu.Lock()
	f.lastErr = err
	f.mu.Unlock()
}

func (f *File) isLoaded() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.loaded
}

// kindItem is one resource before revisions are assigned.
type kindItem struct {
	kind  Kind
	id    string
	value json.RawMessage
}

// itemsOf encodes resources in dependency order (upstreams, services, routes),
// each kind in file order, so a consumer applying them in sequence never sees a
// reference before its target.
func itemsOf(res *config.Resources) ([]kindItem, error) {
	var out []kindItem
	var err error
	add := func(kind Kind, id string, v any) {
		if err != nil {
			return
		}
		b, merr := json.Marshal(v)
		if merr != nil {
			err = fmt.Errorf("%s %q: %w", kind, id, merr)
			return
		}
		out = append(out, kindItem{kind: kind, id: id, value: b})
	}
	// Every kind of the file, referenced kinds first (as store.Kinds).
	for i := range res.Upstreams {
		add(Upstreams, res.Upstreams[i].ID, &res.Upstreams[i])
	}
	for i := range res.Services {
		add(Services, res.Services[i].ID, &res.Services[i])
	}
	for i := range res.PluginConfigs {
		add(PluginConfigs, res.PluginConfigs[i].ID, &res.PluginConfigs[i])
	}
	for i := range res.ConsumerGroups {
		add(ConsumerGroups, res.ConsumerGroups[i].ID, &res.ConsumerGroups[i])
	}
	for i := range res.Consumers {
		add(Consumers, res.Consumers[i].Username, &res.Consumers[i])
	}
	for i := range res.SSLs {
		add(SSLs, res.SSLs[i].ID, &res.SSLs[i])
	}
	for i := range res.GlobalRules {
		add(GlobalRules, res.GlobalRules[i].ID, &res.GlobalRules[i])
	}
	for i := range res.PluginMetadata {
		add(PluginMetadata, res.PluginMetadata[i].ID, &res.PluginMetadata[i])
	}
	for i := range res.Routes {
		add(Routes, res.Routes[i].ID, &res.Routes[i])
	}
	return out, err
}

// accept publishes a new listing at the next revision. An item keeps its
// CreateRev while its id exists and its ModRev while its value is unchanged, so
// consumers can skip rebuilding what did not change.
func (f *File) accept(kis []kindItem) {
	f.mu.Lock()
	defer f.mu.Unlock()
	rev := f.listing.Revision + 1
	items := make([]Item, 0, len(kis))
	next := make(map[itemKey]Item, len(kis))
	for _, ki := range kis {
		it := Item{Kind: ki.kind, ID: ki.id, Value: ki.value, CreateRev: rev, ModRev: rev}
		if prev, ok := f.items[itemKey{ki.kind, ki.id}]; ok {
			it.CreateRev = prev.CreateRev
			if bytes.Equal(prev.Value, ki.value) {
				it.ModRev = prev.ModRev
			}
		}
		next[itemKey{ki.kind, ki.id}] = it
		items = append(items, it)
	}
	f.items = next
	f.listing = Listing{Revision: rev, Items: items}
	f.loaded = true
	f.lastErr = nil
	close(f.changed)
	f.changed = make(chan struct{})
	f.logger.Info("resources file loaded", "revision", rev, "items", len(items))
}

// List returns the last good listing. Before any good version was loaded it
// returns an error wrapping the reason (config.FieldErrors for invalid content).
// Item values are shared and must not be modified.
func (f *File) List(ctx context.Context) (Listing, error) {
	if err := ctx.Err(); err != nil {
		return Listing{}, fmt.Errorf("store: list: %w", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.loaded {
		err := f.lastErr
		if err == nil {
			err = errors.New("not loaded")
		}
		return Listing{}, fmt.Errorf("store: no valid resources from %s yet: %w", f.path, err)
	}
	return Listing{Revision: f.listing.Revision, Items: slices.Clone(f.listing.Items)}, nil
}

// Watch delivers a Reset batch with the full listing whenever the served
// revision is newer than what the watcher has seen, starting with afterRev. A
// slow watcher skips intermediate versions and receives the newest one, which is
// safe because every batch replaces everything. The channel closes when ctx ends
// or the store is closed.
func (f *File) Watch(ctx context.Context, afterRev int64) <-chan Batch {
	out := make(chan Batch)
	select {
	case <-f.done:
		close(out)
		return out
	default:
	}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		defer close(out)
		sent := afterRev
		for {
			f.mu.Lock()
			loaded, l, changed := f.loaded, f.listing, f.changed
			f.mu.Unlock()
			if loaded && l.Revision > sent {
				b := Batch{Revision: l.Revision, Reset: true, Listing: Listing{Revision: l.Revision, Items: slices.Clone(l.Items)}}
				select {
				case out <- b:
					sent = l.Revision
				case <-ctx.Done():
					return
				case <-f.done:
					return
				}
				continue
			}
			select {
			case <-changed:
			case <-ctx.Done():
				return
			case <-f.done:
				return
			}
		}
	}()
	return out
}

// Close stops watching the file and closes every watch channel.
func (f *File) Close() error {
	f.closeOnce.Do(func() { close(f.done) })
	f.wg.Wait()
	return nil
}

// Interface guard.
var _ Store = (*File)(nil)
