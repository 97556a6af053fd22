package limitcount

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sluicegw/sluice/internal/ratelimit"
)

// leasePrefix starts the batched mode's Redis keys: hashes, not the
// counters of the per-request mode, so the two never share a key.
const leasePrefix = keyPrefix + "lease:"

// leaseScript reserves quota for one gateway, atomically. A key is a hash:
// w, the window's id (chosen by the gateway that starts the window), and
// n, the requests granted or charged in it; it expires with the window.
//
// ARGV: known window id ("" on a lease's first sync), a fresh id for a new
// window, charge (added unconditionally: credit already spent), want
// (granted as far as the quota allows), ret (tokens given back), count,
// window in ms. It returns {grant, n, pttl, id, over}, where over is the
// part of the charge beyond count; grant -1 says the caller's window is
// over (its charge and return then belong to nothing and are dropped).
var leaseScript = redis.NewScript(`
local id = redis.call('HGET', KEYS[1], 'w')
local known = ARGV[1]
local n = 0
if id then
  n = tonumber(redis.call('HGET', KEYS[1], 'n'))
  if known ~= '' and known ~= id then
    return {-1, n, redis.call('PTTL', KEYS[1]), id, 0}
  end
else
  if known ~= '' then
    return {-1, 0, 0, '', 0}
  end
  id = ARGV[2]
  redis.call('HSET', KEYS[1], 'w', id)
  redis.call('PEXPIRE', KEYS[1], ARGV[7])
end
local charge, want, ret, limit = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
n = n - ret + charge
local over = 0
if n > limit then over = math.min(charge, n - limit) end
local grant = 0
if n < limit then grant = math.min(want, limit - n) end
n = n + grant
redis.call('HSET', KEYS[1], 'n', n)
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[7])
  ttl = tonumber(ARGV[7])
end
return {grant, n, ttl, id, over}
`)

// maxBatch bounds the leases synced in one pipeline.
const maxBatch = 512

// newBatchStore builds the batched mode of one configuration and starts its
// syncer. It does not connect: the first sync dials.
func newBatchStore(b *ratelimit.Backend, log *slog.Logger, c *Config, fp string) *batchStore {
	s := newBatchStoreIdle(b, log, c, fp)
	go s.run()
	return s
}

// newBatchStoreIdle builds the store without its syncer goroutine: tests
// drive it with round.
func newBatchStoreIdle(b *ratelimit.Backend, log *slog.Logger, c *Config, fp string) *batchStore {
	var id [6]byte
	_, _ = rand.Read(id[:]) // crypto/rand.Read never fails (Go 1.24+)
	base := time.Now()
	group := ""
	if c.Group != nil {
		group = *c.Group
	}
	return &batchStore{
		b: b, log: log,
		limit: *c.Count, credit: creditFor(*c.Count),
		window:   *c.TimeWindow * int64(time.Second),
		windowMS: *c.TimeWindow * 1000,
		interval: time.Duration(c.SyncInterval * float64(time.Second)),
		maxKeys:  defaultMaxKeys,
		fp:       fp, group: group,
		base: base, now: func() int64 { return int64(time.Since(base)) },
		q:    make(chan *lease, queueLen),
		stop: make(chan struct{}), done: make(chan struct{}),
		active: make(map[*lease]struct{}),
		node:   hex.EncodeToString(id[:]),
	}
}

// Close stops the syncer and gives the tokens this gateway still holds back
// to Redis (best effort, within redis_timeout). Lasting calls it once no
// configuration uses the store.
func (s *batchStore) Close() error {
	s.stopped.Do(func() {
		s.closed.Store(true)
		close(s.stop)
	})
	<-s.done
	return nil
}

func (s *batchStore) run() {
	defer close(s.done)
	tick := time.NewTicker(s.interval)
	defer tick.Stop()
	for {
		select {
		case <-s.stop:
			s.giveBack()
			return
		case l := <-s.q:
			kicked := s.drain(l)
			if s.down.Load() {
				// Retried at the next tick: a dead Redis is not hammered.
				for _, l := range kicked {
					l.queued.Store(false)
					s.active[l] = struct{}{}
				}
				continue
			}
			s.round(kicked, false)
		case <-tick.C:
			s.round(s.drain(nil), true)
		}
	}
}

// drain takes every lease waiting in the queue (after first, if any).
func (s *batchStore) drain(first *lease) []*lease {
	var out []*lease
	if first != nil {
		out = append(out, first)
	}
	for len(out) < maxBatch {
		select {
		case l := <-s.q:
			out = append(out, l)
		default:
			return out
		}
	}
	return out
}

// syncReq is one lease's part of a sync round.
type syncReq struct {
	l                 *lease
	charge, want, ret int64
	usedSnap          int64
	returning, kicked bool
}

// round syncs the kicked leases and, on a tick, every active lease that
// needs it. It runs on the syncer goroutine (or a test's).
func (s *batchStore) round(kicked []*lease, tick bool) {
	now := s.now()
	reqs := make([]syncReq, 0, len(kicked))
	seen := make(map[*lease]bool, len(kicked))
	for _, l := range kicked {
		l.queued.Store(false) // later kicks queue it again
		if seen[l] {
			continue
		}
		if now >= l.end.Load() {
			wake(l) // its waiters start the next window
			continue
		}
		seen[l] = true
		s.active[l] = struct{}{}
		reqs = append(reqs, s.plan(l, true))
	}
	if tick {
		for l := range s.active {
			if seen[l] {
				continue
			}
			if now >= l.end.Load() {
				delete(s.active, l) // the window is over, and its tokens with it
				continue
			}
			r, ok := s.tickPlan(l)
			if !ok {
				continue
			}
			reqs = append(reqs, r)
		}
	}
	for len(reqs) > 0 {
		n := min(len(reqs), maxBatch)
		s.sync(reqs[:n])
		reqs = reqs[n:]
	}
}

// plan sizes a lease's sync: charge the credit on the first sync; ask for
// enough to cover twice the demand seen (the last interval's use, the last
// grant when it ran low before the interval was over, requests waiting).
func (s *batchStore) plan(l *lease, kicked bool) syncReq {
	avail := l.avail.Load()
	used := l.given.Load() - avail
	r := syncReq{l: l, usedSnap: used, kicked: kicked}
	if !l.charged {
		r.charge = s.credit
	}
	target := max(s.credit, 2*(used-l.usedAtSync), l.waiting.Load())
	if kicked && l.id != "" {
		target = max(target, 2*l.lastGrant)
	}
	r.want = min(s.limit, max(0, target-avail))
	if r.want == 0 && (kicked || l.demand.Load()) {
		r.want = 1
	}
	return r
}

// tickPlan decides what a tick does with an active lease: top it up when
// it was used, give its tokens back after it idled for a whole interval,
// forget it when it holds nothing.
func (s *batchStore) tickPlan(l *lease) (syncReq, bool) {
	avail := l.avail.Load()
	used := l.given.Load() - avail
	if l.id == "" || used != l.usedAtSync || l.waiting.Load() > 0 || l.demand.Load() {
		l.idle = 0
		return s.plan(l, false), true
	}
	if avail == 0 {
		if !l.exhausted.Load() {
			// Nothing held, nothing asked: forget it until a request
			// kicks it. Exhausted leases stay, so that the demand of
			// rejected requests is seen at the next tick.
			delete(s.active, l)
		}
		return syncReq{}, false
	}
	l.idle++
	if l.idle < 2 {
		return syncReq{}, false
	}
	// From now on, requests need a new lease: they wait for it rather than
	// being rejected on an old verdict.
	l.exhausted.Store(false)
	ret := l.avail.Swap(0)
	l.given.Add(-ret)
	delete(s.active, l)
	return syncReq{l: l, ret: ret, usedSnap: used, returning: true}, true
}

// sync runs one pipeline of lease scripts and applies the answers.
func (s *batchStore) sync(reqs []syncReq) {
	ctx, cancel := context.WithTimeout(context.Background(), s.b.Timeout)
	defer cancel()
	cmds := s.exec(ctx, reqs, false)
	var retry []int
	for i, c := range cmds {
		if c != nil && redis.HasErrorPrefix(c.Err(), "NOSCRIPT") {
			retry = append(retry, i) // the script did not run: safe to send again
		}
	}
	if len(retry) > 0 {
		again := make([]syncReq, len(retry))
		for j, i := range retry {
			again[j] = reqs[i]
		}
		for j, c := range s.exec(ctx, again, true) {
			cmds[retry[j]] = c
		}
	}
	recv := s.now()
	var failure error
	for i, c := range cmds {
		if err := s.apply(reqs[i], c, recv); err != nil {
			failure = err
		}
	}
	// down is settled before waiters wake, so that they see it.
	s.down.Store(failure != nil)
	for _, r := range reqs {
		wake(r.l)
	}
	if failure != nil {
		s.logFailure(failure)
	}
}

// exec sends reqs in one pipeline (EVALSHA, or EVAL after a Redis restart
// dropped the script cache).
func (s *batchStore) exec(ctx context.Context, reqs []syncReq, eval bool) []*redis.Cmd {
	pipe := s.b.Client.Pipeline()
	cmds := make([]*redis.Cmd, len(reqs))
	for i, r := range reqs {
		keys := []string{r.l.e.rkey}
		fresh := ""
		if r.l.id == "" {
			s.seq++
			fresh = s.node + "-" + strconv.FormatUint(s.seq, 36)
		}
		args := []any{r.l.id, fresh, r.charge, r.want, r.ret, s.limit, s.windowMS}
		if eval {
			cmds[i] = leaseScript.Eval(ctx, pipe, keys, args...)
		} else {
			cmds[i] = leaseScript.EvalSha(ctx, pipe, keys, args...)
		}
	}
	_, _ = pipe.Exec(ctx) // errors are per command
	return cmds
}

// apply folds one script answer into its lease. A failed call changes nothing, except that tokens being returned are lost:
// Redis may have taken them back before the reply was lost, and spending
// them again could over-admit.
func (s *batchStore) apply(r syncReq, c *redis.Cmd, recv int64) error {
	l := r.l
	res, err := c.Slice()
	if err == nil && len(res) != 5 {
		err = fmt.Errorf("script returned %d values, want 5", len(res))
	}
	if err != nil {
		return fmt.Errorf("redis: batched sync: %w", err)
	}
	grant, n, ttl := toInt(res[0]), toInt(res[1]), toInt(res[2])
	id, _ := res[3].(string)
	over := toInt(res[4])
	if grant < 0 { // our window is over in Redis: end the lease now
		l.end.Store(min(l.end.Load(), recv))
		delete(s.active, l)
		return nil
	}
	if r.returning {
		return nil
	}
	l.id = id
	l.charged = true
	l.end.Store(recv + ttl*int64(time.Millisecond))
	if over > 0 {
		claw(l, over)
	}
	if grant > 0 {
		l.given.Add(grant) // before avail: admitted = given - avail never dips below truth
		l.avail.Add(grant)
		l.lastGrant = grant
		l.lowWater.Store(grant / 2)
	}
	l.global.Store(n)
	l.exhausted.Store(grant < r.want)
	l.demand.Store(false)
	l.usedAtSync = r.usedSnap
	return nil
}

// claw takes back up to over unspent tokens: credit charged to a window
// that was already full.
func claw(l *lease, over int64) {
	for {
		v := l.avail.Load()
		c := min(v, over)
		if c <= 0 {
			return
		}
		if l.avail.CompareAndSwap(v, v-c) {
			l.given.Add(-c)
			return
		}
	}
}

func wake(l *lease) {
	ch := make(chan struct{})
	old := l.sig.Swap(&ch)
	close(*old)
}

func toInt(v any) int64 {
	n, _ := v.(int64)
	return n
}

// giveBack returns the tokens of every active lease at shutdown.
func (s *batchStore) giveBack() {
	now := s.now()
	var reqs []syncReq
	for l := range s.active {
		if l.id == "" || now >= l.end.Load() {
			continue
		}
		if ret := l.avail.Swap(0); ret > 0 {
			l.given.Add(-ret)
			reqs = append(reqs, syncReq{l: l, ret: ret, returning: true})
		}
	}
	clear(s.active)
	for len(reqs) > 0 {
		n := min(len(reqs), maxBatch)
		s.sync(reqs[:n])
		reqs = reqs[n:]
	}
}

// logFailure logs a failed sync at most once per ratelimit.FailureLogEvery.
func (s *batchStore) logFailure(err error) {
	if s.closed.Load() || time.Since(s.lastLog) < ratelimit.FailureLogEvery {
		// At shutdown the pool may close first: giving tokens back is best
		// effort, its failure is no news.
		return
	}
	s.lastLog = time.Now()
	s.log.Warn("limit-count: batched sync with redis failed; requests beyond the tokens held degrade", "err", err)
}
