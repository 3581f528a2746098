// SPDX-License-Identifier: MIT
// Conformance cases 2, 7, 8, 14, 15, 21: deregistration with operations pending or in flight.
#include "conformance/helpers.hpp"

#include <memory>

using namespace std::chrono_literals;
using evio::conf::op_record;
namespace conf = evio::conf;
namespace test = evio::test;

TEST_CASE("2: close with a read pending: the read completes once with operation_canceled") {
    evio::reactor r{test::options()};
    auto p = test::connected_pair(r);
    auto q = test::connected_pair(r);
    auto w = conf::make_adopted_pair(r);
    auto lis = test::listen_any(r);
    evio::tcp_stream accepted;
    op_record rp, rq, acc, wr, wrd;
    evio::spawn(r, conf::read_once(r, p.server, rp));
    evio::spawn(r, conf::read_once(r, q.server, rq));
    evio::spawn(r, conf::accept_once(r, lis, acc, accepted));
    // Both directions of one stream pending: w.server's path is full, so its write waits.
    conf::fill_send_buffer_stable(w.server.native_handle());
    evio::spawn(r, conf::write_once(r, w.server, wr));
    evio::spawn(r, conf::read_once(r, w.server, wrd));
    conf::idle_for(r, 30ms);
    REQUIRE(rp.resumed == 0);
    REQUIRE(rq.resumed == 0);
    REQUIRE(acc.resumed == 0);
    REQUIRE(wr.resumed == 0);
    REQUIRE(wrd.resumed == 0);
    REQUIRE(conf::interest_of(r, w.server.native_token()) ==
            (evio::detail::interest_write | evio::detail::interest_read));

    const auto w_token = w.server.native_token();
    p.server.close();
    w.server.close();
    lis.close();
    REQUIRE(test::run_until(
        r, [&] { return rp.resumed && acc.resumed && wr.resumed && wrd.resumed; }, 5s));
    CHECK(rp.resumed == 1);
    CHECK(rp.ec == evio::errc::operation_canceled);
    CHECK(acc.resumed == 1);
    CHECK(acc.ec == evio::errc::operation_canceled);
    CHECK(wr.resumed == 1);
    CHECK(wr.ec == evio::errc::operation_canceled);
    CHECK(wrd.resumed == 1);
    CHECK(wrd.ec == evio::errc::operation_canceled);
    CHECK_FALSE(r.core().table.find(w_token));

    // Never again, and nothing else was resumed: the other pair's peer sending later completes
    // only the other pair's read.
    conf::idle_for(r, 50ms);
    CHECK(rp.resumed == 1);
    CHECK(acc.resumed == 1);
    CHECK(wr.resumed == 1);
    CHECK(wrd.resumed == 1);
    CHECK(rq.resumed == 0);
    conf::raw_send(q.client.native_handle(), "q");
    REQUIRE(test::run_until(
        r, [&] { return rq.resumed == 1; }, 5s));
    CHECK(rq.data == "q");
    conf::idle_for(r, 20ms);
    CHECK(rp.resumed == 1);
    CHECK(r.core().pending_ops == 0);
}

namespace {

/// Closes `victim` from inside a coroutine (in a reactor turn), not from the test body.
evio::task<void> close_in_turn(evio::tcp_stream& victim, bool& done) {
    victim.close();
    done = true;
    co_return;
}

} // namespace

TEST_CASE("2: close from inside a turn with a read pending: canceled once, same semantics") {
    evio::reactor r{test::options()};
    for (int round = 0; round < 20; ++round) {
        auto p = test::connected_pair(r);
        op_record rp;
        bool closed = false;
        evio::spawn(r, conf::read_once(r, p.server, rp));
        r.run_once(0ms);
        r.run_once(0ms);
        evio::spawn(r, close_in_turn(p.server, closed));
        REQUIRE(test::run_until(
            r, [&] { return rp.resumed == 1; }, 5s));
        CHECK(closed);
        CHECK(rp.ec == evio::errc::operation_canceled);
        conf::idle_for(r, 5ms);
        CHECK(rp.resumed == 1);
    }
    REQUIRE(conf::settle_table(r));
    CHECK(r.core().table.live() == 0);
}

TEST_CASE("7: deregister with pending data or a pending connection: no completion for it; "
          "others and wake-ups still deliver") {
    evio::reactor r{test::options()};
    auto other = test::connected_pair(r);
    op_record other_rd;
    evio::spawn(r, conf::read_once(r, other.server, other_rd));
    r.poll();
    const int fds_before = conf::open_fd_count();

    SECTION("unread data, no operation pending") {
        auto p = test::connected_pair(r);
        conf::raw_send(p.client.native_handle(), "pending data");
        REQUIRE(conf::wait_readable(r, p.server, 12));
        r.poll(); // the readiness reaches the reactor: nothing waits for it
        p.server.close();
        // The peer keeps talking to the closed socket (it may already see the RST).
        (void)conf::try_send(p.client.native_handle(), "more");
        conf::idle_for(r, 50ms);
        CHECK(r.core().pending_ops == 1); // only `other`'s read
    }

    SECTION("a connection in the listener's backlog, no accept pending") {
        auto lis = test::listen_any(r);
        const conf::sock_t c = conf::new_socket();
        REQUIRE(conf::connect_loopback(c, lis.local_endpoint().value().port()));
        r.poll();
        lis.close();
        conf::idle_for(r, 50ms);
        CHECK(r.core().pending_ops == 1);
        conf::close_sock(c);
    }

    SECTION("an accept pending, its connection arrived but not delivered yet") {
        auto lis = test::listen_any(r);
        evio::tcp_stream accepted;
        op_record acc;
        evio::spawn(r, conf::accept_once(r, lis, acc, accepted));
        r.poll();
        r.poll();
        REQUIRE(acc.resumed == 0);
        const conf::sock_t c = conf::new_socket();
        REQUIRE(conf::connect_loopback(c, lis.local_endpoint().value().port()));
        lis.close(); // before any turn could deliver the connection
        REQUIRE(test::run_until(
            r, [&] { return acc.resumed == 1; }, 5s));
        CHECK(acc.ec == evio::errc::operation_canceled);
        CHECK_FALSE(accepted.is_open());
        conf::idle_for(r, 30ms);
        CHECK(acc.resumed == 1);
        conf::close_sock(c);
    }

    SECTION("a read pending, its data arrived but not delivered yet") {
        auto p = test::connected_pair(r);
        op_record rd;
        evio::spawn(r, conf::read_once(r, p.server, rd));
        r.poll();
        r.poll();
        REQUIRE(rd.resumed == 0);
        conf::raw_send(p.client.native_handle(), "too late");
        REQUIRE(conf::wait_readable(r, p.server, 1));
        p.server.close(); // before any turn could deliver the data
        REQUIRE(test::run_until(
            r, [&] { return rd.resumed == 1; }, 5s));
        CHECK(rd.ec == evio::errc::operation_canceled);
        CHECK(rd.data.empty());
        conf::idle_for(r, 30ms);
        CHECK(rd.resumed == 1);
    }

    // Every descriptor of the section is gone (an accepted-but-cancelled connection included).
    CHECK(conf::open_fd_count() <= fds_before + 1); // +1: a section's raw client may be open
    // The other token still delivers, and so does a wake-up from another thread.
    CHECK(other_rd.resumed == 0);
    conf::raw_send(other.client.native_handle(), "still here");
    REQUIRE(test::run_until(
        r, [&] { return other_rd.resumed == 1; }, 5s));
    CHECK(other_rd.data == "still here");
    const auto posted = conf::post_while_blocked(r, [] {});
    CHECK(posted.ran);
}

namespace {

evio::task<void> keep_sending(evio::reactor& r, evio::tcp_stream& s, const bool& stop,
                              int& writes) {
    std::vector<std::byte> chunk(256, std::byte{'s'});
    while (!stop) {
        auto w = co_await s.write_some(chunk);
        if (!w) co_return; // the peer is gone: connection_reset / broken_pipe
        ++writes;
        co_await evio::sleep_for(r, 1ms);
    }
}

} // namespace

TEST_CASE("8: deregister every token while peers keep sending: nothing is delivered to them") {
    evio::reactor r{test::options()};
    constexpr int n = 16;
    std::vector<test::stream_pair> pairs;
    pairs.reserve(n);
    for (int i = 0; i < n; ++i)
        pairs.push_back(test::connected_pair(r));
    std::vector<conf::loop_record> reads(n);
    std::vector<int> writes(n, 0);
    bool stop = false;
    for (int i = 0; i < n; ++i) {
        evio::spawn(r, conf::read_loop(pairs[i].server, reads[i]));
        evio::spawn(r, keep_sending(r, pairs[i].client, stop, writes[i]));
    }
    // Let data flow for a while: every reader keeps completing.
    REQUIRE(test::run_until(
        r,
        [&] {
            for (auto& rec : reads)
                if (rec.before_close < 3) return false;
            return true;
        },
        5s));

    // Deregister every server token from inside a turn while the peers keep sending.
    std::vector<evio::token> tokens;
    for (auto& p : pairs)
        tokens.push_back(p.server.native_token());
    bool closed_all = false;
    r.post([&] {
        for (int i = 0; i < n; ++i) {
            reads[i].closed = true;
            pairs[i].server.close();
        }
        closed_all = true;
    });
    REQUIRE(test::run_until(
        r,
        [&] {
            if (!closed_all) return false;
            for (auto& rec : reads)
                if (!rec.finished) return false;
            return true;
        },
        5s));
    conf::idle_for(r, 50ms); // the peers keep sending (until their writes fail)
    stop = true;
    conf::idle_for(r, 5ms);
    for (int i = 0; i < n; ++i) {
        INFO("pair " << i);
        CHECK_FALSE(r.core().table.find(tokens[i]));
        // Exactly one resumption after the close: the pending read, cancelled. No data.
        REQUIRE(reads[i].after.size() == 1);
        CHECK(reads[i].after[0] == evio::errc::operation_canceled);
        CHECK(reads[i].bytes_after == 0);
    }
    int total_writes = 0;
    for (int w : writes)
        total_writes += w;
    CHECK(total_writes > 0);
}

namespace {

/// RAII witness for case 14: counts destroyed frames.
struct frame_guard {
    int* destroyed;
    ~frame_guard() { ++*destroyed; }
};

struct destroy_counters {
    int destroyed = 0;
    int resumed = 0;
};

evio::task<void> guarded_read(evio::tcp_stream s, destroy_counters& c) {
    frame_guard g{&c.destroyed};
    std::array<std::byte, 64> buf{};
    (void)co_await s.read_some(buf);
    ++c.resumed;
}

evio::task<void> guarded_write(evio::tcp_stream s, destroy_counters& c) {
    frame_guard g{&c.destroyed};
    std::vector<std::byte> buf(4096, std::byte{'x'});
    (void)co_await s.write_some(buf); // the path is full: stays pending
    ++c.resumed;
}

evio::task<void> guarded_accept(evio::tcp_listener l, destroy_counters& c) {
    frame_guard g{&c.destroyed};
    auto s = co_await l.accept();
    ++c.resumed;
}

evio::task<void> guarded_sleep(evio::reactor& r, destroy_counters& c) {
    frame_guard g{&c.destroyed};
    co_await evio::sleep_for(r, std::chrono::hours(1));
    ++c.resumed;
}

evio::task<int> inner_read(evio::tcp_stream& s, destroy_counters& c) {
    frame_guard g{&c.destroyed};
    std::array<std::byte, 64> buf{};
    auto n = co_await s.read_some(buf);
    ++c.resumed;
    co_return n ? static_cast<int>(*n) : -1;
}

evio::task<void> guarded_nested(evio::tcp_stream s, destroy_counters& c) {
    frame_guard g{&c.destroyed};
    (void)co_await inner_read(s, c);
    ++c.resumed;
}

} // namespace

TEST_CASE("14: destroying the reactor destroys pending coroutine frames without resuming them") {
    const int fds_before = conf::open_fd_count();
    destroy_counters c;
    {
        evio::reactor r{test::options()};
        auto a = test::connected_pair(r);
        auto b = conf::make_adopted_pair(r);
        auto n = test::connected_pair(r);
        auto d = test::connected_pair(r);
        auto lis = test::listen_any(r);
        conf::fill_send_buffer_stable(b.server.native_handle());
        const conf::sock_t d_fd = d.server.native_handle();
        const evio::token d_tok = d.server.native_token();
        evio::spawn(r, guarded_read(std::move(a.server), c));
        evio::spawn(r, guarded_write(std::move(b.server), c));
        evio::spawn(r, guarded_accept(std::move(lis), c));
        evio::spawn(r, guarded_sleep(r, c));
        evio::spawn(r, guarded_nested(std::move(n.server), c));
        evio::spawn(r, guarded_read(std::move(d.server), c));
        conf::idle_for(r, 50ms);
        REQUIRE(c.resumed == 0);
        REQUIRE(c.destroyed == 0);
        REQUIRE(r.core().spawned == 6);
        // One read has data waiting in the kernel when the reactor dies (io_uring: the CQE may
        // already be on its way).
        conf::raw_send(d.client.native_handle(), "unread");
        REQUIRE(conf::wait_readable(r, d_tok, d_fd, 1));
        // The peers are closed before the reactor: no handle outlives it.
        a.client.close();
        conf::close_sock(std::exchange(b.peer, conf::no_sock));
        n.client.close();
        d.client.close();
    }                        // ~reactor
    CHECK(c.destroyed == 7); // six spawned frames plus the nested inner_read frame
    CHECK(c.resumed == 0);
    CHECK(conf::open_fd_count() == fds_before);
}

namespace {

struct chain {
    std::vector<std::unique_ptr<evio::tcp_stream>> servers;
    std::vector<evio::tcp_stream> clients;
    std::vector<op_record> recs;
};

/// Reads once; then, from inside this completion, closes AND destroys the next stream of the
/// chain (whose read is pending in another coroutine).
evio::task<void> read_then_kill_next(evio::reactor& r, chain& c, std::size_t i) {
    std::array<std::byte, 64> buf{};
    evio::tcp_stream& mine = *c.servers[i];
    auto res = co_await mine.read_some(buf);
    op_record& rec = c.recs[i];
    rec.turn = r.core().turn;
    ++rec.resumed;
    if (res) {
        rec.ok = true;
        rec.n = *res;
    } else {
        rec.ec = res.error();
    }
    // Our own stream may already be destroyed (by our predecessor): do not touch `mine`.
    const std::size_t next = i + 1;
    if (next < c.servers.size() && c.servers[next]) c.servers[next].reset();
}

} // namespace

TEST_CASE("15: closing a socket from inside another socket's completion: no deadlock, no "
          "use-after-free") {
    evio::reactor r{test::options()};
    constexpr std::size_t n = 24;
    chain c;
    c.recs.resize(n);
    for (std::size_t i = 0; i < n; ++i) {
        auto p = test::connected_pair(r);
        c.servers.push_back(std::make_unique<evio::tcp_stream>(std::move(p.server)));
        c.clients.push_back(std::move(p.client));
    }
    for (std::size_t i = 0; i < n; ++i)
        evio::spawn(r, read_then_kill_next(r, c, i));
    r.poll();
    r.poll();
    // The first read completes; its handler destroys stream 1, whose cancelled read's handler
    // destroys stream 2, and so on down the chain.
    conf::raw_send(c.clients[0].native_handle(), "go");
    REQUIRE(test::run_until(
        r, [&] { return c.recs[n - 1].resumed == 1; }, 5s));
    CHECK(c.recs[0].ok);
    CHECK(c.recs[0].n == 2);
    for (std::size_t i = 1; i < n; ++i) {
        INFO("stream " << i);
        CHECK(c.recs[i].resumed == 1);
        CHECK(c.recs[i].ec == evio::errc::operation_canceled);
        CHECK_FALSE(c.servers[i]);
    }
    conf::idle_for(r, 20ms);
    for (auto& rec : c.recs)
        CHECK(rec.resumed == 1);

    // Same from a write completion closing a stream with both directions pending.
    auto a = test::connected_pair(r);
    auto b = conf::make_adopted_pair(r);
    op_record b_read, b_write, a_write;
    conf::fill_send_buffer_stable(b.server.native_handle());
    evio::spawn(r, conf::read_once(r, b.server, b_read));
    evio::spawn(r, conf::write_once(r, b.server, b_write));
    auto closer = [&]() -> evio::task<void> {
        std::array<std::byte, 8> buf{};
        auto w = co_await a.server.write_some(buf);
        a_write.ok = static_cast<bool>(w);
        ++a_write.resumed;
        b.server.close();
    };
    conf::idle_for(r, 20ms);
    REQUIRE(b_read.resumed == 0);
    REQUIRE(b_write.resumed == 0);
    evio::spawn(r, closer);
    REQUIRE(test::run_until(
        r, [&] { return b_read.resumed && b_write.resumed; }, 5s));
    CHECK(a_write.ok);
    CHECK(b_read.ec == evio::errc::operation_canceled);
    CHECK(b_write.ec == evio::errc::operation_canceled);
    conf::idle_for(r, 20ms);
    CHECK(b_read.resumed == 1);
    CHECK(b_write.resumed == 1);

    // The reactor still works afterwards.
    op_record last;
    evio::spawn(r, conf::read_once(r, a.server, last));
    r.poll();
    conf::raw_send(a.client.native_handle(), "fine");
    REQUIRE(test::run_until(
        r, [&] { return last.resumed == 1; }, 5s));
    CHECK(last.data == "fine");
}

namespace {

struct batch_pair {
    evio::tcp_stream* streams[2];
    op_record recs[2];
    bool victim_closed[2] = {false, false};
    int first = -1;
    std::uint64_t close_turn = 0;
};

/// Reads once; the first of the two to complete closes the other, in the same turn.
evio::task<void> read_and_close_other(evio::reactor& r, batch_pair& b, int me) {
    std::array<std::byte, 64> buf{};
    auto res = co_await b.streams[me]->read_some(buf);
    op_record& rec = b.recs[me];
    rec.turn = r.core().turn;
    ++rec.resumed;
    if (res) {
        rec.ok = true;
        rec.n = *res;
        rec.data = evio::test::text(std::span<const std::byte>(buf.data(), *res));
    } else {
        rec.ec = res.error();
    }
    if (b.first < 0) {
        b.first = me;
        b.close_turn = r.core().turn;
        b.victim_closed[1 - me] = true;
        b.streams[1 - me]->close();
    }
}

} // namespace

TEST_CASE("21: deregister inside a batch: the victim's completion in the same batch is dropped") {
    evio::reactor r{test::options()};
    for (int round = 0; round < 30; ++round) {
        INFO("round " << round);
        auto x = test::connected_pair(r);
        auto y = test::connected_pair(r);
        batch_pair b;
        b.streams[0] = &x.server;
        b.streams[1] = &y.server;
        evio::spawn(r, read_and_close_other(r, b, 0));
        evio::spawn(r, read_and_close_other(r, b, 1));
        r.poll();
        r.poll(); // both reads are parked (epoll) / held by the kernel (io_uring)
        REQUIRE(b.recs[0].resumed + b.recs[1].resumed == 0);
        // Both become ready before the next turn: one batch holds both completions.
        conf::raw_send(x.client.native_handle(), "x");
        conf::raw_send(y.client.native_handle(), "y");
        REQUIRE(conf::wait_readable(r, x.server, 1));
        REQUIRE(conf::wait_readable(r, y.server, 1));
        r.run_once(1s);
        REQUIRE(b.first >= 0);
        const int winner = b.first;
        const int victim = 1 - winner;
        REQUIRE(test::run_until(
            r, [&] { return b.recs[victim].resumed > 0; }, 5s));
        conf::idle_for(r, 5ms);
        CHECK(b.recs[winner].resumed == 1);
        CHECK(b.recs[winner].ok);
        CHECK(b.recs[winner].data == (winner == 0 ? "x" : "y"));
        // The victim: resumed once, with its cancel result, never with the batch's data.
        INFO("victim result: " << (b.recs[victim].ok ? "data '" + b.recs[victim].data + "'"
                                                     : b.recs[victim].ec.message())
                               << ", closed in turn " << b.close_turn << ", victim resumed in turn "
                               << b.recs[victim].turn);
        CHECK(b.recs[victim].resumed == 1);
        CHECK(b.recs[victim].ec == evio::errc::operation_canceled);
        CHECK(b.recs[victim].data.empty());
        CHECK_FALSE(b.streams[victim]->is_open());
    }
    REQUIRE(conf::settle_table(r));
    CHECK(r.core().table.live() == 0);
}

TEST_CASE("21: deregister inside a batch: a completion already queued for the victim is dropped") {
    evio::reactor r{test::options()};
    for (int round = 0; round < 10; ++round) {
        INFO("round " << round);
        auto a = test::connected_pair(r);
        auto b = test::connected_pair(r);
        // B: a reader taking one byte per read while plenty is ready, so completions for B are
        // queued behind the turn's budget (epoll) or sit in the completion queue (io_uring).
        conf::loop_record b_loop;
        evio::spawn(r, conf::read_loop(b.server, b_loop, 1));
        op_record a_rec;
        auto a_reader = [&]() -> evio::task<void> {
            std::array<std::byte, 8> buf{};
            auto res = co_await a.server.read_some(buf);
            a_rec.ok = static_cast<bool>(res);
            ++a_rec.resumed;
            b_loop.closed = true;
            b.server.close();
        };
        evio::spawn(r, a_reader);
        r.poll();
        r.poll();
        conf::raw_send(b.client.native_handle(), std::string(200, 'b'));
        REQUIRE(conf::wait_readable(r, b.server, 200));
        r.run_once(1s); // B's reader runs and has more completions queued for it
        REQUIRE(b_loop.before_close > 0);
        REQUIRE_FALSE(b_loop.finished);
        conf::raw_send(a.client.native_handle(), "a");
        REQUIRE(conf::wait_readable(r, a.server, 1));
        REQUIRE(test::run_until(
            r, [&] { return b_loop.finished && a_rec.resumed == 1; }, 5s));
        conf::idle_for(r, 5ms);
        CHECK(a_rec.ok);
        // After the close, B's reader resumes exactly once, cancelled, with no data.
        INFO("after the close B saw "
             << b_loop.after.size() << " results, first: "
             << (b_loop.after.empty() ? std::string("none") : b_loop.after[0].message())
             << ", bytes " << b_loop.bytes_after);
        REQUIRE(b_loop.after.size() == 1);
        CHECK(b_loop.after[0] == evio::errc::operation_canceled);
        CHECK(b_loop.bytes_after == 0);
    }
}

namespace {

struct accept_loop_record {
    bool closed = false;
    bool finished = false;
    int before_close = 0;
    std::vector<std::error_code> after; ///< results after the close (success: empty code)
};

evio::task<void> accept_loop(evio::tcp_listener& lis, accept_loop_record& rec,
                             std::vector<evio::tcp_stream>& keep) {
    for (;;) {
        auto s = co_await lis.accept();
        if (rec.closed) rec.after.push_back(s ? std::error_code{} : s.error());
        else ++rec.before_close;
        if (!s) break;
        keep.push_back(std::move(*s));
    }
    rec.finished = true;
}

} // namespace

TEST_CASE("21: deregister inside a batch: an accept completion already queued for a closed "
          "listener is dropped") {
    evio::reactor r{test::options()};
    for (int round = 0; round < 5; ++round) {
        INFO("round " << round);
        auto lis = test::listen_any(r);
        const auto port = lis.local_endpoint().value().port();
        std::vector<conf::sock_t> clients;
        const auto connect_one = [&] {
            clients.push_back(conf::new_socket());
            REQUIRE(conf::connect_loopback(clients.back(), port));
        };
        // One accept first (io_uring: this arms the listener's multishot accept).
        evio::tcp_stream first;
        op_record first_rec;
        evio::spawn(r, conf::accept_once(r, lis, first_rec, first));
        r.poll();
        connect_one();
        REQUIRE(test::run_until(
            r, [&] { return first_rec.resumed == 1; }, 5s));
        // Many connections wait while nobody accepts (kernel backlog, or the backend's stash).
        for (int i = 0; i < 48; ++i)
            connect_one();
        conf::idle_for(r, 20ms);

        auto a = test::connected_pair(r);
        std::vector<evio::tcp_stream> keep;
        accept_loop_record rec;
        op_record a_rec;
        auto a_reader = [&]() -> evio::task<void> {
            std::array<std::byte, 8> buf{};
            auto res = co_await a.server.read_some(buf);
            a_rec.ok = static_cast<bool>(res);
            ++a_rec.resumed;
            rec.closed = true;
            lis.close();
        };
        evio::spawn(r, a_reader);
        r.poll();
        r.poll();
        // The accept loop takes connections as fast as it can in one turn; more completions
        // are queued behind the turn's budget. Readiness backends (and io_uring's multishot
        // stash) deliver in the first turn. An AcceptEx completes through the port even with
        // connections waiting (Windows may finish it at once, Wine never does), so on iocp the
        // first accept may need a later turn: run until it came, then stop turning.
        evio::spawn(r, accept_loop(lis, rec, keep));
        if (conf::on_iocp())
            REQUIRE(test::run_until(
                r, [&] { return rec.before_close > 0; }, 5s));
        else r.poll();
        REQUIRE(rec.before_close > 0);
        REQUIRE_FALSE(rec.finished);
        conf::raw_send(a.client.native_handle(), "a");
        REQUIRE(conf::wait_readable(r, a.server, 1));
        REQUIRE(test::run_until(
            r, [&] { return rec.finished && a_rec.resumed == 1; }, 5s));
        INFO("accepted before the close: "
             << rec.before_close << ", results after: " << rec.after.size()
             << ", first: " << (rec.after.empty() ? std::string("none") : rec.after[0].message()));
        // After the close, the loop's pending accept resumes exactly once, cancelled.
        REQUIRE(rec.after.size() == 1);
        CHECK(rec.after[0] == evio::errc::operation_canceled);
        for (const conf::sock_t fd : clients)
            conf::close_sock(fd);
    }
}
