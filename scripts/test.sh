#!/usr/bin/env bash
# The test command (README): installs what the tests need on a fresh Debian
# machine (curl, and etcd-server for the etcd store and cluster tests; the
# tests start their own etcd processes on free loopback ports), then runs
# every test with the race detector.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
need=()
command -v curl >/dev/null || need+=(curl)
command -v etcd >/dev/null || need+=(etcd-server)
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
fi
go test -race "$@" ./...
