// SPDX-License-Identifier: MIT
// Violates completion.future_generation: an epoll event names a generation newer than its slot's
// (table corruption), simulated by rolling the slot's generation back while a read is parked.
// expect: evio contract violation \[completion\.future_generation\]
#include "common.hpp"

#include <array>

int main() {
#if EVIO_PLATFORM_WINDOWS
    std::printf("EVIO_CONTRACT_SKIPPED: epoll-only contract\n");
    return 77;
#endif
    evio::reactor r{evio::reactor_options{evio::backend_kind::epoll}};
    auto p = contract_program::connected(r);
    std::array<std::byte, 16> buf{};
    evio::spawn(r, [&]() -> evio::task<void> { (void)co_await p.server.read_some(buf); });
    r.poll();
    r.core().table.at(p.server.native_token().index).generation -= 1;
    std::array<std::byte, 1> one{};
    evio::spawn(r, [&]() -> evio::task<void> { (void)co_await p.client.write_all(one); });
    for (int i = 0; i < 100; ++i) r.run_once(std::chrono::milliseconds(10));
    return contract_program::not_caught("completion.future_generation");
}
