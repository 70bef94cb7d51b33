#!/usr/bin/env bash
# A seamless reload under traffic, with the real binary: wrk sends requests for four
# seconds through a haflow started from a fixed-port configuration; meanwhile three new
# processes are started one after the other with `-sf OLDPID`. Writes
# book/fixtures/reload-wrk.txt (wrk's report, each old process's last words and the
# listener states `show fd` gave around a SIGTTOU/SIGTTIN pause), which the chapter
# "Seamless reload" includes. tests/it/reload.rs runs the same reload under wrk and
# fails if one request is lost.
#
#   cargo build --release && book/tools/reload-lab.sh [path/to/haflow]
#
# Needs wrk and socat. The ports are fixed (18090, 18091): run it where they are free.
set -euo pipefail
cd "$(dirname "$0")/../.."
haflow=$(realpath "${1:-target/release/haflow}")
out=$(realpath book/fixtures)/reload-wrk.txt
dir=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$dir"' EXIT

# The backend: a haflow frontend that answers every request itself.
cat >"$dir/backend.cfg" <<'CFG'
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend be_fe
    bind 127.0.0.1:18091
    http-request return status 200 content-type text/plain string "hello"
CFG
cat >"$dir/proxy.cfg" <<CFG
global
    stats socket $dir/stats.sock level admin
defaults
    mode http
    option http-keep-alive
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:18090
    default_backend be
backend be
    server s1 127.0.0.1:18091
CFG
"$haflow" run -f "$dir/backend.cfg" &
"$haflow" -db -f "$dir/proxy.cfg" 2>"$dir/p0.err" &
pid=$!
sleep 0.5
listeners() { echo "show fd" | socat - "UNIX-CONNECT:$dir/stats.sock" | grep -o 'l.st=[A-Z_]*'; }
{
  echo "# show fd, listener state: before, after kill -TTOU, after kill -TTIN"
  listeners
  kill -TTOU "$pid"; sleep 0.2
  listeners
  echo "# curl while paused: $(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:18090/ || echo " (curl exit $?: could not connect)")"
  kill -TTIN "$pid"; sleep 0.2
  listeners
  echo "# curl after resume: $(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:18090/)"
  echo
} >"$dir/pause.txt"

wrk -c16 -t2 -d4s http://127.0.0.1:18090/ >"$dir/wrk.txt" &
wrkpid=$!
for n in 1 2 3; do
  sleep 0.8
  "$haflow" -db -f "$dir/proxy.cfg" -sf "$pid" 2>"$dir/p$n.err" &
  new=$!
  wait "$pid" || true
  echo "# reload $n: process $((n - 1)) exited; its stderr:" >>"$dir/reloads.txt"
  cat "$dir/p$((n - 1)).err" >>"$dir/reloads.txt"
  pid=$new
done
wait "$wrkpid"
{
  cat "$dir/pause.txt"
  echo "# wrk -c16 -t2 -d4s, three reloads with -sf during the run"
  cat "$dir/wrk.txt"
  echo
  cat "$dir/reloads.txt"
} | sed "s#$dir#DIR#g" >"$out"
echo "$out"
