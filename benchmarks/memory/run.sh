#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Reactor state per connection in bytes (heap, excluding coroutine frames and the kernel), both
# backends; prints a Markdown fragment with the target.
#
#   benchmarks/memory/run.sh BUILD_DIR      (binary in BUILD_DIR/benchmarks/memory/)
#   MEMORY_CONNECTIONS (default 10000).
set -euo pipefail

build=${1:?usage: run.sh BUILD_DIR}
n=${MEMORY_CONNECTIONS:-10000}
out=$(taskset -c 0 "$build/benchmarks/memory/reactor_memory" --connections "$n")

echo "## Reactor memory per connection"
echo
echo "Method: benchmarks/memory/reactor_memory replaces the global operator new with one that counts"
echo "live bytes; a reactor goes from 0 to $n registered loopback connections with one pending"
echo "read_some each; the heap growth minus the coroutine frames (the bytes allocated while each"
echo "reading coroutine is created and spawned) is the reactor's state. Kernel memory (socket buffers,"
echo "the io_uring rings, which are mmap'ed) is not counted."
echo
echo "$out"
echo
verdicts=$(grep '^| ' <<< "$out" | grep -v '^| backend' | awk -F'|' '{
    gsub(/[ *]/, "", $2); gsub(/[ *]/, "", $8);
    if ($8 + 0 <= 128) v = sprintf("%s %.1f B, met", $2, $8);
    else v = sprintf("%s %.1f B, missed by %.1f B", $2, $8, $8 - 128);
    printf "%s%s", sep, v; sep = "; " }')
echo "Target: <= 128 bytes per connection. $verdicts."
