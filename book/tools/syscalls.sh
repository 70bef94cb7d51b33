#!/usr/bin/env bash
# What a request costs in system calls, for haflow and for HAProxy 2.6: the same proxy
# configuration in front of the same backend, one keep-alive client (`wrk -c1`) for two
# seconds, and `strace -c -f` attached to the proxy. Writes book/fixtures/syscalls-*.txt,
# which the chapter "What a request costs" includes.
#
#   cargo build --release && book/tools/syscalls.sh [path/to/haflow]
#
# Needs strace, wrk and haproxy (2.6, Debian's). strace slows every call down, so the
# request rates it prints are far below the real ones; the counts per request are what
# matters. The ports are fixed (18080, 18081): run it on a machine where they are free.
set -euo pipefail
cd "$(dirname "$0")/../.."
haflow=$(realpath "${1:-target/release/haflow}")
out=$(realpath book/fixtures)
mkdir -p "$out"
dir=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$dir"' EXIT

# The backend: a haflow frontend that answers every request itself.
cat >"$dir/backend.cfg" <<'EOF'
global
    maxconn 100
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend be_fe
    bind 127.0.0.1:18081
    http-request return status 200 content-type text/plain string "hello"
EOF
# The proxy under test, the same for both (HAProxy also gets `nbthread 1`: one thread,
# like haflow and HAProxy 1.5).
cat >"$dir/proxy.cfg" <<'EOF'
global
    maxconn 100
defaults
    mode http
    option http-keep-alive
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:18080
    default_backend be
backend be
    server s1 127.0.0.1:18081
EOF
sed 's/^    maxconn 100$/    maxconn 100\n    nbthread 1/' "$dir/proxy.cfg" >"$dir/proxy-haproxy.cfg"

"$haflow" run -f "$dir/backend.cfg" &
sleep 0.5

measure() { # name command...
  local name=$1; shift
  "$@" &
  local pid=$!
  sleep 0.7
  curl -s -o /dev/null http://127.0.0.1:18080/ # warm up: the server connection exists
  strace -c -f -p "$pid" -o "$dir/strace.txt" &
  local st=$!
  sleep 1
  local reqs
  reqs=$(wrk -c1 -t1 -d2s http://127.0.0.1:18080/ | awk '/requests in/ {print $1}')
  sleep 0.5
  kill -INT "$st"; wait "$st" || true
  kill "$pid"; wait "$pid" 2>/dev/null || true
  {
    echo "# $name: $reqs requests on one keep-alive connection (wrk -c1 -t1 -d2s), strace -c -f"
    grep -v '^strace:' "$dir/strace.txt"
  } >"$out/syscalls-$name.txt"
  echo "$out/syscalls-$name.txt"
}
measure haflow "$haflow" run -f "$dir/proxy.cfg"
measure haproxy-2.6 haproxy -db -f "$dir/proxy-haproxy.cfg"
