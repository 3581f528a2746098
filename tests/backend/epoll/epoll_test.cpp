// SPDX-License-Identifier: MIT
// epoll room: readiness tracking. After a read that came back short (the receive queue is empty)
// or met EAGAIN, the next read waits for the edge instead of making a recv that would fail.
#include "conformance/helpers.hpp"
#include "support/catch.hpp"
#include <evio/detail/syscall.hpp>

#include <array>
#include <atomic>
#include <cstddef>
#include <fcntl.h>
#include <sys/socket.h>
#include <thread>

namespace {

std::atomic<int> recv_calls{0};

bool count_recv(evio::detail::sys call, int*) {
    if (call == evio::detail::sys::recv) ++recv_calls;
    return false;
}

} // namespace

TEST_CASE("epoll: an echo session makes one recv per message (no speculative EAGAIN)") {
    evio::reactor r{evio::reactor_options{evio::backend_kind::epoll}};
    auto p = evio::conf::make_adopted_pair(r, 0);
    const int peer = p.peer;
    REQUIRE(::fcntl(peer, F_SETFL, ::fcntl(peer, F_GETFL) & ~O_NONBLOCK) == 0);
    constexpr int messages = 1000;

    std::atomic<int> echoed{0};
    std::thread client([&] { // raw blocking socket: its calls do not go through evio's seam
        std::array<std::byte, 64> out{}, in{};
        for (int i = 0; i < messages; ++i) {
            out[0] = static_cast<std::byte>(i);
            if (::send(peer, out.data(), out.size(), MSG_NOSIGNAL) != 64) return;
            std::size_t got = 0;
            while (got < in.size()) {
                const auto n = ::recv(peer, in.data() + got, in.size() - got, 0);
                if (n <= 0) return;
                got += static_cast<std::size_t>(n);
            }
            if (in == out) ++echoed;
        }
        ::shutdown(peer, SHUT_WR);
    });

    recv_calls = 0;
    evio::detail::set_fault_hook(&count_recv);
    evio::sync_wait(r, [&]() -> evio::task<void> {
        std::array<std::byte, 16384> buf;
        for (;;) {
            auto n = co_await p.server.read_some(buf);
            if (!n || *n == 0) break;
            if (!co_await p.server.write_all(std::span(buf).first(*n))) break;
        }
    }());
    evio::detail::set_fault_hook(nullptr);
    client.join();

    CHECK(echoed == messages);
    // One recv per message plus the one that reads the EOF; a little slack for a first
    // speculative read. Without readiness tracking this is about 2 per message.
    INFO("recv calls: " << recv_calls.load());
    CHECK(recv_calls <= messages + 10);
}

TEST_CASE("epoll: read_exact that comes back short waits for the edge without another recv") {
    evio::reactor r{evio::reactor_options{evio::backend_kind::epoll}};
    auto p = evio::conf::make_adopted_pair(r, 0);
    std::array<std::byte, 100> sent{};
    for (std::size_t i = 0; i < sent.size(); ++i) sent[i] = static_cast<std::byte>(i + 1);
    REQUIRE(::send(p.peer, sent.data(), 60, MSG_NOSIGNAL) == 60);

    recv_calls = 0;
    evio::detail::set_fault_hook(&count_recv);
    std::array<std::byte, 100> got{};
    bool done = false, ok = false;
    evio::spawn(r, [&]() -> evio::task<void> {
        auto n = co_await p.server.read_exact(got);
        ok = static_cast<bool>(n);
        done = true;
    });
    for (int i = 0; i < 3; ++i) r.run_once(std::chrono::milliseconds(5));
    const int first = recv_calls.load();
    CHECK_FALSE(done);
    // The first recv took the 60 queued bytes, short of the 100 asked for: the queue is
    // empty, so the read waits for the next edge. A second recv here would only fail with
    // EAGAIN.
    CHECK(first == 1);

    REQUIRE(::send(p.peer, sent.data() + 60, 40, MSG_NOSIGNAL) == 40);
    REQUIRE(evio::test::run_until(r, [&] { return done; }));
    evio::detail::set_fault_hook(nullptr);
    CHECK(ok);
    CHECK(got == sent);
    CHECK(recv_calls == 2);
}
