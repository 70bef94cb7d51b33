#!/usr/bin/env bash
# The same traffic through HAProxy 2.6 and through haflow, with the same configuration:
# what each one logs, what `show sess` shows while the request is in flight, and (HAProxy
# only) what `trace h1` says. Writes book/fixtures/side-by-side-*.txt, which the server
# side and HTTP chapters include beside haflow's call-flow listings.
#
#   cargo build --release && book/tools/haproxy-fixtures.sh [path/to/haflow]
#
# Needs haproxy (2.6, Debian's), socat, curl and python3 (for a backend that answers
# after a delay). Ports 19080 to 19083 must be free. Dates, ports and pointers differ from
# one run to the next; pointers are shortened to `0x…`.
set -euo pipefail
cd "$(dirname "$0")/../.."
haflow=$(realpath "${1:-target/release/haflow}")
out=$(realpath book/fixtures)
mkdir -p "$out"
dir=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$dir"' EXIT

# A backend that reads a request head, waits DELAY seconds, answers 200 "hello" and
# closes.
cat >"$dir/slow.py" <<'EOF'
import socket, sys, threading, time
port, delay = int(sys.argv[1]), float(sys.argv[2])
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", port))
s.listen(64)
def serve(c):
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = c.recv(4096)
        if not d:
            return
        buf += d
    time.sleep(delay)
    try:
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello")
        c.close()
    except OSError:
        pass
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
EOF

short() { sed -e 's/0x[0-9a-f]\{6,\}/0x…/g'; }

# case NAME SHOW_SESS_AFTER BACKEND_SECTION: runs one request through each proxy.
run_case() {
  local name=$1 wait=$2 backend=$3
  local f="$out/side-by-side-$name.txt"
  : >"$f"
  for proxy in haproxy haflow; do
    cat >"$dir/$proxy.cfg" <<EOF
global
    log stdout format raw local0
    stats socket $dir/$proxy.sock level admin
    nbthread 1
defaults
    mode http
    log global
    option httplog
    timeout connect 100ms
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:19080
    default_backend be
$backend
EOF
    if [ "$proxy" = haproxy ]; then
      haproxy -db -f "$dir/$proxy.cfg" >"$dir/$proxy.out" 2>&1 &
    else
      "$haflow" -db -f "$dir/$proxy.cfg" >"$dir/$proxy.out" 2>&1 &
    fi
    local pid=$!
    sleep 0.7
    if [ "$proxy" = haproxy ]; then
      printf 'trace h1 sink stdout\ntrace h1 level user\ntrace h1 verbosity minimal\ntrace h1 start now\n' |
        socat - "UNIX-CONNECT:$dir/$proxy.sock" >/dev/null
    fi
    curl -s -o /dev/null -w '%{http_code}\n' http://127.0.0.1:19080/ >"$dir/status" &
    local c=$!
    sleep "$wait"
    echo "show sess" | socat - "UNIX-CONNECT:$dir/$proxy.sock" | grep ' fe=fe ' >"$dir/sess" || true
    wait "$c"
    sleep 0.3
    kill "$pid"; wait "$pid" 2>/dev/null || true
    local label=haflow
    [ "$proxy" = haproxy ] && label="HAProxy $(haproxy -v | awk 'NR==1 {print $3}')"
    {
      echo "== $label: the client got $(cat "$dir/status")"
      echo "-- log line"
      grep ' fe ' "$dir/$proxy.out" | grep -v '^\[' || true
      echo "-- show sess, ${wait}s after the request was sent"
      short <"$dir/sess"
      if [ "$proxy" = haproxy ]; then
        echo "-- trace h1 (level user, verbosity minimal)"
        grep '^\[' "$dir/$proxy.out" | short || true
      fi
      echo
    } >>"$f"
  done
  echo "$f"
}

# 1. A GET to a server that answers after 200 ms.
python3 "$dir/slow.py" 19081 0.2 &
python3 "$dir/slow.py" 19083 0.2 &
sleep 0.3
run_case get 0.1 "backend be
    server s1 127.0.0.1:19081"

# 2. The first server refuses (nothing listens on 19082), retries and redispatch: the
#    configuration of connect-refused-redispatch.
run_case refused 0.15 "backend be
    balance leastconn
    retries 2
    option redispatch
    server s1 127.0.0.1:19082
    server s2 127.0.0.1:19083"

# 3. timeout server 100 ms, the server answers after 200 ms: 504.
run_case server-timeout 0.05 "backend be
    timeout server 100ms
    server s1 127.0.0.1:19081"
