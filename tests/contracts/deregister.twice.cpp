// SPDX-License-Identifier: MIT
// Violates deregister.twice: the same token deregistered a second time.
// expect: evio contract violation \[deregister\.twice\]
#include "common.hpp"

int main() {
    evio::reactor r;
    auto lis = evio::tcp_listener::bind(r, evio::endpoint::loopback_v4(0)).value();
    const evio::token t = lis.native_token();
    r.deregister(t, false); // the listener object still holds its fd; it is not used again
    r.deregister(t, false);
    return contract_program::not_caught("deregister.twice");
}
