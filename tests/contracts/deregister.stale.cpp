// SPDX-License-Identifier: MIT
// Violates deregister.stale: a token whose slot was reused by another registration.
// expect: evio contract violation \[deregister\.(stale|twice)\]
#include "common.hpp"

int main() {
    evio::reactor r;
    auto a = evio::tcp_listener::bind(r, evio::endpoint::loopback_v4(0)).value();
    const evio::token old = a.native_token();
    a.close();
    auto b = evio::tcp_listener::bind(r, evio::endpoint::loopback_v4(0)).value(); // reuses the slot
    auto c = evio::tcp_listener::bind(r, evio::endpoint::loopback_v4(0)).value();
    evio::token stale = old;
    stale.generation -= 1; // older than anything the slot ever had: plainly stale
    r.deregister(stale, false);
    return contract_program::not_caught("deregister.stale");
}
