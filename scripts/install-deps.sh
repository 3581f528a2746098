#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs the Debian packages that the given scripts/test.sh stages need (CI workflows call it
# before `cmake --preset`; scripts/test.sh does the same by itself).
#
#   scripts/install-deps.sh                 everything (EVIO_DEV_PACKAGES)
#   scripts/install-deps.sh dev asan lint   only what these stages need
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/lib/deps.sh
source scripts/lib/deps.sh
if [ "$#" -eq 0 ]; then
    evio_ensure_packages "${EVIO_DEV_PACKAGES[@]}"
else
    mapfile -t pkgs < <(evio_packages_for_stages "$@")
    evio_ensure_packages "${pkgs[@]}"
fi
