#!/usr/bin/env bash
# Runs every fuzz target briefly (default 10s each); used by CI. A longer run:
#   bash scripts/fuzz-smoke.sh 5m
set -euo pipefail
cd "$(dirname "$0")/.."
t=${1:-10s}
for pkg in $(go list ./...); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  for f in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
    echo "-- $pkg $f ($t)"
    go test -run='^$' -fuzz="^${f}\$" -fuzztime="$t" "$pkg"
  done
done
