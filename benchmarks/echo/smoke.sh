#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Smoke test of the echo harness (CTest echo_harness_smoke, benchmark build only): every server
# answers the load generator with no wrong byte (interleaved mode, 2 cells), and --max-reads
# makes a server exit so that loadgen --until-closed ends. Asserts behaviour, never timings.
#
#   smoke.sh BUILD_DIR
set -euo pipefail
bin="${1:?usage: smoke.sh BUILD_DIR}/benchmarks"
tmp=$(mktemp -d)
pids=()
cleanup() {
    local p
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT

# start NAME CMD...: runs the server on a free port; sets $target to NAME=127.0.0.1:PORT:PID.
start() {
    local name="$1"
    shift
    "$@" --port 0 > "$tmp/$name.out" 2> "$tmp/$name.err" &
    pids+=($!)
    for _ in $(seq 100); do
        grep -q '^port ' "$tmp/$name.out" && break
        sleep 0.1
    done
    grep -q '^port ' "$tmp/$name.out" || { echo "$name did not start"; cat "$tmp/$name.err"; exit 1; }
    target="$name=127.0.0.1:$(awk '{print $2}' "$tmp/$name.out"):$(awk '{print $4}' "$tmp/$name.out")"
}

targets=()
for spec in "evio-epoll:echo/evio_echo_server --backend epoll" \
            "evio-io_uring:echo/evio_echo_server --backend io_uring" \
            "evio-io_uring-poll:echo/evio_echo_server --backend io_uring --busy-poll 50" \
            "asio-epoll:peers/asio_echo_server_epoll" "asio-io_uring:peers/asio_echo_server_uring" \
            "raw-epoll:peers/raw_epoll_echo_server" "raw-uring:peers/raw_uring_echo_server" \
            "raw-uring-8-buffers:peers/raw_uring_echo_server --buffers 8"; do
    name=${spec%%:*}
    read -r -a cmd <<< "${spec#*:}"
    [ -x "$bin/${cmd[0]}" ] || { echo "skip $name: not built"; continue; }
    start "$name" "$bin/${cmd[0]}" "${cmd[@]:1}"
    targets+=(--target "$target")
done
# raw-uring-8-buffers: 4 x 70000 B need more than 8 provided buffers at once, so its recvs end
# with -ENOBUFS and must be re-armed when buffers come back.
for cell in "16 64" "4 70000"; do
    read -r c s <<< "$cell"
    "$bin/echo/echo_loadgen" "${targets[@]}" --conns "$c" --size "$s" --warmup 0.1 --rounds 2 \
        --round-secs 0.2 > "$tmp/lg.tsv"
    lines=$(grep -c '^R' "$tmp/lg.tsv")
    # Warm-up (round 0) + 2 rounds, one line per server each; ${#targets[@]} is 2 words a server.
    [ "$lines" -eq $(( 3 * ${#targets[@]} / 2 )) ] || { echo "expected one line per server and round"; cat "$tmp/lg.tsv"; exit 1; }
    awk -F'\t' '$1=="R" && ($13 != 0 || $6 == 0) {print "bad line: " $0; bad=1} END{exit bad}' "$tmp/lg.tsv"
done

# --max-reads: the server exits after 500 reads; the client ends when it sees the connections close.
start maxreads "$bin/echo/evio_echo_server" --backend epoll --max-reads 500
timeout 30 "$bin/echo/echo_loadgen" --target "$target" --conns 4 --size 64 --until-closed --max-secs 20 \
    > "$tmp/until.tsv"
wait "${pids[-1]}"
# The same in lockstep (the callgrind and system-call runs): bursts of 4 until the server exits.
start lockstep "$bin/echo/evio_echo_server" --backend epoll --max-reads 500
timeout 30 "$bin/echo/echo_loadgen" --target "$target" --conns 4 --size 64 --until-closed --lockstep \
    --max-secs 20 > "$tmp/lockstep.tsv"
wait "${pids[-1]}"
awk -F'\t' '$1=="R" && $6 < 400 {print "lockstep: too few echoes: " $0; bad=1} END{exit bad}' "$tmp/lockstep.tsv"
echo "smoke: $(( ${#targets[@]} / 2 )) servers x 2 cells, no errors; --max-reads / --until-closed / --lockstep work"
