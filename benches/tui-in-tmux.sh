#!/usr/bin/env bash
# Runs haflow with its arguments inside a detached tmux window (160x48), for as long as
# this script runs: a stand-in binary for ../shared/bench/proxy-bench.sh, to measure what
# the terminal UI costs the proxy while a terminal (tmux) really renders it.
#
#   ../shared/bench/proxy-bench.sh -b benches/tui-in-tmux.sh -- --tui
#
# HAFLOW_BIN names the real binary (default target/release/haflow).
set -euo pipefail
bin=$(realpath "${HAFLOW_BIN:-target/release/haflow}")
sock=$(mktemp -u "${TMPDIR:-/tmp}/haflow-tui-bench.XXXXXX")
args=$(printf '%q ' "$@")
tmux -S "$sock" new-session -d -x 160 -y 48 "exec $bin $args"
stop() { tmux -S "$sock" kill-server 2>/dev/null || true; rm -f "$sock"; }
trap 'stop; exit 0' TERM INT
trap stop EXIT
# Exit when the window's process does; proxy-bench stops us with SIGTERM.
while tmux -S "$sock" has-session 2>/dev/null; do sleep 0.5; done
