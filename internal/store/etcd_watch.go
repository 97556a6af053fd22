package store

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// listAttempts bounds how often List restarts when etcd compacts the
// revision it is reading at between two pages.
const listAttempts = 3

// List returns every resource at one etcd revision, in Kinds order and by key
// within a kind. Each kind's directory is read in pages of 512 keys, every
// page pinned to the revision of the first one, so a listing of any size is
// consistent while each request and response stays small. Listing.Revision is
// that revision. Keys that are not resources are skipped (see Etcd).
func (e *Etcd) List(ctx context.Context) (Listing, error) {
	for attempt := 1; ; attempt++ {
		cli, err := e.client(ctx)
		if err != nil {
			return Listing{}, e.failure(ctx, "list", err)
		}
		l, err := e.listAt(ctx, cli)
		if errors.Is(err, rpctypes.ErrCompacted) && attempt < listAttempts {
			continue // compacted between pages: start over at a newer revision
		}
		if err != nil {
			return Listing{}, e.failure(ctx, "list", err)
		}
		e.markOK()
		return l, nil
	}
}

// listAt reads every kind directory page by page; it returns the client's
// error unwrapped so List can recognise a compaction.
func (e *Etcd) listAt(ctx context.Context, cli *clientv3.Client) (Listing, error) {
	var l Listing
	skipped := 0
	for _, kind := range Kinds {
		dir := e.prefix + "/" + string(kind) + "/"
		end := clientv3.GetPrefixRangeEnd(dir)
		from := dir
		for {
			opts := []clientv3.OpOption{
				clientv3.WithRange(end),
				clientv3.WithLimit(e.tune.pageSize),
				clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend),
			}
			if l.Revision > 0 {
				opts = append(opts, clientv3.WithRev(l.Revision))
			}
			rctx, cancel := e.ctxTimeout(ctx)
			resp, err := cli.Get(rctx, from, opts...)
			cancel()
			if err != nil {
				return Listing{}, err
			}
			if l.Revision == 0 {
				l.Revision = resp.Header.Revision
			}
			for _, kv := range resp.Kvs {
				if it, ok := e.itemOf(kv); ok {
					l.Items = append(l.Items, it)
				} else {
					skipped++
				}
			}
			if !resp.More || len(resp.Kvs) == 0 {
				break
			}
			// The next page starts right after the last key read.
			from = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
		}
	}
	e.logger.Debug("etcd listing read", "revision", l.Revision, "items", len(l.Items), "skipped_keys", skipped)
	return l, nil
}

// itemOf converts a key-value pair that is a resource.
func (e *Etcd) itemOf(kv *mvccpb.KeyValue) (Item, bool) {
	kind, id, ok := e.parseKey(kv.Key)
	if !ok || !etcdIsResource(kv.Value) {
		return Item{}, false
	}
	return Item{Kind: kind, ID: id, Value: kv.Value, CreateRev: kv.CreateRevision, ModRev: kv.ModRevision}, true
}

// Watch streams the changes after afterRev until ctx ends or the store is
// closed; the channel is then closed. An afterRev of 0 or less starts with a
// Reset batch carrying a full listing.
//
// Each etcd watch response with resource changes becomes one batch, in
// revision order. Its Revision is that of its last event, which equals the
// response's header revision in steady state; while etcd catches a watcher up
// it may send a header revision ahead of the events still to come, so only
// event revisions are safe resume points. A delete event carries the item as
// it was before, with ModRev set to the deleting revision; a write that turns
// a resource into a non-resource value (for example "init_dir") is delivered
// as a delete, so the watcher's view always equals what List returns.
//
// When the watch breaks (etcd compacted the revision to resume from, a
// disconnect, lost leader, or a failed liveness probe every 2 s), Watch
// resyncs: it lists everything again, delivers a Reset batch with that
// listing and watches on from its revision. Failed attempts are retried
// forever with jittered exponential backoff from 100 ms to 5 s; the outage is
// logged once, and its end once.
func (e *Etcd) Watch(ctx context.Context, afterRev int64) <-chan Batch {
	out := make(chan Batch)
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		close(out)
		return out
	}
	e.wg.Add(1)
	e.mu.Unlock()
	go e.watch(ctx, afterRev, out)
	return out
}

func (e *Etcd) watch(ctx context.Context, afterRev int64, out chan<- Batch) {
	defer e.wg.Done()
	defer close(out)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(e.ctx, cancel) // Close ends every watch
	defer stop()

	rev, resync := afterRev, afterRev <= 0
	bo := newEtcdBackoff(e.tune)
	for ctx.Err() == nil {
		if resync {
			l, err := e.List(ctx)
			if err != nil {
				e.logger.Debug("etcd resync failed; retrying", "error", err)
				if !etcdSleep(ctx, bo.next()) {
					return
				}
				continue
			}
			if !etcdSend(ctx, out, Batch{Revision: l.Revision, Reset: true, Listing: l}) {
				return
			}
			e.logger.Info("etcd watch resynced", "revision", l.Revision, "items", len(l.Items))
			rev, resync = l.Revision, false
		}
		live, err := e.watchFrom(ctx, &rev, out)
		if ctx.Err() != nil {
			return
		}
		resync = true
		if live {
			bo.reset()
		}
		if errors.Is(err, rpctypes.ErrCompacted) {
			e.logger.Info("etcd compacted the watched revision; resyncing", "revision", rev, "error", err)
			continue
		}
		e.logger.Debug("etcd watch interrupted; resyncing", "revision", rev, "error", err)
		if !etcdSleep(ctx, bo.next()) {
			return
		}
	}
}

// watchFrom runs one etcd watch after *rev, advancing *rev as batches are
// delivered, until it breaks. live reports whether etcd answered at least
// once, which resets the backoff.
func (e *Etcd) watchFrom(ctx context.Context, rev *int64, out chan<- Batch) (live bool, err error) {
	cli, err := e.client(ctx)
	if err != nil {
		return false, e.failure(ctx, "watch", err)
	}
	// WithRequireLeader makes a member that lost its quorum end the watch
	// (ErrNoLeader) instead of leaving it silently stalled.
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	wch := cli.Watch(wctx, e.prefix+"/", clientv3.WithPrefix(), clientv3.WithRev(*rev+1), clientv3.WithPrevKV())
	// The client reconnects a broken watch stream on its own and never says
	// so; only a request shows that etcd is gone.
	probe := time.NewTicker(e.tune.probeInterval)
	defer probe.Stop()
	for {
		select {
		case <-ctx.Done():
			return live, ctx.Err()
		case <-probe.C:
			if err := e.probe(ctx); err != nil {
				return live, err
			}
			live = true
		case resp, ok := <-wch:
			if !ok {
				return live, e.failure(ctx, "watch", errors.New("watch channel closed"))
			}
			if resp.CompactRevision != 0 {
				return live, fmt.Errorf("store: etcd watch from revision %d (compacted at %d): %w",
					*rev+1, resp.CompactRevision, rpctypes.ErrCompacted)
			}
			if err := resp.Err(); err != nil {
				return live, e.failure(ctx, "watch", err)
			}
			live = true
			e.markOK()
			if b, ok := e.batchOf(&resp, rev); ok && !etcdSend(ctx, out, b) {
				return live, ctx.Err()
			}
		}
	}
}

// batchOf converts a watch response and advances *rev past it; ok is false
// when nothing in it concerns resources.
func (e *Etcd) batchOf(resp *clientv3.WatchResponse, rev *int64) (Batch, bool) {
	if len(resp.Events) == 0 {
		if resp.IsProgressNotify() {
			*rev = max(*rev, resp.Header.Revision)
		}
		return Batch{}, false
	}
	*rev = max(*rev, resp.Events[len(resp.Events)-1].Kv.ModRevision)
	var evs []Event
	for _, ev := range resp.Events {
		kind, id, ok := e.parseKey(ev.Kv.Key)
		if !ok {
			continue
		}
		if ev.Type == clientv3.EventTypePut && etcdIsResource(ev.Kv.Value) {
			kv := ev.Kv
			evs = append(evs, Event{Type: Put, Item: Item{Kind: kind, ID: id, Value: kv.Value, CreateRev: kv.CreateRevision, ModRev: kv.ModRevision}})
			continue
		}
		// A delete, or a put of a non-resource value: the item is gone from
		// List's view, unless it was no resource before either.
		if ev.Type == clientv3.EventTypePut && ev.Kv.Version == 1 {
			continue // created with a non-resource value: nothing was there
		}
		it := Item{Kind: kind, ID: id, ModRev: ev.Kv.ModRevision}
		if p := ev.PrevKv; p != nil {
			if !etcdIsResource(p.Value) {
				continue
			}
			it.Value, it.CreateRev = p.Value, p.CreateRevision
		}
		evs = append(evs, Event{Type: Delete, Item: it})
	}
	if len(evs) == 0 {
		return Batch{}, false
	}
	return Batch{Revision: *rev, Events: evs}, true
}

func etcdSend(ctx context.Context, out chan<- Batch, b Batch) bool {
	select {
	case out <- b:
		return true
	case <-ctx.Done():
		return false
	}
}

// etcdBackoff is a jittered exponential retry delay.
type etcdBackoff struct {
	min, max, cur time.Duration
}

func newEtcdBackoff(t etcdTuning) *etcdBackoff {
	return &etcdBackoff{min: t.backoffMin, max: t.backoffMax}
}

// next doubles the delay up to max and returns a random duration between half
// of it and all of it, so gateways that lost etcd together do not retry in
// lockstep when it returns.
func (b *etcdBackoff) next() time.Duration {
	if b.cur == 0 {
		b.cur = b.min
	} else {
		b.cur = min(2*b.cur, b.max)
	}
	return b.cur/2 + rand.N(b.cur/2+1)
}

func (b *etcdBackoff) reset() { b.cur = 0 }
