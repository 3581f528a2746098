#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Syscalls per echoed message on each Linux backend: strace -c -f on the echo server while the
# echo client runs 16 connections x 64 B for 2 s. Prints a table for docs/backends.md.
#   usage: scripts/syscalls.sh [build-dir]   (default build/release; needs strace)
set -euo pipefail
build=${1:-build/release}
server=$build/examples/echo_server
client=$build/examples/echo_client
[[ -x $server && -x $client ]] || { echo "build $server and $client first (scripts/demo.sh does)"; exit 2; }
command -v strace >/dev/null || { echo "strace is missing (apt-get install strace)"; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf '| backend | messages | syscalls/msg | recv+send/msg | epoll_wait/msg | io_uring_enter/msg |\n|---|---|---|---|---|---|\n'
for backend in io_uring epoll; do
    strace -c -f -o "$tmp/$backend.strace" "$server" --port 0 --backend "$backend" --max-seconds 4 >"$tmp/$backend.out" &
    pid=$!
    for _ in $(seq 50); do grep -q listening "$tmp/$backend.out" 2>/dev/null && break; sleep 0.1; done
    port=$(sed -n 's/.*127\.0\.0\.1:\([0-9]*\).*/\1/p' "$tmp/$backend.out")
    "$client" --port "$port" --connections 16 --size 64 --seconds 2 >"$tmp/$backend.client"
    wait "$pid" || true
    msgs=$(awk '/msgs\/s/ {printf "%d", $1 * 2}' "$tmp/$backend.client")
    awk -v b="$backend" -v m="$msgs" '
        $NF ~ /^[a-z_0-9]+$/ && $NF != "total" && $4 ~ /^[0-9]+$/ { calls[$NF] = $4; total += $4 }
        END {
            rs = calls["recvfrom"] + calls["sendto"] + calls["recv"] + calls["send"] + calls["read"] + calls["write"]
            printf "| %s | %d | %.3f | %.3f | %.3f | %.3f |\n", b, m, total / m, rs / m,
                   calls["epoll_wait"] / m, calls["io_uring_enter"] / m
        }' "$tmp/$backend.strace"
done
