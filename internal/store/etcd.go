package store

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
)

// Defaults for EtcdConfig.
const (
	// DefaultEtcdPrefix is APISIX's default etcd.prefix.
	DefaultEtcdPrefix = "/apisix"
	// DefaultEtcdTimeout bounds each etcd request. APISIX uses 30 s, which
	// holds an Admin API call (and outage detection) for half a minute; 5 s
	// is ample for a healthy cluster, whose requests take milliseconds.
	DefaultEtcdTimeout = 5 * time.Second
)

// etcdTuning holds the timing knobs tests shrink; production uses
// defaultEtcdTuning.
type etcdTuning struct {
	pageSize      int64         // keys per range request while listing
	probeInterval time.Duration // how often a watcher checks that etcd answers
	backoffMin    time.Duration // first retry delay after a failure
	backoffMax    time.Duration // retry delay cap
}

// defaultEtcdTuning: 512-key pages keep each range response small (a few
// hundred KiB for typical resources, far below the client's receive limit);
// a 2 s probe notices a dead etcd within probe + Timeout.
func defaultEtcdTuning() etcdTuning {
	return etcdTuning{
		pageSize:      512,
		probeInterval: 2 * time.Second,
		backoffMin:    100 * time.Millisecond,
		backoffMax:    5 * time.Second,
	}
}

// EtcdConfig configures an etcd store; the fields mirror the etcd section of
// APISIX's config.yaml.
type EtcdConfig struct {
	// Endpoints are the etcd client URLs, for example
	// "http://127.0.0.1:2379" or "https://etcd-1:2379". At least one is required.
	Endpoints []string
	// Prefix is the key prefix every resource lives under, "/apisix" by
	// default. Use the same value as APISIX's etcd.prefix to share its data.
	Prefix string
	// Timeout bounds every etcd request (each page of a listing separately).
	// Zero means DefaultEtcdTimeout.
	Timeout time.Duration
	// User and Password authenticate with etcd's role-based access control.
	// Set both, or neither for no authentication.
	User, Password string
	// TLS, when set, is used for client connections: set RootCAs to trust the
	// etcd server's CA and Certificates for client-certificate
	// authentication. Endpoints should then use https://.
	TLS *tls.Config
}

// Etcd is a Writer backed by etcd v3 in APISIX's key layout: the resource
// with kind k and id i is the key <prefix>/<k>/<i>, and its value is the
// resource JSON as APISIX stores it. Keys under the prefix that are not
// resources (APISIX's "init_dir" placeholders, /data_plane, /plugins,
// /stream_routes, /proto, /secrets, consumer credentials and so on) are
// ignored. Item revisions are etcd's create and mod revisions.
//
// Etcd never needs etcd at start: it connects in the background, requests
// fail with ErrUnavailable until etcd answers, and watchers keep retrying
// (see Watch).
type Etcd struct {
	cfg    EtcdConfig
	prefix string
	tune   etcdTuning
	logger *slog.Logger

	// cli is set once, before ready is closed.
	cli   *clientv3.Client
	ready chan struct{}

	// ctx ends when the store is closed; every goroutine watches it.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// mu guards the health state and closed.
	mu        sync.Mutex
	closed    bool
	reachable bool
	lastErr   error
	down      bool // an outage was logged and its end not yet
}

// OpenEtcd returns an etcd store for cfg. It fails only on an invalid
// configuration: the connection is made in the background, so the gateway
// starts (and serves what it has) while etcd is down. A nil logger discards
// logs.
func OpenEtcd(cfg EtcdConfig, logger *slog.Logger) (*Etcd, error) {
	return openEtcd(cfg, logger, defaultEtcdTuning())
}

func openEtcd(cfg EtcdConfig, logger *slog.Logger, tune etcdTuning) (*Etcd, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if len(cfg.Endpoints) == 0 {
		return nil, errors.New("store: etcd: endpoints: at least one is required")
	}
	if (cfg.User == "") != (cfg.Password == "") {
		return nil, errors.New("store: etcd: user and password: set both or neither")
	}
	cfg.Endpoints = slices.Clone(cfg.Endpoints)
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultEtcdPrefix
	}
	prefix := strings.TrimRight(cfg.Prefix, "/")
	if !strings.HasPrefix(cfg.Prefix, "/") || prefix == "" {
		return nil, fmt.Errorf("store: etcd: prefix %q: must start with / and not be / alone", cfg.Prefix)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultEtcdTimeout
	}
	ctx, cancel := context.WithCancel(context.Background())
	e := &Etcd{
		cfg:     cfg,
		prefix:  prefix,
		tune:    tune,
		logger:  logger.With("store", "etcd", "prefix", prefix),
		ready:   make(chan struct{}),
		ctx:     ctx,
		cancel:  cancel,
		lastErr: fmt.Errorf("store: etcd: %w: not connected yet", ErrUnavailable),
	}
	e.wg.Add(1)
	go e.connect()
	return e, nil
}

// connect creates the client, retrying with backoff. Without authentication
// clientv3.New does not touch the network; with it, New authenticates and
// fails while etcd is down, hence the loop.
func (e *Etcd) connect() {
	defer e.wg.Done()
	bo := newEtcdBackoff(e.tune)
	for {
		cli, err := clientv3.New(e.clientConfig())
		if err == nil {
			if e.ctx.Err() != nil {
				_ = cli.Close() // closed while connecting
				return
			}
			e.cli = cli
			close(e.ready)
			// Probe once so Reachable reflects reality without waiting for
			// the first request; the result is recorded inside.
			_ = e.probe(e.ctx)
			return
		}
		if e.ctx.Err() != nil {
			return
		}
		e.markFailed(fmt.Errorf("connect: %w", err))
		if !etcdSleep(e.ctx, bo.next()) {
			return
		}
	}
}

func (e *Etcd) clientConfig() clientv3.Config {
	return clientv3.Config{
		Endpoints: e.cfg.Endpoints,
		// DialTimeout only bounds the authentication done inside New; the
		// gRPC connection itself is lazy.
		DialTimeout:          e.cfg.Timeout,
		DialKeepAliveTime:    10 * time.Second,
		DialKeepAliveTimeout: e.cfg.Timeout,
		Username:             e.cfg.User,
		Password:             e.cfg.Password,
		TLS:                  e.cfg.TLS,
		// Our own slog records cover outages; the client's zap output would
		// repeat them at every reconnect attempt.
		Logger: zap.NewNop(),
		DialOptions: []grpc.DialOption{
			// gRPC's default reconnect backoff grows to 120 s, which would
			// leave the gateway disconnected for up to two minutes after
			// etcd comes back. Cap it like our own retries.
			grpc.WithConnectParams(grpc.ConnectParams{
				Backoff: backoff.Config{
					BaseDelay:  e.tune.backoffMin,
					Multiplier: 1.6,
					Jitter:     0.2,
					MaxDelay:   e.tune.backoffMax,
				},
				MinConnectTimeout: e.cfg.Timeout,
			}),
		},
	}
}

// client waits for the client to exist, for at most the request timeout.
func (e *Etcd) client(ctx context.Context) (*clientv3.Client, error) {
	select {
	case <-e.ready:
		return e.cli, nil
	default:
	}
	t := time.NewTimer(e.cfg.Timeout)
	defer t.Stop()
	select {
	case <-e.ready:
		return e.cli, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-e.ctx.Done():
		return nil, errors.New("store is closed")
	case <-t.C:
		if err := e.LastError(); err != nil {
			return nil, err
		}
		return nil, errors.New("no etcd client yet")
	}
}

// Reachable reports whether the last etcd request or watch check succeeded.
func (e *Etcd) Reachable() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.reachable
}

// LastError returns why etcd is unreachable (wrapping ErrUnavailable), or nil
// while it is reachable.
func (e *Etcd) LastError() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.reachable {
		return nil
	}
	return e.lastErr
}

// markOK records a successful round trip and logs the end of an outage.
func (e *Etcd) markOK() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.reachable, e.lastErr = true, nil
	if e.down {
		e.down = false
		e.logger.Info("etcd is reachable again")
	}
}

// markFailed records a failed round trip; the first failure of an outage is
// logged, the rest only kept for LastError.
func (e *Etcd) markFailed(err error) {
	if !errors.Is(err, ErrUnavailable) {
		err = fmt.Errorf("store: etcd: %w: %w", ErrUnavailable, err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.reachable, e.lastErr = false, err
	if !e.down {
		e.down = true
		e.logger.Warn("etcd is unreachable; serving the last good configuration and retrying",
			"endpoints", e.cfg.Endpoints, "error", err)
	}
}

// failure turns a client error into the error a method returns. The
// caller's own cancellation is passed through as is; anything else means etcd
// did not answer properly: it is recorded and wrapped in ErrUnavailable.
func (e *Etcd) failure(ctx context.Context, op string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("store: etcd %s: %w", op, err)
	}
	if errors.Is(err, ErrUnavailable) {
		err = fmt.Errorf("store: etcd %s: %w", op, err)
	} else {
		err = fmt.Errorf("store: etcd %s: %w: %w", op, ErrUnavailable, err)
	}
	e.markFailed(err)
	return err
}

// probe does the cheapest linearizable read (one key, count only), which
// needs a leader with a quorum: exactly what "etcd works" means.
func (e *Etcd) probe(ctx context.Context) error {
	rctx, cancel := e.ctxTimeout(ctx)
	defer cancel()
	cli, err := e.client(rctx)
	if err == nil {
		// <prefix>/ itself, so a user granted only the prefix range may probe.
		_, err = cli.Get(rctx, e.prefix+"/", clientv3.WithCountOnly())
	}
	if err != nil {
		return e.failure(ctx, "probe", err)
	}
	e.markOK()
	return nil
}

// key returns the etcd key of an item after checking kind and id.
func (e *Etcd) key(kind Kind, id string) (string, error) {
	if !slices.Contains(Kinds, kind) {
		return "", fmt.Errorf("unknown kind %q", kind)
	}
	if id == "" || strings.Contains(id, "/") {
		return "", fmt.Errorf("invalid id %q: must be non-empty and contain no /", id)
	}
	return e.prefix + "/" + string(kind) + "/" + id, nil
}

// parseKey splits <prefix>/<kind>/<id>; ok is false for any key that is not
// a resource of a known kind (a different directory, a directory's own
// placeholder key, or a nested key such as consumers/<name>/credentials/<id>).
func (e *Etcd) parseKey(key []byte) (Kind, string, bool) {
	rest, ok := bytes.CutPrefix(key, []byte(e.prefix+"/"))
	if !ok {
		return "", "", false
	}
	k, id, ok := bytes.Cut(rest, []byte("/"))
	if !ok || len(id) == 0 || bytes.IndexByte(id, '/') >= 0 {
		return "", "", false
	}
	kind := Kind(k)
	if !slices.Contains(Kinds, kind) {
		return "", "", false
	}
	return kind, string(id), true
}

// etcdIsResource reports whether a value is a JSON object. APISIX's "init_dir"
// placeholders and anything else that is not a resource are skipped, as
// APISIX skips them.
func etcdIsResource(v []byte) bool {
	v = bytes.TrimLeft(v, " \t\r\n")
	return len(v) > 0 && v[0] == '{' && json.Valid(v)
}

// ctxTimeout bounds one request.
func (e *Etcd) ctxTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, e.cfg.Timeout)
}

// Get returns one item, or an error wrapping ErrNotFound.
func (e *Etcd) Get(ctx context.Context, kind Kind, id string) (Item, error) {
	key, err := e.key(kind, id)
	if err != nil {
		return Item{}, fmt.Errorf("store: get %s/%s: %w", kind, id, err)
	}
	rctx, cancel := e.ctxTimeout(ctx)
	defer cancel()
	cli, err := e.client(rctx)
	if err != nil {
		return Item{}, e.failure(ctx, "get "+key, err)
	}
	resp, err := cli.Get(rctx, key)
	if err != nil {
		return Item{}, e.failure(ctx, "get "+key, err)
	}
	e.markOK()
	if len(resp.Kvs) == 0 {
		return Item{}, fmt.Errorf("store: get %s/%s: %w", kind, id, ErrNotFound)
	}
	kv := resp.Kvs[0]
	return Item{Kind: kind, ID: id, Value: kv.Value, CreateRev: kv.CreateRevision, ModRev: kv.ModRevision}, nil
}

// Put creates or replaces an item with a compare-and-set transaction on the
// key's revisions: prevRev 0 requires create_revision 0 (absent), a positive
// prevRev requires that mod_revision, AnyRevision writes unconditionally. A
// failed comparison returns an error wrapping ErrConflict. The value must be
// a JSON object and is stored byte for byte.
func (e *Etcd) Put(ctx context.Context, kind Kind, id string, value json.RawMessage, prevRev int64) (Item, error) {
	key, err := e.key(kind, id)
	if err == nil {
		err = etcdCheckPrev(prevRev)
	}
	if err == nil && !etcdIsResource(value) {
		err = errors.New("value must be a JSON object")
	}
	if err != nil {
		return Item{}, fmt.Errorf("store: put %s/%s: %w", kind, id, err)
	}
	txn := []clientv3.Op{clientv3.OpPut(key, string(value), clientv3.WithPrevKV())}
	resp, err := e.txn(ctx, "put "+key, key, prevRev, txn)
	if err != nil {
		return Item{}, err
	}
	if !resp.Succeeded {
		return Item{}, fmt.Errorf("store: put %s/%s: %w", kind, id, etcdConflict(resp, prevRev))
	}
	rev := resp.Header.Revision
	it := Item{Kind: kind, ID: id, Value: slices.Clone(value), CreateRev: rev, ModRev: rev}
	if prev := resp.Responses[0].GetResponsePut().GetPrevKv(); prev != nil {
		it.CreateRev = prev.CreateRevision
	}
	return it, nil
}

// Delete removes an item and returns it as it was. prevRev works as for Put;
// an absent item is ErrNotFound whatever prevRev says, and prevRev 0 ("must
// not exist") fails with ErrConflict when the item exists.
func (e *Etcd) Delete(ctx context.Context, kind Kind, id string, prevRev int64) (Item, error) {
	key, err := e.key(kind, id)
	if err == nil {
		err = etcdCheckPrev(prevRev)
	}
	if err != nil {
		return Item{}, fmt.Errorf("store: delete %s/%s: %w", kind, id, err)
	}
	txn := []clientv3.Op{clientv3.OpDelete(key, clientv3.WithPrevKV())}
	resp, err := e.txn(ctx, "delete "+key, key, prevRev, txn)
	if err != nil {
		return Item{}, err
	}
	if !resp.Succeeded {
		if cur := resp.Responses[0].GetResponseRange(); cur == nil || len(cur.Kvs) == 0 {
			return Item{}, fmt.Errorf("store: delete %s/%s: %w", kind, id, ErrNotFound)
		}
		return Item{}, fmt.Errorf("store: delete %s/%s: %w", kind, id, etcdConflict(resp, prevRev))
	}
	prevs := resp.Responses[0].GetResponseDeleteRange().GetPrevKvs()
	if len(prevs) == 0 {
		return Item{}, fmt.Errorf("store: delete %s/%s: %w", kind, id, ErrNotFound)
	}
	p := prevs[0]
	return Item{Kind: kind, ID: id, Value: p.Value, CreateRev: p.CreateRevision, ModRev: p.ModRevision}, nil
}

// txn runs then under the prevRev comparison; on failure the transaction's
// else branch reads the key, so the caller can tell a conflict from a
// missing item and report the current revision.
func (e *Etcd) txn(ctx context.Context, op, key string, prevRev int64, then []clientv3.Op) (*clientv3.TxnResponse, error) {
	var cmps []clientv3.Cmp
	switch {
	case prevRev == 0:
		cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(key), "=", 0))
	case prevRev > 0:
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(key), "=", prevRev))
	}
	rctx, cancel := e.ctxTimeout(ctx)
	defer cancel()
	cli, err := e.client(rctx)
	if err != nil {
		return nil, e.failure(ctx, op, err)
	}
	resp, err := cli.Txn(rctx).If(cmps...).Then(then...).Else(clientv3.OpGet(key)).Commit()
	if err != nil {
		return nil, e.failure(ctx, op, err)
	}
	e.markOK()
	return resp, nil
}

// etcdConflict describes a failed comparison from the else branch's read.
func etcdConflict(resp *clientv3.TxnResponse, prevRev int64) error {
	var cur int64
	if r := resp.Responses[0].GetResponseRange(); r != nil && len(r.Kvs) > 0 {
		cur = r.Kvs[0].ModRevision
	}
	switch {
	case prevRev == 0:
		return fmt.Errorf("%w: item already exists at revision %d", ErrConflict, cur)
	case cur == 0:
		return fmt.Errorf("%w: item no longer exists (expected revision %d)", ErrConflict, prevRev)
	default:
		return fmt.Errorf("%w: item is at revision %d, expected %d", ErrConflict, cur, prevRev)
	}
}

func etcdCheckPrev(prevRev int64) error {
	if prevRev < 0 && prevRev != AnyRevision {
		return fmt.Errorf("invalid prevRev %d (use AnyRevision, 0 or a revision)", prevRev)
	}
	return nil
}

// NewID returns a fresh id exactly as APISIX's Admin API makes one for a
// POST (core.etcd.push in apisix/core/etcd.lua): it writes "1" to
// <prefix>/gen_id and formats the revision of that write as a 20-digit,
// zero-padded decimal. Every etcd write gets a new revision, so ids are
// unique and increasing across every gateway and APISIX instance sharing
// the etcd, and cannot collide with ids APISIX generates.
func (e *Etcd) NewID(ctx context.Context) (string, error) {
	key := e.prefix + "/gen_id"
	rctx, cancel := e.ctxTimeout(ctx)
	defer cancel()
	cli, err := e.client(rctx)
	if err != nil {
		return "", e.failure(ctx, "new id", err)
	}
	resp, err := cli.Put(rctx, key, "1")
	if err != nil {
		return "", e.failure(ctx, "new id", err)
	}
	e.markOK()
	return fmt.Sprintf("%020d", resp.Header.Revision), nil
}

// Close stops every watcher (closing their channels) and the client. Calling
// it again does nothing.
func (e *Etcd) Close() error {
	e.mu.Lock()
	already := e.closed
	e.closed = true
	e.mu.Unlock()
	if already {
		return nil
	}
	e.cancel()
	e.wg.Wait()
	select {
	case <-e.ready:
		if err := e.cli.Close(); err != nil && !errors.Is(err, context.Canceled) {
			return fmt.Errorf("store: etcd close: %w", err)
		}
	default:
	}
	return nil
}

// etcdSleep waits for d; it reports false if ctx ended first.
func etcdSleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// Interface guard.
var _ Writer = (*Etcd)(nil)
