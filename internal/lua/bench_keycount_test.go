package lua

import "testing"

// BenchmarkServerlessKeyCount is the bench/ scenario lua-keycount-c50's
// snippet (bench/run.sh keycount_lua): a key looked up in a shared dict,
// the consumer passed upstream, a per-consumer counter with an expiry and
// three response headers.
func BenchmarkServerlessKeyCount(b *testing.B) {
	benchAccess(b, `ngx.shared.counters:set("key:secret", "jack")
	return function(conf, ctx)
		local key = ngx.var.http_x_api_key
		if not key then return ngx.exit(401) end
		local dict = ngx.shared.counters
		local user = dict:get("key:" .. key)
		if not user then return ngx.exit(401) end
		ngx.req.set_header("X-Consumer-Username", user)
		local ck = "count:" .. user
		local n = dict:incr(ck, 1, 0, 60)
		if not n then return ngx.exit(500) end
		local ttl = dict:ttl(ck) or 0
		ngx.header["X-RateLimit-Limit"] = 1000000000
		ngx.header["X-RateLimit-Reset"] = math.floor(ttl * 100) / 100
		if n > 1000000000 then
			ngx.header["X-RateLimit-Remaining"] = 0
			return ngx.exit(503)
		end
		ngx.header["X-RateLimit-Remaining"] = 1000000000 - n
	end`)
}
