// SPDX-License-Identifier: MIT
// The header's version matches CMake's project(VERSION) (passed in as EVIO_CMAKE_VERSION).
#include "support/catch.hpp"

#include <evio/version.hpp>

#include <string>

TEST_CASE("version.hpp agrees with the CMake project version") {
#ifdef EVIO_CMAKE_VERSION
    CHECK(std::string(evio::version_string) == EVIO_CMAKE_VERSION);
#else
    FAIL("EVIO_CMAKE_VERSION not defined by the build");
#endif
    CHECK(std::string(EVIO_VERSION_STRING) == std::to_string(EVIO_VERSION_MAJOR) + "." +
                                                  std::to_string(EVIO_VERSION_MINOR) + "." +
                                                  std::to_string(EVIO_VERSION_PATCH));
}
