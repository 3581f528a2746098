#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# evio's benchmark (issue 7): builds a Release tree in build/bench, runs the echo comparison
# against Asio and raw epoll/liburing servers, the callgrind instruction counts and the other
# sections (benchmarks/{http,micro,idle,memory}/run.sh), then writes docs/benchmarks.md and
# docs/benchmarks.png. About 11 minutes on a 2-core machine; run it on a quiet machine.
#
#   ./scripts/bench.sh                    everything
#   ./scripts/bench.sh --quick            smoke run: one echo cell, short rounds, small counts; the
#                                         report goes to build/bench/results/, not docs/
#   ./scripts/bench.sh --only echo        only these sections (repeatable): echo callgrind syscalls
#                                         http micro idle memory; the report is written from what ran
#   ./scripts/bench.sh --no-report        leave docs/ alone (results stay in build/bench/results)
#   ./scripts/bench.sh --report-only      rewrite docs/ from the results of the last run (e.g. after
#                                         editing benchmarks/echo/findings.md); nothing runs
#
# Layout: every server is pinned to CPU 0 (taskset -c 0), the clients to CPU 1.
# Environment: EVIO_BENCH_DIR (default build/bench), EVIO_JOBS (default 2), EVIO_BENCH_CONNS and
# EVIO_BENCH_SIZES (a part of the echo matrix, e.g. "1000" and "65536", while developing).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
# shellcheck source=scripts/lib/deps.sh
source scripts/lib/deps.sh

quick=0
report=1
report_only=0
only=()
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) quick=1 ;;
        --no-report) report=0 ;;
        --report-only) report_only=1 ;;
        --only)
            [ $# -ge 2 ] || { echo "bench.sh: --only needs a section" >&2; exit 2; }
            only+=("$2")
            shift
            ;;
        -h | --help)
            sed -n '3,19p' "$0"
            exit 0
            ;;
        *)
            echo "bench.sh: unknown option $1 (see --help)" >&2
            exit 2
            ;;
    esac
    shift
done
wanted() {
    [ "${#only[@]}" -eq 0 ] && return 0
    local s
    for s in "${only[@]}"; do [ "$s" = "$1" ] && return 0; done
    return 1
}

build="${EVIO_BENCH_DIR:-$root/build/bench}"
jobs="${EVIO_JOBS:-2}"
results="$build/results"
started=$(date +%s)

# write_report DIR: docs/benchmarks.md and .png (or, after --quick, into the results) from $results.
write_report() {
    echo "== bench: report ($1/benchmarks.md, $1/benchmarks.png)"
    python3 "$root/benchmarks/echo/report.py" --results "$results" --root "$root" \
        --quick "$quick" --out "$1/benchmarks.md" --chart "$1/benchmarks.png"
}
if [ "$report_only" -eq 1 ]; then # e.g. after editing benchmarks/echo/findings.md
    [ -d "$results" ] || { echo "bench.sh: no results in $results" >&2; exit 1; }
    write_report "$root/docs"
    exit 0
fi

evio_ensure_packages build-essential cmake pkg-config liburing-dev libasio-dev wrk gnuplot valgrind \
    libbenchmark-dev python3

echo "== bench: configure and build ($build, Release -O2, EVIO_CONTRACTS default)"
mkdir -p "$build"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_FLAGS_RELEASE="-O2 -DNDEBUG" \
    -DEVIO_BUILD_TESTS=OFF -DEVIO_BUILD_EXAMPLES=OFF -DEVIO_BUILD_BENCHMARKS=ON \
    -DEVIO_VERIFY_HEADERS=OFF > "$build/bench-configure.log" 2>&1 || { cat "$build/bench-configure.log"; exit 1; }
# The echo programs must build; a section whose programs do not build reports that itself.
echo_targets=(evio_echo_server echo_loadgen raw_epoll_echo_server)
cmake --build "$build" -j "$jobs" --target "${echo_targets[@]}" > "$build/bench-build.log" 2>&1 ||
    { tail -50 "$build/bench-build.log"; exit 1; }
cmake --build "$build" -j "$jobs" >> "$build/bench-build.log" 2>&1 ||
    echo "bench.sh: some benchmark programs did not build (see $build/bench-build.log); going on"
rm -rf "$results"
mkdir -p "$results/sections"
echo $(( $(date +%s) - started )) > "$results/build_seconds"
uptime | sed 's/.*load average: //' > "$results/load_before"
# The evio that was measured (the report may be rewritten later with --report-only).
rev=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
if ! git -C "$root" diff --quiet HEAD -- include 2>/dev/null; then rev="$rev + local changes in include/"; fi
echo "$rev" > "$results/git_rev"
date -u '+%Y-%m-%d %H:%M UTC' > "$results/date"

bin="$build/benchmarks"
declare -A server_cmd=(
    [evio-io_uring]="$bin/echo/evio_echo_server --backend io_uring"
    [evio-io_uring-poll]="$bin/echo/evio_echo_server --backend io_uring --busy-poll 200"
    [evio-epoll]="$bin/echo/evio_echo_server --backend epoll"
    [asio-epoll]="$bin/peers/asio_echo_server_epoll"
    [asio-io_uring]="$bin/peers/asio_echo_server_uring"
    [raw-epoll]="$bin/peers/raw_epoll_echo_server"
    [raw-uring]="$bin/peers/raw_uring_echo_server"
)
servers=(evio-io_uring evio-io_uring-poll evio-epoll asio-epoll asio-io_uring raw-epoll raw-uring)
# Callgrind and the system-call count leave the polling row out: its polls are spent while idle,
# not per message.
counted=(evio-io_uring evio-epoll asio-epoll asio-io_uring raw-epoll raw-uring)

server_pids=()
echo_failed=0
# shellcheck disable=SC2317 # called through the EXIT trap
cleanup() {
    local p
    for p in "${server_pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT

# start_server NAME OUTFILE [PREFIX...]: starts the server pinned to CPU 0 (through PREFIX, e.g.
# valgrind) with --port 0 and the extra arguments in $server_args; waits for its
# "port N pid P" line and sets $port and $spid. Returns 1 when the server is not built or does
# not start (no io_uring, no Asio): that server is left out of the report.
start_server() {
    local name="$1" out="$2"
    shift 2
    local exe="${server_cmd[$name]%% *}"
    if [ ! -x "$exe" ]; then
        echo "   $name: $exe not built; left out" >&2
        return 1
    fi
    # shellcheck disable=SC2086 # the command lines above are word lists
    taskset -c 0 "$@" ${server_cmd[$name]} --port 0 ${server_args:-} > "$out" 2>"$out.err" &
    server_pids+=($!)
    for _ in $(seq 300); do
        if grep -q '^port ' "$out"; then break; fi
        if ! kill -0 "${server_pids[-1]}" 2>/dev/null; then break; fi
        sleep 0.1
    done
    if ! grep -q '^port ' "$out"; then
        echo "   $name did not start; left out:" >&2
        sed 's/^/      /' "$out.err" >&2
        return 1
    fi
    port=$(awk '/^port /{print $2; exit}' "$out")
    spid=$(awk '/^port /{print $4; exit}' "$out")
}

# ---------------------------------------------------------------------------------------------
# Echo matrix: connections x sizes, all seven servers interleaved in every cell.
# ---------------------------------------------------------------------------------------------
if wanted echo; then
    if [ "$quick" -eq 1 ]; then
        conns_list=(16)
        sizes=(64)
        warmup=0.3 rounds=2 round_secs=0.5
    else
        read -r -a conns_list <<< "${EVIO_BENCH_CONNS:-1 16 256 1000}"
        read -r -a sizes <<< "${EVIO_BENCH_SIZES:-64 4096 65536}"
        warmup=1 rounds=5 round_secs=1
    fi
    echo "== bench: echo matrix (${conns_list[*]} connections x ${sizes[*]} bytes; warm-up ${warmup} s," \
        "$rounds interleaved rounds of $round_secs s per server)"
    targets=()
    for s in "${servers[@]}"; do
        server_args="" start_server "$s" "$results/server-$s.out" || continue
        targets+=(--target "$s=127.0.0.1:$port:$spid")
    done
    echo "# R round target conns size msgs secs msgs_per_s mib_per_s p50_us p99_us p999_us errors cpu_us_per_msg user_us_per_msg" \
        > "$results/echo.tsv"
    if [ "${#targets[@]}" -eq 0 ]; then
        echo "bench.sh: no echo server started" >&2
        exit 1
    fi
    for c in "${conns_list[@]}"; do
        for sz in "${sizes[@]}"; do
            printf '   %5s connections x %6s bytes ... ' "$c" "$sz"
            # A wrong byte or a dead connection is in the errors column of the report (and on
            # stderr here); the other cells still run.
            taskset -c 1 "$bin/echo/echo_loadgen" "${targets[@]}" --conns "$c" --size "$sz" \
                --warmup "$warmup" --rounds "$rounds" --round-secs "$round_secs" \
                > "$results/cell.tsv" 2> "$results/cell.err" || echo_failed=1
            grep '^R' "$results/cell.tsv" >> "$results/echo.tsv" || true
            awk -F'\t' '$1=="R" && $2>0 {n[$3]++; s[$3]+=$8} END{for(k in s) printf "%s %.0f  ", k, s[k]/n[k]; print ""}' \
                "$results/cell.tsv"
            if [ -s "$results/cell.err" ]; then sed 's/^/      /' "$results/cell.err" >&2; fi
        done
    done
    for p in "${server_pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    server_pids=()
fi

# ---------------------------------------------------------------------------------------------
# Callgrind: user-space instructions per echoed message, 16 connections x 64 B. Each server runs
# under callgrind twice, exiting after N1 and after N2 reads; (I2 - I1) / (N2 - N1) cancels the
# start-up and shut-down cost.
# ---------------------------------------------------------------------------------------------
if wanted callgrind; then
    if [ "$quick" -eq 1 ]; then n1=500 n2=2500; else n1=2000 n2=12000; fi
    echo "== bench: callgrind ($n1 and $n2 reads, 16 connections x 64 B)"
    echo "# server reads1 instr1 reads2 instr2 instr_per_msg" > "$results/callgrind.tsv"
    for s in "${counted[@]}"; do
        counts=()
        for n in "$n1" "$n2"; do
            cg="$results/callgrind.$s.$n.out"
            server_args="--max-reads $n" start_server "$s" "$results/cg-server-$s.out" \
                valgrind --tool=callgrind --callgrind-out-file="$cg" || break
            taskset -c 1 "$bin/echo/echo_loadgen" --target "$s=127.0.0.1:$port:0" --conns 16 --size 64 \
                --until-closed --lockstep --max-secs 120 > "$results/cg-client-$s.$n.tsv" 2>&1 || true
            wait "${server_pids[-1]}" || true
            unset 'server_pids[-1]'
            counts+=("$(awk '/^(summary|totals):/{print $2; exit}' "$cg")")
        done
        if [ "${#counts[@]}" -ne 2 ] || [ -z "${counts[0]}" ] || [ -z "${counts[1]}" ]; then
            echo "   $s: no callgrind count; left out" >&2
            continue
        fi
        awk -v s="$s" -v n1="$n1" -v n2="$n2" -v i1="${counts[0]}" -v i2="${counts[1]}" \
            'BEGIN{printf "%s\t%d\t%s\t%d\t%s\t%.0f\n", s, n1, i1, n2, i2, (i2-i1)/(n2-n1)}' \
            | tee -a "$results/callgrind.tsv"
    done
fi

# ---------------------------------------------------------------------------------------------
# System calls per echoed message (16 connections x 64 B): `perf stat -e raw_syscalls:sys_enter`
# on the server while it echoes N messages (--max-reads N). Skipped without perf.
# ---------------------------------------------------------------------------------------------
if wanted syscalls; then
    if [ "$quick" -eq 1 ]; then nmsg=5000; else nmsg=30000; fi
    if command -v perf >/dev/null && perf stat -e raw_syscalls:sys_enter -- true >/dev/null 2>&1; then
        echo "== bench: system calls per message ($nmsg messages, 16 connections x 64 B)"
        echo "# server messages syscalls per_msg" > "$results/syscalls.tsv"
        for s in "${counted[@]}"; do
            server_args="--max-reads $nmsg" start_server "$s" "$results/sc-server-$s.out" || continue
            perf stat -x, -e raw_syscalls:sys_enter -p "$spid" -o "$results/sc-perf-$s.txt" &
            perf_pid=$!
            sleep 0.3 # perf attached before the first message
            taskset -c 1 "$bin/echo/echo_loadgen" --target "$s=127.0.0.1:$port:0" --conns 16 --size 64 \
                --until-closed --lockstep --max-secs 60 > /dev/null 2>&1 || true
            wait "${server_pids[-1]}" || true
            unset 'server_pids[-1]'
            wait "$perf_pid" || true
            calls=$(awk -F, '/sys_enter/{print $1; exit}' "$results/sc-perf-$s.txt")
            if [ -n "$calls" ]; then
                awk -v s="$s" -v n="$nmsg" -v c="$calls" 'BEGIN{printf "%s\t%d\t%d\t%.2f\n", s, n, c, c/n}' \
                    | tee -a "$results/syscalls.tsv"
            fi
        done
    else
        echo "== bench: system calls per message: skipped (perf or its raw_syscalls tracepoint missing)"
    fi
fi

# ---------------------------------------------------------------------------------------------
# The other sections: each run.sh prints a Markdown fragment.
# ---------------------------------------------------------------------------------------------
if [ "$quick" -eq 1 ]; then
    export HTTP_SECONDS=1 HTTP_ROUNDS=1 IDLE_SECONDS=1 IDLE_ROUNDS=1 IDLE_CONNECTIONS=1000
    # Google Benchmark prints medians only from 2 repetitions on.
    export MICRO_MIN_TIME=0.05 MICRO_REPETITIONS=2 MEMORY_CONNECTIONS=1000
fi
for section in http micro idle memory; do
    wanted "$section" || continue
    script="$root/benchmarks/$section/run.sh"
    out="$results/sections/$section.md"
    if [ ! -f "$script" ]; then
        printf '## %s\n\nNot run: benchmarks/%s/run.sh is missing.\n' "$section" "$section" > "$out"
        continue
    fi
    echo "== bench: $section (benchmarks/$section/run.sh)"
    if ! bash "$script" "$build" > "$out" 2> "$results/sections/$section.err"; then
        # shellcheck disable=SC2016 # the backticks are Markdown
        printf '## %s\n\nFailed: benchmarks/%s/run.sh exited with an error:\n\n```\n%s\n```\n' \
            "$section" "$section" "$(tail -20 "$results/sections/$section.err")" > "$out"
        echo "   (failed; see $results/sections/$section.err)"
    fi
done

uptime | sed 's/.*load average: //' > "$results/load_after"
echo $(( $(date +%s) - started )) > "$results/seconds"

if [ "$report" -eq 1 ]; then
    docs="$root/docs"
    if [ "$quick" -eq 1 ]; then docs="$results"; fi # a smoke run never replaces the published figures
    write_report "$docs"
fi
echo "== bench: done in $(( $(date +%s) - started )) s"
if [ "$echo_failed" -eq 1 ]; then
    echo "bench.sh: the load generator saw errors (see the errors column); exit status 1" >&2
    exit 1
fi
