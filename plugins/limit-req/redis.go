package limitreq

import (
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sluicegw/sluice/internal/ratelimit"
)

// keyPrefix starts every Redis key of limit-req. The version lets a later
// format live next to this one during an upgrade (old keys just expire).
const keyPrefix = "plugin-limit-req:v1:"

// takeScript is the leaky bucket of one key, run atomically by Redis: read
// the state, leak it, admit or reject, and store it, in one step, so
// concurrent gateways never both admit on the same stale state. The state
// is one hash (one key: a single Redis Cluster slot) holding the excess, in
// requests, and the last update, in microseconds of Redis's own clock, so
// gateways with skewed clocks still share one bucket. A rejection stores
// nothing, as in resty.limit.req. Numbers are stored with string.format:
// Redis would turn a Lua number argument into only 14 significant digits,
// too few for microseconds since 1970.
//
// KEYS[1]: the state; ARGV: rate (requests per second), burst, TTL (ms).
// Returns {1, excess} when admitted, {0, excess} when rejected; excess as a
// string, since Redis truncates a Lua number reply to an integer.
var takeScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local s = redis.call('HMGET', KEYS[1], 'excess', 'last')
local excess = 0
if s[1] and s[2] then
  local elapsed = math.abs(now - tonumber(s[2]))
  excess = math.max(tonumber(s[1]) - rate * elapsed / 1000000 + 1, 0)
  if excess > burst then
    return {0, string.format('%.17g', excess)}
  end
end
redis.call('HSET', KEYS[1], 'excess', string.format('%.17g', excess), 'last', string.format('%d', now))
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {1, string.format('%.17g', excess)}
`)

// redisLimiter is the leaky bucket in Redis, one script call per request;
// every gateway sharing the Redis shares the buckets exactly.
type redisLimiter struct {
	b           *ratelimit.Backend
	rate, burst float64
	rateArg     string
	burstArg    string
	// ttl keeps a key until its bucket has surely drained: (burst+1)/rate,
	// plus a second.
	ttl int64 // milliseconds
}

func newRedisLimiter(b *ratelimit.Backend, rate, burst float64) *redisLimiter {
	ttl := math.Ceil((burst+1)/rate*1000) + 1000
	return &redisLimiter{
		b: b, rate: rate, burst: burst,
		rateArg:  strconv.FormatFloat(rate, 'g', -1, 64),
		burstArg: strconv.FormatFloat(burst, 'g', -1, 64),
		ttl:      int64(math.Min(ttl, float64(maxSpan/time.Millisecond))),
	}
}

// take admits or rejects one request under key (already scoped). A Redis
// error or a reply later than redis_timeout returns an error; the caller
// degrades or rejects.
func (l *redisLimiter) take(key string, _ time.Time) (time.Duration, bool, error) {
	res, err := l.b.Run(takeScript, []string{key}, l.rateArg, l.burstArg, l.ttl).Slice()
	if err != nil {
		return 0, false, fmt.Errorf("redis: %w", err)
	}
	if len(res) != 2 {
		return 0, false, fmt.Errorf("redis: script returned %d values, want 2", len(res))
	}
	admitted, _ := res[0].(int64)
	s, _ := res[1].(string)
	excess, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, false, fmt.Errorf("redis: script returned excess %q: %w", s, err)
	}
	if admitted != 1 {
		return 0, false, nil
	}
	return time.Duration(excess / l.rate * float64(time.Second)), true, nil
}

func (l *redisLimiter) failed(err error, passed bool) { l.b.FailedRequest(err, passed) }
