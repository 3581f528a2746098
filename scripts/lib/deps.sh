# shellcheck shell=bash
# SPDX-License-Identifier: MIT
# Shared by .ci/run, scripts/test.sh and scripts/demo.sh: install the Debian packages evio needs.
# Source it, then call: evio_ensure_packages [pkg...]   (no arguments: EVIO_DEV_PACKAGES)

# Everything the full test driver uses (dev, asan, mingw/Wine stages) plus tools for debugging.
EVIO_DEV_PACKAGES=(
    build-essential cmake pkg-config
    liburing-dev catch2 libasio-dev
    clang libclang-rt-14-dev
    g++-mingw-w64-x86-64-posix wine64 wine
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
