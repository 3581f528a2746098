#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Micro-benchmarks (Google Benchmark) pinned to CPU 0: awaited read_some/write_all on a ready
# socket vs raw recv/send (both backends), with_timeout, task create+await, spawn, timer
# start+cancel, heap allocations per operation; prints a Markdown fragment with the targets.
#
#   benchmarks/micro/run.sh BUILD_DIR      (binary in BUILD_DIR/benchmarks/micro/)
#   MICRO_MIN_TIME (CPU seconds per repetition, default 0.2), MICRO_REPETITIONS (default 3).
set -euo pipefail

build=${1:?usage: run.sh BUILD_DIR}
exe="$build/benchmarks/micro/evio_micro"
[ -x "$exe" ] || { echo "micro/run.sh: $exe not built (Google Benchmark: apt-get install libbenchmark-dev)" >&2; exit 1; }
load=$(uptime | sed 's/.*load average: //')
json=$(mktemp)
trap 'rm -f "$json"' EXIT
taskset -c 0 "$exe" --benchmark_format=json --benchmark_out_format=json --benchmark_out="$json" \
    --benchmark_min_time="${MICRO_MIN_TIME:-0.2}" --benchmark_repetitions="${MICRO_REPETITIONS:-3}" \
    --benchmark_enable_random_interleaving=true > /dev/null

echo "## Micro-benchmarks"
echo
echo "Method: Google Benchmark, one process on CPU 0, ${MICRO_REPETITIONS:-3} randomly interleaved repetitions,"
echo "median ns/op; ratios and targets use the process's CPU time, steadier than wall time when other"
echo "jobs share the CPU (both are shown). Socket figures: one loopback TCP connection, 64-byte transfers, the peer"
echo "refills (reads) or drains (writes) 16 KiB at a time outside the timed region, so every read"
echo "finds data and every write finds room. Allocations: a counting global operator new, counted"
echo "after 256 warm-up operations. Load average before the run: $load."
echo
python3 - "$json" << 'PY'
import json, sys
data = json.load(open(sys.argv[1]))
med, wall, allocs = {}, {}, {}
for b in data["benchmarks"]:
    if b.get("run_type") == "aggregate" and b.get("aggregate_name") == "median":
        med[b["run_name"]] = b["cpu_time"]  # ns (default time unit)
        wall[b["run_name"]] = b["real_time"]
    if b.get("run_type") == "iteration" and "allocs_per_op" in b:
        allocs.setdefault(b["run_name"], []).append(b["allocs_per_op"])
def ns(name):
    return med.get(name)
rows = [
    ("raw recv (64 B, data queued)", "raw_recv", None),
    ("raw send (64 B)", "raw_send", None),
]
for be in ("epoll", "io_uring"):
    rows += [
        (f"read_some, {be}", f"read_some/{be}", "raw_recv"),
        (f"with_timeout(read_some), {be}", f"with_timeout_read_some/{be}", "raw_recv"),
        (f"write_all, {be}", f"write_all/{be}", "raw_send"),
    ]
rows += [
    ("task<int> create + await + destroy", "task_await", None),
    ("spawn + run + free (one turn per 256)", "spawn", None),
    ("timer start + cancel (clock read included)", "timer_start_cancel/0", None),
    ("timer start + cancel, 10,000 others armed", "timer_start_cancel/10000", None),
]
print("| operation | CPU ns/op | wall ns/op | ratio to the raw call (CPU) | heap allocations per op |")
print("|---|---:|---:|---:|---:|")
for label, name, base in rows:
    t = ns(name)
    if t is None:
        continue
    ratio = f"{t / ns(base):.2f}x" if base and ns(base) else ""
    a = allocs.get(name)
    a = "" if a is None else f"{max(a):.4g}"
    print(f"| {label} | {t:.1f} | {wall[name]:.1f} | {ratio} | {a} |")
print()
verdicts = []
for be in ("epoll", "io_uring"):
    t, b = ns(f"read_some/{be}"), ns("raw_recv")
    if t and b:
        x = t / b
        verdicts.append(f"read_some on {be} {x:.2f}x raw recv, " +
                        ("met" if x <= 1.10 else f"missed by {(x - 1.10) / 1.10 * 100:.0f} %"))
t = ns("task_await")
if t:
    verdicts.append(f"task create + await {t:.1f} ns, " +
                    ("met" if t <= 40 else f"missed by {t - 40:.1f} ns"))
zero = [n for n in allocs if n.split("/")[0] in ("read_some", "write_all", "with_timeout_read_some", "timer_start_cancel")]
nonzero = [n for n in zero if max(allocs[n]) > 0]
verdicts.append("zero steady-state allocations in read_some/write_all/timer/with_timeout: " +
                ("met" if not nonzero else "missed (" + ", ".join(f"{n}: {max(allocs[n]):.3g}/op" for n in sorted(nonzero)) + ")"))
print("Targets: awaited read_some on a ready socket <= 1.10x raw recv; task create + await <= 40 ns;")
print("0 allocations per op in steady state. " + "; ".join(verdicts) + ".")
PY
