#!/usr/bin/env bash
# Soak test: the same mixed HTTP traffic (keep-alive, close, pipelined, client and server
# aborts, bad chunks, stalls, slow heads, server disable/enable, failing checks) through
# haflow and HAProxy 2.6 side by side for a while, both run from one generated haproxy.cfg
# (only the bind port and the stats socket differ), sampling each process (RSS, fds, CPU,
# sessions, pools, requests, CLOSE-WAIT, termination states of the log lines), then a
# verdict per proxy: no growth after warm-up, and back to idle once the traffic stops.
#
# usage: benches/soak.sh [-t SECONDS] [-i SECONDS] [-b HAFLOW_BIN] [--haproxy PATH]
#                        [--only haflow|haproxy] [-r CONN_PER_S] [-w WORKERS] [-s SEED] [--keep]
#   -t  run time (default 600)            -i  sampling interval (default 5)
#   -b  haflow binary (default target/release/haflow)   --haproxy  (default haproxy)
#   -r  client connections/s per proxy (default 80, ~150 requests/s)
#   -w  client threads per proxy (40)     -s  traffic seed (1)
#   --keep  keep the work directory (configs, logs) instead of deleting it
# Exit status: 0 when haflow's verdict passes, 1 when it fails, 2 on a setup error.
# Everything listens on 127.0.0.1 only; everything started here is killed on exit.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
dur=600 int=5 bin=target/release/haflow hap=haproxy only="" rate=80 workers=40 seed=1 keep=0
usage() { sed -n '9,17s/^# \{0,1\}//p' "$0"; }
while [ $# -gt 0 ]; do
  case $1 in
    -t) dur=$2; shift 2 ;;
    -i) int=$2; shift 2 ;;
    -b) bin=$2; shift 2 ;;
    --haproxy) hap=$2; shift 2 ;;
    --only) only=$2; shift 2 ;;
    -r) rate=$2; shift 2 ;;
    -w) workers=$2; shift 2 ;;
    -s) seed=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
done
case $only in ""|haflow|haproxy) ;; *) echo "--only haflow|haproxy" >&2; exit 2 ;; esac
run_haflow=1 run_haproxy=1
[ "$only" = haflow ] && run_haproxy=0
[ "$only" = haproxy ] && run_haflow=0
command -v python3 >/dev/null || { echo "needs python3" >&2; exit 2; }
[ $run_haflow = 0 ] || [ -x "$bin" ] || { echo "haflow binary not found at $bin (cargo build --release)" >&2; exit 2; }
[ $run_haproxy = 0 ] || command -v "$hap" >/dev/null || { echo "haproxy not found: $hap" >&2; exit 2; }

w=$(mktemp -d -t soak.XXXXXX)
pids=()
cleanup() {  # only the pids started here: SIGTERM, then SIGKILL for what is left
  set +e
  [ ${#pids[@]} = 0 ] || { kill "${pids[@]}" 2>/dev/null; sleep 0.5; kill -9 "${pids[@]}" 2>/dev/null; }
  if [ $keep = 1 ]; then echo "work directory kept: $w"; else rm -rf "$w"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

read -r s1 s2 p_haflow p_haproxy < <(python3 "$here/soak.py" ports 4)

cfg() { # one config for both proxies; $1 = bind port, $2 = stats socket
cat <<EOF
global
    maxconn 1000
    nbthread 1
    stats socket $2 level admin
    log stdout format raw local0

defaults
    mode http
    log global
    option httplog
    timeout connect 1s
    timeout client 5s
    timeout server 5s
    timeout http-request 2s
    timeout http-keep-alive 2s

frontend fe
    bind 127.0.0.1:$1
    option http-keep-alive
    http-request return status 200 content-type text/plain string pong if { path /ping }
    http-request deny if { path_beg /deny }
    default_backend be

backend be
    option httpchk GET /health
    server s1 127.0.0.1:$s1 check inter 1s
    server s2 127.0.0.1:$s2 check inter 1s
EOF
}

python3 "$here/soak.py" backend "$s1" "$s2" >"$w/backend.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do grep -q ready "$w/backend.log" && break; sleep 0.1; done  # else checks fail at first
specs=()
start() { # name port cmd...: the log lines go to stdout (log stdout), messages to stderr
  local name=$1 port=$2; shift 2
  cfg "$port" "$w/$name.sock" >"$w/$name.cfg"
  "$@" -db -f "$w/$name.cfg" >"$w/$name.log" 2>"$w/$name.err" &
  pids+=($!)
  specs+=(--proxy "$name:$port:$!:$w/$name.sock:$w/$name.log")
}
[ $run_haflow = 1 ] && start haflow "$p_haflow" "$bin"
[ $run_haproxy = 1 ] && start haproxy "$p_haproxy" "$hap"

echo "soak: work directory $w; backend s1 :$s1 s2 :$s2; haflow :$p_haflow; haproxy :$p_haproxy"
# In the background + wait, so that a SIGINT/SIGTERM to this script stops everything at once.
python3 "$here/soak.py" drive "${specs[@]}" --seconds "$dur" --interval "$int" \
  --rate "$rate" --workers "$workers" --seed "$seed" &
pids+=($!)
rc=0
wait $! || rc=$?
if [ $rc = 2 ]; then  # setup failure: show what the proxies said
  for f in "$w"/*.err; do echo "== $f"; tail -5 "$f"; done
fi
exit $rc
