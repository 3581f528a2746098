# SPDX-License-Identifier: MIT
# Runs packaging/vcpkg/ports/evio/portfile.cmake without vcpkg (which cannot run here): stand-ins
# for the vcpkg functions the port calls do what vcpkg would do with a local source tree, then
# the result is checked like vcpkg's post-build checks would for a header-only port.
#
#   cmake -DEVIO_SOURCE_DIR=<checkout> -DEVIO_VCPKG_WORK=<scratch dir>
#         -DCURRENT_PACKAGES_DIR=<output prefix> -P tests/package/vcpkg_port/emulate.cmake
#
# What this proves: the portfile's logic (working-tree source selection, options, install, config
# and pkg-config locations, usage and copyright) and the manifest's name/version/dependencies.
# What it cannot: vcpkg's own toolchain, triplets and its liburing port; .github/workflows/
# packaging.yml runs the real `vcpkg install --overlay-ports`.
cmake_minimum_required(VERSION 3.25)

foreach(v EVIO_SOURCE_DIR EVIO_VCPKG_WORK CURRENT_PACKAGES_DIR)
    if(NOT DEFINED ${v})
        message(FATAL_ERROR "emulate.cmake: -D${v}=... is required")
    endif()
endforeach()

set(port_dir "${EVIO_SOURCE_DIR}/packaging/vcpkg/ports/evio")
foreach(f vcpkg.json portfile.cmake usage)
    if(NOT EXISTS "${port_dir}/${f}")
        message(FATAL_ERROR "the port lacks ${f}")
    endif()
endforeach()

# --- The manifest: name, version (must equal CMake's project version), liburing on Linux only.
file(READ "${port_dir}/vcpkg.json" manifest)
string(JSON PORT GET "${manifest}" name)
string(JSON VERSION GET "${manifest}" version-semver)
file(STRINGS "${EVIO_SOURCE_DIR}/CMakeLists.txt" project_line REGEX "^project\\(evio VERSION ")
string(REGEX REPLACE ".*VERSION ([0-9.]+).*" "\\1" project_version "${project_line}")
if(NOT PORT STREQUAL "evio" OR NOT VERSION STREQUAL project_version)
    message(FATAL_ERROR "vcpkg.json: ${PORT} ${VERSION}, CMakeLists.txt: evio ${project_version}")
endif()
string(JSON ndeps LENGTH "${manifest}" dependencies)
set(uring_platform "")
math(EXPR last "${ndeps} - 1")
foreach(i RANGE ${last})
    string(JSON dep_type TYPE "${manifest}" dependencies ${i})
    if(dep_type STREQUAL "OBJECT")
        string(JSON dep_name GET "${manifest}" dependencies ${i} name)
        if(dep_name STREQUAL "liburing")
            string(JSON uring_platform GET "${manifest}" dependencies ${i} platform)
        endif()
    endif()
endforeach()
if(NOT uring_platform STREQUAL "linux")
    message(FATAL_ERROR "vcpkg.json: liburing must be a dependency with \"platform\": \"linux\"")
endif()
message(STATUS "manifest: ${PORT} ${VERSION}, liburing on ${uring_platform}")

# The developer manifest at the top level: same version, the test/benchmark dependencies.
file(READ "${EVIO_SOURCE_DIR}/vcpkg.json" dev_manifest)
string(JSON dev_version GET "${dev_manifest}" version-semver)
if(NOT dev_version STREQUAL project_version)
    message(FATAL_ERROR "vcpkg.json (top level): version ${dev_version}, CMakeLists.txt: ${project_version}")
endif()
string(JSON ndeps LENGTH "${dev_manifest}" dependencies)
math(EXPR last "${ndeps} - 1")
set(dev_deps "")
foreach(i RANGE ${last})
    string(JSON dep_type TYPE "${dev_manifest}" dependencies ${i})
    if(dep_type STREQUAL "OBJECT")
        string(JSON dep_name GET "${dev_manifest}" dependencies ${i} name)
        if(dep_name STREQUAL "liburing")
            string(JSON p GET "${dev_manifest}" dependencies ${i} platform)
            if(NOT p STREQUAL "linux")
                message(FATAL_ERROR "vcpkg.json (top level): liburing must be \"platform\": \"linux\"")
            endif()
        endif()
    else()
        string(JSON dep_name GET "${dev_manifest}" dependencies ${i})
    endif()
    list(APPEND dev_deps ${dep_name})
endforeach()
foreach(d catch2 liburing benchmark asio)
    if(NOT d IN_LIST dev_deps)
        message(FATAL_ERROR "vcpkg.json (top level) does not list ${d}")
    endif()
endforeach()
message(STATUS "developer manifest: ${dev_deps}")

# --- What vcpkg sets before it includes a portfile.
set(CURRENT_BUILDTREES_DIR "${EVIO_VCPKG_WORK}/buildtrees/${PORT}")
set(CURRENT_INSTALLED_DIR "${EVIO_VCPKG_WORK}/installed/x64-linux")
set(VCPKG_TARGET_IS_LINUX ON)
file(REMOVE_RECURSE "${CURRENT_PACKAGES_DIR}" "${CURRENT_BUILDTREES_DIR}")
file(MAKE_DIRECTORY "${CURRENT_PACKAGES_DIR}" "${CURRENT_BUILDTREES_DIR}" "${CURRENT_INSTALLED_DIR}")
set(ENV{VCPKG_EVIO_SOURCE_DIR} "ON") # the working-tree path of the port

# --- Stand-ins for the vcpkg functions the port calls.
function(vcpkg_from_github)
    message(FATAL_ERROR "vcpkg_from_github called: VCPKG_EVIO_SOURCE_DIR was not honoured")
endfunction()

function(vcpkg_cmake_configure)
    cmake_parse_arguments(PARSE_ARGV 0 arg "" "SOURCE_PATH" "OPTIONS;OPTIONS_RELEASE;OPTIONS_DEBUG")
    if(NOT VCPKG_BUILD_TYPE STREQUAL "release")
        message(FATAL_ERROR "a header-only port should set VCPKG_BUILD_TYPE release")
    endif()
    get_filename_component(src "${arg_SOURCE_PATH}" REALPATH)
    get_filename_component(want "${EVIO_SOURCE_DIR}" REALPATH)
    if(NOT src STREQUAL want)
        message(FATAL_ERROR "SOURCE_PATH ${src} is not the checkout ${want}")
    endif()
    foreach(opt -DEVIO_BUILD_TESTS=OFF -DEVIO_BUILD_EXAMPLES=OFF -DEVIO_BUILD_BENCHMARKS=OFF)
        if(NOT opt IN_LIST arg_OPTIONS)
            message(FATAL_ERROR "vcpkg_cmake_configure lacks ${opt}")
        endif()
    endforeach()
    execute_process(
        COMMAND "${CMAKE_COMMAND}" -S "${src}" -B "${CURRENT_BUILDTREES_DIR}/x64-linux-rel"
                -DCMAKE_BUILD_TYPE=Release "-DCMAKE_INSTALL_PREFIX=${CURRENT_PACKAGES_DIR}"
                -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF ${arg_OPTIONS} ${arg_OPTIONS_RELEASE}
        COMMAND_ERROR_IS_FATAL ANY)
endfunction()

function(vcpkg_cmake_install)
    execute_process(
        COMMAND "${CMAKE_COMMAND}" --build "${CURRENT_BUILDTREES_DIR}/x64-linux-rel" --target install
        COMMAND_ERROR_IS_FATAL ANY)
endfunction()

function(vcpkg_cmake_config_fixup)
    cmake_parse_arguments(PARSE_ARGV 0 arg "" "PACKAGE_NAME;CONFIG_PATH" "")
    if(NOT arg_PACKAGE_NAME STREQUAL "evio" OR NOT arg_CONFIG_PATH STREQUAL "share/evio")
        message(FATAL_ERROR "config_fixup(PACKAGE_NAME ${arg_PACKAGE_NAME} CONFIG_PATH ${arg_CONFIG_PATH})")
    endif()
    foreach(f evio-config.cmake evio-config-version.cmake evio-targets.cmake)
        if(NOT EXISTS "${CURRENT_PACKAGES_DIR}/${arg_CONFIG_PATH}/${f}")
            message(FATAL_ERROR "the install has no ${arg_CONFIG_PATH}/${f}")
        endif()
    endforeach()
    # vcpkg's fixup rewrites absolute paths; an exported INTERFACE target must have none.
    file(READ "${CURRENT_PACKAGES_DIR}/${arg_CONFIG_PATH}/evio-targets.cmake" targets)
    string(FIND "${targets}" "${CURRENT_PACKAGES_DIR}" abs)
    if(NOT abs EQUAL -1)
        message(FATAL_ERROR "evio-targets.cmake holds the absolute install path")
    endif()
endfunction()

function(vcpkg_fixup_pkgconfig)
    file(GLOB_RECURSE pcs "${CURRENT_PACKAGES_DIR}/*.pc")
    if(NOT pcs)
        message(FATAL_ERROR "no .pc file installed")
    endif()
    foreach(pc IN LISTS pcs)
        file(RELATIVE_PATH rel "${CURRENT_PACKAGES_DIR}" "${pc}")
        if(NOT rel MATCHES "^(share|lib)/pkgconfig/")
            message(FATAL_ERROR "${rel}: vcpkg wants .pc files in lib/pkgconfig or share/pkgconfig")
        endif()
        file(STRINGS "${pc}" prefix_line REGEX "^prefix=")
        if(NOT prefix_line MATCHES "pcfiledir")
            message(FATAL_ERROR "${rel} is not relocatable: ${prefix_line}")
        endif()
    endforeach()
endfunction()

function(vcpkg_install_copyright)
    cmake_parse_arguments(PARSE_ARGV 0 arg "" "" "FILE_LIST")
    foreach(f IN LISTS arg_FILE_LIST)
        if(NOT EXISTS "${f}")
            message(FATAL_ERROR "copyright file ${f} does not exist")
        endif()
    endforeach()
    list(GET arg_FILE_LIST 0 first)
    file(MAKE_DIRECTORY "${CURRENT_PACKAGES_DIR}/share/${PORT}")
    file(COPY_FILE "${first}" "${CURRENT_PACKAGES_DIR}/share/${PORT}/copyright")
endfunction()

# --- The port itself.
include("${port_dir}/portfile.cmake")

# --- Post-build checks for a header-only port.
foreach(f include/evio/evio.hpp share/evio/usage share/evio/copyright share/evio/evio-config.cmake
          share/pkgconfig/evio.pc)
    if(NOT EXISTS "${CURRENT_PACKAGES_DIR}/${f}")
        message(FATAL_ERROR "the package lacks ${f}")
    endif()
endforeach()
foreach(d debug lib bin)
    if(EXISTS "${CURRENT_PACKAGES_DIR}/${d}")
        message(FATAL_ERROR "a header-only package must not have ${d}/")
    endif()
endforeach()
message(STATUS "vcpkg port emulation: ${PORT} ${VERSION} packaged in ${CURRENT_PACKAGES_DIR}")
