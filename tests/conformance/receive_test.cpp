// SPDX-License-Identifier: MIT
// tcp_stream::receive(): buffer leases from the reactor's pool (io_uring: multishot recv into the
// kernel's provided-buffer ring; epoll and IOCP: a pool buffer per read). Only the public API:
// the same file runs on every backend.
#include "support/catch.hpp"
#include "support/fixture.hpp"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <string>
#include <vector>

using namespace std::chrono_literals;

namespace {

evio::reactor_options opts() { return evio::test::options(); }

/// A pool of two 64-byte receive buffers: easy to use up.
evio::reactor_options two_buffers() {
    auto o = opts();
    o.receive_buffers_max = 2;
    o.receive_buffer_size = 64;
    return o;
}

std::vector<std::byte> pattern(std::size_t n, unsigned seed = 0) {
    std::vector<std::byte> v(n);
    for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::byte>((i * 131 + seed) % 251);
    return v;
}

/// write_all that must succeed (not REQUIRE(co_await ...): GCC 12 evaluates it more than once).
evio::task<void> send(evio::tcp_stream& s, std::span<const std::byte> b) {
    auto w = co_await s.write_all(b);
    REQUIRE(w);
}

/// Leases both buffers of a two_buffers() reactor to `q`'s server side, into `held`.
evio::task<void> hold_both_buffers(evio::reactor& r, evio::test::stream_pair& q,
                                   std::vector<evio::buffer_lease>& held) {
    for (const char* m : {"x", "y"}) {
        co_await send(q.client, evio::test::bytes(m));
        auto l = co_await evio::with_timeout(r, 5s, q.server.receive());
        REQUIRE(l);
        held.push_back(std::move(*l));
    }
}

/// Appends what a lease holds; false at the end of the stream.
bool append(std::vector<std::byte>& to, const evio::buffer_lease& l) {
    to.insert(to.end(), l.data().begin(), l.data().end());
    return !l.empty();
}

} // namespace

TEST_CASE("receive delivers the stream in order, in leases; then the end of the stream") {
    evio::reactor r{opts()};
    auto p = evio::test::connected_pair(r);
    const auto sent = pattern(300 * 1024);
    evio::spawn(r, [&]() -> evio::task<void> {
        for (std::size_t off = 0; off < sent.size(); off += 7000) {
            const std::size_t n = std::min<std::size_t>(7000, sent.size() - off);
            co_await send(p.client, std::span(sent).subspan(off, n));
        }
        REQUIRE(p.client.shutdown_send());
    });
    std::vector<std::byte> got;
    std::size_t leases = 0;
    evio::sync_wait(r, [&]() -> evio::task<void> {
        for (;;) {
            auto l = co_await p.server.receive();
            REQUIRE(l);
            CHECK(l->size() <= r.receive_buffers().buffer_size);
            if (!append(got, *l)) break;
            ++leases;
        }
        auto again = co_await p.server.receive(); // the end of the stream stays the end
        REQUIRE(again);
        CHECK(again->empty());
    }());
    CHECK(got.size() == sent.size());
    CHECK(got == sent);
    CHECK(leases >= sent.size() / r.receive_buffers().buffer_size);
    CHECK(r.receive_buffers().leased == 0);
}

TEST_CASE("receive, read_some and read_exact mixed on one stream keep the stream's order") {
    evio::reactor r{opts()};
    auto p = evio::test::connected_pair(r);
    const auto sent = pattern(64 * 1024, 7);
    evio::spawn(r, [&]() -> evio::task<void> {
        for (std::size_t off = 0; off < sent.size(); off += 3000) {
            const std::size_t n = std::min<std::size_t>(3000, sent.size() - off);
            co_await send(p.client, std::span(sent).subspan(off, n));
            co_await evio::sleep_for(r, 0ms);
        }
        REQUIRE(p.client.shutdown_send());
    });
    std::vector<std::byte> got;
    evio::sync_wait(r, [&]() -> evio::task<void> {
        for (int i = 0;; ++i) {
            if (i % 3 == 0) {
                auto l = co_await p.server.receive();
                REQUIRE(l);
                if (!append(got, *l)) break;
            } else if (i % 3 == 1) {
                std::array<std::byte, 11> small{};
                auto n = co_await p.server.read_some(small);
                REQUIRE(n);
                if (*n == 0) break;
                got.insert(got.end(), small.begin(), small.begin() + static_cast<std::ptrdiff_t>(*n));
            } else {
                std::array<std::byte, 100> exact{};
                const std::size_t want = std::min<std::size_t>(exact.size(), sent.size() - got.size());
                if (want == 0) continue;
                auto res = co_await p.server.read_exact(std::span(exact).first(want));
                REQUIRE(res);
                got.insert(got.end(), exact.begin(), exact.begin() + static_cast<std::ptrdiff_t>(want));
            }
        }
    }());
    CHECK(got.size() == sent.size());
    CHECK(got == sent);
}

TEST_CASE("every buffer in use: receive fails with no_buffer_space and loses nothing") {
    evio::reactor r{two_buffers()};
    auto p = evio::test::connected_pair(r);
    evio::sync_wait(r, [&]() -> evio::task<void> {
        co_await send(p.client, evio::test::bytes("A"));
        auto a = co_await p.server.receive();
        REQUIRE(a);
        CHECK(evio::test::text(a->data()) == "A");
        co_await send(p.client, evio::test::bytes("B"));
        auto b = co_await p.server.receive();
        REQUIRE(b);
        CHECK(evio::test::text(b->data()) == "B");
        CHECK(r.receive_buffers().leased == 2);
        co_await send(p.client, evio::test::bytes("C"));
        co_await evio::sleep_for(r, 30ms); // "C" is in the server's socket now
        auto c = co_await evio::with_timeout(r, 5s, p.server.receive());
        REQUIRE_FALSE(c);
        CHECK(c.error() == evio::errc::no_buffer_space);
        a->release(); // one buffer free again: the same data comes, nothing was lost
        auto again = co_await evio::with_timeout(r, 5s, p.server.receive());
        REQUIRE(again);
        CHECK(evio::test::text(again->data()) == "C");
    }());
    CHECK(r.receive_buffers().leased == 0);
    CHECK(r.receive_buffers().allocated <= 2);
}

TEST_CASE("every buffer in use while a receive() waits: no_buffer_space when the data comes, nothing lost") {
    // When the data comes with no buffer free, the waiting receive() fails with
    // no_buffer_space and the data stays queued for the next receive(). A receive() started
    // with every buffer leased and nothing to read waits: it needs no buffer until there is
    // data (io_uring, whose kernel selects a buffer when it issues the recv and answers
    // -ENOBUFS from an empty ring, peeks and waits on a poll). Only where the op leases its
    // buffer when it starts (io_uring without a buffer ring) does it fail at once.
    evio::reactor r{two_buffers()};
    auto p = evio::test::connected_pair(r);
    auto q = evio::test::connected_pair(r);
    const bool waits = r.provides_buffers();
    std::vector<evio::buffer_lease> held;
    std::error_code failed;
    bool done = false, waited = false;
    std::string again;
    evio::sync_wait(r, [&]() -> evio::task<void> {
        co_await hold_both_buffers(r, q, held); // q's two leases hold both buffers
        evio::spawn(r, [&]() -> evio::task<void> {
            auto l = co_await evio::with_timeout(r, 5s, p.server.receive());
            if (!l) failed = l.error();
            done = true;
        });
        co_await evio::sleep_for(r, 20ms);
        waited = !done; // nothing to read yet: it waits, even with no buffer free
        co_await send(p.client, evio::test::bytes("late"));
        for (int k = 0; k < 500 && !done; ++k) co_await evio::sleep_for(r, 1ms);
        held.clear(); // both buffers free again: the data is still there
        auto l = co_await evio::with_timeout(r, 5s, p.server.receive());
        if (l) again = evio::test::text(l->data());
    }());
    if (waits) CHECK(waited);
    CHECK(done);
    CHECK(failed == evio::errc::no_buffer_space);
    CHECK(again == "late");
    CHECK(r.receive_buffers().leased == 0);
}

TEST_CASE("a receive() started with every buffer leased: the data once a buffer is free, or the end of the stream") {
    // It waits holding nothing (see above); what it finds when the socket becomes readable
    // decides: a buffer freed meanwhile takes the data, a peer that closed gives the end of
    // the stream. Where the op leases its buffer when it starts, it failed at once instead.
    evio::reactor r{two_buffers()};
    auto p = evio::test::connected_pair(r);
    auto e = evio::test::connected_pair(r);
    auto q = evio::test::connected_pair(r);
    if (!r.provides_buffers()) return;
    std::vector<evio::buffer_lease> held;
    std::string got = "(none)";
    std::error_code got_error, end_error;
    bool got_done = false, end_done = false, end_empty = false;
    evio::sync_wait(r, [&]() -> evio::task<void> {
        co_await hold_both_buffers(r, q, held); // q's two leases hold both buffers
        evio::spawn(r, [&]() -> evio::task<void> {
            auto l = co_await evio::with_timeout(r, 5s, p.server.receive());
            if (l) got = evio::test::text(l->data());
            else got_error = l.error();
            got_done = true;
        });
        evio::spawn(r, [&]() -> evio::task<void> {
            auto l = co_await evio::with_timeout(r, 5s, e.server.receive());
            if (l) end_empty = l->empty();
            else end_error = l.error();
            end_done = true;
        });
        co_await evio::sleep_for(r, 20ms);
        CHECK_FALSE(got_done); // both wait, holding nothing
        CHECK_FALSE(end_done);
        CHECK(r.receive_buffers().leased == 2);
        e.client.close(); // no buffer free: the end of the stream needs none
        for (int k = 0; k < 500 && !end_done; ++k) co_await evio::sleep_for(r, 1ms);
        held.clear(); // the buffers are free before p's data comes
        co_await send(p.client, evio::test::bytes("fresh"));
        for (int k = 0; k < 500 && !got_done; ++k) co_await evio::sleep_for(r, 1ms);
    }());
    CHECK(end_done);
    CHECK_FALSE(end_error);
    CHECK(end_empty);
    CHECK(got_done);
    CHECK_FALSE(got_error);
    CHECK(got == "fresh");
    CHECK(r.receive_buffers().leased == 0);
}

TEST_CASE("a receive() that waits for data holds no buffer: more waiting streams than buffers") {
    // Every backend takes the buffer when the data is there (epoll: just before the recv;
    // io_uring: the kernel picks it from the buffer ring; IOCP: after a zero-byte WSARecv), so
    // eight streams can wait on two buffers and each gets its message. Where the op needs its
    // buffer when it starts (io_uring without a buffer ring, kernels < 5.19), the receives
    // beyond the pool fail at once with no_buffer_space, and their data stays queued.
    evio::reactor r{two_buffers()};
    constexpr int n = 8;
    std::vector<evio::test::stream_pair> pairs;
    for (int i = 0; i < n; ++i) pairs.push_back(evio::test::connected_pair(r));
    std::vector<std::string> got(n);
    std::vector<std::error_code> failed(n);
    int finished = 0;
    for (int i = 0; i < n; ++i) {
        evio::spawn(r, [](evio::reactor& r, evio::tcp_stream& s, std::string& out, std::error_code& ec,
                          int& finished) -> evio::task<void> {
            auto l = co_await evio::with_timeout(r, 5s, s.receive());
            if (l) out = evio::test::text(l->data());
            else ec = l.error();
            ++finished; // the lease goes back here, before the next stream's data comes
        }(r, pairs[i].server, got[i], failed[i], finished));
    }
    const bool late_buffer = r.backend() == evio::backend_kind::io_uring && !r.provides_buffers();
    evio::sync_wait(r, [&]() -> evio::task<void> {
        co_await evio::sleep_for(r, 20ms); // every receive() waits now
        if (!late_buffer) {
            CHECK(r.receive_buffers().leased == 0);
            CHECK(finished == 0);
        }
        for (int i = 0; i < n; ++i) {
            co_await send(pairs[i].client, evio::test::bytes("m" + std::to_string(i)));
            for (int k = 0; k < 500 && !(failed[i] || !got[i].empty()); ++k)
                co_await evio::sleep_for(r, 1ms);
        }
        for (int k = 0; k < 500 && finished < n; ++k) co_await evio::sleep_for(r, 1ms);
        if (late_buffer) { // the data of the receives that failed is still there
            for (int i = 0; i < n; ++i) {
                if (!failed[i]) continue;
                CHECK(failed[i] == evio::errc::no_buffer_space);
                auto l = co_await evio::with_timeout(r, 5s, pairs[i].server.receive());
                REQUIRE(l);
                got[i] = evio::test::text(l->data());
            }
        }
    }());
    CHECK(finished == n);
    for (int i = 0; i < n; ++i) {
        if (!late_buffer) CHECK(failed[i].message() == std::error_code{}.message());
        CHECK(got[i] == "m" + std::to_string(i));
    }
    CHECK(r.receive_buffers().leased == 0);
    CHECK(r.receive_buffers().allocated <= 2);
}

TEST_CASE("receive with a timeout and nothing to read: timed_out; later data still arrives") {
    evio::reactor r{opts()};
    auto p = evio::test::connected_pair(r);
    evio::sync_wait(r, [&]() -> evio::task<void> {
        auto t = co_await evio::with_timeout(r, 20ms, p.server.receive());
        REQUIRE_FALSE(t);
        CHECK(t.error() == evio::errc::timed_out);
        co_await send(p.client, evio::test::bytes("late"));
        std::string got;
        while (got.size() < 4) {
            auto l = co_await evio::with_timeout(r, 5s, p.server.receive());
            REQUIRE(l);
            REQUIRE_FALSE(l->empty());
            got += evio::test::text(l->data());
        }
        CHECK(got == "late");
    }());
    CHECK(r.receive_buffers().leased == 0);
}

TEST_CASE("a stream nobody reads does not make the pool grow, and loses nothing") {
    evio::reactor r{opts()};
    auto p = evio::test::connected_pair(r);
    const auto sent = pattern(8 * 1024 * 1024, 3); // more than the socket buffers hold
    bool written = false;
    evio::spawn(r, [&]() -> evio::task<void> {
        co_await send(p.client, sent);
        written = true;
        REQUIRE(p.client.shutdown_send());
    });
    std::vector<std::byte> got;
    evio::sync_wait(r, [&]() -> evio::task<void> {
        auto first = co_await p.server.receive();
        REQUIRE(first);
        append(got, *first);
        const auto before = r.receive_buffers();
        co_await evio::sleep_for(r, 100ms); // the writer fills what it can, then blocks
        const auto st = r.receive_buffers();
        CHECK_FALSE(written);
        CHECK(st.allocated == before.allocated);
        CHECK(st.leased == 1);
        CHECK(st.leased + st.stashed <= st.allocated);
        // io_uring's multishot recv took what it could into the stash, then stopped.
        if (r.backend() == evio::backend_kind::io_uring && r.provides_buffers()) CHECK(st.stashed > 0);
        first->release();
        for (;;) {
            auto l = co_await p.server.receive();
            REQUIRE(l);
            if (!append(got, *l)) break;
        }
    }());
    CHECK(written);
    CHECK(got.size() == sent.size());
    CHECK(got == sent);
}

TEST_CASE("closing a stream gives its buffers back; a lease outlives its stream") {
    evio::reactor r{opts()};
    auto p = evio::test::connected_pair(r);
    evio::buffer_lease kept;
    evio::sync_wait(r, [&]() -> evio::task<void> {
        co_await send(p.client, evio::test::bytes("first"));
        auto l = co_await p.server.receive();
        REQUIRE(l);
        kept = std::move(*l);
        co_await send(p.client, pattern(100 * 1024)); // stashed (io_uring) or queued
        co_await evio::sleep_for(r, 30ms);
        p.server.close();
        co_await evio::sleep_for(r, 0ms);
    }());
    CHECK(evio::test::text(kept.data()).substr(0, 5) == "first");
    CHECK(r.receive_buffers().leased == 1);
    CHECK(r.receive_buffers().stashed == 0);
    kept.release();
    CHECK(kept.empty());
    CHECK(r.receive_buffers().leased == 0);
}

TEST_CASE("isolation: closing a stream with received data does not change a neighbour's receive") {
    evio::reactor r{opts()};
    auto a = evio::test::connected_pair(r);
    auto b = evio::test::connected_pair(r);
    std::string got;
    evio::spawn(r, [&]() -> evio::task<void> {
        auto l = co_await a.server.receive(); // waits while b is closed
        REQUIRE(l);
        got = evio::test::text(l->data());
    });
    evio::sync_wait(r, [&]() -> evio::task<void> {
        co_await send(b.client, evio::test::bytes("for b"));
        auto first = co_await b.server.receive();
        REQUIRE(first);
        co_await send(b.client, evio::test::bytes("more for b"));
        co_await evio::sleep_for(r, 20ms);
        b.server.close();
        co_await evio::sleep_for(r, 10ms);
        CHECK(got.empty());
        co_await send(a.client, evio::test::bytes("for a"));
    }());
    r.run();
    CHECK(got == "for a");
    CHECK(r.receive_buffers().leased == 0);
    CHECK(r.receive_buffers().stashed == 0);
}

TEST_CASE("a reactor destroyed with a receive pending and a lease held frees everything") {
    auto* r = new evio::reactor{opts()};
    auto p = evio::test::connected_pair(*r);
    int finished = 0;
    evio::spawn(*r, [](evio::tcp_stream s, int& done) -> evio::task<void> {
        auto held = co_await s.receive();
        REQUIRE(held);
        auto never = co_await s.receive(); // pending when the reactor goes
        (void)never;
        ++done;
    }(std::move(p.server), finished));
    evio::sync_wait(*r, [&]() -> evio::task<void> {
        co_await send(p.client, evio::test::bytes("x"));
        co_await evio::sleep_for(*r, 20ms);
    }());
    p.client.close();
    delete r; // the task is destroyed unresumed: its lease and pending receive go back first
    CHECK(finished == 0);
}

TEST_CASE("read_exact after a receive: data then the end of the stream gives eof with the count") {
    evio::reactor r{opts()};
    auto p = evio::test::connected_pair(r);
    evio::sync_wait(r, [&]() -> evio::task<void> {
        // On io_uring this arms the stream's multishot recv, so "abc" and the end of the stream
        // wait in the reactor's stash before read_exact asks for more than there is.
        auto none = co_await evio::with_timeout(r, 10ms, p.server.receive());
        REQUIRE_FALSE(none);
        co_await send(p.client, evio::test::bytes("abc"));
        REQUIRE(p.client.shutdown_send());
        co_await evio::sleep_for(r, 30ms);
        std::array<std::byte, 5> five{};
        auto res = co_await p.server.read_exact(five);
        REQUIRE_FALSE(res);
        CHECK(res.error() == evio::errc::eof);
        CHECK(res.transferred() == 3);
        CHECK(evio::test::text(std::span(five).first(3)) == "abc");
        auto end = co_await p.server.receive(); // the end of the stream stays the end
        REQUIRE(end);
        CHECK(end->empty());
    }());
    CHECK(r.receive_buffers().leased == 0);
    CHECK(r.receive_buffers().stashed == 0);
}

TEST_CASE("receive on a closed stream fails with closed and leases nothing") {
    evio::reactor r{opts()};
    evio::tcp_stream never_opened;
    auto p = evio::test::connected_pair(r);
    p.server.close();
    evio::sync_wait(r, [&]() -> evio::task<void> {
        auto a = co_await never_opened.receive();
        REQUIRE_FALSE(a);
        CHECK(a.error() == evio::errc::closed);
        auto b = co_await p.server.receive();
        REQUIRE_FALSE(b);
        CHECK(b.error() == evio::errc::closed);
    }());
    CHECK(r.receive_buffers().leased == 0);
}

TEST_CASE("reactor_options: receive buffer sizes out of range are refused with a clear error") {
    auto o = opts();
    o.receive_buffer_size = 0;
    CHECK_THROWS_AS(evio::reactor{o}, std::system_error);
    o = opts();
    o.receive_buffers_max = 0;
    try {
        evio::reactor bad{o};
        FAIL("accepted receive_buffers_max = 0");
    } catch (const std::system_error& e) {
        CHECK(e.code() == evio::errc::invalid_argument);
        CHECK(std::string(e.what()).find("receive_buffers_max") != std::string::npos);
    }
}
