package limitconn

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"sync/atomic"

	"github.com/redis/go-redis/v9"

	"github.com/sluicegw/sluice/internal/ratelimit"
)

// keyPrefix starts every Redis key of limit-conn. The version lets a later
// format live next to this one during an upgrade (old keys just expire).
const keyPrefix = "plugin-limit-conn:v1:"

// incomingScript counts one request of a key atomically: a sorted set of
// the key's requests in flight, each a unique member scored with the time
// it stops counting (now + key_ttl, on Redis's clock). Expired members go
// first, then the request is added when fewer than conn+burst remain, in
// one step, so concurrent gateways never over-admit. A member per request
// (rather than INCR/DECR on a number) is what bounds a leak: the requests
// of a gateway that died before releasing them stop counting key_ttl after
// they started, even while other requests keep the key alive.
//
// KEYS[1]: the set; ARGV: conn+burst, key_ttl (ms), the request's member.
// Returns {1, count with it} when admitted, {0, count} when rejected.
var incomingScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local n = redis.call('ZCARD', KEYS[1])
if n >= tonumber(ARGV[1]) then
  return {0, n}
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return {1, n + 1}
`)

// redisCounter counts requests in flight in Redis; every gateway sharing
// the Redis shares the counts exactly.
type redisCounter struct {
	b     *ratelimit.Backend
	limit int64 // conn+burst
	ttl   int64 // key_ttl, milliseconds
	// id and seq make each request's member unique across gateways: a
	// random prefix per counter and a sequence number.
	id  string
	seq atomic.Uint64
}

func newRedisCounter(b *ratelimit.Backend, c *Config) *redisCounter {
	var r [8]byte
	_, _ = rand.Read(r[:]) // crypto/rand.Read never fails (Go 1.24+)
	return &redisCounter{b: b, limit: *c.Conn + *c.Burst, ttl: int64(c.KeyTTL) * 1000, id: hex.EncodeToString(r[:]) + ":"}
}

// member returns a new request's member.
func (r *redisCounter) member() string {
	return r.id + strconv.FormatUint(r.seq.Add(1), 36)
}

// incoming counts member under key (already scoped) when the key has room;
// it returns the count including it. A Redis error or a reply later than
// redis_timeout returns an error; the caller degrades or rejects.
func (r *redisCounter) incoming(key, member string) (int64, bool, error) {
	res, err := r.b.Run(incomingScript, []string{key}, r.limit, r.ttl, member).Int64Slice()
	if err != nil {
		return 0, false, fmt.Errorf("redis: %w", err)
	}
	if len(res) != 2 {
		return 0, false, fmt.Errorf("redis: script returned %d values, want 2", len(res))
	}
	return res[1], res[0] == 1, nil
}

// leaving releases member. It runs off the request path (the log phase
// must not block); a release that fails (Redis down) leaves the member to
// expire key_ttl after it was counted.
func (r *redisCounter) leaving(key, member string) {
	ctx, cancel := context.WithTimeout(context.Background(), r.b.Timeout)
	defer cancel()
	if err := r.b.Client.ZRem(ctx, key, member).Err(); err != nil {
		r.b.Failed(err, ratelimit.OutcomeLeaked)
	}
}
