#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Demo: build the echo examples (Release) and run a 3-second loopback echo load against the server.
#
#   ./scripts/demo.sh                 backend chosen by the library (auto)
#   ./scripts/demo.sh epoll           or io_uring / auto: passed as --backend to both programs
#
# The server is started with --port 0 and must print "listening on <host>:<port>" as its first
# line on stdout (flushed); the client connects to that port on 127.0.0.1.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

backend_args=()
if [ "$#" -gt 0 ]; then
    case "$1" in
        epoll | io_uring | auto) backend_args=(--backend "$1") ;;
        *)
            echo "usage: $0 [epoll|io_uring|auto]" >&2
            exit 2
            ;;
    esac
fi

# shellcheck source=scripts/lib/deps.sh
source scripts/lib/deps.sh
evio_ensure_packages "${EVIO_DEMO_PACKAGES[@]}"

echo "======== evio demo: building (preset release) ========"
cmake --preset release
cmake --build build/release --target echo_server echo_client -j "${EVIO_JOBS:-2}"

server_bin="build/release/examples/echo_server"
client_bin="build/release/examples/echo_client"
server_log="$(mktemp "${TMPDIR:-/tmp}/evio-demo-server.XXXXXX")"
server_pid=""

# shellcheck disable=SC2317 # called through the EXIT trap
cleanup() {
    if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -f "$server_log"
}
trap cleanup EXIT

echo "======== evio demo: echo_server --port 0 ${backend_args[*]} ========"
"$server_bin" --port 0 "${backend_args[@]}" >"$server_log" 2>&1 &
server_pid=$!

# Wait (at most 10 s) for the "listening on HOST:PORT" line.
port=""
for _ in $(seq 1 100); do
    if ! kill -0 "$server_pid" 2>/dev/null; then
        echo "echo_server exited early:" >&2
        cat "$server_log" >&2
        exit 1
    fi
    port="$(sed -n 's/.*listening on [^ ]*:\([0-9][0-9]*\).*/\1/p' "$server_log" | head -n1)"
    if [ -n "$port" ]; then
        break
    fi
    sleep 0.1
done
if [ -z "$port" ]; then
    echo "echo_server did not print 'listening on HOST:PORT' within 10 s; it printed:" >&2
    cat "$server_log" >&2
    exit 1
fi
echo "server: $(head -n1 "$server_log")"

echo "======== evio demo: echo_client --port $port --connections 16 --size 64 --seconds 3 ========"
client_rc=0
"$client_bin" --port "$port" --connections 16 --size 64 --seconds 3 "${backend_args[@]}" ||
    client_rc=$?

kill "$server_pid" 2>/dev/null || true
wait "$server_pid" 2>/dev/null || true
server_pid=""
echo "======== evio demo: server output ========"
cat "$server_log"
exit "$client_rc"
