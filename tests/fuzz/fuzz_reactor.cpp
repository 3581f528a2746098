// SPDX-License-Identifier: MIT
// libFuzzer target over the reactor's state machine (see reactor_driver.hpp for what is checked).
// Built with clang -fsanitize=fuzzer,address,undefined at EVIO_CONTRACTS=2 (EVIO_BUILD_FUZZERS).
#include "reactor_driver.hpp"

#include <csignal>

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    std::signal(SIGPIPE, SIG_IGN); // belt and braces: evio and the driver send with MSG_NOSIGNAL
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    evio::fuzz::run_one(data, size);
    return 0;
}
