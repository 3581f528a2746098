#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# HTTP/1.1 plaintext, keep-alive: evio (io_uring, epoll) vs Asio's C++20 coroutines, measured
# with wrk -t1 -c{16,64,256}; server pinned to CPU 0, wrk to CPU 1; interleaved rounds
# (A B C ... A B C); prints a Markdown fragment (median req/s, ratio evio/asio, the target).
#
#   benchmarks/http/run.sh BUILD_DIR      (binaries in BUILD_DIR/benchmarks/http/)
#   HTTP_SECONDS (default 2) and HTTP_ROUNDS (default 3) shorten or lengthen it.
set -euo pipefail

# join A B ...: "A; B; ..."
join() {
    local out=$1
    shift
    for v in "$@"; do out+="; $v"; done
    echo "$out"
}

build=${1:?usage: run.sh BUILD_DIR}
bin="$build/benchmarks/http"
seconds=${HTTP_SECONDS:-2}
rounds=${HTTP_ROUNDS:-3}
conns=(16 64 256)
load=$(uptime | sed 's/.*load average: //')
command -v wrk > /dev/null || { echo "http/run.sh: wrk is not installed (apt-get install wrk)" >&2; exit 1; }

tmp=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2> /dev/null || true; done
    wait 2> /dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT

# start NAME CMD...: starts a server on CPU 0, waits for its "listening on PORT" line.
names=()
declare -A port spid
start() {
    local name=$1
    shift
    timeout 600 taskset -c 0 "$@" --port 0 > "$tmp/$name.out" 2>&1 &
    local pid=$!
    for _ in $(seq 50); do
        if grep -q '^listening on' "$tmp/$name.out"; then
            pids+=("$pid")
            spid[$name]=$(pgrep -P "$pid" | head -1) # the server under timeout(1)
            names+=("$name")
            port[$name]=$(awk '/^listening on/ {print $3; exit}' "$tmp/$name.out")
            return 0
        fi
        kill -0 "$pid" 2> /dev/null || break
        sleep 0.1
    done
    echo "http/run.sh: $name did not start: $(cat "$tmp/$name.out")" >&2
    kill "$pid" 2> /dev/null || true
    return 1
}

start evio-io_uring "$bin/evio_http" --backend io_uring || true
start evio-epoll "$bin/evio_http" --backend epoll
start asio "$bin/asio_http"

# The server's CPU time (user + system, in clock ticks) from /proc/PID/stat.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)

# run NAME CONNS SECONDS: prints "req/s server-CPU-us-per-request wrk-CPU-percent" (wrk on CPU 1;
# its CPU share says whether the client is the bottleneck); errors go to $tmp/errors.
run() {
    local out t0 t1 TIMEFORMAT='%R %U %S'
    t0=$(ticks "${spid[$1]}")
    { time { out=$(taskset -c 1 wrk -t1 -c"$2" -d"$3"s "http://127.0.0.1:${port[$1]}/" 2>&1); }; } 2> "$tmp/time"
    t1=$(ticks "${spid[$1]}")
    local wrk_cpu
    wrk_cpu=$(awk '{printf "%.0f", ($2 + $3) / $1 * 100}' "$tmp/time")
    if grep -qE 'Socket errors|Non-2xx' <<< "$out"; then
        echo "$1 c=$2: $(grep -E 'Socket errors|Non-2xx' <<< "$out" | tr -s ' ')" >> "$tmp/errors"
    fi
    awk -v t=$((t1 - t0)) -v hz="$hz" -v w="$wrk_cpu" '/^Requests\/sec:/ {rps = $2} / requests in / {n = $1}
        END {printf "%s %.2f %s\n", rps, (n > 0 ? t * 1e6 / hz / n : 0), w}' <<< "$out"
}

for n in "${names[@]}"; do run "$n" 64 1 > /dev/null; done # warm-up (page faults, caches)
for ((r = 1; r <= rounds; r++)); do
    for c in "${conns[@]}"; do
        for n in "${names[@]}"; do run "$n" "$c" "$seconds" >> "$tmp/$n.$c"; done
    done
done

# median FILE COLUMN
median() { awk -v c="$2" '{print $c}' "$1" | sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }

echo "## HTTP/1.1 plaintext (wrk)"
echo
echo "Method: \"Hello, World!\" keep-alive responder, same parser (benchmarks/http/http_common.hpp) in"
echo "evio and in Asio $(awk '/define ASIO_VERSION [0-9]/ {printf "%d.%d.%d", $3 / 100000, $3 / 100 % 1000, $3 % 100; exit}' /usr/include/asio/version.hpp 2> /dev/null) C++20 coroutines (default epoll reactor, io_context(1)); server on CPU 0,"
echo "\`wrk -t1 -c{16,64,256} -d${seconds}s\` on CPU 1; $rounds interleaved rounds, median req/s and median server"
echo "CPU time per request (user + system from /proc/PID/stat: steadier than req/s when the machine is shared)."
echo "Load average before the run: $load."
echo
header="| connections |"
rule="|---:|"
for n in "${names[@]}"; do header+=" $n req/s (CPU µs/req) |"; rule+="---:|"; done
for n in "${names[@]}"; do [ "$n" = asio ] || { header+=" $n / asio req/s (CPU/req) |"; rule+="---:|"; }; done
header+=" wrk CPU % (min-max) |"
rule+="---:|"
echo "$header"
echo "$rule"
declare -A med cpu
for c in "${conns[@]}"; do
    row="| $c |"
    for n in "${names[@]}"; do
        med[$n.$c]=$(median "$tmp/$n.$c" 1)
        cpu[$n.$c]=$(median "$tmp/$n.$c" 2)
        row+=" $(printf '%.0f' "${med[$n.$c]}") (${cpu[$n.$c]}) |"
    done
    for n in "${names[@]}"; do
        [ "$n" = asio ] || row+=" $(ratio "${med[$n.$c]}" "${med[asio.$c]}")x ($(ratio "${cpu[$n.$c]}" "${cpu[asio.$c]}")x) |"
    done
    row+=" $(cat "$tmp"/*."$c" | awk '{print $3}' | sort -g | sed -n '1p;$p' | paste -sd-) |"
    echo "$row"
done
echo
wrk_min=$(cat "$tmp"/*.16 "$tmp"/*.64 "$tmp"/*.256 2> /dev/null | awk '{print $3}' | sort -g | head -1)
if [ "${wrk_min:-0}" -ge 90 ]; then
    echo "wrk used at least ${wrk_min} % of CPU 1 in every run: the client is the bottleneck, so req/s is"
    echo "wrk's ceiling on this 2-core layout for every server, and the server-side comparison is CPU per"
    echo "request (lower is better; the ratio in parentheses). A faster server cannot raise req/s here."
    echo
fi
verdicts=()
for n in "${names[@]}"; do
    [ "$n" = asio ] && continue
    for c in 64 256; do
        x=$(ratio "${med[$n.$c]}" "${med[asio.$c]}")
        if awk -v x="$x" 'BEGIN {exit !(x >= 1.10)}'; then
            verdicts+=("$n at $c: ${x}x, met")
        else
            verdicts+=("$n at $c: ${x}x, missed by $(awk -v x="$x" 'BEGIN {printf "%.0f", (1.10 - x) / 1.10 * 100}') %")
        fi
    done
done
echo "Target: >= 1.10x Asio's req/s at 64 and 256 connections. $(join "${verdicts[@]}")."
if [ "${wrk_min:-0}" -ge 90 ]; then
    echo "Why: wrk saturated CPU 1 (>= ${wrk_min} %) in every run, so every server gets wrk's ceiling;"
    echo "the same holds with 16-deep HTTP pipelining (about 1,000,000 req/s for all three, wrk at 100 %,"
    echo "benchmarks/echo/findings.md). The target needs a client with more CPU than the server."
fi
if [ -s "$tmp/errors" ]; then
    echo
    echo "wrk reported errors:"
    sed 's/^/- /' "$tmp/errors"
fi
