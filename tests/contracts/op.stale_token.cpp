// SPDX-License-Identifier: MIT
// Violates op.stale_token: an operation started on a token that was already deregistered.
// expect: evio contract violation \[op\.stale_token\]
#include "common.hpp"

#include <array>

int main() {
    evio::reactor r;
    auto p = contract_program::connected(r);
    const evio::token t = p.server.native_token();
    p.server.close();
    std::array<std::byte, 16> buf{};
    evio::sync_wait(r, [&]() -> evio::task<void> {
        (void)co_await evio::read_some_op(&r, t, buf);
    }());
    return contract_program::not_caught("op.stale_token");
}
