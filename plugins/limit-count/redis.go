package limitcount

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sluicegw/sluice/internal/ratelimit"
)

// keyPrefix starts every Redis counter key. The version lets a later format
// live next to this one during an upgrade (old keys just expire).
const keyPrefix = "plugin-limit-count:v1:"

// incrScript counts one request atomically on the server: the increment
// and, on a window's first request, the expiry are one step, so concurrent
// gateways never read a count and write it back. It returns the count and
// the window's remaining milliseconds. A key found without an expiry (which
// only a foreign writer can leave) gets one, so it cannot block a key
// forever.
var incrScript = redis.NewScript(`
local n = redis.call('INCRBY', KEYS[1], ARGV[1])
local ttl = -1
if n > tonumber(ARGV[1]) then
  ttl = redis.call('PTTL', KEYS[1])
end
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  ttl = tonumber(ARGV[2])
end
return {n, ttl}
`)

// slideScript is the sliding window (sliding.go) in one atomic step on the
// server: read the key's windows, decide, and count only an admitted
// request. A key is a hash: w, the current window's number (Redis time in
// milliseconds divided by the window), n its count and p the previous
// window's. Time is Redis's own (TIME), so gateways with skewed clocks
// still agree on the windows; the key expires when its count stops
// mattering, at the end of the window after its current one. The rule is
// the local table's, cur + cost + prev x rem/W <= count, compared as
// prev x rem <= (count - cur - cost) x W (Lua numbers are doubles: exact
// while count x time_window in milliseconds stays below 2^53). It returns
// {admitted (0/1), the current window's count, the previous window's, the
// milliseconds left in the current window}. Rejections write nothing.
// replicate_commands lets Redis 3.2-4 write after TIME (later versions
// always replicate a script's effects).
var slideScript = redis.NewScript(`
if redis.replicate_commands then redis.replicate_commands() end
local limit, win, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local id = math.floor(now / win)
local h = redis.call('HMGET', KEYS[1], 'w', 'n', 'p')
local w, n, p = tonumber(h[1]), tonumber(h[2]) or 0, tonumber(h[3]) or 0
if w == nil or w < id then
  if w == id - 1 then p = n else p = 0 end
  n = 0
elseif w > id then
  id = w
  now = id * win
end
local rem = (id + 1) * win - now
if n + cost > limit or p * rem > (limit - n - cost) * win then
  return {0, n, p, rem}
end
n = n + cost
redis.call('HSET', KEYS[1], 'w', id, 'n', n, 'p', p)
redis.call('PEXPIREAT', KEYS[1], (id + 2) * win)
return {1, n, p, rem}
`)

// newRedisBackend builds the pooled client for c's Redis settings
// (ratelimit.NewBackend: lazy dialling, no script retries).
func newRedisBackend(c *Config, log *slog.Logger) *ratelimit.Backend {
	rc := c.redis()
	return ratelimit.NewBackend(&rc, Name, log)
}

// redisLimiter counts in Redis with one script call per request; every
// gateway sharing the Redis shares the counts exactly.
type redisLimiter struct {
	b      *ratelimit.Backend
	limit  int64
	window int64 // milliseconds
	// sliding runs slideScript instead of incrScript.
	sliding bool
}

// take counts one request under key (already scoped). A Redis error or a
// reply later than redis_timeout returns an error; the caller degrades or
// rejects.
func (l *redisLimiter) take(key string, cost int64, _ time.Time) (verdict, error) {
	if l.sliding {
		return l.slide(key, cost)
	}
	res, err := l.b.Run(incrScript, []string{key}, cost, l.window).Int64Slice()
	if err != nil {
		return verdict{}, fmt.Errorf("redis: %w", err)
	}
	if len(res) != 2 {
		return verdict{}, fmt.Errorf("redis: script returned %d values, want 2", len(res))
	}
	n, ttl := res[0], time.Duration(res[1])*time.Millisecond
	if n > l.limit {
		return verdict{admitted: false, remaining: 0, reset: ttl}, nil
	}
	return verdict{admitted: true, remaining: l.limit - n, reset: ttl}, nil
}

// slide counts under a sliding window: the script decides, and the
// verdict (Remaining, Reset) is worked out here as the local table does.
func (l *redisLimiter) slide(key string, cost int64) (verdict, error) {
	res, err := l.b.Run(slideScript, []string{key}, l.limit, l.window, cost).Int64Slice()
	if err != nil {
		return verdict{}, fmt.Errorf("redis: %w", err)
	}
	if len(res) != 4 {
		return verdict{}, fmt.Errorf("redis: sliding script returned %d values, want 4", len(res))
	}
	admitted, n, prev, rem := res[0] == 1, res[1], res[2], res[3]
	ms := int64(time.Millisecond)
	if admitted {
		// slideVerdict counts the request on top of the count before it.
		n -= cost
	}
	v := slideVerdict(l.limit, l.window*ms, n, cost, prev, rem*ms)
	if v.admitted != admitted {
		// Only float rounding in the script (beyond 2^53) can disagree;
		// the script's word is the one that counted.
		v.admitted = admitted
		if !admitted {
			v.remaining = 0
		}
	}
	return v, nil
}

// failed implements limiter.
func (l *redisLimiter) failed(err error, passed bool) { l.b.FailedRequest(err, passed) }
