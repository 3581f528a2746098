#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# 10,000 idle connections plus 16 active vs the 16 active alone, on an evio echo server (each
# backend); server pinned to CPU 0, client to CPU 1; each round measures alone, then with the
# idle ones (A B A B ...); prints a Markdown fragment (median msgs/s, median ratio, the target).
#
#   benchmarks/idle/run.sh BUILD_DIR      (binaries in BUILD_DIR/benchmarks/idle/)
#   IDLE_SECONDS (default 2), IDLE_ROUNDS (default 3), IDLE_CONNECTIONS (default 10000).
set -euo pipefail

# join A B ...: "A; B; ..."
join() {
    local out=$1
    shift
    for v in "$@"; do out+="; $v"; done
    echo "$out"
}

build=${1:?usage: run.sh BUILD_DIR}
bin="$build/benchmarks/idle"
seconds=${IDLE_SECONDS:-2}
rounds=${IDLE_ROUNDS:-3}
idle=${IDLE_CONNECTIONS:-10000}
load=$(uptime | sed 's/.*load average: //')

tmp=$(mktemp -d)
pid=
cleanup() {
    if [ -n "$pid" ]; then kill "$pid" 2> /dev/null || true; fi
    wait 2> /dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT

rows=()
verdicts=()
for backend in io_uring epoll; do
    timeout 300 taskset -c 0 "$bin/idle_server" --backend "$backend" --port 0 > "$tmp/server.out" 2>&1 &
    pid=$!
    port=
    for _ in $(seq 50); do
        port=$(awk '/^listening on/ {print $3; exit}' "$tmp/server.out")
        [ -n "$port" ] && break
        kill -0 "$pid" 2> /dev/null || break
        sleep 0.1
    done
    if [ -z "$port" ]; then
        echo "idle/run.sh: idle_server --backend $backend did not start: $(cat "$tmp/server.out")" >&2
        pid=
        continue
    fi
    taskset -c 1 "$bin/idle_client" --port "$port" --idle "$idle" --active 16 --size 64 \
        --seconds "$seconds" --rounds "$rounds" > "$tmp/client.out"
    kill "$pid" 2> /dev/null || true
    wait "$pid" 2> /dev/null || true
    pid=
    result=$(grep '^RESULT' "$tmp/client.out")
    [[ $result =~ alone=([0-9.]+)\ loaded=([0-9.]+)\ ratio=([0-9.]+) ]] || {
        echo "idle/run.sh: no RESULT line from idle_client" >&2
        exit 1
    }
    alone=${BASH_REMATCH[1]} loaded=${BASH_REMATCH[2]} ratio=${BASH_REMATCH[3]}
    per_round=$(grep '^round' "$tmp/client.out" | sed 's/.*ratio \([0-9.]*\).*/\1/' | paste -sd ' ' -)
    rows+=("| $backend | $alone | $loaded | **$ratio** | $per_round |")
    if awk -v x="$ratio" 'BEGIN {exit !(x >= 0.90)}'; then
        verdicts+=("$backend ${ratio}x, met")
    else
        verdicts+=("$backend ${ratio}x, missed by $(awk -v x="$ratio" 'BEGIN {printf "%.0f", (0.90 - x) / 0.90 * 100}') %")
    fi
done

echo "## Idle connections"
echo
echo "Method: evio echo server (benchmarks/idle/idle_server.cpp, one coroutine per connection parked"
echo "in read_some) on CPU 0; benchmarks/idle/idle_client on CPU 1: 16 connections echo 64-byte messages"
echo "in a closed loop, alone and then with $idle more connections open and silent; ${seconds} s measured"
echo "after 0.3 s warm-up, $rounds rounds (alone, loaded, alone, loaded, ...), medians. Load average"
echo "before the run: $load."
echo
echo "| backend | 16 active alone, msgs/s | with $idle idle, msgs/s | ratio (median) | ratio per round |"
echo "|---|---:|---:|---:|---|"
printf '%s\n' "${rows[@]}"
echo
echo "Target: >= 0.90x. $(join "${verdicts[@]}")."
