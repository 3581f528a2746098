// SPDX-License-Identifier: MIT
// Violates deregister.foreign: a token deregistered through a reactor that did not issue it.
// expect: evio contract violation \[deregister\.foreign\]
#include "common.hpp"

int main() {
    evio::reactor a;
    evio::reactor b;
    auto lis = evio::tcp_listener::bind(a, evio::endpoint::loopback_v4(0)).value();
    b.deregister(lis.native_token(), false);
    return contract_program::not_caught("deregister.foreign");
}
