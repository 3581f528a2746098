# SPDX-License-Identifier: MIT
# vcpkg overlay port for evio: a header-only library, one INTERFACE target evio::evio.
#
# Sources, two ways:
#  - A release: vcpkg_from_github below. EVIO_GITHUB_REPO, REF and SHA512 are placeholders that are
#    set when a release is tagged (run once with SHA512 0: vcpkg prints the archive's hash).
#  - The working tree (CI, local testing): set VCPKG_EVIO_SOURCE_DIR to an evio checkout, or to ON
#    for the checkout this port lives in (four directories up), and let the variable through
#    vcpkg's cleaned build environment with VCPKG_KEEP_ENV_VARS:
#
#      VCPKG_KEEP_ENV_VARS=VCPKG_EVIO_SOURCE_DIR VCPKG_EVIO_SOURCE_DIR=ON \
#        vcpkg install --overlay-ports=packaging/vcpkg/ports --binarysource=clear ...
#
#    (--binarysource=clear: vcpkg's binary cache keys on the port files, not on the working tree.)
set(EVIO_GITHUB_REPO "evio-project/evio") # placeholder, set at release time

set(evio_source_dir "$ENV{VCPKG_EVIO_SOURCE_DIR}")
if(NOT evio_source_dir STREQUAL "")
    if(evio_source_dir MATCHES "^(ON|On|on|1|TRUE|True|true|YES|Yes|yes)$")
        set(evio_source_dir "${CMAKE_CURRENT_LIST_DIR}/../../../..")
    endif()
    get_filename_component(SOURCE_PATH "${evio_source_dir}" ABSOLUTE)
    if(NOT EXISTS "${SOURCE_PATH}/include/evio/evio.hpp" OR NOT EXISTS "${SOURCE_PATH}/CMakeLists.txt")
        message(FATAL_ERROR "VCPKG_EVIO_SOURCE_DIR: no evio checkout at ${SOURCE_PATH}")
    endif()
    message(STATUS "evio: using the working tree ${SOURCE_PATH}")
else()
    vcpkg_from_github(
        OUT_SOURCE_PATH SOURCE_PATH
        REPO "${EVIO_GITHUB_REPO}"
        REF "v${VERSION}"
        SHA512 0 # placeholder, set at release time
        HEAD_REF main
    )
endif()

# Header-only: one configuration is enough (no debug tree).
set(VCPKG_BUILD_TYPE release)

vcpkg_cmake_configure(
    SOURCE_PATH "${SOURCE_PATH}"
    OPTIONS
        -DEVIO_BUILD_TESTS=OFF
        -DEVIO_BUILD_EXAMPLES=OFF
        -DEVIO_BUILD_BENCHMARKS=OFF
        -DEVIO_VERIFY_HEADERS=OFF
)
vcpkg_cmake_install()
vcpkg_cmake_config_fixup(PACKAGE_NAME evio CONFIG_PATH share/evio)
vcpkg_fixup_pkgconfig()

file(REMOVE_RECURSE "${CURRENT_PACKAGES_DIR}/debug")

file(INSTALL "${CMAKE_CURRENT_LIST_DIR}/usage" DESTINATION "${CURRENT_PACKAGES_DIR}/share/${PORT}")
vcpkg_install_copyright(FILE_LIST "${SOURCE_PATH}/LICENSE")
