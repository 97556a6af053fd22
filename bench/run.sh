#!/usr/bin/env bash
# End-to-end proxy benchmark: sluice vs nginx, nginx+Lua, HAProxy and Caddy in
# front of the same fast nginx upstream, on one machine, in interleaved rounds.
# See bench/README.md. Environment knobs (defaults in brackets):
#   BENCH_DURATION   seconds per measured wrk run            [10]
#   BENCH_ROUNDS     interleaved rounds per scenario          [3]
#   BENCH_WARMUP     seconds of un-measured wrk before a run  [1]
#   BENCH_PROXIES    proxies to run (nginx must be included)  [nginx nginx-lua haproxy caddy sluice]
#   BENCH_SCENARIOS  scenarios to run                         [small-c50 small-c100 16k-c50 routes1000-c50 keyauth-c50 prom-c50]
#                    also: keyauth-count-c50 keyauth-count-redis-c50 keyauth-count-batched-c50 lua-keycount-c50
#                    (not in the default list: they would take it past 15 minutes; see bench/README.md)
#   BENCH_REDIS_PORT port of the redis-server started for the *-redis/*-batched scenarios [18087]
#   BENCH_ROUTE_HIT  route N the 1,000-routes load hits       [500]
#   BENCH_PROXY_CPU  core the proxy under test is pinned to  [0]
#   BENCH_LOAD_CPU   core for wrk + upstream                  [1]
#   SLUICE_BIN       use this sluice binary instead of building ./cmd/sluice
#   BENCH_SKIP_MISSING_SLUICE=0  fail instead of skipping sluice when it does not build
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(dirname "$BENCH_DIR")"

DURATION="${BENCH_DURATION:-10}"; DURATION="${DURATION%s}"
ROUNDS="${BENCH_ROUNDS:-3}"
WARMUP="${BENCH_WARMUP:-1}"; WARMUP="${WARMUP%s}"
PROXIES="${BENCH_PROXIES:-nginx nginx-lua haproxy caddy sluice}"
SCENARIOS="${BENCH_SCENARIOS:-small-c50 small-c100 16k-c50 routes1000-c50 keyauth-c50 prom-c50}"
# The API key every client sends: the keyauth scenario's key-auth (sluice) and
# shared-dict lookup (nginx + Lua) check it; the other proxies ignore it.
BENCH_KEY=bench-key-0123456789
ROUTE_HIT="${BENCH_ROUTE_HIT:-500}"
# limit-count scenarios: a quota no run gets near, so nothing is rejected
# (a rejection would fail the run); both sides count per consumer.
COUNT_LIMIT=1000000000
COUNT_WINDOW=60
REDIS_PORT="${BENCH_REDIS_PORT:-18087}"
PCPU="${BENCH_PROXY_CPU:-0}"
LCPU="${BENCH_LOAD_CPU:-1}"
NROUTES=1000

UP_PORT=18080
STATUS_PORT=18089
PROM_PORT=18086 # sluice's Prometheus exporter in the prom scenario
declare -A PORT=([nginx]=18081 [nginx-lua]=18082 [haproxy]=18083 [caddy]=18084 [sluice]=18085)
SMALL_BODY="sluice-bench-upstream-ok"
CLK_TCK="$(getconf CLK_TCK)"

log() { printf '%s\n' "$*" >&2; }
die() { log "run.sh: $*"; exit 1; }

# ---------------------------------------------------------------- processes
declare -A STARTED # pids we started and have not stopped yet (nginx masters, haproxy, caddy, sluice)
declare -A PPID_OF # proxy name -> main pid
declare -A KIDS    # main pid -> its children seen at startup (nginx workers)

kill_tree() {
	local pid="$1" kids i
	[ -n "${STARTED[$pid]:-}" ] || return 0 # only ever signal our own processes
	kids="$(pgrep -P "$pid" 2>/dev/null || true)"
	for i in ${KIDS[$pid]:-}; do # orphaned nginx workers whose master died
		case "$(tr '\0' ' ' 2>/dev/null <"/proc/$i/cmdline")" in "nginx: worker"*) kids="$kids $i" ;; esac
	done
	kill -TERM "$pid" 2>/dev/null || true
	for i in $(seq 1 30); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" $kids 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	unset "STARTED[$pid]"
}

stop_all() {
	local pid
	for pid in "${!STARTED[@]}"; do kill_tree "$pid"; done
	PPID_OF=()
}

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	stop_all
	[ -n "${WRK_PID:-}" ] && kill "$WRK_PID" 2>/dev/null || true
	if [ -n "${RUN_DIR:-}" ] && [ -s "$TMP/upstream/error.log" ]; then
		cp "$TMP/upstream/error.log" "$RUN_DIR/runs/upstream.error.log" 2>/dev/null || true
	fi
	[ -n "${TMP:-}" ] && [ -d "$TMP" ] && rm -rf "$TMP"
	exit "$rc"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

wait_http() { # url [seconds [pid]]
	local url="$1" t="${2:-15}" pid="${3:-}" i
	for i in $(seq 1 $((t * 10))); do
		curl -s -o /dev/null --max-time 1 "$url" && return 0
		[ -z "$pid" ] || kill -0 "$pid" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

# all pids belonging to a proxy: the main pid plus its children (nginx workers)
proxy_pids() {
	local pid="${PPID_OF[$1]}"
	echo "$pid" $(pgrep -P "$pid" 2>/dev/null || true)
}

# sum of utime+stime (clock ticks) of the given pids
cpu_ticks() {
	local sum=0 pid s f
	for pid in "$@"; do
		s="$(<"/proc/$pid/stat")" || return 1
		s="${s##*) }"
		read -r -a f <<<"$s"
		sum=$((sum + f[11] + f[12]))
	done
	echo "$sum"
}

rss_kb() {
	local sum=0 pid v
	for pid in "$@"; do
		v="$(awk '/^VmRSS:/{print $2}' "/proc/$pid/status")" || return 1
		sum=$((sum + ${v:-0}))
	done
	echo "$sum"
}

# "busy total" jiffies of one core from /proc/stat
core_stat() {
	awk -v c="cpu$1" '$1==c{t=0; for(i=2;i<=NF;i++) t+=$i; print t-$5-$6, t}' /proc/stat
}

# CPU time (ms) of this shell's reaped children, from the "times" builtin; it
# must run in the main shell (a subshell has its own, empty, children totals)
children_ms() { # file written by "times"
	awk 'NR==2{ for (i = 1; i <= 2; i++) { split($i, a, "m"); sub("s", "", a[2]); t += a[1] * 60000 + a[2] * 1000 } } END{printf "%.0f\n", t}' "$1"
}

upstream_pids() { echo "$UPSTREAM_PID" $(pgrep -P "$UPSTREAM_PID" 2>/dev/null || true); }

upstream_requests() {
	curl -s --max-time 2 "http://127.0.0.1:$STATUS_PORT/status" | awk 'NR==3{print $3}'
}

# ---------------------------------------------------------------- configs
gen_upstream() {
	local d="$TMP/upstream"
	mkdir -p "$d/html/files"
	head -c 16384 /dev/urandom >"$d/html/files/16k.bin"
	printf '%s' "$SMALL_BODY" >"$TMP/expected-small"
	cat >"$d/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $d/nginx.pid;
error_log $d/error.log warn;
events { worker_connections 8192; }
http {
    access_log off;
    default_type application/octet-stream;
    keepalive_requests 1000000;
    keepalive_timeout 75s;
    sendfile on;
    open_file_cache max=16 inactive=600s;
    open_file_cache_valid 600s;
    server {
        listen 127.0.0.1:$UP_PORT backlog=4096;
        location / {
            add_header X-Upstream bench always;
            default_type text/plain;
            return 200 "$SMALL_BODY";
        }
        location /files/ {
            add_header X-Upstream bench always;
            root $d/html;
        }
    }
    server {
        listen 127.0.0.1:$STATUS_PORT;
        location = /status { stub_status; }
    }
}
EOF
}

find_module() { # name.so
	local p
	p="$(dpkg -L libnginx-mod-http-lua libnginx-mod-http-ndk 2>/dev/null | grep "/$1\$" | head -1 || true)"
	[ -n "$p" ] || p="/usr/lib/nginx/modules/$1"
	[ -f "$p" ] || die "nginx module $1 not found (run bench/setup.sh)"
	echo "$p"
}

# The key-check-and-count access snippet: key-auth's work (a key looked up
# in a shared dict, unknown keys refused, the consumer passed upstream) plus
# limit-count's (a shared-dict counter per consumer with an expiry on the
# window's first request, and the three quota headers). nginx + Lua runs it
# in access_by_lua_block (keyauth-count*, lua-keycount modes); sluice runs
# the same text as a serverless-pre-function in the lua-keycount mode.
keycount_lua() {
	cat <<EOF
local key = ngx.var.http_apikey
if not key then return ngx.exit(401) end
local dict = ngx.shared.bench
local user = dict:get("key:" .. key)
if not user then return ngx.exit(401) end
ngx.req.set_header("X-Consumer-Username", user)
local ck = "count:" .. user
local n = dict:incr(ck, 1, 0, $COUNT_WINDOW)
if not n then return ngx.exit(500) end
local ttl = dict:ttl(ck) or 0
ngx.header["X-RateLimit-Limit"] = $COUNT_LIMIT
ngx.header["X-RateLimit-Reset"] = math.floor(ttl * 100) / 100
if n > $COUNT_LIMIT then
    ngx.header["X-RateLimit-Remaining"] = 0
    return ngx.exit(503)
end
ngx.header["X-RateLimit-Remaining"] = $COUNT_LIMIT - n
EOF
}

# route locations / handlers for the given mode ("single" or "many")
gen_nginx() { # name mode
	local name="$1" mode="$2" d="$TMP/$2/$1" lua=0 i
	[ "$name" = nginx-lua ] && lua=1
	mkdir -p "$d"
	{
		echo "worker_processes 1;"
		echo "daemon off;"
		echo "pid $d/nginx.pid;"
		echo "error_log $d/error.log warn;"
		if [ $lua = 1 ]; then
			echo "load_module $(find_module ndk_http_module.so);"
			echo "load_module $(find_module ngx_http_lua_module.so);"
		fi
		echo "events { worker_connections 8192; }"
		echo "http {"
		echo "    access_log off;"
		echo "    keepalive_requests 1000000;"
		echo "    keepalive_timeout 75s;"
		echo "    upstream up {"
		echo "        server 127.0.0.1:$UP_PORT;"
		echo "        keepalive 320;"
		echo "        keepalive_requests 1000000;"
		echo "        keepalive_timeout 60s;"
		echo "    }"
		if [ $lua = 1 ]; then
			echo "    lua_shared_dict bench 1m;"
			echo "    init_by_lua_block { ngx.shared.bench:set(\"greeting\", \"hello\"); ngx.shared.bench:set(\"key:$BENCH_KEY\", \"jack\") }"
		fi
		echo "    server {"
		echo "        listen 127.0.0.1:${PORT[$name]} backlog=4096;"
		echo "        proxy_http_version 1.1;"
		echo '        proxy_set_header Connection "";'
		if [ $lua = 1 ] && { [[ "$mode" == keyauth-count* ]] || [ "$mode" = lua-keycount ]; }; then
			# The key-check-and-count snippet (keycount_lua). The redis
			# scenarios use this same shared-dict counter (nginx + Lua
			# talks to no Redis): the comparison is sluice's cluster modes
			# against a node-local counter.
			echo "        access_by_lua_block {"
			keycount_lua | sed 's/^/            /'
			echo "        }"
		elif [ $lua = 1 ] && [ "$mode" = keyauth ]; then
			# The same work as sluice's key-auth: look the key up in a
			# shared dict, refuse unknown keys, pass the consumer upstream.
			cat <<'EOF'
        access_by_lua_block {
            local key = ngx.var.http_apikey
            if not key then return ngx.exit(401) end
            local user = ngx.shared.bench:get("key:" .. key)
            if not user then return ngx.exit(401) end
            ngx.req.set_header("X-Consumer-Username", user)
        }
EOF
		elif [ $lua = 1 ]; then
			cat <<'EOF'
        access_by_lua_block {
            local host = ngx.var.http_host
            local v = ngx.shared.bench:get("greeting")
            if v == nil or host == nil then
                return ngx.exit(500)
            end
        }
EOF
		fi
		if [ "$mode" != many ]; then
			echo "        location / { proxy_pass http://up; }"
		else
			for ((i = 0; i < NROUTES; i++)); do
				echo "        location /r$i/ { proxy_pass http://up; }"
			done
		fi
		echo "    }"
		echo "}"
	} >"$d/nginx.conf"
}

gen_haproxy() { # mode
	local mode="$1" d="$TMP/$1/haproxy" i
	mkdir -p "$d"
	{
		cat <<EOF
# no "log" lines anywhere: HAProxy logs nothing (access logs off)
global
    nbthread 1
    maxconn 4096

defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout http-keep-alive 60s
    http-reuse always

frontend fe
    bind 127.0.0.1:${PORT[haproxy]}
EOF
		if [ "$mode" != many ]; then
			echo "    default_backend be_up"
		else
			echo "    use_backend %[path,map_beg($d/routes.map)]"
			echo "    # no default_backend: a path matching no route gets a 503"
		fi
		cat <<EOF

backend be_up
    server up 127.0.0.1:$UP_PORT pool-max-conn 320
EOF
	} >"$d/haproxy.cfg"
	if [ "$mode" = many ]; then
		for ((i = 0; i < NROUTES; i++)); do echo "/r$i/ be_up"; done >"$d/routes.map"
	fi
}

gen_caddy() { # mode
	local mode="$1" d="$TMP/$1/caddy" i
	mkdir -p "$d"
	{
		cat <<EOF
{
	admin off
	auto_https off
	log {
		level ERROR
	}
}

(up) {
	reverse_proxy 127.0.0.1:$UP_PORT {
		transport http {
			keepalive 60s
			keepalive_idle_conns 320
			keepalive_idle_conns_per_host 320
		}
	}
}

# no "log" directive in the site: Caddy writes no access log
http://127.0.0.1:${PORT[caddy]} {
EOF
		if [ "$mode" != many ]; then
			echo "	import up"
		else
			for ((i = 0; i < NROUTES; i++)); do
				echo "	handle /r$i/* {"
				echo "		import up"
				echo "	}"
			done
		fi
		echo "}"
	} >"$d/Caddyfile"
}

gen_sluice() { # mode
	local mode="$1" d="$TMP/$1/sluice" i
	mkdir -p "$d"
	cat >"$d/sluice.yaml" <<EOF
listen:
  http: ["127.0.0.1:${PORT[sluice]}"]
resources:
  file: apisix.yaml
log:
  level: warn
  error_log: stderr
  access_log: "off"
engine: fast
admin:
  listen: "off"
control:
  listen: "off"
EOF
	if [ "$mode" = prom ]; then
		printf 'plugin_attr:\n  prometheus:\n    export_addr: {ip: 127.0.0.1, port: %d}\n' "$PROM_PORT" >>"$d/sluice.yaml"
	fi
	if [ "$mode" = lua-keycount ]; then
		# nginx + Lua's lua_shared_dict bench 1m
		printf 'shared_dicts:\n  bench: 1m\n' >>"$d/sluice.yaml"
	fi
	{
		if [ "$mode" = keyauth ] || [[ "$mode" == keyauth-count* ]]; then
			printf 'consumers:\n  - username: jack\n    plugins:\n      key-auth:\n        key: "%s"\n' "$BENCH_KEY"
		fi
		cat <<EOF
upstreams:
  - id: "1"
    type: roundrobin
    nodes:
      "127.0.0.1:$UP_PORT": 1
    keepalive_pool:
      size: 320
routes:
EOF
		if [ "$mode" = single ]; then
			printf '  - id: "bench"\n    uri: /*\n    upstream_id: "1"\n'
		elif [ "$mode" = keyauth ]; then
			printf '  - id: "bench"\n    uri: /*\n    upstream_id: "1"\n    plugins:\n      key-auth: {}\n'
		elif [[ "$mode" == keyauth-count* ]]; then
			# Counted per consumer, as the nginx + Lua side does.
			printf '  - id: "bench"\n    uri: /*\n    upstream_id: "1"\n    plugins:\n      key-auth: {}\n'
			printf '      limit-count:\n        count: %d\n        time_window: %d\n        key: consumer_name\n' "$COUNT_LIMIT" "$COUNT_WINDOW"
			case "$mode" in
			keyauth-count-redis) printf '        policy: redis\n        redis_host: 127.0.0.1\n        redis_port: %d\n' "$REDIS_PORT" ;;
			keyauth-count-batched) printf '        policy: redis\n        redis_host: 127.0.0.1\n        redis_port: %d\n        sync_interval: 0.1\n' "$REDIS_PORT" ;;
			esac
		elif [ "$mode" = lua-keycount ]; then
			# nginx + Lua's snippet, unchanged, as a serverless function. The
			# chunk's top level runs once per VM and stores the key, as
			# nginx's init_by_lua_block does.
			printf '  - id: "bench"\n    uri: /*\n    upstream_id: "1"\n    plugins:\n'
			printf '      serverless-pre-function:\n        phase: access\n        functions:\n          - |\n'
			{
				printf 'ngx.shared.bench:set("key:%s", "jack")\n' "$BENCH_KEY"
				echo "return function(conf, ctx)"
				keycount_lua
				echo "end"
			} | sed 's/^/            /'
		elif [ "$mode" = prom ]; then
			# The other proxies proxy plainly: this measures what counting costs.
			printf '  - id: "bench"\n    uri: /*\n    upstream_id: "1"\n    plugins:\n      prometheus: {}\n'
		else
			for ((i = 0; i < NROUTES; i++)); do
				printf '  - id: "r%d"\n    uri: /r%d/*\n    upstream_id: "1"\n' "$i" "$i"
			done
		fi
		echo "#END"
	} >"$d/apisix.yaml"
}

# ---------------------------------------------------------------- starting
start_bg() { # name logfile cmd...  (records pid)
	local name="$1" logf="$2"
	shift 2
	"$@" >>"$logf" 2>&1 &
	local pid=$!
	STARTED[$pid]=1
	PPID_OF[$name]=$pid
}

start_upstream() {
	local d="$TMP/upstream"
	nginx -t -q -p "$d/" -c "$d/nginx.conf" -e "$d/error.log" || die "upstream nginx config invalid"
	start_bg upstream "$d/stdout.log" taskset -c "$LCPU" nginx -p "$d/" -c "$d/nginx.conf" -e "$d/error.log"
	UPSTREAM_PID=${PPID_OF[upstream]}
	wait_http "http://127.0.0.1:$UP_PORT/" 15 "$UPSTREAM_PID" || die "upstream did not come up (see $d/error.log)"
	KIDS[$UPSTREAM_PID]="$(pgrep -P "$UPSTREAM_PID" | tr '\n' ' ' || true)"
}

# redis-server for the limit-count redis scenarios: pinned to the load core
# (it stands for a Redis on another machine: its CPU is not the proxy's),
# no persistence, data in the temporary directory.
start_redis() {
	local d="$TMP/redis" i line
	command -v redis-server >/dev/null || die "redis-server not found (apt-get install redis-server) for the redis scenarios"
	mkdir -p "$d"
	start_bg redis "$d/redis.log" taskset -c "$LCPU" redis-server --port "$REDIS_PORT" --bind 127.0.0.1 \
		--save "" --appendonly no --dir "$d"
	for i in $(seq 1 100); do
		# in a subshell: exec's redirections must not touch the script's fds
		line="$( (exec 3<>"/dev/tcp/127.0.0.1/$REDIS_PORT" && printf 'PING\r\n' >&3 && read -r -t 1 l <&3 && echo "$l") 2>/dev/null || true)"
		[ "${line%$'\r'}" = "+PONG" ] && return 0
		kill -0 "${PPID_OF[redis]}" 2>/dev/null || break
		sleep 0.1
	done
	tail -n 20 "$d/redis.log" >&2 || true
	die "redis-server did not come up on port $REDIS_PORT"
}

# the proxies a scenario runs: the redis scenarios exercise sluice's cluster
# modes; nginx (the baseline) and nginx + Lua (its shared-dict counter) run
# with them, HAProxy and Caddy (plain proxies there) are skipped.
scenario_proxies() { # scenario
	local p
	for p in "${PROXY_LIST[@]}"; do
		case "$1:$p" in
		keyauth-count-redis-c50:haproxy | keyauth-count-redis-c50:caddy | keyauth-count-batched-c50:haproxy | keyauth-count-batched-c50:caddy) ;;
		lua-keycount-c50:haproxy | lua-keycount-c50:caddy) ;;
		*) printf '%s\n' "$p" ;;
		esac
	done
}

start_proxy() { # name mode
	local name="$1" mode="$2" d="$TMP/$2/$1"
	case "$name" in
	nginx | nginx-lua)
		nginx -t -q -p "$d/" -c "$d/nginx.conf" -e "$d/error.log" || die "$name: config invalid"
		start_bg "$name" "$d/stdout.log" taskset -c "$PCPU" nginx -p "$d/" -c "$d/nginx.conf" -e "$d/error.log"
		;;
	haproxy)
		haproxy -c -q -f "$d/haproxy.cfg" || die "haproxy: config invalid"
		start_bg "$name" "$d/stdout.log" taskset -c "$PCPU" haproxy -db -f "$d/haproxy.cfg"
		;;
	caddy)
		mkdir -p "$TMP/caddy-home"
		start_bg "$name" "$d/stdout.log" env HOME="$TMP/caddy-home" XDG_DATA_HOME="$TMP/caddy-home/data" \
			XDG_CONFIG_HOME="$TMP/caddy-home/config" GOMAXPROCS=1 \
			taskset -c "$PCPU" caddy run --config "$d/Caddyfile" --adapter caddyfile
		;;
	sluice)
		# best effort: show validation errors early (the start below is the real test)
		local out
		if "$SLUICE" validate "$d/sluice.yaml" >/dev/null 2>&1 && ! out="$("$SLUICE" validate "$d/apisix.yaml" 2>&1)"; then
			log "WARNING: sluice validate reports errors in apisix.yaml:"
			log "$out"
		fi
		start_bg "$name" "$d/stdout.log" env GOMAXPROCS=1 taskset -c "$PCPU" "$SLUICE" -c "$d/sluice.yaml"
		;;
	esac
	if ! wait_http "http://127.0.0.1:${PORT[$name]}/" 20 "${PPID_OF[$name]}"; then
		log "$name did not come up; last log lines:"
		tail -n 20 "$d/stdout.log" "$d/error.log" >&2 2>/dev/null || true
		die "$name failed to start"
	fi
	KIDS[${PPID_OF[$name]}]="$(pgrep -P "${PPID_OF[$name]}" | tr '\n' ' ' || true)"
}

# ---------------------------------------------------------------- checks
check_response() { # url expected-body-file outdir -> prints reason on failure
	local url="$1" exp="$2" o="$3" code
	code="$(curl -sS --max-time 5 -H "apikey: $BENCH_KEY" -o "$o.body" -D "$o.headers" -w '%{http_code}' "$url" 2>&1)" || {
		echo "curl failed: $code"
		return 1
	}
	[ "$code" = 200 ] || { echo "curl: status $code"; return 1; }
	grep -qi '^x-upstream: *bench' "$o.headers" || { echo "curl: X-Upstream header missing (not proxied?)"; return 1; }
	cmp -s "$o.body" "$exp" || { echo "curl: body differs from upstream body"; return 1; }
	return 0
}

# parse wrk --latency output -> "requests rps p99_us non2xx sockerr"
parse_wrk() {
	awk '
	function us(v) {
		if (v ~ /us$/) return v + 0
		if (v ~ /ms$/) return (v + 0) * 1000
		if (v ~ /m$/) return (v + 0) * 60000000
		if (v ~ /s$/) return (v + 0) * 1000000
		return v + 0
	}
	/ requests in / { req = $1 }
	/^Requests\/sec:/ { rps = $2 }
	$1 == "99%" { p99 = us($2) }
	/Non-2xx or 3xx responses:/ { non = $NF }
	/Socket errors:/ { gsub(",", ""); se = $4 + $6 + $8 + $10 }
	END { printf "%d %.2f %.0f %d %d\n", req, rps, p99, non, se }
	' "$1"
}

# ---------------------------------------------------------------- one run
run_one() { # scenario round proxy path conns expected-body
	local sc="$1" rnd="$2" name="$3" path="$4" conns="$5" exp="$6"
	local url="http://127.0.0.1:${PORT[$name]}$path"
	local o="$RUN_DIR/runs/$sc.r$rnd.$name"
	local status=OK reason="" pids pids2 c0 c1 k0 k1 wms=0 u0 u1 s0 s1 l0 l1 t0 t1 rss
	local req=0 rps=0 p99=0 non=0 se=0

	if ! reason="$(check_response "$url" "$exp" "$o.curl")"; then
		status=FAIL
	fi
	if [ $status = OK ]; then
		taskset -c "$LCPU" wrk -t1 -c"$conns" -d"${WARMUP}s" -H "apikey: $BENCH_KEY" "$url" >"$o.warmup.txt" 2>&1 || true
		pids="$(proxy_pids "$name")"
		# shellcheck disable=SC2086
		c0="$(cpu_ticks $pids)"
		# shellcheck disable=SC2046
		k0="$(cpu_ticks $(upstream_pids))"
		u0="$(upstream_requests)"
		s0="$(core_stat "$PCPU")"; l0="$(core_stat "$LCPU")"
		t0="$(date +%s.%N)"
		times >"$TMP/times0" # only wrk is reaped between times0 and times1
		taskset -c "$LCPU" wrk -t1 -c"$conns" -d"${DURATION}s" --latency -H "apikey: $BENCH_KEY" "$url" >"$o.wrk.txt" 2>&1 &
		WRK_PID=$!
		wait "$WRK_PID" || { status=FAIL; reason="wrk exited with error"; }
		WRK_PID=""
		times >"$TMP/times1"
		t1="$(date +%s.%N)"
		s1="$(core_stat "$PCPU")"; l1="$(core_stat "$LCPU")"
		# shellcheck disable=SC2086
		c1="$(cpu_ticks $pids)" || { status=FAIL; reason="proxy process exited"; c1=$c0; }
		# shellcheck disable=SC2046
		k1="$(cpu_ticks $(upstream_pids))" || k1=$k0
		wms=$(($(children_ms "$TMP/times1") - $(children_ms "$TMP/times0")))
		u1="$(upstream_requests)"
		# shellcheck disable=SC2086
		rss="$(rss_kb $pids)" || rss=0
		pids2="$(proxy_pids "$name")"
		[ "$pids" = "$pids2" ] || { status=FAIL; reason="proxy processes changed during the run ($pids -> $pids2)"; }
		read -r req rps p99 non se < <(parse_wrk "$o.wrk.txt")
		if [ $status = OK ]; then
			if [ "$req" -le 0 ]; then status=FAIL; reason="no requests completed"
			elif [ "$non" -ne 0 ]; then status=FAIL; reason="$non non-2xx responses"
			elif [ "$se" -ne 0 ]; then status=FAIL; reason="$se socket errors"
			elif [ -z "$u0" ] || [ -z "$u1" ]; then status=FAIL; reason="upstream status unavailable"
			elif [ $((u1 - u0)) -lt "$req" ]; then status=FAIL; reason="upstream saw $((u1 - u0)) requests < $req responses"
			elif [ $((u1 - u0)) -gt $((req + 2 * conns + 20)) ]; then status=FAIL; reason="upstream saw $((u1 - u0)) requests >> $req responses (retries?)"
			fi
		fi
	fi
	local dticks=$((${c1:-0} - ${c0:-0})) updelta=$((${u1:-0} - ${u0:-0})) kticks=$((${k1:-0} - ${k0:-0}))
	local row
	row="$(awk -v sc="$sc" -v r="$rnd" -v n="$name" -v st="$status" -v req="$req" -v rps="$rps" \
		-v p99="$p99" -v dt="$dticks" -v hz="$CLK_TCK" -v rss="${rss:-0}" -v t0="${t0:-0}" -v t1="${t1:-0}" \
		-v s0="${s0:-0 0}" -v s1="${s1:-0 0}" -v l0="${l0:-0 0}" -v l1="${l1:-0 0}" -v up="$updelta" -v why="$reason" \
		-v kt="$kticks" -v wms="$wms" '
		BEGIN {
			split(s0, a, " "); split(s1, b, " "); split(l0, c, " "); split(l1, d, " ")
			wall = t1 - t0
			cpr = (req > 0) ? dt * 1000000 / hz / req : 0
			pct = (wall > 0) ? dt / hz / wall * 100 : 0
			pb = (b[2] - a[2] > 0) ? (b[1] - a[1]) / (b[2] - a[2]) * 100 : 0
			lb = (d[2] - c[2] > 0) ? (d[1] - c[1]) / (d[2] - c[2]) * 100 : 0
			upct = (wall > 0) ? kt / hz / wall * 100 : 0
			wpct = (wall > 0) ? wms / 1000 / wall * 100 : 0
			po = pb - pct; if (po < 0) po = 0
			lo = lb - upct - wpct; if (lo < 0) lo = 0
			printf "%s\t%s\t%s\t%s\t%d\t%.2f\t%d\t%.3f\t%d\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%d\t%s\n", \
				sc, r, n, st, req, rps, p99, cpr, rss, pct, pb, lb, upct, wpct, po, lo, up, why
		}')"
	printf '%s\n' "$row" >>"$RUN_DIR/raw.tsv"
	if [ $status = OK ]; then
		awk -F'\t' '{printf "  %-16s round %s  %-9s %10.0f req/s  p99 %7.0f us  cpu %7.2f us/req  rss %6.1f MiB  proxy cpu %5.1f%%  load core %5.1f%%  other cpu %4.1f%%/%4.1f%%\n", $1, $2, $3, $6, $7, $8, $9/1024, $10, $12, $15, $16}' <<<"$row" >&2
	else
		log "  $sc round $rnd $name: FAILED: $reason (see $o.*)"
		FAILED=$((FAILED + 1))
	fi
}

# ---------------------------------------------------------------- main
command -v wrk >/dev/null && command -v nginx >/dev/null && command -v taskset >/dev/null ||
	die "missing tools; run bench/setup.sh"
[ "$(nproc)" -ge 2 ] || log "WARNING: fewer than 2 cores; proxy and load generator share a core"
[ "$PCPU" != "$LCPU" ] || log "WARNING: proxy and load generator pinned to the same core"
case " $PROXIES " in *" nginx "*) ;; *) die "BENCH_PROXIES must include nginx (the ratio baseline)" ;; esac

read -r -a PROXY_LIST <<<"$PROXIES"
read -r -a SCENARIO_LIST <<<"$SCENARIOS"
NEED_REDIS=""
for p in "${PROXY_LIST[@]}"; do [ -n "${PORT[$p]:-}" ] || die "unknown proxy '$p' (known: ${!PORT[*]})"; done
for sc in "${SCENARIO_LIST[@]}"; do
	case "$sc" in
	small-c50 | small-c100 | 16k-c50 | routes1000-c50 | keyauth-c50 | prom-c50 | keyauth-count-c50 | lua-keycount-c50) ;;
	keyauth-count-redis-c50 | keyauth-count-batched-c50) NEED_REDIS=1 ;;
	*) die "unknown scenario '$sc'" ;;
	esac
done
case " $PROXIES " in *" sluice "*) ;; *) NEED_REDIS="" ;; esac
for p in $UP_PORT $STATUS_PORT 18081 18082 18083 18084 18085 $PROM_PORT; do
	if curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$p/"; then die "port $p is already in use"; fi
done
if [ -n "$NEED_REDIS" ] && (exec 3<>"/dev/tcp/127.0.0.1/$REDIS_PORT") 2>/dev/null; then
	die "port $REDIS_PORT (redis-server) is already in use; set BENCH_REDIS_PORT"
fi

TMP="$(mktemp -d /tmp/sluice-bench.XXXXXX)"
chmod 755 "$TMP" # nginx workers may run as nobody and must read the upstream files
RUN_DIR="$BENCH_DIR/results/$(date +%Y%m%d-%H%M%S)"
mkdir -p "$RUN_DIR/runs"

# report helper (standard library Go)
(cd "$REPO" && go build -o "$TMP/report" ./bench/report) || die "cannot build bench/report"

# sluice
SLUICE=""
case " $PROXIES " in *" sluice "*)
	if [ -n "${SLUICE_BIN:-}" ]; then
		SLUICE="$SLUICE_BIN"
	elif (cd "$REPO" && go build -o "$TMP/sluice" ./cmd/sluice) >"$RUN_DIR/sluice-build.log" 2>&1; then
		SLUICE="$TMP/sluice"
	elif [ "${BENCH_SKIP_MISSING_SLUICE:-1}" = 1 ]; then
		log "WARNING: 'go build ./cmd/sluice' failed (see $RUN_DIR/sluice-build.log); skipping sluice"
		PROXIES="$(echo " $PROXIES " | sed 's/ sluice / /')"
	else
		die "'go build ./cmd/sluice' failed (see $RUN_DIR/sluice-build.log)"
	fi
	;;
esac
read -r -a PROXY_LIST <<<"$PROXIES"

first_line() { "$@" 2>&1 | head -n 1 || true; }
{
	echo "## Environment"
	echo
	echo "- Machine: $(nproc) cores, $(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo), kernel $(uname -r), load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "- Versions: $(first_line nginx -v | sed 's/^nginx version: //'); lua-nginx-module $(dpkg-query -W -f='${Version}' libnginx-mod-http-lua 2>/dev/null || echo '?'); $(haproxy -v 2>&1 | head -n1 | sed 's/ - https.*//'); caddy $(first_line caddy version); $(first_line wrk --version | sed 's/ Copyright.*//'); $(go version); sluice: $(if [ -n "$SLUICE" ]; then first_line "$SLUICE" version; else echo 'not run'; fi)"
	echo "- Pinning: proxy under test on core $PCPU (nginx \`worker_processes 1\`, HAProxy \`nbthread 1\`, Caddy and sluice \`GOMAXPROCS=1\`); wrk (\`-t1\`) and the upstream nginx (1 worker) share core $LCPU."
	echo "- Upstream: nginx returning a fixed ${#SMALL_BODY}-byte body (\`return 200\`) or a 16 KiB static file, header \`X-Upstream: bench\`, keepalive; every proxy keeps up to 320 idle upstream connections."
	echo "- Logging: access logs **off** in every proxy (nginx \`access_log off\`, HAProxy no \`log\` lines, Caddy no \`log\` directive, sluice \`access_log: \"off\"\`); error logs at warn/error level."
	echo "- Method: ${ROUNDS} interleaved round(s) of \`wrk -t1 -cN -d${DURATION}s --latency\` per proxy after a ${WARMUP}s warm-up; a run counts only with zero non-2xx responses, zero socket errors, an upstream request count matching wrk's, and a curl check (status, body, \`X-Upstream\`) before the run."
	echo "- Ratios (×nginx) are the median over rounds of the per-round ratio to plain nginx; absolute values are the median over rounds. CPU µs/req = proxy user+sys CPU time (all its processes) during the run / requests served. RSS = VmRSS after the run (nginx: master + worker)."
	echo
} >"$RUN_DIR/env.md"
cat "$RUN_DIR/env.md" >&2

printf 'scenario\tround\tproxy\tstatus\trequests\trps\tp99_us\tcpu_us_per_req\trss_kb\tproxy_cpu_pct\tproxy_core_busy_pct\tload_core_busy_pct\tupstream_cpu_pct\twrk_cpu_pct\tproxy_core_other_pct\tload_core_other_pct\tupstream_requests\treason\n' >"$RUN_DIR/raw.tsv"

gen_upstream
MODES="single many keyauth prom keyauth-count keyauth-count-redis keyauth-count-batched lua-keycount"
for mode in $MODES; do
	for p in "${PROXY_LIST[@]}"; do
		case "$p" in
		nginx | nginx-lua) gen_nginx "$p" "$mode" ;;
		haproxy) gen_haproxy "$mode" ;;
		caddy) gen_caddy "$mode" ;;
		sluice) gen_sluice "$mode" ;;
		*) die "unknown proxy $p" ;;
		esac
	done
done
cp -r "$TMP/upstream/nginx.conf" "$RUN_DIR/upstream-nginx.conf"
mkdir -p "$RUN_DIR/configs"
# shellcheck disable=SC2086
(cd "$TMP" && tar cf - $MODES 2>/dev/null) | (cd "$RUN_DIR/configs" && tar xf -)

runs=0
for sc in "${SCENARIO_LIST[@]}"; do runs=$((runs + ROUNDS * $(scenario_proxies "$sc" | wc -l))); done
log "Running $runs runs of ${DURATION}s (+${WARMUP}s warm-up): about $(((runs * (2 * (DURATION + WARMUP) + 1) / 2 + 30 + 59) / 60)) min. Raw results: $RUN_DIR"

start_upstream
[ -z "${NEED_REDIS:-}" ] || start_redis
check_response "http://127.0.0.1:$UP_PORT/hello" "$TMP/expected-small" "$TMP/upcheck" >/dev/null ||
	die "upstream check failed"
FAILED=0

for sc in "${SCENARIO_LIST[@]}"; do
	case "$sc" in
	small-c50) mode=single path=/hello conns=50 exp="$TMP/expected-small" ;;
	small-c100) mode=single path=/hello conns=100 exp="$TMP/expected-small" ;;
	16k-c50) mode=single path=/files/16k.bin conns=50 exp="$TMP/upstream/html/files/16k.bin" ;;
	routes1000-c50) mode=many path="/r$ROUTE_HIT/hello" conns=50 exp="$TMP/expected-small" ;;
	keyauth-c50) mode=keyauth path=/hello conns=50 exp="$TMP/expected-small" ;;
	prom-c50) mode=prom path=/hello conns=50 exp="$TMP/expected-small" ;;
	keyauth-count-c50) mode=keyauth-count path=/hello conns=50 exp="$TMP/expected-small" ;;
	keyauth-count-redis-c50) mode=keyauth-count-redis path=/hello conns=50 exp="$TMP/expected-small" ;;
	keyauth-count-batched-c50) mode=keyauth-count-batched path=/hello conns=50 exp="$TMP/expected-small" ;;
	lua-keycount-c50) mode=lua-keycount path=/hello conns=50 exp="$TMP/expected-small" ;;
	*) die "unknown scenario $sc" ;;
	esac
	log ""
	log "== scenario $sc ($path, $conns connections, $([ $mode = many ] && echo "$NROUTES routes" || echo "1 route"))"
	mapfile -t SC_PROXIES < <(scenario_proxies "$sc")
	for p in "${PROXY_LIST[@]}"; do
		case " ${SC_PROXIES[*]} " in *" $p "*) ;; *) log "  ($p skipped: not part of $sc)" ;; esac
	done
	for p in "${SC_PROXIES[@]}"; do start_proxy "$p" "$mode"; done
	for ((r = 1; r <= ROUNDS; r++)); do
		for p in "${SC_PROXIES[@]}"; do
			run_one "$sc" "$r" "$p" "$path" "$conns" "$exp"
		done
	done
	# keep the proxies' logs, then stop them (the upstream keeps running)
	for p in "${SC_PROXIES[@]}"; do
		for f in stdout.log error.log; do
			[ -s "$TMP/$mode/$p/$f" ] && cp "$TMP/$mode/$p/$f" "$RUN_DIR/runs/$sc.$p.$f"
		done
		kill_tree "${PPID_OF[$p]}"
		: >"$TMP/$mode/$p/stdout.log"
		: >"$TMP/$mode/$p/error.log"
	done
done

{
	cat "$RUN_DIR/env.md"
	"$TMP/report" "$RUN_DIR/raw.tsv"
} >"$RUN_DIR/summary.md"
echo
cat "$RUN_DIR/summary.md"
log ""
log "Total time: $((SECONDS / 60))m$((SECONDS % 60))s"
log "Raw results: $RUN_DIR (raw.tsv, summary.md, runs/, configs/)"
if [ "$FAILED" -gt 0 ]; then
	log "$FAILED run(s) FAILED"
	exit 1
fi
