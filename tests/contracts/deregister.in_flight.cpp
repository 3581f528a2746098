// SPDX-License-Identifier: MIT
// Violates deregister.in_flight: a slot freed while the kernel still holds one of its operations.
// expect: evio contract violation \[deregister\.in_flight\]
#include "common.hpp"

int main() {
    evio::reactor r;
    auto lis = evio::tcp_listener::bind(r, evio::endpoint::loopback_v4(0)).value();
    const evio::token t = lis.native_token();
    auto& table = r.core().table;
    table.at(t.index).in_flight = 1; // what a room would have if an op were in the kernel
    table.begin_deregister(t);
    table.finish_deregister(t.index); // a room that forgot to wait for the completion
    return contract_program::not_caught("deregister.in_flight");
}
