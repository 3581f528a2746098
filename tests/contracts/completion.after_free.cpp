// SPDX-License-Identifier: MIT
// Violates completion.after_free: a completion arrives for a slot whose registration was freed
// while the kernel still held its read (accounting broken on purpose). Completion backends only:
// io_uring here (iocp on Windows).
// expect: evio contract violation \[completion\.after_free\]
#include "common.hpp"

#include <array>
#include <string>

int main() {
#if EVIO_PLATFORM_WINDOWS
    evio::reactor r{evio::reactor_options{evio::backend_kind::iocp}};
#else
    std::string why;
    if (!evio::reactor::is_available(evio::backend_kind::io_uring, &why)) {
        // No completion backend here: CTest reports the test as skipped (SKIP_REGULAR_EXPRESSION).
        std::printf("EVIO_CONTRACT_SKIPPED: io_uring unavailable (%s)\n", why.c_str());
        return 77;
    }
    evio::reactor r{evio::reactor_options{evio::backend_kind::io_uring}};
#endif
    auto p = contract_program::connected(r);
    std::array<std::byte, 16> buf{};
    evio::spawn(r, [&]() -> evio::task<void> { (void)co_await p.server.read_some(buf); });
    r.poll();
    auto& s = r.core().table.at(p.server.native_token().index);
    s.in_flight = 0; // a room that forgot its in-flight read...
    s.state = evio::detail::slot_state::free;
    std::array<std::byte, 1> one{};
    evio::spawn(r, [&]() -> evio::task<void> { (void)co_await p.client.write_all(one); });
    for (int i = 0; i < 100; ++i) r.run_once(std::chrono::milliseconds(10));
    return contract_program::not_caught("completion.after_free");
}
