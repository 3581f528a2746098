// SPDX-License-Identifier: MIT
// Violates reactor.outlived_by_handle: a listener still registered when its reactor is destroyed.
// expect: evio contract violation \[reactor\.outlived_by_handle\]
#include "common.hpp"

#include <memory>

int main() {
    auto r = std::make_unique<evio::reactor>();
    auto lis = evio::tcp_listener::bind(*r, evio::endpoint::loopback_v4(0)).value();
    r.reset(); // the listener would deregister from freed memory later
    lis = {};
    return contract_program::not_caught("reactor.outlived_by_handle");
}
