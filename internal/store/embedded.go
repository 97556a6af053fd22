package store

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// EmbeddedFileName is the name of the database file inside the data directory.
const EmbeddedFileName = "sluice.db"

// embLockTimeout bounds the wait for bbolt's exclusive file lock. bbolt waits
// forever by default, so a second sluice started on the same data directory
// would hang without a word; a short timeout turns that into a clear error.
const embLockTimeout = time.Second

// embHistorySize is how many recent events the store keeps in memory for
// watchers. A watcher that resumes from, or falls behind to, a revision older
// than this window gets a full listing instead.
const embHistorySize = 10_000

// embFormat is the on-disk layout version, stored in the meta bucket, so a
// later layout can recognise and migrate an older file.
const embFormat = "1"

// Names in the meta bucket. Resource buckets are named by Kind, and no Kind
// starts with an underscore.
var (
	embMetaBucket  = []byte("_meta")
	embKeyFormat   = []byte("format")
	embKeyRevision = []byte("revision")
	embKeyLastID   = []byte("last_id")
)

// embOptions are the knobs tests turn; OpenEmbedded uses the defaults.
type embOptions struct {
	lockTimeout time.Duration
	historySize int
	noSync      bool // tests only: skip fsync where durability is not under test
	now         func() time.Time
}

// Embedded is a Writer kept in a single bbolt file (dir/sluice.db), for a
// gateway that is its own control plane: no etcd to run, and changes made
// through the Admin API survive restarts.
//
// Every resource kind is a bucket whose keys are ids and whose values are an
// envelope of the item's CreateRev, ModRev and raw JSON. A meta bucket holds the
// store revision, which every Put and Delete increments by one inside the same
// transaction, and the last id NewID handed out. Writes are committed and
// fsynced before they return.
//
// Watchers are served from an in-memory window of the latest events; see Watch.
// Only one process can open a data directory at a time.
type Embedded struct {
	db     *bolt.DB
	path   string
	logger *slog.Logger
	now    func() time.Time

	// writeMu orders commit and publish: a write holds it from the start of
	// its transaction until its event is in the history, so the history is in
	// revision order. bbolt serialises write transactions anyway, so this costs
	// no parallelism.
	writeMu sync.Mutex

	// mu guards the history and the fields below it.
	mu      sync.Mutex
	hist    embHistory
	changed chan struct{} // closed and replaced on every published event
	closed  bool

	done      chan struct{}
	closeOnce sync.Once
	closeErr  error
	wg        sync.WaitGroup // watcher goroutines
}

// OpenEmbedded opens (creating if needed) the embedded store in dir. If another
// process holds the data directory, it fails after about a second with an error
// saying so. A nil logger discards logs.
func OpenEmbedded(dir string, logger *slog.Logger) (*Embedded, error) {
	return openEmbedded(dir, logger, embOptions{})
}

func openEmbedded(dir string, logger *slog.Logger, o embOptions) (*Embedded, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if o.lockTimeout <= 0 {
		o.lockTimeout = embLockTimeout
	}
	if o.historySize <= 0 {
		o.historySize = embHistorySize
	}
	if o.now == nil {
		o.now = time.Now
	}
	if dir == "" {
		return nil, errors.New("store: embedded: data directory must not be empty")
	}
	// 0700/0600: the file holds consumer credentials and TLS keys.
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("store: embedded: create data directory: %w", err)
	}
	path := filepath.Join(dir, EmbeddedFileName)
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: o.lockTimeout, NoSync: o.noSync})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("store: embedded: open %s: data directory is in use by another sluice process: %w", path, err)
	}
	if err != nil {
		return nil, fmt.Errorf("store: embedded: open %s: %w", path, err)
	}
	rev, err := embInit(db)
	if err != nil {
		_ = db.Close() // the init error is the one worth reporting
		return nil, fmt.Errorf("store: embedded: initialise %s: %w", path, err)
	}
	e := &Embedded{
		db:      db,
		path:    path,
		logger:  logger.With("store", "embedded", "path", path),
		now:     o.now,
		hist:    newEmbHistory(o.historySize, rev),
		changed: make(chan struct{}),
		done:    make(chan struct{}),
	}
	e.logger.Info("embedded store opened", "revision", rev)
	return e, nil
}

// embInit creates missing buckets, checks the layout version and returns the
// store revision.
func embInit(db *bolt.DB) (int64, error) {
	var rev int64
	err := db.Update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucketIfNotExists(embMetaBucket)
		if err != nil {
			return fmt.Errorf("meta bucket: %w", err)
		}
		switch f := meta.Get(embKeyFormat); {
		case f == nil:
			if err := meta.Put(embKeyFormat, []byte(embFormat)); err != nil {
				return fmt.Errorf("write format: %w", err)
			}
		case string(f) != embFormat:
			return fmt.Errorf("unsupported data format %q (this sluice reads %q)", f, embFormat)
		}
		for _, k := range Kinds {
			if _, err := tx.CreateBucketIfNotExists([]byte(k)); err != nil {
				return fmt.Errorf("bucket %s: %w", k, err)
			}
		}
		rev, err = embGetInt(meta, embKeyRevision)
		return err
	})
	return rev, err //nolint:wrapcheck // wrapped by the caller
}

// Path returns the database file's path.
func (e *Embedded) Path() string { return e.path }

// Get returns one item, or an error wrapping ErrNotFound.
func (e *Embedded) Get(ctx context.Context, kind Kind, id string) (Item, error) {
	if err := embCheckKey(ctx, kind, id); err != nil {
		return Item{}, fmt.Errorf("store: get %s/%s: %w", kind, id, err)
	}
	var it Item
	err := e.db.View(func(tx *bolt.Tx) error {
		var ok bool
		var err error
		it, ok, err = embGet(tx, kind, id)
		if err == nil && !ok {
			err = ErrNotFound
		}
		return err
	})
	if err != nil {
		return Item{}, fmt.Errorf("store: get %s/%s: %w", kind, id, err)
	}
	return it, nil
}

// Put creates or replaces an item; prevRev works as documented on Writer. A
// write to an item that does not exist with a positive prevRev is a conflict
// (it was deleted meanwhile). The value must be valid JSON and is stored byte
// for byte. The write is on disk when Put returns.
func (e *Embedded) Put(ctx context.Context, kind Kind, id string, value json.RawMessage, prevRev int64) (Item, error) {
	err := embCheckKey(ctx, kind, id)
	if err == nil {
		err = embCheckPrev(prevRev)
	}
	if err == nil && !json.Valid(value) {
		err = errors.New("value is not valid JSON")
	}
	if err != nil {
		return Item{}, fmt.Errorf("store: put %s/%s: %w", kind, id, err)
	}
	it := Item{Kind: kind, ID: id, Value: slices.Clone(value)}
	e.writeMu.Lock()
	defer e.writeMu.Unlock()
	err = e.db.Update(func(tx *bolt.Tx) error {
		old, ok, err := embGet(tx, kind, id)
		if err != nil {
			return err
		}
		if err := embCompare(old, ok, prevRev); err != nil {
			return err
		}
		rev, err := embBumpRevision(tx)
		if err != nil {
			return err
		}
		it.CreateRev, it.ModRev = rev, rev
		if ok {
			it.CreateRev = old.CreateRev
		}
		return tx.Bucket([]byte(kind)).Put([]byte(id), embEncode(it))
	})
	if err != nil {
		return Item{}, fmt.Errorf("store: put %s/%s: %w", kind, id, err)
	}
	e.publish(it.ModRev, Event{Type: Put, Item: it})
	return it, nil
}

// Delete removes an item and returns it as it was. prevRev works as for Put;
// an absent item is ErrNotFound whatever prevRev says, and prevRev 0 ("must
// not exist") always fails. The delete event watchers receive carries the
// removed item with ModRev set to the deleting revision, as etcd does.
func (e *Embedded) Delete(ctx context.Context, kind Kind, id string, prevRev int64) (Item, error) {
	err := embCheckKey(ctx, kind, id)
	if err == nil {
		err = embCheckPrev(prevRev)
	}
	if err != nil {
		return Item{}, fmt.Errorf("store: delete %s/%s: %w", kind, id, err)
	}
	var old Item
	var rev int64
	e.writeMu.Lock()
	defer e.writeMu.Unlock()
	err = e.db.Update(func(tx *bolt.Tx) error {
		var ok bool
		var err error
		old, ok, err = embGet(tx, kind, id)
		if err != nil {
			return err
		}
		if !ok {
			return ErrNotFound
		}
		if err := embCompare(old, ok, prevRev); err != nil {
			return err
		}
		if rev, err = embBumpRevision(tx); err != nil {
			return err
		}
		return tx.Bucket([]byte(kind)).Delete([]byte(id))
	})
	if err != nil {
		return Item{}, fmt.Errorf("store: delete %s/%s: %w", kind, id, err)
	}
	gone := old
	gone.ModRev = rev
	e.publish(rev, Event{Type: Delete, Item: gone})
	return old, nil
}

// NewID returns a fresh id: a 20-digit zero-padded decimal string, the shape
// APISIX gives POSTed resources (it formats an etcd revision with %020d). The
// number is the larger of the last id plus one and the current Unix time in
// microseconds, and is skipped past any id already used by an item of any
// kind. The time base keeps generated ids clear of small hand-chosen or
// imported numeric ids, and the persisted counter keeps them unique and
// increasing across restarts even if the clock steps back.
func (e *Embedded) NewID(ctx context.Context) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("store: new id: %w", err)
	}
	var id string
	err := e.db.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(embMetaBucket)
		last, err := embGetInt(meta, embKeyLastID)
		if err != nil {
			return err
		}
		n := max(last+1, e.now().UnixMicro())
		for ; embIDTaken(tx, embFormatID(n)); n++ {
		}
		id = embFormatID(n)
		return embPutInt(meta, embKeyLastID, n)
	})
	if err != nil {
		return "", fmt.Errorf("store: new id: %w", err)
	}
	return id, nil
}

func embFormatID(n int64) string { return fmt.Sprintf("%020d", n) }

func embIDTaken(tx *bolt.Tx, id string) bool {
	for _, k := range Kinds {
		if b := tx.Bucket([]byte(k)); b != nil && b.Get([]byte(id)) != nil {
			return true
		}
	}
	return false
}

// List returns every item at one revision, read in a single transaction: kinds
// in the order of Kinds, ids in byte order within a kind.
func (e *Embedded) List(ctx context.Context) (Listing, error) {
	if err := ctx.Err(); err != nil {
		return Listing{}, fmt.Errorf("store: list: %w", err)
	}
	var l Listing
	err := e.db.View(func(tx *bolt.Tx) error {
		rev, err := embGetInt(tx.Bucket(embMetaBucket), embKeyRevision)
		if err != nil {
			return err
		}
		l.Revision = rev
		for _, k := range Kinds {
			err := tx.Bucket([]byte(k)).ForEach(func(id, v []byte) error {
				it, err := embDecode(k, string(id), v)
				if err != nil {
					return err
				}
				l.Items = append(l.Items, it)
				return nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return Listing{}, fmt.Errorf("store: list: %w", err)
	}
	return l, nil
}

// Close stops every watch (closing its channel) and closes the database. Writes
// in flight finish first; later calls fail.
func (e *Embedded) Close() error {
	e.closeOnce.Do(func() {
		e.mu.Lock()
		e.closed = true
		close(e.done)
		e.mu.Unlock()
		e.wg.Wait()
		e.writeMu.Lock()
		defer e.writeMu.Unlock()
		if err := e.db.Close(); err != nil {
			e.closeErr = fmt.Errorf("store: embedded: close %s: %w", e.path, err)
			return
		}
		e.logger.Info("embedded store closed")
	})
	return e.closeErr
}

func embCheckKey(ctx context.Context, kind Kind, id string) error {
	if err := ctx.Err(); err != nil {
		return err //nolint:wrapcheck // wrapped by the caller
	}
	if !slices.Contains(Kinds, kind) {
		return fmt.Errorf("unknown kind %q", kind)
	}
	if id == "" {
		return errors.New("id must not be empty")
	}
	return nil
}

func embCheckPrev(prevRev int64) error {
	if prevRev < 0 && prevRev != AnyRevision {
		return fmt.Errorf("invalid prevRev %d (use AnyRevision, 0 or a revision)", prevRev)
	}
	return nil
}

// embCompare applies the prevRev rule to the current state of an item.
func embCompare(cur Item, exists bool, prevRev int64) error {
	switch {
	case prevRev == AnyRevision:
		return nil
	case prevRev == 0 && exists:
		return fmt.Errorf("%w: item already exists at revision %d", ErrConflict, cur.ModRev)
	case prevRev > 0 && !exists:
		return fmt.Errorf("%w: item no longer exists (expected revision %d)", ErrConflict, prevRev)
	case prevRev > 0 && cur.ModRev != prevRev:
		return fmt.Errorf("%w: item is at revision %d, expected %d", ErrConflict, cur.ModRev, prevRev)
	}
	return nil
}

func embGet(tx *bolt.Tx, kind Kind, id string) (Item, bool, error) {
	v := tx.Bucket([]byte(kind)).Get([]byte(id))
	if v == nil {
		return Item{}, false, nil
	}
	it, err := embDecode(kind, id, v)
	return it, err == nil, err
}

// embBumpRevision increments and returns the store revision inside tx.
func embBumpRevision(tx *bolt.Tx) (int64, error) {
	meta := tx.Bucket(embMetaBucket)
	rev, err := embGetInt(meta, embKeyRevision)
	if err != nil {
		return 0, err
	}
	rev++
	return rev, embPutInt(meta, embKeyRevision, rev)
}

func embGetInt(b *bolt.Bucket, key []byte) (int64, error) {
	v := b.Get(key)
	if v == nil {
		return 0, nil
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("corrupt meta %s: %d bytes", key, len(v))
	}
	return int64(binary.BigEndian.Uint64(v)), nil
}

func embPutInt(b *bolt.Bucket, key []byte, n int64) error {
	if err := b.Put(key, binary.BigEndian.AppendUint64(nil, uint64(n))); err != nil {
		return fmt.Errorf("write meta %s: %w", key, err)
	}
	return nil
}

// The envelope is a version byte, CreateRev and ModRev as big-endian uint64,
// then the JSON value exactly as it was put. Binary rather than a JSON wrapper
// so the value needs no re-encoding and comes back byte for byte.
const (
	embEnvelopeV1  = 1
	embEnvelopeLen = 1 + 8 + 8
)

func embEncode(it Item) []byte {
	b := make([]byte, 0, embEnvelopeLen+len(it.Value))
	b = append(b, embEnvelopeV1)
	b = binary.BigEndian.AppendUint64(b, uint64(it.CreateRev))
	b = binary.BigEndian.AppendUint64(b, uint64(it.ModRev))
	return append(b, it.Value...)
}

// embDecode copies what it needs: v is only valid inside its transaction.
func embDecode(kind Kind, id string, v []byte) (Item, error) {
	if len(v) < embEnvelopeLen || v[0] != embEnvelopeV1 {
		return Item{}, fmt.Errorf("corrupt record %s/%s (%d bytes, version %s)", kind, id, len(v), embVersionOf(v))
	}
	return Item{
		Kind:      kind,
		ID:        id,
		CreateRev: int64(binary.BigEndian.Uint64(v[1:9])),
		ModRev:    int64(binary.BigEndian.Uint64(v[9:17])),
		Value:     slices.Clone(json.RawMessage(v[embEnvelopeLen:])),
	}, nil
}

func embVersionOf(v []byte) string {
	if len(v) == 0 {
		return "none"
	}
	return strconv.Itoa(int(v[0]))
}

// Interface guard.
var _ Writer = (*Embedded)(nil)
