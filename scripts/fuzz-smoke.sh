#!/usr/bin/env bash
# Runs every fuzz target briefly; used by CI. The budget is an execution
# count (default 100000x each), not a duration: with a duration, Go's fuzz
# coordinator can report "context deadline exceeded" as a failure when a
# starved worker is still finishing at the deadline (go.dev/issue/75804),
# which turns CI red without any failing input. A longer run:
#   bash scripts/fuzz-smoke.sh 5000000x   (or a duration such as 5m)
set -euo pipefail
cd "$(dirname "$0")/.."
t=${1:-100000x}
for pkg in $(go list ./...); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  for f in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
    echo "-- $pkg $f ($t)"
    go test -run='^$' -fuzz="^${f}\$" -fuzztime="$t" "$pkg"
  done
done
