package luadiff

// The cases. Each runs the same Lua in nginx and in sluice; a snippet prints
// what it observes (sorted where Lua's table order would leak in) so the
// body can be compared byte for byte. Values that differ by nature (times,
// ports) are printed as shapes or normalised.

func one(phase, code string) []snip { return []snip{{phase, code}} }

// show is a Lua helper that prints a value deterministically: tables with
// sorted keys, nested tables inline.
const show = `local function show(v)
  if type(v) ~= "table" then return tostring(v) end
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  local out = {}
  for _, k in ipairs(keys) do out[#out + 1] = tostring(k) .. "=" .. show(v[k]) end
  return "{" .. table.concat(out, ",") .. "}"
end
`

func hdr(kv ...string) [][2]string {
	var out [][2]string
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, [2]string{kv[i], kv[i+1]})
	}
	return out
}

func allCases() []luaCase {
	return []luaCase{
		// ---------------------------------------------------------- ngx.var
		{name: "var/request", phases: one("content", `
ngx.say("uri=", ngx.var.uri)
ngx.say("request_uri=", ngx.var.request_uri)
ngx.say("args=", ngx.var.args)
ngx.say("arg_a=", ngx.var.arg_a, " arg_b=", ngx.var.arg_b, " arg_none=", tostring(ngx.var.arg_none))
ngx.say("host=", ngx.var.host, " http_host=", ngx.var.http_host)
ngx.say("method=", ngx.var.request_method, " scheme=", ngx.var.scheme)
ngx.say("remote_addr=", ngx.var.remote_addr, " server_port=", ngx.var.server_port)
ngx.say("unknown=", tostring(ngx.var.no_such_variable))`),
			req: request{path: "x/y?a=1&b=two%20words"}},
		{name: "var/uri-decoded", phases: one("content", `
ngx.say(ngx.var.uri, " | ", ngx.var.request_uri, " | ", tostring(ngx.var.args))`),
			req: request{path: "a%20b/./c/../d"}},
		{name: "var/args-repeated", phases: one("content", `
ngx.say("[", ngx.var.arg_a, "] [", ngx.var.arg_b, "] [", ngx.var.arg_d, "] [", ngx.var.arg_E, "]")`),
			req: request{path: "?a=1&a=2&b=&c&d=x%2By+z&e=lower"}},
		{name: "var/arg-bare-key", phases: one("content", `ngx.say(tostring(ngx.var.arg_c))`),
			req: request{path: "?c&d=1"}},
		{name: "var/http-and-cookie", phases: one("access", `
ngx.say(ngx.var.http_x_test, "|", ngx.var.http_user_agent, "|", tostring(ngx.var.http_x_none))
ngx.say(ngx.var.cookie_sid, "|", ngx.var.cookie_theme, "|", tostring(ngx.var.cookie_none))
ngx.say(ngx.var.http_cookie)
return ngx.exit(200)`),
			req: request{headers: hdr("X-Test", "hello world", "Cookie", "sid=abc123; theme=dark")}},
		{name: "var/host-lowercase-no-port", phases: one("content", `ngx.say(ngx.var.host, " ", ngx.var.http_host)`),
			req: request{headers: hdr("Host", "Example.COM:8080")}},
		{name: "var/method-post", phases: one("content", `ngx.say(ngx.var.request_method, " ", ngx.req.get_method())`),
			req: request{method: "POST", body: "x"}},
		{name: "var/status-upstream-addr-header-filter", phases: one("header_filter", `
ngx.header["X-Status"] = ngx.var.status`)},
		{name: "var/upstream-addr-header-filter", phases: one("header_filter", `
ngx.header["X-Upstream-Addr"] = tostring(ngx.var.upstream_addr)`)},
		{name: "var/set-args", phases: one("rewrite", `ngx.var.args = "q=rewritten&n=1"`),
			req: request{path: "?orig=1"}},
		{name: "var/log-phase", phases: one("log", `
ngx.shared.diff:set("var-log", ngx.var.status .. " " .. ngx.var.upstream_addr .. " " .. ngx.var.uri .. " " .. ngx.var.request_method)`),
			dict: "var-log"},
		{name: "var/user-variable", phases: one("content", `
local ok, err = pcall(function() ngx.var.my_var = "x" end)
ngx.say(ok)`),
			known: "sluice lets scripts set any variable name (docs/lua.md, ngx.var.NAME = v); nginx only variables declared with set"},

		// ---------------------------------------------------------- ngx.req
		{name: "req/get-method", phases: one("content", `ngx.say(ngx.req.get_method())`), req: request{method: "DELETE"}},
		{name: "req/get-uri-args", phases: one("content", show+`
ngx.say(show(ngx.req.get_uri_args()))
ngx.say(show(ngx.req.get_uri_args(2)))
ngx.say(show(ngx.req.get_uri_args(0)))`),
			req: request{path: "?a=1&a=2&b=x+y&c&d=%41%42&=skip&e="}},
		{name: "req/set-uri-args-string", phases: one("rewrite", `ngx.req.set_uri_args("x=1&y=hello%20there")`),
			req: request{path: "?orig=1"}},
		{name: "req/set-uri-args-table", phases: one("rewrite", `ngx.req.set_uri_args({a = {"1", "two words"}})`)},
		{name: "req/set-uri-args-table-flag", phases: one("access", `ngx.req.set_uri_args({flag = true})`)},
		{name: "req/get-headers-pairs", phases: one("access", show+`
local h = ngx.req.get_headers()
ngx.say(show(h))
ngx.say(h["X-Multi"] and type(h["X-Multi"]), " ", h.x_multi and #h.x_multi, " ", h["USER-AGENT"], " ", h.user_agent)
return ngx.exit(200)`),
			req: request{headers: hdr("X-Multi", "1", "X-Multi", "2", "X-One", "only", "Accept", "*/*")}},
		{name: "req/get-headers-max", phases: one("content", show+`
local h, err = ngx.req.get_headers(3)
ngx.say(show(h), " ", tostring(err))
h, err = ngx.req.get_headers(0)
local n = 0
for _ in pairs(h) do n = n + 1 end
ngx.say(n, " ", tostring(err))`),
			req: request{headers: hdr("X-A", "1", "X-B", "2", "X-C", "3", "X-D", "4")}},
		{name: "req/get-headers-raw", phases: one("content", show+`
ngx.say(show(ngx.req.get_headers(100, true)))`),
			req:     request{headers: hdr("x-MiXed-Case", "v", "X-Other", "w")},
			knownOn: "std", known: "the std engine (net/http) canonicalises header names: raw get_headers keys are X-Mixed-Case"},
		{name: "req/get-headers-after-set", phases: one("access", show+`
ngx.req.set_header("X-Added", "new")
ngx.req.clear_header("X-Gone")
ngx.req.set_header("X-Keep", "replaced")
local h = ngx.req.get_headers()
ngx.say(show(h))
return ngx.exit(200)`),
			req: request{headers: hdr("X-Gone", "bye", "X-Keep", "old")}},
		{name: "req/get-headers-header-filter", phases: one("header_filter", `
local h = ngx.req.get_headers()
local keys = {}
for k, v in pairs(h) do keys[#keys + 1] = k .. "=" .. tostring(v) end
table.sort(keys)
ngx.header["X-Req-Headers"] = table.concat(keys, ";")`),
			req: request{headers: hdr("X-Seen", "yes")}},
		{name: "req/set-header", phases: one("rewrite", `
ngx.req.set_header("X-New", "v1")
ngx.req.set_header("X-Replace", "after")
ngx.req.set_header("X-List", {"a", "b"})
ngx.req.set_header("X-Remove", nil)
ngx.req.set_header("User-Agent", "lua-agent")`),
			req: request{headers: hdr("X-Replace", "before", "X-Remove", "gone")}},
		{name: "req/clear-header", phases: one("access", `
ngx.req.clear_header("X-Secret")
ngx.req.clear_header("x-other-secret")`),
			req: request{headers: hdr("X-Secret", "s", "X-Other-Secret", "t", "X-Public", "p")}},
		{name: "req/read-body", phases: one("access", `
ngx.say(tostring(ngx.req.get_body_data()))
ngx.req.read_body()
local b = ngx.req.get_body_data()
ngx.say(#b, " ", b)
return ngx.exit(200)`),
			req: request{method: "POST", body: "hello body"}},
		{name: "req/read-body-empty", phases: one("content", `
ngx.req.read_body()
ngx.say(tostring(ngx.req.get_body_data()))`)},
		{name: "req/set-body-data", phases: one("rewrite", `
ngx.req.read_body()
ngx.req.set_body_data(string.upper(ngx.req.get_body_data()) .. "!")`),
			req: request{method: "POST", body: "replace me"}},
		{name: "req/get-post-args", phases: one("content", show+`
ngx.req.read_body()
ngx.say(show(ngx.req.get_post_args()))
ngx.say(show(ngx.req.get_post_args(1)))`),
			req: request{method: "POST", body: "a=1&b=2&b=three+3&c", headers: hdr("Content-Type", "application/x-www-form-urlencoded")}},
		{name: "req/get-post-args-not-read", phases: one("content", `
local ok, err = pcall(ngx.req.get_post_args)
ngx.say(ok)`),
			req: request{method: "POST", body: "a=1", headers: hdr("Content-Type", "application/x-www-form-urlencoded")}},
		{name: "req/set-uri", phases: one("rewrite", `ngx.req.set_uri("/new path/x")`),
			req: request{path: "old?keep=1"}},
		{name: "req/set-uri-access", phases: one("access", `ngx.req.set_uri("/from-access")`)},
		{name: "req/set-method", phases: one("rewrite", `ngx.req.set_method(ngx.HTTP_PUT)`)},

		// ------------------------------------------------ ngx.header, status
		{name: "header/exit-with-headers", phases: one("access", `
ngx.header["X-A"] = "1"
ngx.header.x_b = "two"
ngx.header.content_type = "application/json"
ngx.header["X-List"] = {"a", "b"}
ngx.say('{"ok":true}')
return ngx.exit(200)`)},
		{name: "header/set-before-proxy", phases: one("access", `
ngx.header["X-From-Lua"] = "set in access"`)},
		{name: "header/set-before-proxy-overlap", phases: one("access", `
ngx.header["X-Up"] = "from lua"
ngx.header.content_type = "application/lua"
ngx.header["X-Num"] = 1/3`)},
		{name: "header/set-in-rewrite-and-access", phases: []snip{
			{"rewrite", `ngx.header["X-R"] = "r"; ngx.header["X-Both"] = "rewrite"`},
			{"access", `ngx.header["X-A"] = ngx.header["X-R"] .. "a"; ngx.header["X-Both"] = "access"`}}},
		{name: "header/header-filter", phases: one("header_filter", `
ngx.header["X-Seen-Up"] = ngx.header["X-Up"]
ngx.header["X-Up"] = nil
ngx.header["X-Added"] = {"1", "2"}
ngx.header.x_content_type_was = ngx.header.content_type
ngx.header["X-Multi-Was"] = type(ngx.header["X-Up-Multi"])`)},
		{name: "header/header-filter-read-missing", phases: one("header_filter", `
ngx.header["X-Missing"] = tostring(ngx.header["X-Not-There"])`)},
		{name: "status/set-in-access", phases: one("access", `
ngx.status = 201
ngx.say("created")
return ngx.exit(201)`)},
		{name: "status/header-filter-read-write", phases: one("header_filter", `
ngx.header["X-Old-Status"] = ngx.status
ngx.status = 202`)},
		{name: "status/upstream-404", phases: one("header_filter", `ngx.header["X-Status"] = ngx.status`),
			req: request{headers: hdr("X-Up-Status", "404")}},

		// ------------------------------------------ ngx.say / print / exit
		{name: "say/values", phases: one("content", `
ngx.say("s", 1, 2.5, -3, true, false, nil, ngx.null)
ngx.print({"a", {"b", "c"}, 1})
ngx.say()
ngx.say(1e15, " ", 1/3, " ", 2^53, " ", 100, " ", -0.5)
local ok = ngx.print("")
ngx.say(ok)`)},
		{name: "say/number-tostring", phases: one("content", `ngx.say(tostring(1/3), " ", "n=" .. 1e15)`),
			known: "tostring and .. use gopher-lua's number format (0.3333333333333333, 1000000000000000), not %.14g; ngx.say/print/log and header values use %.14g"},
		{name: "say/non-array-table", phases: one("content", `
local ok = pcall(ngx.say, {a = 1})
ngx.say(ok)`)},
		{name: "exit/403", phases: one("access", `return ngx.exit(ngx.HTTP_FORBIDDEN)`)},
		{name: "exit/404-rewrite", phases: one("rewrite", `ngx.exit(404)`)},
		{name: "exit/500-error", phases: one("access", `ngx.exit(ngx.ERROR)`),
			known: "ngx.exit(ngx.ERROR) makes nginx close the connection without a response; sluice answers 500"},
		{name: "exit/status-pages", phases: one("access", `return ngx.exit(tonumber(ngx.var.arg_s))`),
			req: request{path: "?s=401"}},
		{name: "exit/status-page-405", phases: one("access", `return ngx.exit(405)`)},
		{name: "exit/status-page-429", phases: one("access", `return ngx.exit(429)`)},
		{name: "exit/status-page-418", phases: one("access", `return ngx.exit(418)`)},
		{name: "exit/status-page-402", phases: one("access", `return ngx.exit(402)`)},
		{name: "exit/status-page-407", phases: one("access", `return ngx.exit(407)`)},
		{name: "exit/status-page-408", phases: one("access", `return ngx.exit(408)`),
			known: "nginx closes the connection on ngx.exit(408) without a response; sluice sends the 408 page"},
		{name: "exit/status-page-416", phases: one("access", `return ngx.exit(416)`)},
		{name: "exit/status-page-421", phases: one("access", `return ngx.exit(421)`)},
		{name: "exit/status-page-422", phases: one("access", `return ngx.exit(422)`)},
		{name: "exit/status-page-505", phases: one("access", `return ngx.exit(505)`)},
		{name: "exit/status-page-506", phases: one("access", `return ngx.exit(506)`)},
		{name: "exit/status-page-507", phases: one("access", `return ngx.exit(507)`)},
		{name: "exit/status-page-308", phases: one("access", `ngx.header.location = "/x"; return ngx.exit(308)`)},
		{name: "exit/ok-continues", phases: one("access", `ngx.req.set_header("X-Before-Exit", "1"); ngx.exit(ngx.OK)`)},
		{name: "exit/say-then-exit", phases: one("rewrite", `ngx.say("early"); ngx.exit(200)`)},
		{name: "exit/503-after-header", phases: one("access", `
ngx.header["X-Why"] = "maintenance"
ngx.exit(503)`)},
		{name: "exit/204", phases: one("access", `ngx.exit(204)`)},
		{name: "exit/header-filter", phases: one("header_filter", `
ngx.header["X-Before"] = "1"
ngx.exit(ngx.OK)
ngx.header["X-After"] = "never"`)},
		{name: "redirect/absolute-301", phases: one("access", `return ngx.redirect("http://example.com/new?x=1", ngx.HTTP_MOVED_PERMANENTLY)`)},
		{name: "redirect/default-302", phases: one("rewrite", `return ngx.redirect("https://example.com/")`)},
		{name: "redirect/307", phases: one("access", `return ngx.redirect("http://example.com/t", 307)`)},
		{name: "redirect/relative", phases: one("access", `return ngx.redirect("/elsewhere")`)},
		{name: "error/runtime-error-500", phases: one("access", `local t = nil; return t.field`)},
		{name: "error/pcall-message", phases: one("content", `
local ok, err = pcall(function() error("boom") end)
ngx.say(ok, " ", (string.gsub(err, "^.-:%d+: ", "<pos>: ")))
ok, err = pcall(error, {code = 1})
ngx.say(ok, " ", type(err), " ", err.code)`)},
		{name: "error/runtime-error-text", phases: one("content", `
local ok, err = pcall(function() local t; return t.x end)
ngx.say(ok, " ", (string.gsub(err, "^.-:%d+: ", "<pos>: ")))`),
			known: "runtime error texts are gopher-lua's (attempt to index a non-table object(nil) with key 'x'), not LuaJIT's"},
		{name: "error/pcall-error-direct", phases: one("content", `
local ok, err = pcall(error, "boom")
ngx.say(ok, " ", err)`),
			known: "gopher-lua adds a position to error() called directly by pcall; Lua 5.1 adds none"},

		// ---------------------------------------------------------- ngx.log
		{name: "log/levels", phases: one("access", `
ngx.log(ngx.ERR, "m-err|", "a", 1, nil, true, "|end")
ngx.log(ngx.WARN, "m-warn|", 2.5, "|end")
ngx.log(ngx.NOTICE, "m-notice|x|end")
ngx.log(ngx.INFO, "m-info|", ngx.null, "|end")
ngx.log(ngx.CRIT, "m-crit|c|end")`),
			logs: []string{"m-err|a1niltrue|end", "m-warn|2.5|end", "m-notice|x|end", "m-info|null|end", "m-crit|c|end"}},
		{name: "log/log-phase", phases: one("log", `ngx.log(ngx.WARN, "m-logphase|", ngx.var.status, "|end")`),
			logs: []string{"m-logphase|200|end"}},

		// ---------------------------------------------------------- ngx.ctx
		{name: "ctx/rewrite-to-header-filter", phases: []snip{
			{"rewrite", `ngx.ctx.seen = "rewrite saw " .. ngx.var.arg_id`},
			{"header_filter", `ngx.header["X-Ctx"] = ngx.ctx.seen`}},
			req: request{path: "?id=42"}},
		{name: "ctx/access-to-log", phases: []snip{
			{"access", `ngx.ctx.n = 7; ngx.ctx.t = {1, 2}`},
			{"log", `ngx.shared.diff:set("ctx-log", ngx.ctx.n + #ngx.ctx.t)`}},
			dict: "ctx-log"},
		{name: "ctx/fresh-per-request", phases: one("content", `
ngx.say(tostring(ngx.ctx.leftover))
ngx.ctx.leftover = "x"`)},
		{name: "ctx/body-filter-buffer", phases: one("body_filter", `
ngx.ctx.buf = (ngx.ctx.buf or "") .. (ngx.arg[1] or "")
if ngx.arg[2] then
  ngx.arg[1] = "<" .. #ngx.ctx.buf .. ":" .. string.upper(ngx.ctx.buf) .. ">"
else
  ngx.arg[1] = nil
end`),
			req: request{headers: hdr("X-Up-Chunks", "3")}},

		// ------------------------------------------------------ body filter
		{name: "body-filter/per-chunk", phases: []snip{
			{"header_filter", `ngx.header.content_length = nil`},
			{"body_filter", `if ngx.arg[1] then ngx.arg[1] = string.gsub(ngx.arg[1], "h:", "H:") end`}},
			req: request{headers: hdr("X-Up-Chunks", "2")}},
		{name: "body-filter/append-at-eof", phases: []snip{
			{"header_filter", `ngx.header.content_length = nil`},
			{"body_filter", `if ngx.arg[2] then ngx.arg[1] = (ngx.arg[1] or "") .. "appended\n" end`}}},

		// ---------------------------------------------------- ngx.shared
		{name: "shared/ops", phases: one("content", `
local d = ngx.shared.diff
ngx.say(d:set("k1", "v1"))
ngx.say(d:get("k1"))
ngx.say(d:add("k1", "again"))
ngx.say(d:add("k2", 10))
ngx.say(d:replace("k2", 20))
ngx.say(d:replace("none", 1))
ngx.say(d:incr("k2", 5))
ngx.say(d:incr("counter", 1, 0))
ngx.say(d:incr("counter", 1, 0))
ngx.say(d:incr("nope", 1))
ngx.say(d:set("flagged", "x", 0, 7))
ngx.say(d:get("flagged"))
ngx.say(d:delete("k1"))
ngx.say(tostring(d:get("k1")))
ngx.say(d:set("b", true), " ", d:get("b"), " ", type(d:get("k2")))`)},
		{name: "shared/ttl-expire", phases: one("content", `
local d = ngx.shared.diff
d:set("ttl1", "v", 100)
local ttl = d:ttl("ttl1")
ngx.say(ttl > 99 and ttl <= 100)
d:set("ttl0", "v")
ngx.say(d:ttl("ttl0"))
ngx.say(d:ttl("missing"))
ngx.say(d:expire("ttl0", 50))
local t2 = d:ttl("ttl0")
ngx.say(t2 > 49 and t2 <= 50)
ngx.say(d:expire("missing", 5))`)},
		{name: "shared/get-keys-flush-all", phases: one("content", `
local d = ngx.shared.flush
d:set("a", 1); d:set("b", 2); d:set("c", 3)
local keys = d:get_keys()
table.sort(keys)
ngx.say(table.concat(keys, ","))
ngx.say(#d:get_keys(2))
d:flush_all()
ngx.say(tostring(d:get("a")), " ", #d:get_keys())`)},
		{name: "shared/errors", phases: one("content", `
local d = ngx.shared.diff
ngx.say(d:get(nil))
ngx.say(d:set("", 1))
ngx.say(d:set("tbl", {}))
ngx.say(type(ngx.shared.nosuch))`)},

		// ------------------------------------------------------------ time
		{name: "time/shapes", phases: one("content", `
local t = ngx.time()
ngx.say(type(t), " ", t > 1600000000, " ", t == math.floor(t))
local n = ngx.now()
ngx.say(type(n), " ", math.abs(n - t) < 2)
ngx.say(ngx.re.find(ngx.today(), [[^\d{4}-\d\d-\d\d$]], "jo") ~= nil)
ngx.say(ngx.re.find(ngx.localtime(), [[^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$]], "jo") ~= nil)
ngx.say(ngx.re.find(ngx.utctime(), [[^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$]], "jo") ~= nil)
ngx.say(ngx.re.find(ngx.http_time(t), [[^\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT$]], "jo") ~= nil)
ngx.say(ngx.parse_http_time(ngx.http_time(t)) == t)
local st = ngx.req.start_time()
ngx.say(type(st), " ", math.abs(st - n) < 2)`)},
		{name: "time/fixed", phases: one("content", `
ngx.say(ngx.http_time(0))
ngx.say(ngx.http_time(1700000000))
ngx.say(ngx.cookie_time(1700000000))
ngx.say(ngx.parse_http_time("Tue, 14 Nov 2023 22:13:20 GMT"))
ngx.say(tostring(ngx.parse_http_time("not a date")))`)},

		// ------------------------------------------ hashes and codecs
		{name: "codec/hashes", phases: one("content", `
local function hex(s) return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end)) end
ngx.say(ngx.md5("hello"))
ngx.say(hex(ngx.md5_bin("hello")))
ngx.say(hex(ngx.sha1_bin("hello")))
ngx.say(ngx.encode_base64(ngx.hmac_sha1("secret", "message")))
ngx.say(ngx.crc32_short("hello"), " ", ngx.crc32_long("hello"))`)},
		{name: "codec/base64", phases: one("content", `
ngx.say(ngx.encode_base64("hello world"))
ngx.say(ngx.encode_base64("ab", true))
ngx.say(ngx.decode_base64("aGVsbG8gd29ybGQ="))
ngx.say(tostring(ngx.decode_base64("!!!")))
ngx.say(ngx.encode_base64(""))`)},
		{name: "codec/uri", phases: one("content", `
ngx.say(ngx.escape_uri("a b/c?d=e&f+g~h_i.j-k\"é"))
ngx.say(ngx.escape_uri("a b/c?d", 0))
ngx.say(ngx.unescape_uri("a%20b+c%2Fd%zz%41"))`)},
		{name: "codec/args", phases: one("content", show+`
ngx.say(ngx.encode_args({a = "1 2"}))
ngx.say(ngx.encode_args({b = {"x", "y"}}))
ngx.say(ngx.encode_args({flag = true}), "|", ngx.encode_args({off = false}), "|")
ngx.say(show(ngx.decode_args("a=1&a=2&b=x+y&c&d=%41")))
local t, err = ngx.decode_args("a=1&b=2&c=3", 2)
ngx.say(show(t), " ", tostring(err))`)},

		// ----------------------------------------------------------- ngx.re
		{name: "re/match", phases: one("content", show+`
local m = ngx.re.match("hello 1234 world", [[(\d+)\s+(?<word>\w+)]], "jo")
ngx.say(show(m))
ngx.say(tostring(ngx.re.match("abc", "x")))
local m2 = ngx.re.match("ABC", "b", "i")
ngx.say(m2[0])
local m3, err = ngx.re.match("x", "(", "jo")
ngx.say(tostring(m3), " ", err ~= nil)`)},
		{name: "re/find-gmatch", phases: one("content", `
ngx.say(ngx.re.find("hello world", "o w", "jo"))
ngx.say(ngx.re.find("abc", "z"))
local parts = {}
for m in ngx.re.gmatch("a1b22c333", [[\d+]], "jo") do parts[#parts + 1] = m[0] end
ngx.say(table.concat(parts, ","))
local ctx = {pos = 3}
ngx.say(ngx.re.find("abcabc", "a", "jo", ctx), " ", ctx.pos)`)},
		{name: "re/sub-gsub", phases: one("content", `
ngx.say(ngx.re.sub("hello world", "o", "0"))
ngx.say(ngx.re.gsub("hello world", "o", "0"))
ngx.say(ngx.re.gsub("a1b2", [[(\w)(\d)]], "$2$1"))
ngx.say(ngx.re.gsub("abc", "b", function(m) return "[" .. m[0] .. "]" end))
ngx.say(ngx.re.gsub("baaac", "a*", "-"))`)},
		{name: "re/var-in-access", phases: one("access", `
local m = ngx.re.match(ngx.var.uri, [[^/c/\d+/(\w+)$]], "jo")
if not m then return ngx.exit(400) end
ngx.req.set_header("X-Captured", m[1])`),
			req: request{path: "segment"}},

		// ---------------------------------------------- constants and null
		{name: "const/http", phases: one("content", `
ngx.say(ngx.HTTP_OK, " ", ngx.HTTP_CREATED, " ", ngx.HTTP_NO_CONTENT, " ", ngx.HTTP_MOVED_PERMANENTLY, " ", ngx.HTTP_MOVED_TEMPORARILY)
ngx.say(ngx.HTTP_SEE_OTHER, " ", ngx.HTTP_NOT_MODIFIED, " ", ngx.HTTP_TEMPORARY_REDIRECT, " ", ngx.HTTP_PERMANENT_REDIRECT)
ngx.say(ngx.HTTP_BAD_REQUEST, " ", ngx.HTTP_UNAUTHORIZED, " ", ngx.HTTP_FORBIDDEN, " ", ngx.HTTP_NOT_FOUND, " ", ngx.HTTP_NOT_ALLOWED)
ngx.say(ngx.HTTP_GONE, " ", ngx.HTTP_TOO_MANY_REQUESTS, " ", ngx.HTTP_INTERNAL_SERVER_ERROR, " ", ngx.HTTP_BAD_GATEWAY)
ngx.say(ngx.HTTP_SERVICE_UNAVAILABLE, " ", ngx.HTTP_GATEWAY_TIMEOUT)
ngx.say(ngx.HTTP_GET, " ", ngx.HTTP_HEAD, " ", ngx.HTTP_POST, " ", ngx.HTTP_PUT, " ", ngx.HTTP_DELETE, " ", ngx.HTTP_OPTIONS, " ", ngx.HTTP_PATCH)
ngx.say(ngx.OK, " ", ngx.ERROR, " ", ngx.AGAIN, " ", ngx.DONE, " ", ngx.DECLINED)
ngx.say(ngx.STDERR, ngx.EMERG, ngx.ALERT, ngx.CRIT, ngx.ERR, ngx.WARN, ngx.NOTICE, ngx.INFO, ngx.DEBUG)`)},
		{name: "const/null", phases: one("content", `
local cjson = require "cjson"
ngx.say(type(ngx.null), " ", ngx.null == cjson.null, " ", tostring(ngx.null), " ", ngx.null == nil)`)},

		// ------------------------------------------------------------ cjson
		{name: "cjson/encode", phases: one("content", `
local cjson = require "cjson"
ngx.say(cjson.encode({1, 2, "three", true, cjson.null}))
ngx.say(cjson.encode({}), " ", cjson.encode({a = {b = {1}}}), " ", cjson.encode({[1] = 1, [2] = 2, [4] = 4}))
ngx.say(cjson.encode("a/b\"c\n"), " ", cjson.encode(0.1), " ", cjson.encode(1e20), " ", cjson.encode(3))
ngx.say(pcall(cjson.encode, {[1000] = 1}))
ngx.say(pcall(cjson.encode, function() end))`)},
		{name: "cjson/decode", phases: one("content", show+`
local cjson = require "cjson"
local v = cjson.decode('{"a":[1,2,{"b":null}],"c":"x\\u00e9","d":1.5,"e":false}')
ngx.say(show(v))
ngx.say(v.a[3].b == cjson.null)
ngx.say(pcall(cjson.decode, "{bad"))`)},
		{name: "cjson/safe", phases: one("content", `
local safe = require "cjson.safe"
ngx.say(safe.decode("[1,"))
ngx.say(safe.encode({a = 1}))
ngx.say(safe.encode(function() end))`)},
		{name: "cjson/request-body-json", phases: one("access", `
local cjson = require "cjson.safe"
ngx.req.read_body()
local t = cjson.decode(ngx.req.get_body_data() or "")
if not t then return ngx.exit(400) end
ngx.req.set_header("X-User", t.user)
ngx.req.set_body_data(cjson.encode({user = string.upper(t.user)}))`),
			req: request{method: "POST", body: `{"user":"jack"}`, headers: hdr("Content-Type", "application/json")}},

		// --------------------------------------------------------- misc
		{name: "misc/get-phase", phases: []snip{
			{"rewrite", `ngx.ctx.phases = ngx.get_phase()`},
			{"header_filter", `ngx.header["X-Phases"] = ngx.ctx.phases .. "," .. ngx.get_phase()`}}},
		{name: "misc/get-phase-access", phases: []snip{
			{"access", `ngx.ctx.p = ngx.get_phase()`},
			{"log", `ngx.shared.diff:set("phase-log", ngx.ctx.p .. "," .. ngx.get_phase())`}},
			dict: "phase-log"},
		{name: "misc/headers-sent", phases: []snip{
			{"access", `ngx.ctx.sent = tostring(ngx.headers_sent)`},
			{"header_filter", `ngx.header["X-Sent"] = ngx.ctx.sent .. "," .. tostring(ngx.headers_sent)`}}},
		{name: "misc/headers-sent-late", phases: []snip{
			{"body_filter", `ngx.ctx.bf = tostring(ngx.headers_sent)`},
			{"log", `ngx.shared.diff:set("sent-log", ngx.ctx.bf .. "," .. tostring(ngx.headers_sent))`}},
			dict: "sent-log"},
		{name: "misc/key-check-and-count", phases: one("access", `
local key = ngx.var.http_apikey
if not key then return ngx.exit(401) end
local dict = ngx.shared.diff
dict:set("key:secret", "jack")
local user = dict:get("key:" .. key)
if not user then return ngx.exit(401) end
ngx.req.set_header("X-Consumer-Username", user)
local n = dict:incr("count:" .. user, 1, 0, 60)
ngx.header["X-RateLimit-Limit"] = 100
ngx.header["X-RateLimit-Remaining"] = 100 - n`),
			req: request{headers: hdr("apikey", "secret")}},
	}
}
