// SPDX-License-Identifier: MIT
// Library version; CMake's project(VERSION) must match (tests/unit/version_test.cpp checks).
#pragma once

#define EVIO_VERSION_MAJOR 0
#define EVIO_VERSION_MINOR 1
#define EVIO_VERSION_PATCH 0
#define EVIO_VERSION_STRING "0.1.0"

namespace evio {
/// The library version as "major.minor.patch".
inline constexpr const char* version_string = EVIO_VERSION_STRING;
} // namespace evio
