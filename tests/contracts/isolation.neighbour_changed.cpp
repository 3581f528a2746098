// SPDX-License-Identifier: MIT
// Violates isolation.neighbour_changed: a backend whose deregistration of A clears B's interest
// (the mio#1757 class of bug), simulated through the syscall seam during A's teardown.
// expect: evio contract violation \[isolation\.neighbour_changed\]
#include "common.hpp"

#include <array>
#include <evio/detail/syscall.hpp>

static evio::reactor* g_reactor;
static evio::token g_victim;
static bool g_armed = false;

int main() {
#if EVIO_PLATFORM_WINDOWS
    evio::reactor r; // IOCP: A's teardown calls CancelIoEx for its pending read
#else
    evio::reactor r{evio::reactor_options{evio::backend_kind::epoll}}; // A's teardown: epoll_ctl
#endif
    g_reactor = &r;
    auto a = contract_program::connected(r);
    auto b = contract_program::connected(r);
    std::array<std::byte, 16> buf{}, buf_a{};
    // B waits for data: its read interest is set. A waits too, so its teardown has work to do.
    evio::spawn(r, [&]() -> evio::task<void> { (void)co_await b.server.read_some(buf); });
    evio::spawn(r, [&]() -> evio::task<void> { (void)co_await a.server.read_some(buf_a); });
    r.poll();
    g_victim = b.server.native_token();
    // The "buggy backend": tearing down A also clears B's interest bits.
    evio::detail::set_fault_hook([](evio::detail::sys, int*) {
        if (g_armed) g_reactor->core().table.at(g_victim.index).interest = 0;
        return false;
    });
    g_armed = true; // any OS call made while A is torn down
    a.server.close();
    return contract_program::not_caught("isolation.neighbour_changed");
}
