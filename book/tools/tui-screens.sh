#!/usr/bin/env bash
# Captures the terminal UI screens the book shows (book/screens/*.txt) from the real
# binary running in tmux: `tmux capture-pane` turns each screen into plain text, so the
# book includes real screens, never drawn ones. Timings, ports and fds differ from one
# run to the next; the layout, the states and the span names do not.
#
#   cargo build --release && book/tools/tui-screens.sh [path/to/haflow]
#
# Needs tmux. Each screen is 110 columns by 34 lines.
set -euo pipefail
cd "$(dirname "$0")/../.."
haflow=${1:-target/release/haflow}
out=book/screens
mkdir -p "$out"
dir=$(mktemp -d)
sock=$dir/tmux-0.sock
n=0
trap 'tmux -S "$sock" kill-server 2>/dev/null || true; rm -rf "$dir"' EXIT

# Each screen gets its own tmux server: a new server on the socket of one just killed
# may find it still going away ("server exited unexpectedly").
start() { # command...
  tmux -S "$sock" kill-server 2>/dev/null || true
  n=$((n + 1))
  sock=$dir/tmux-$n.sock
  tmux -S "$sock" new-session -d -x 110 -y 34 -s book "$* ; sleep 60"
}
keys() { tmux -S "$sock" send-keys -t book "$@"; }
# Waits until the screen shows `text`.
wait_for() { # text
  for _ in $(seq 100); do
    tmux -S "$sock" capture-pane -p -t book | grep -qF -- "$1" && { sleep 0.3; return; }
    sleep 0.1
  done
  echo "the screen never showed '$1'" >&2
  tmux -S "$sock" capture-pane -p -t book >&2
  exit 1
}
# Waits until the screen shows `text`, then saves it as book/screens/NAME.txt.
shot() { # name text
  wait_for "$2"
  tmux -S "$sock" capture-pane -p -t book | sed -e 's/[[:space:]]*$//' >"$out/$1.txt"
  echo "$out/$1.txt"
}

# 1. The walkthrough, paused at step 5 (the accept): the step's text beside the state.
start "$haflow" walkthrough
wait_for "step 1/14"
for _ in 1 2 3 4; do keys n; sleep 0.5; done
shot walkthrough-accept "step 5/14"

# 2. A scenario in the UI: the session's detail (key 2, then Enter) and the event loop
#    (key 4), once connect-refused-redispatch has run.
start "$haflow" scenario run connect-refused-redispatch --tui
wait_for "all expectations met"
keys 2
wait_for "sessions 0 live, 1 closed"
keys Enter
shot session-detail "session #0 closed"
keys 4
shot event-loop "per turn:"

# 3. A paused listener (the reload chapter): haflow from a fixed-port configuration,
#    `kill -TTOU` as a new process started with -sf would send, then the Proxies view
#    (key 1) with the frontend selected: its bind line says LI_PAUSED.
cat >"$dir/paused.cfg" <<'CFG'
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:18092
    default_backend be
backend be
    server s1 127.0.0.1:18093
CFG
start sh -c "'echo \$\$ >$dir/pid; exec $haflow run -f $dir/paused.cfg --tui'"
keys 1
wait_for "LI_READY"
kill -TTOU "$(cat "$dir/pid")"
shot proxies-paused "LI_PAUSED"
