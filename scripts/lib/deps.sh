# shellcheck shell=bash
# SPDX-License-Identifier: MIT
# Shared by .ci/run, scripts/test.sh, scripts/demo.sh and scripts/install-deps.sh: install the
# Debian packages evio needs.
# Source it, then call: evio_ensure_packages [pkg...]   (no arguments: EVIO_DEV_PACKAGES)

# Per purpose (scripts/test.sh installs the union for the stages it runs).
# Building and running the tests with g++ (stages dev, epoll-only, package).
EVIO_BUILD_PACKAGES=(build-essential cmake pkg-config liburing-dev catch2 libasio-dev python3-yaml)
# clang and its sanitizer runtimes (stages asan, tsan).
EVIO_CLANG_PACKAGES=(clang libclang-rt-14-dev)
# The Windows cross build and Wine (stage mingw; stage lint uses the mingw headers when present).
EVIO_MINGW_PACKAGES=(g++-mingw-w64-x86-64-posix wine64 wine)
# Fuzzing, soak and leak checks (stage reliability): clang 14 with libclang_rt.fuzzer (in
# libclang-rt-14-dev) and valgrind.
EVIO_RELIABILITY_PACKAGES=(clang libclang-rt-14-dev valgrind)
# Static checks (stage lint; the mingw-w64 compiler provides the headers of the Windows units).
EVIO_LINT_PACKAGES=(clang clang-tidy shellcheck g++-mingw-w64-x86-64-posix)

# Everything the full test driver uses plus tools for debugging.
EVIO_DEV_PACKAGES=(
    "${EVIO_BUILD_PACKAGES[@]}"
    "${EVIO_CLANG_PACKAGES[@]}"
    "${EVIO_MINGW_PACKAGES[@]}"
    clang-tidy shellcheck
    valgrind
    strace
)

# Just enough to build and run the examples (scripts/demo.sh).
# shellcheck disable=SC2034 # used by the scripts that source this file
EVIO_DEMO_PACKAGES=(build-essential cmake pkg-config liburing-dev)

# Installs the packages that are not installed yet; does nothing (and needs no network) when all
# are present. Uses sudo when not root.
evio_ensure_packages() {
    local pkgs=("$@")
    if [ "${#pkgs[@]}" -eq 0 ]; then
        pkgs=("${EVIO_DEV_PACKAGES[@]}")
    fi
    local missing=() p
    for p in "${pkgs[@]}"; do
        if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
            missing+=("$p")
        fi
    done
    if [ "${#missing[@]}" -eq 0 ]; then
        return 0
    fi
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        sudo=(sudo)
    fi
    echo "evio: installing missing packages: ${missing[*]}"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
}

# Prints the packages the given scripts/test.sh stages need, one per line (duplicates removed).
evio_packages_for_stages() {
    local stage
    {
        printf '%s\n' "${EVIO_BUILD_PACKAGES[@]}"
        for stage in "$@"; do
            case "$stage" in
                asan | tsan) printf '%s\n' "${EVIO_CLANG_PACKAGES[@]}" ;;
                mingw) printf '%s\n' "${EVIO_MINGW_PACKAGES[@]}" ;;
                lint) printf '%s\n' "${EVIO_LINT_PACKAGES[@]}" ;;
                reliability) printf '%s\n' "${EVIO_RELIABILITY_PACKAGES[@]}" ;;
            esac
        done
    } | awk '!seen[$0]++'
}
