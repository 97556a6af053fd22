#!/usr/bin/env bash
# Installs the tools bench/run.sh needs (Debian 12). Idempotent: packages that
# are already installed are not touched. If installing starts a distro service
# (nginx/haproxy/caddy listening on :80 etc.) that was not running before, it
# is stopped again so it does not compete for CPU or ports; services that were
# already running are left alone.
set -euo pipefail

PKGS=(nginx libnginx-mod-http-lua libnginx-mod-http-ndk haproxy caddy wrk curl util-linux)
SERVICES=(nginx haproxy caddy)

missing=()
for p in "${PKGS[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing+=("$p")
	fi
done

if [ ${#missing[@]} -eq 0 ]; then
	echo "setup: all packages already installed: ${PKGS[*]}"
else
	SUDO=""
	[ "$(id -u)" -eq 0 ] || SUDO="sudo"
	# daemon pids (parent = init) of the services before installing
	declare -A before
	for s in "${SERVICES[@]}"; do
		before[$s]="$(pgrep -x -P 1 "$s" 2>/dev/null | tr '\n' ' ' || true)"
	done
	echo "setup: installing: ${missing[*]}"
	$SUDO apt-get update
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y "${missing[@]}"
	# stop any service daemon that the installation started
	for s in "${SERVICES[@]}"; do
		for pid in $(pgrep -x -P 1 "$s" 2>/dev/null || true); do
			case " ${before[$s]} " in *" $pid "*) continue ;; esac
			echo "setup: stopping $s (pid $pid) started by the package installation"
			if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
				$SUDO systemctl stop "$s" || true
				$SUDO systemctl disable "$s" 2>/dev/null || true
			elif command -v service >/dev/null 2>&1; then
				$SUDO service "$s" stop || true
			fi
			if kill -0 "$pid" 2>/dev/null; then $SUDO kill "$pid" || true; fi
		done
	done
fi

# sanity checks
for b in nginx haproxy caddy wrk curl taskset go; do
	command -v "$b" >/dev/null 2>&1 || { echo "setup: $b not found in PATH" >&2; exit 1; }
done
for m in ndk_http_module.so ngx_http_lua_module.so; do
	if ! dpkg -L libnginx-mod-http-lua libnginx-mod-http-ndk 2>/dev/null | grep -q "/$m\$"; then
		echo "setup: nginx module $m not found" >&2
		exit 1
	fi
done
echo "setup: ok"
