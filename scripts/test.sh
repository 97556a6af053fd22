#!/usr/bin/env bash
# The test command (README): installs what the tests need on a fresh Debian
# machine (curl; etcd-server for the etcd store and cluster tests; and
# redis-server, which also provides redis-cli, for limit-count's Redis and
# Redis Cluster tests; the tests start their own etcd and redis-server
# processes on free loopback ports), then runs every test with the race
# detector.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
need=()
command -v curl >/dev/null || need+=(curl)
command -v etcd >/dev/null || need+=(etcd-server)
{ command -v redis-server >/dev/null && command -v redis-cli >/dev/null; } || need+=(redis-server)
# The reference for ngx semantics (internal/luangx's TestNginxReference):
# nginx with lua-nginx-module, and lua-cjson for require "cjson".
[ -x /usr/sbin/nginx ] || need+=(nginx)
[ -f /usr/lib/nginx/modules/ngx_http_lua_module.so ] || need+=(libnginx-mod-http-lua)
[ -f /usr/lib/x86_64-linux-gnu/lua/5.1/cjson.so ] || [ -n "$(find /usr/lib -path '*lua/5.1/cjson.so' -print -quit 2>/dev/null)" ] || need+=(lua-cjson)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "missing: ${need[*]} (install with: sudo apt-get install -y ${need[*]})" >&2
    exit 1
  fi
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" >/dev/null
  # Debian may start its etcd service on install: the tests need none.
  if [ -x /etc/init.d/etcd ]; then /etc/init.d/etcd stop >/dev/null 2>&1 || true; fi
  pkill -x etcd 2>/dev/null || true
  # Likewise Debian starts redis-server's service on install (port 6379);
  # only stopped when this run installed it, so a Redis already in use stays.
  if [[ " ${need[*]} " == *" redis-server "* ]]; then
    if [ -x /etc/init.d/redis-server ]; then /etc/init.d/redis-server stop >/dev/null 2>&1 || true; fi
    if command -v systemctl >/dev/null 2>&1; then systemctl stop redis-server >/dev/null 2>&1 || true; fi
    pkill -x redis-server 2>/dev/null || true
  fi
  # Debian starts nginx's service on port 80 too; the tests run their own.
  if [[ " ${need[*]} " == *" nginx "* ]]; then
    if [ -x /etc/init.d/nginx ]; then /etc/init.d/nginx stop >/dev/null 2>&1 || true; fi
    if command -v systemctl >/dev/null 2>&1; then systemctl stop nginx >/dev/null 2>&1 || true; fi
  fi
fi
go test -race "$@" ./...
