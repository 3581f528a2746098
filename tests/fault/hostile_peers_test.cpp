// SPDX-License-Identifier: MIT
// Hostile peers, per backend: a peer that resets in the middle of a large write, a half-closed
// peer, a peer that never reads while the server writes. Both ends are evio streams on loopback
// (so the same cases run on iocp under Wine); a reset is a close with SO_LINGER {1, 0}.
#include "support/fixture.hpp"

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <new>
#include <vector>

#if EVIO_PLATFORM_WINDOWS
#include <evio/detail/iocp/winsock.hpp>
#else
#include <sys/socket.h>
#endif

#include "support/counting_new.hpp"

namespace heap = evio::test::heap;

namespace {

using namespace std::chrono_literals;
using evio::test::options;

/// Closes `s` with a reset (SO_LINGER {1, 0}): the peer's next call fails with connection_reset.
void reset(evio::tcp_stream& s) {
    linger l{};
    l.l_onoff = 1;
    l.l_linger = 0;
#if EVIO_PLATFORM_WINDOWS
    (void)::setsockopt(static_cast<SOCKET>(s.native_handle()), SOL_SOCKET, SO_LINGER,
                       reinterpret_cast<const char*>(&l), sizeof l);
#else
    (void)::setsockopt(s.native_handle(), SOL_SOCKET, SO_LINGER, &l, sizeof l);
#endif
    s.close();
}

/// An echo of `n` bytes through `server`, driven by `client`; true when the bytes came back.
evio::task<bool> echo_round(evio::tcp_stream& client, evio::tcp_stream& server, std::size_t n) {
    std::vector<std::byte> out(n), in(n), mid(n);
    for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<std::byte>(i * 7 + 3);
    if (!co_await client.write_all(out)) co_return false;
    if (!co_await server.read_exact(mid)) co_return false;
    if (!co_await server.write_all(mid)) co_return false;
    if (!co_await client.read_exact(in)) co_return false;
    co_return in == out;
}

} // namespace

TEST_CASE("a peer that resets during a large write fails that write, not the server") {
    evio::reactor r{options()};
    auto lis = evio::test::listen_any(r);
    auto victim = evio::sync_wait(r, evio::test::make_pair_task(r, lis));
    auto other = evio::sync_wait(r, evio::test::make_pair_task(r, lis));

    constexpr std::size_t big = 32u << 20; // far more than any socket buffer holds
    std::vector<std::byte> payload(big, std::byte{0x5a});
    std::error_code write_error;
    std::size_t written = 0;
    std::size_t peer_read = 0;
    bool other_ok = false;

    evio::sync_wait(r, [&]() -> evio::task<void> {
        auto writer = [&]() -> evio::task<void> {
            auto w = co_await victim.server.write_all(payload);
            write_error = w ? std::error_code{} : w.error();
            written = w ? big : w.transferred();
        };
        auto peer = [&]() -> evio::task<void> {
            std::array<std::byte, 65536> buf;
            while (peer_read < 256 * 1024) { // read some of it, then reset mid-transfer
                auto n = co_await victim.client.read_some(buf);
                if (!n || *n == 0) co_return;
                peer_read += *n;
            }
            reset(victim.client);
        };
        co_await evio::when_all(writer(), peer());
        // The server keeps serving its other connection.
        other_ok = co_await echo_round(other.client, other.server, 100000);
    }());

    INFO("write error: " << write_error.message() << ", written " << written);
    CHECK(peer_read >= 256 * 1024);
    CHECK((write_error == evio::errc::connection_reset || write_error == evio::errc::broken_pipe));
    CHECK(written >= peer_read);
    CHECK(written < big);
    CHECK(other_ok);
    // Later calls on the reset stream keep failing with an error; nothing raised SIGPIPE.
    auto again = evio::sync_wait(r, [&]() -> evio::task<evio::result<void>> {
        co_return co_await victim.server.write_all(std::span(payload).first(1000));
    }());
    CHECK(!again);
}

TEST_CASE("a half-closed peer: the server reads end of stream and can still reply") {
    evio::reactor r{options()};
    auto p = evio::test::connected_pair(r);
    const auto request = evio::test::bytes("request: the peer sends this, then shuts down");
    const auto reply = evio::test::bytes("reply: written after the server read end of stream");
    std::vector<std::byte> got_request;
    std::vector<std::byte> got_reply;
    bool server_saw_eof = false, client_saw_eof = false;

    evio::sync_wait(r, [&]() -> evio::task<void> {
        auto peer = [&]() -> evio::task<void> {
            // (co_await stays out of Catch's macros: they name their expression twice.)
            const auto sent = co_await p.client.write_all(request);
            REQUIRE(sent);
            REQUIRE(p.client.shutdown_send());
            std::array<std::byte, 256> buf;
            for (;;) {
                auto n = co_await p.client.read_some(buf);
                REQUIRE(n);
                if (*n == 0) {
                    client_saw_eof = true;
                    break;
                }
                got_reply.insert(got_reply.end(), buf.begin(), buf.begin() + *n);
            }
        };
        auto server = [&]() -> evio::task<void> {
            std::array<std::byte, 256> buf;
            for (;;) {
                auto n = co_await p.server.read_some(buf);
                REQUIRE(n);
                if (*n == 0) {
                    server_saw_eof = true;
                    break;
                }
                got_request.insert(got_request.end(), buf.begin(), buf.begin() + *n);
            }
            const auto replied = co_await p.server.write_all(reply);
            REQUIRE(replied);
            REQUIRE(p.server.shutdown_send());
        };
        co_await evio::when_all(peer(), server());
    }());

    CHECK(server_saw_eof);
    CHECK(evio::test::text(got_request) == evio::test::text(request));
    CHECK(evio::test::text(got_reply) == evio::test::text(reply));
    CHECK(client_saw_eof);
}

TEST_CASE("a peer that never reads: the write waits, a timeout frees it, memory stays flat") {
    evio::reactor r{options()};
    auto p = evio::test::connected_pair(r);
    constexpr std::size_t big = 64u << 20;
    std::vector<std::byte> payload(big, std::byte{0x33});
    evio::result<void> w;
    long during_first = 0, during_last = 0;
    heap::start(); // count from here (only the window below is compared)

    evio::sync_wait(r, [&]() -> evio::task<void> {
        auto watcher = [&]() -> evio::task<void> {
            co_await evio::sleep_for(r, 200ms); // the write is waiting on a full buffer by now
            during_first = heap::allocations.load();
            co_await evio::sleep_for(r, 400ms);
            during_last = heap::allocations.load();
        };
        auto writer = [&]() -> evio::task<void> {
            w = co_await evio::with_timeout(r, 1s, p.server.write_all(payload));
        };
        co_await evio::when_all(writer(), watcher());
    }());

    REQUIRE(!w);
    CHECK(w.error() == evio::errc::timed_out);
    CHECK(w.transferred() > 0);
    CHECK(w.transferred() < big);
    CHECK(during_last == during_first); // no allocation while the write waited
    // The stream is still usable: the peer reads what was sent, and a small write goes through.
    std::vector<std::byte> sink(w.transferred());
    CHECK(evio::sync_wait(r, [&]() -> evio::task<bool> {
        if (!co_await p.client.read_exact(sink)) co_return false;
        co_return static_cast<bool>(co_await p.server.write_all(std::span(payload).first(10)));
    }()));
}

// Found by the reactor fuzzer: on io_uring with DEFER_TASKRUN, a send blocked on full buffers
// whose peer then sent FIN could not be cancelled (the timeout, close() and the reactor's
// destructor all waited forever).
TEST_CASE("a blocked write whose peer then half-closes: a timeout and close() still free it") {
    constexpr std::size_t big = 64u << 20;
    std::vector<std::byte> payload(big, std::byte{0x44});
    for (const bool by_close : {false, true}) {
        evio::reactor r{options()};
        auto p = evio::test::connected_pair(r);
        evio::result<void> w;
        bool shut = false;
        evio::sync_wait(r, [&]() -> evio::task<void> {
            auto writer = [&]() -> evio::task<void> {
                if (by_close) // (no co_await inside ?: : GCC 12 miscompiles it)
                    w = co_await p.server.write_all(payload);
                else
                    w = co_await evio::with_timeout(r, 1s, p.server.write_all(payload));
            };
            auto peer = [&]() -> evio::task<void> {
                co_await evio::sleep_for(r, 200ms); // the write waits on full buffers by now
                shut = static_cast<bool>(p.client.shutdown_send()); // FIN; it never reads
                co_await evio::sleep_for(r, 100ms);
                if (by_close) p.server.close();
            };
            co_await evio::when_all(writer(), peer());
        }());
        CHECK(shut);
        REQUIRE(!w);
        CHECK(w.error() == (by_close ? evio::errc::operation_canceled : evio::errc::timed_out));
        CHECK(w.transferred() > 0);
    }
}
