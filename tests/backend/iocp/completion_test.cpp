// SPDX-License-Identifier: MIT
// Room iocp: completion paths: inline completion with FILE_SKIP_COMPLETION_PORT_ON_SUCCESS and
// its turn budget, partial transfers of read_exact/write_all, empty buffers, cross-thread wake.
#include "support/fixture.hpp"

#include <evio/detail/iocp/winsock.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
namespace test = evio::test;
using evio::errc;

namespace {

SOCKET sock(const evio::tcp_stream& s) {
    return static_cast<SOCKET>(s.native_handle());
}

/// Sends `n` bytes with a plain blocking send (outside evio).
void raw_send(const evio::tcp_stream& s, std::size_t n, char fill = 'd') {
    std::vector<char> buf(n, fill);
    std::size_t off = 0;
    while (off < n) {
        const int k = ::send(sock(s), buf.data() + off, static_cast<int>(n - off), 0);
        REQUIRE(k > 0);
        off += static_cast<std::size_t>(k);
    }
}

/// Reads one byte `count` times; records the reactor turn of each completion.
evio::task<void> read_bytes(evio::reactor& r, evio::tcp_stream& s, int count,
                            std::vector<std::uint64_t>& turns) {
    std::array<std::byte, 1> b{};
    for (int i = 0; i < count; ++i) {
        auto n = co_await s.read_some(b);
        if (!n || *n != 1) co_return;
        turns.push_back(r.core().turn);
    }
}

} // namespace

TEST_CASE("iocp completion: data already queued completes inline (no packet), within the "
          "turn budget") {
    evio::reactor r{test::options()};
    auto p = test::connected_pair(r);
    constexpr int n = EVIO_TURN_BUDGET + 4;
    raw_send(p.client, n);
    // Let the bytes land in the server's receive queue (bounded, no sleeping on evio).
    u_long queued = 0;
    for (int i = 0; i < 100000 && queued < static_cast<u_long>(n); ++i) {
        REQUIRE(::ioctlsocket(sock(p.server), FIONREAD, &queued) == 0);
        if (queued < static_cast<u_long>(n)) std::this_thread::yield();
    }
    REQUIRE(queued >= static_cast<u_long>(n));

    std::vector<std::uint64_t> turns;
    evio::spawn(r, read_bytes(r, p.server, n, turns));
    REQUIRE(test::run_until(
        r, [&] { return turns.size() == n; }, 5s));
    // Skip-on-success: the first EVIO_TURN_BUDGET reads finish without suspending, in one turn;
    // the next one yields to the other tokens (a turn later), then the budget starts again.
    for (int i = 1; i < EVIO_TURN_BUDGET; ++i)
        CHECK(turns[i] == turns[0]);
    CHECK(turns[EVIO_TURN_BUDGET] > turns[0]);
    CHECK(r.core().pending_ops == 0);
}

namespace {

evio::task<void> exact_read(evio::tcp_stream& s, std::vector<std::byte>& into, std::error_code& ec,
                            bool& done) {
    auto res = co_await s.read_exact(into);
    if (!res) ec = res.error();
    done = true;
}

evio::task<void> all_write(evio::tcp_stream& s, const std::vector<std::byte>& from,
                           std::error_code& ec, bool& done) {
    auto res = co_await s.write_all(from);
    if (!res) ec = res.error();
    done = true;
}

} // namespace

TEST_CASE("iocp completion: read_exact / write_all of 8 MiB each way, across partial packets") {
    evio::reactor r{test::options()};
    auto p = test::connected_pair(r);
    const std::size_t size = std::size_t{8} << 20;
    std::vector<std::byte> a(size), b(size), got_a(size), got_b(size);
    for (std::size_t i = 0; i < size; ++i) {
        a[i] = static_cast<std::byte>(i * 7 + 1);
        b[i] = static_cast<std::byte>(i * 13 + 5);
    }
    std::error_code e1, e2, e3, e4;
    bool d1 = false, d2 = false, d3 = false, d4 = false;
    evio::spawn(r, exact_read(p.server, got_a, e1, d1));
    evio::spawn(r, exact_read(p.client, got_b, e2, d2));
    evio::spawn(r, all_write(p.client, a, e3, d3));
    evio::spawn(r, all_write(p.server, b, e4, d4));
    REQUIRE(test::run_until(
        r, [&] { return d1 && d2 && d3 && d4; }, 60s));
    CHECK_FALSE(e1);
    CHECK_FALSE(e2);
    CHECK_FALSE(e3);
    CHECK_FALSE(e4);
    CHECK(got_a == a);
    CHECK(got_b == b);
}

TEST_CASE("iocp completion: read_exact that meets EOF reports eof with the bytes it got") {
    evio::reactor r{test::options()};
    auto p = test::connected_pair(r);
    std::vector<std::byte> into(100);
    std::error_code ec;
    bool done = false;
    evio::spawn(r, exact_read(p.server, into, ec, done));
    r.poll();
    raw_send(p.client, 10);
    REQUIRE(p.client.shutdown_send());
    REQUIRE(test::run_until(
        r, [&] { return done; }, 5s));
    CHECK(ec == errc::eof);
}

namespace {

evio::task<void> empty_ops(evio::tcp_stream& s, int& results) {
    std::span<std::byte> none;
    auto n = co_await s.read_some(none);
    if (n && *n == 0) ++results;
    auto w = co_await s.write_some(std::span<const std::byte>{});
    if (w && *w == 0) ++results;
}

} // namespace

TEST_CASE("iocp completion: empty buffers complete at once with 0 (no zero-byte WSARecv wait)") {
    evio::reactor r{test::options()};
    auto p = test::connected_pair(r);
    int results = 0;
    evio::spawn(r, empty_ops(p.server, results));
    r.poll();
    r.poll();
    CHECK(results == 2);
}

TEST_CASE("iocp completion: wake-ups from another thread reach a reactor blocked in "
          "GetQueuedCompletionStatusEx") {
    evio::reactor r{test::options()};
    auto p = test::connected_pair(r); // keeps the reactor's port busy with nothing
    for (int round = 0; round < 20; ++round) {
        std::atomic<bool> ran{false};
        std::thread poster([&] {
            std::this_thread::sleep_for(2ms); // give run_once time to block (not a sync point)
            r.post([&] { ran = true; });
        });
        const auto t0 = std::chrono::steady_clock::now();
        while (!ran && std::chrono::steady_clock::now() - t0 < 5s)
            r.run_once(10s);
        poster.join();
        CHECK(ran);
        CHECK(std::chrono::steady_clock::now() - t0 < 5s);
    }
    // stop() from another thread ends run() with an op pending.
    std::array<std::byte, 8> buf{};
    bool resumed = false;
    auto reader = [](evio::tcp_stream& s, std::span<std::byte> b, bool& flag) -> evio::task<void> {
        (void)co_await s.read_some(b);
        flag = true;
    };
    evio::spawn(r, reader(p.server, buf, resumed));
    std::thread stopper([&] {
        std::this_thread::sleep_for(5ms);
        r.stop();
    });
    r.run();
    stopper.join();
    CHECK_FALSE(resumed);
}
