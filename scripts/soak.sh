#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Soak runs (loopback only, bounded) of tests/soak/soak.cpp on each Linux backend.
#
#   scripts/soak.sh [--short] [build-dir]
#
# Long (default, the figures in docs/reliability.md): 100,000 connect/close cycles, 10,000 idle
# (slowloris) connections next to 16 active clients (10 s per phase), EMFILE at RLIMIT_NOFILE 256.
# --short (the reliability stage of scripts/test.sh): 10,000 cycles, 2,000 idle connections, 2 s
# per phase. The build dir must contain tests/soak/soak (default build/dev; built if missing).
# Ends with "soak: N passed, N failed, N skipped"; exit status nonzero when a run failed.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

cycles=100000 idle=10000 seconds=10
if [ "${1:-}" = --short ]; then
    cycles=10000 idle=2000 seconds=2
    shift
fi
dir="${1:-build/dev}"
if [ ! -x "$dir/tests/soak/soak" ]; then
    [ -f "$dir/CMakeCache.txt" ] || cmake --preset dev -B "$dir"
    cmake --build "$dir" --target soak -j "${EVIO_JOBS:-2}"
fi

passed=0 failed=0 skipped=0
run() { # run <backend> <args...>
    local backend="$1"
    shift
    echo "-- soak $* ($backend)"
    if EVIO_BACKEND="$backend" "$dir/tests/soak/soak" "$@"; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        echo "FAIL soak $* ($backend)"
    fi
}

for backend in epoll io_uring; do
    if [ "$backend" = io_uring ] && ! EVIO_BACKEND=io_uring "$dir/tests/soak/soak" probe >/dev/null 2>&1; then
        echo "-- io_uring is not available here: skipping its soak runs"
        skipped=$((skipped + 3))
        continue
    fi
    run "$backend" cycles "$cycles"
    run "$backend" slowloris "$idle" "$seconds"
    run "$backend" emfile
done
echo "soak: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
