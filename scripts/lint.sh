#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Static checks: clang-tidy (bugprone-*, performance-* per .clang-tidy) on the examples and on
# translation units that include <evio/evio.hpp>, for Linux and (with mingw-w64's headers) for
# Windows; shellcheck on the shell scripts. scripts/test.sh runs it as stage "lint".
#
#   scripts/lint.sh
#
# No build directory is needed: every file is checked with explicit flags (-std=c++20 -Iinclude
# -DEVIO_CONTRACTS=2), as the tests compile them.
#
# Findings inside include/evio that are already reported to the headers' owners are listed in
# tests/lint/known-findings.txt ("<file>|<check>|<source line, trimmed>"): they are printed but do
# not fail the run. Any other finding fails it; a known finding that no longer occurs is reported
# so that its line can be deleted.
#
# Environment: EVIO_JOBS (default 2), CLANG_TIDY (default clang-tidy-14, else clang-tidy).
# Last line: "lint: N passed, N failed, N skipped" (one count per checked file / shellcheck).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
jobs="${EVIO_JOBS:-2}"
known_file="tests/lint/known-findings.txt"

tidy="${CLANG_TIDY:-}"
if [ -z "$tidy" ]; then
    tidy="$(command -v clang-tidy-14 || command -v clang-tidy || true)"
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/evio-lint.XXXXXX")"
trap 'rm -rf "$work"' EXIT

passed=0
failed=0
skipped=0
results=()
pass() { passed=$((passed + 1)); results+=("PASS $1"); }
fail() { failed=$((failed + 1)); results+=("FAIL $1"); }
skip() { skipped=$((skipped + 1)); results+=("SKIP $1"); }

# --- The units clang-tidy checks: "<label>|<file>|<extra compiler flags>".
common_flags="-std=c++20 -Iinclude -DEVIO_CONTRACTS=2"
units=(
    "linux:examples/echo_server.cpp|examples/echo_server.cpp|"
    "linux:examples/echo_client.cpp|examples/echo_client.cpp|"
    "linux:tests/lint/evio_tu.cpp|tests/lint/evio_tu.cpp|"
    "linux-epoll-only:tests/lint/evio_tu.cpp|tests/lint/evio_tu.cpp|-DEVIO_NO_URING"
    "linux:tests/package/echo_roundtrip.cpp|tests/package/echo_roundtrip.cpp|-DEVIO_EXPECTED_VERSION=EVIO_VERSION_STRING"
)
if [ -f examples/http_hello.cpp ]; then
    units+=("linux:examples/http_hello.cpp|examples/http_hello.cpp|")
fi

# Windows: the same TU against mingw-w64's headers (covers the IOCP room).
mingw_cxx="$(command -v x86_64-w64-mingw32-g++-posix || true)"
mingw_flags=""
if [ -n "$mingw_cxx" ]; then
    mingw_flags="--target=x86_64-w64-mingw32"
    # Only mingw g++'s libstdc++ directories: clang finds the mingw-w64 sysroot itself, and gcc's
    # own intrinsics headers do not parse with clang.
    while IFS= read -r dir; do
        mingw_flags+=" -isystem $dir"
    done < <(echo | "$mingw_cxx" -x c++ -E -v - 2>&1 |
             sed -n '/#include <...> search starts here:/,/End of search list./p' |
             sed '1d;$d;s/^ *//' | grep '/c++' || true)
    units+=("windows:tests/lint/evio_tu.cpp|tests/lint/evio_tu.cpp|$mingw_flags")
    units+=("windows:examples/echo_server.cpp|examples/echo_server.cpp|$mingw_flags")
fi

tidy_one() { # <index> <file> <flags>: writes $work/<index>.out and $work/<index>.rc
    local i="$1" file="$2" flags="$3" rc=0
    # shellcheck disable=SC2086 # flags are words on purpose
    "$tidy" --quiet "$file" -- $common_flags $flags >"$work/$i.out" 2>&1 || rc=$?
    echo "$rc" >"$work/$i.rc"
}

if [ -z "$tidy" ]; then
    echo "-- clang-tidy not installed: skipping the clang-tidy checks"
    skip "clang-tidy (not installed)"
else
    echo "-- $("$tidy" --version | grep -i version | head -n1 | sed 's/^ *//') on ${#units[@]} units, $jobs at a time"
    [ -n "$mingw_cxx" ] || skip "clang-tidy windows units (mingw-w64 g++ not installed)"
    running=0
    for i in "${!units[@]}"; do
        IFS='|' read -r _label file flags <<<"${units[$i]}"
        tidy_one "$i" "$file" "$flags" &
        running=$((running + 1))
        if [ "$running" -ge "$jobs" ]; then
            wait -n || true
            running=$((running - 1))
        fi
    done
    wait

    # Parse "<file>:<line>:<col>: warning: <text> [<check>]" plus the source line after it.
    : >"$work/findings"
    for i in "${!units[@]}"; do
        IFS='|' read -r label _file _flags <<<"${units[$i]}"
        local_findings="$work/$i.findings"
        awk -v root="$root/" '
            /^[^ ].*:[0-9]+:[0-9]+: (warning|error): .*\[[a-z0-9.,-]+\]$/ {
                loc = $0; sub(/: (warning|error): .*/, "", loc)
                check = $0; sub(/.*\[/, "", check); sub(/\]$/, "", check)
                sub("^" root, "", loc)
                file = loc; sub(/:[0-9]+:[0-9]+$/, "", file)
                getline src; gsub(/^[ \t]+|[ \t]+$/, "", src)
                print file "|" check "|" src "\t" loc
            }' "$work/$i.out" >"$local_findings"
        rc="$(cat "$work/$i.rc")"
        new=0
        while IFS=$'\t' read -r key loc; do
            [ -n "$key" ] || continue
            echo "$key" >>"$work/findings"
            if [ -f "$known_file" ] && grep -qxF "$key" "$known_file"; then
                echo "$loc [$(cut -d'|' -f2 <<<"$key")]" >>"$work/known-seen"
            else
                echo "   NEW finding ($label): $loc"
                new=1
            fi
        done <"$local_findings"
        if [ "$new" -eq 1 ] || { [ "$rc" -ne 0 ] && [ ! -s "$local_findings" ]; }; then
            echo "-- clang-tidy $label: FAILED (exit $rc); its output:"
            sed 's/^/    /' "$work/$i.out" | grep -v 'warnings\? generated' | head -n 60
            fail "clang-tidy $label"
        else
            pass "clang-tidy $label"
        fi
    done
    if [ -s "$work/known-seen" ]; then
        echo "-- known findings in include/evio (reported; listed in $known_file, not failing):"
        sort -u "$work/known-seen" | sed 's/^/   /'
    fi
    if [ -f "$known_file" ]; then
        while IFS= read -r line; do
            case "$line" in '' | '#'*) continue ;; esac
            grep -qxF "$line" "$work/findings" ||
                echo "-- note: known finding no longer reported, delete it from $known_file: $line"
        done <"$known_file"
    fi
fi

# --- shellcheck on every shell script in the repository.
if command -v shellcheck >/dev/null; then
    mapfile -t scripts < <(git ls-files -co --exclude-standard -- '*.sh' .ci/run 2>/dev/null ||
                           find scripts tests .ci -name '*.sh' -o -name run -path '*.ci*')
    existing=()
    for s in "${scripts[@]}"; do [ -f "$s" ] && existing+=("$s"); done
    if shellcheck -x "${existing[@]}"; then
        pass "shellcheck (${#existing[@]} scripts)"
    else
        fail "shellcheck"
    fi
else
    echo "-- shellcheck not installed: skipping"
    skip "shellcheck (not installed)"
fi

echo
printf '%s\n' "${results[@]}"
echo "lint: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
