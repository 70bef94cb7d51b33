#!/usr/bin/env bash
# What watching costs: the same haproxy.cfg served by two haflows at once, one plain and
# one with its terminal UI rendering in a detached tmux (160x48), loaded in turn by wrk
# (the other one stopped meanwhile, so neither takes CPU from the other's round), rounds
# alternating so the machine's drift hits both alike. Prints each case's median
# requests/s and the ratio with-UI / no-UI. The cases are proxy-bench's (same nginx
# backend, same wrk options).
#
#   benches/tui-cost.sh [-d SECONDS] [-r ROUNDS] [-b HAFLOW_BIN]
set -euo pipefail
dur=5 rounds=3 bin=target/release/haflow
while getopts "d:r:b:" o; do
  case $o in d) dur=$OPTARG ;; r) rounds=$OPTARG ;; b) bin=$OPTARG ;; *) exit 2 ;; esac
done
bin=$(realpath "$bin")
for t in nginx wrk tmux; do command -v $t >/dev/null || { echo "needs $t" >&2; exit 2; }; done
w=$(mktemp -d -t tui-cost.XXXX); chmod 755 "$w"
sock=$w/tmux.sock plain=""
cleanup() {
  [ -n "$plain" ] && kill -CONT "$plain" 2>/dev/null && kill "$plain" 2>/dev/null
  tmux -S "$sock" kill-server 2>/dev/null || true
  [ -f "$w/nginx.pid" ] && kill "$(cat "$w/nginx.pid")" 2>/dev/null
  true
}
trap cleanup EXIT
head -c 49152 /dev/urandom | base64 -w0 >"$w/64k"; chmod 644 "$w/64k"
cat >"$w/nginx.conf" <<N
worker_processes 1; daemon on; pid $w/nginx.pid; error_log $w/nginx-error.log;
events { worker_connections 8192; }
http { access_log off; keepalive_requests 10000000;
  server { listen 127.0.0.1:18180; location = /64k { alias $w/64k; }
           location / { return 200 "hello from backend\n"; } } }
N
nginx -c "$w/nginx.conf"
cfg() {
  printf 'global\n    maxconn 8000\n    nbthread 1\ndefaults\n    mode http\n    timeout connect 5s\n'
  printf '    timeout client 30s\n    timeout server 30s\n    option http-keep-alive\n'
  printf 'frontend fe\n    bind 127.0.0.1:%s\n    default_backend be\nbackend be\n' "$1"
  printf '    balance roundrobin\n    server s1 127.0.0.1:18180\n'
}
cfg 18181 >"$w/plain.cfg"; cfg 18182 >"$w/tui.cfg"
"$bin" run -f "$w/plain.cfg" >"$w/plain.log" 2>&1 & plain=$!
tmux -S "$sock" new-session -d -x 160 -y 48 "exec $bin run -f $w/tui.cfg --tui"
for port in 18181 18182; do
  for _ in $(seq 50); do curl -sf -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.1; done
done
tui=$(pgrep -f "^$bin run -f $w/tui.cfg" | head -1)
run() { # pid-to-run pid-to-stop port path wrk-args...
  local go=$1 stop=$2 port=$3 path=$4; shift 4
  kill -STOP "$stop"; kill -CONT "$go"
  wrk -t1 -c50 -d"${dur}s" "$@" "http://127.0.0.1:$port/$path" 2>/dev/null | awk '/Requests\/sec/ {print $2}'
}
declare -A res
for _ in $(seq "$rounds"); do
  res[ka,p]+="$(run "$plain" "$tui" 18181 '') "; res[ka,t]+="$(run "$tui" "$plain" 18182 '') "
  res[close,p]+="$(run "$plain" "$tui" 18181 '' -H 'Connection: close') "
  res[close,t]+="$(run "$tui" "$plain" 18182 '' -H 'Connection: close') "
  res[ka64k,p]+="$(run "$plain" "$tui" 18181 64k) "; res[ka64k,t]+="$(run "$tui" "$plain" 18182 64k) "
done
kill -CONT "$plain" "$tui"
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
echo "tui-cost: ${rounds} rounds x ${dur}s, 50 connections, $(nproc) cores"
printf "%-8s %12s %12s %8s\n" case no-UI with-UI ratio
line=""
for c in ka close ka64k; do
  p=$(echo "${res[$c,p]}" | median); t=$(echo "${res[$c,t]}" | median)
  r=$(awk -v a="$t" -v b="$p" 'BEGIN {printf "%.2f", (b > 0) ? a / b : 0}')
  printf "%-8s %12.0f %12.0f %8s\n" "$c" "$p" "$t" "$r"; line+="$c=$r "
done
echo "with-UI/no-UI: $line"
