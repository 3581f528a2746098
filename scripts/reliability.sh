#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The reliability stage of scripts/test.sh (docs/reliability.md): on Linux,
#   1. the fuzz corpus replayed through the driver (g++, RelWithDebInfo, EVIO_CONTRACTS=2)
#   2. a bounded libFuzzer run (clang 14, -fsanitize=fuzzer,address,undefined; EVIO_FUZZ_SECONDS,
#      default 30) over the reactor state machine, from the committed corpus
#   3. the short soak: scripts/soak.sh --short (both backends)
#   4. valgrind memcheck (--leak-check=full --error-exitcode=1) on the corpus replay (both
#      backends, half of it ending with the reactor destroyed while operations are pending) and
#      on conformance case readiness, epoll and io_uring
# Build dirs: build/dev when it exists (else build/reliability; EVIO_RELIABILITY_BUILD overrides)
# and build/reliability-fuzz (clang). Ends with
# "reliability: N passed, N failed, N skipped".
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root" || exit 1
jobs="${EVIO_JOBS:-2}"
seconds="${EVIO_FUZZ_SECONDS:-30}"
# The g++ programs come from the dev stage's build when there is one (scripts/test.sh runs dev
# first; the targets are brought up to date incrementally), else from a build of their own.
gxx="${EVIO_RELIABILITY_BUILD:-}"
if [ -z "$gxx" ]; then
    gxx=build/reliability
    [ -f build/dev/CMakeCache.txt ] && gxx=build/dev
fi
fz=build/reliability-fuzz
passed=0 failed=0 skipped=0
t0=$SECONDS

step() { # step <name> <command...>
    local name="$1" t=$SECONDS
    shift
    echo "-- reliability: $name"
    if "$@"; then
        passed=$((passed + 1))
        echo "-- $name: passed ($((SECONDS - t)) s)"
    else
        failed=$((failed + 1))
        echo "FAIL $name ($((SECONDS - t)) s)"
    fi
}

build_gxx() {
    if [ ! -f "$gxx/CMakeCache.txt" ]; then
        cmake --preset dev -B "$gxx" -DEVIO_BUILD_EXAMPLES=OFF >/dev/null || return 1
    fi
    cmake --build "$gxx" -j "$jobs" --target fuzz_replay soak conformance_readiness
}
build_fuzz() {
    cmake -S . -B "$fz" -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DEVIO_SANITIZE=address,undefined -DEVIO_BUILD_FUZZERS=ON -DEVIO_BUILD_EXAMPLES=OFF \
        -DEVIO_WERROR=ON >/dev/null &&
        cmake --build "$fz" -j "$jobs" --target fuzz_reactor
}

# A bounded fuzz run from a copy of the corpus (the repository's corpus stays as committed).
# Crashes (contract aborts, sanitizer reports, failed invariants) and timeouts fail the step and
# leave the input in $fz/fuzz-run/artifacts/. The driver bounds its own waits (an operation that
# never completes fails its check, a crash); the 120 s timeout catches what it cannot bound, a
# reactor destructor that never returns (docs/reliability.md, "Fuzzing").
fuzz_run() {
    local dir="$fz/fuzz-run"
    rm -rf "$dir" && mkdir -p "$dir/corpus" "$dir/artifacts" &&
        cp tests/fuzz/corpus/* "$dir/corpus/" || return 1
    (cd "$dir" && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
        ../tests/fuzz/fuzz_reactor -max_total_time="$seconds" -timeout=120 -max_len=512 \
        -fork=1 -artifact_prefix=artifacts/ corpus >fuzz.log 2>&1)
    local rc=$?
    grep -E '^#[0-9]+: cov' "$dir/fuzz.log" | tail -n1
    grep -E 'ERROR|check failed|contract violation|SUMMARY' "$dir/fuzz.log" | head -n 20
    local timeouts
    timeouts="$(find "$dir/artifacts" -name 'timeout-*' | wc -l)"
    echo "fuzz: exit $rc, $(find "$dir/artifacts" -name 'crash-*' | wc -l) crashes, $timeouts timeouts"
    [ "$rc" -eq 0 ] && [ -z "$(find "$dir/artifacts" \( -name 'crash-*' -o -name 'timeout-*' \) -print -quit)" ]
}

memcheck() { # memcheck <backend> <program> [args...]
    local backend="$1"
    shift
    EVIO_TEST_BACKEND="$backend" EVIO_BACKEND="$backend" \
        valgrind -q --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite,indirect "$@"
}

if [ "$(uname -s)" != Linux ]; then
    echo "reliability: 0 passed, 0 failed, 1 skipped"
    exit 0
fi

step "build (g++)" build_gxx
step "corpus replay" "$gxx/tests/fuzz/fuzz_replay" tests/fuzz/corpus
if command -v clang++ >/dev/null && step "build (clang, libFuzzer)" build_fuzz; then
    step "fuzz ${seconds} s" fuzz_run
else
    skipped=$((skipped + 1))
fi
step "soak (short)" scripts/soak.sh --short "$gxx"
if command -v valgrind >/dev/null; then
    # The corpus holds inputs for both backends (its first byte picks one).
    step "valgrind corpus replay (epoll + io_uring)" memcheck automatic "$gxx/tests/fuzz/fuzz_replay" tests/fuzz/corpus
    for backend in epoll io_uring; do
        step "valgrind conformance.readiness ($backend)" memcheck "$backend" "$gxx/tests/conformance_readiness"
    done
else
    skipped=$((skipped + 3))
fi
echo "-- reliability stage took $((SECONDS - t0)) s"
echo "reliability: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
