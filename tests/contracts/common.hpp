// SPDX-License-Identifier: MIT
// Shared bits of the contract programs: each one breaks one contract on purpose and must abort.
#pragma once

#include <evio/evio.hpp>

#include <cstdio>
#include <cstdlib>

namespace contract_program {

/// A connected loopback pair, for programs that need live sockets.
struct pair {
    evio::tcp_stream server;
    evio::tcp_stream client;
};

inline evio::task<pair> make_pair(evio::reactor& r, evio::tcp_listener& lis) {
    auto ep = lis.local_endpoint().value();
    auto acc = lis.accept();
    auto c = co_await evio::tcp_stream::connect(r, ep);
    auto s = co_await acc;
    co_return pair{std::move(s.value()), std::move(c.value())};
}

inline pair connected(evio::reactor& r) {
    auto lis = evio::tcp_listener::bind(r, evio::endpoint::loopback_v4(0)).value();
    return evio::sync_wait(r, make_pair(r, lis));
}

/// Reached only when the contract did not fire: the test then fails (exit 0 is rejected).
inline int not_caught(const char* id) {
    std::printf("contract %s did not fire\n", id);
    return 0;
}

} // namespace contract_program
