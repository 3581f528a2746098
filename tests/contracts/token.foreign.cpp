// SPDX-License-Identifier: MIT
// Violates token.foreign: an operation on reactor B with a token issued by reactor A.
// expect: evio contract violation \[token\.foreign\]
#include "common.hpp"

#include <array>

int main() {
    evio::reactor a;
    evio::reactor b;
    auto p = contract_program::connected(a);
    std::array<std::byte, 16> buf{};
    evio::sync_wait(b, [&]() -> evio::task<void> {
        (void)co_await evio::read_some_op(&b, p.server.native_token(), buf);
    }());
    return contract_program::not_caught("token.foreign");
}
