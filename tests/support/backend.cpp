// SPDX-License-Identifier: MIT
// The backend precheck run before Catch: exit 77 (skipped) when EVIO_TEST_BACKEND cannot run here.
#include "support/backend.hpp"

#include <evio/reactor.hpp>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

int evio_test_precheck() {
    const char* name = std::getenv("EVIO_TEST_BACKEND");
    if (!name || !*name) return 0;
    const std::string_view v{name};
    evio::backend_kind kind = evio::backend_kind::automatic;
    if (v == "epoll") kind = evio::backend_kind::epoll;
    else if (v == "io_uring") kind = evio::backend_kind::io_uring;
    else if (v == "iocp") kind = evio::backend_kind::iocp;
    else {
        std::fprintf(stderr, "EVIO_TEST_BACKEND=%s is not a backend\n", name);
        return 2;
    }
    std::string why;
    if (!evio::reactor::is_available(kind, &why)) {
        std::printf("backend %s unavailable here: %s (skipped)\n", name, why.c_str());
        return 77;
    }
    return 0;
}
