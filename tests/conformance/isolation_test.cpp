// SPDX-License-Identifier: MIT
// Conformance cases 18, 19, 20, 22, 24: what happens to one token never leaks into another.
#include "conformance/helpers.hpp"

#include <memory>
#include <random>

#if !EVIO_PLATFORM_WINDOWS
#include <fcntl.h>
#endif

using namespace std::chrono_literals;
using evio::conf::op_record;
namespace conf = evio::conf;
namespace test = evio::test;
constexpr auto rd_bit = evio::detail::interest_read;
constexpr auto wr_bit = evio::detail::interest_write;

namespace {

/// Fisher-Yates with a fixed generator: the same order on every standard library.
template <class T>
void shuffle_fixed(std::vector<T>& v, std::uint32_t seed) {
    std::mt19937 rng(seed);
    for (std::size_t i = v.size(); i > 1; --i)
        std::swap(v[i - 1], v[rng() % i]);
}

struct matrix_entry {
    evio::tcp_stream s;
    conf::sock_t peer = conf::no_sock;
    std::uint8_t mode = 0; ///< interest bits this entry waits on
    evio::token tok{};
    op_record rd, wr;
    bool closed = false;
};

} // namespace

TEST_CASE("18: isolation matrix: more than 64 sockets, random closes, survivors unchanged") {
    evio::reactor r{test::options()};
    conf::raw_listener lis(4096);
    constexpr int n = 96;
    std::vector<std::unique_ptr<matrix_entry>> es;
    for (int i = 0; i < n; ++i) {
        auto e = std::make_unique<matrix_entry>();
        const auto raw = conf::make_raw_pair(lis, 4096);
        e->peer = raw.client;
        e->s = conf::adopt(r, raw.server);
        e->tok = e->s.native_token();
        const int m = i % 3;
        e->mode = m == 0 ? rd_bit : m == 1 ? wr_bit : (rd_bit | wr_bit);
        if (e->mode & wr_bit) REQUIRE(conf::fill_send_buffer_stable(raw.server) > 0);
        if (e->mode & rd_bit) evio::spawn(r, conf::read_once(r, e->s, e->rd));
        if (e->mode & wr_bit) evio::spawn(r, conf::write_once(r, e->s, e->wr, 4096));
        es.push_back(std::move(e));
    }
    // Every op is pending (parked / held by the kernel), none completed.
    REQUIRE(test::run_until(
        r,
        [&] {
            for (auto& e : es)
                if (conf::interest_of(r, e->tok) != e->mode) return false;
            return true;
        },
        5s));
    conf::idle_for(r, 30ms);
    for (auto& e : es) {
        REQUIRE(e->rd.resumed == 0);
        REQUIRE(e->wr.resumed == 0);
    }
    std::vector<evio::detail::slot_snapshot> before(n);
    for (int i = 0; i < n; ++i)
        before[i] = r.core().table.snapshot(es[i]->tok.index);

    std::vector<int> order(n);
    for (int i = 0; i < n; ++i)
        order[i] = i;
    shuffle_fixed(order, 0xE7105EEDu);
    const std::vector<int> victims(order.begin(), order.begin() + n * 3 / 8);

    const auto survivors_unchanged = [&] {
        for (int i = 0; i < n; ++i) {
            auto& e = *es[i];
            if (e.closed) continue;
            INFO("survivor " << i);
            const evio::detail::slot* sl = r.core().table.find(e.tok);
            REQUIRE(sl != nullptr);
            CHECK(sl->interest == e.mode);
            CHECK(sl->interest == before[i].interest);
            CHECK(sl->handle == before[i].handle);
            CHECK(sl->generation == before[i].generation);
            CHECK(sl->in_flight == before[i].in_flight);
            CHECK(e.rd.resumed == 0);
            CHECK(e.wr.resumed == 0);
        }
    };

    int blocked_closes = 0;
    for (std::size_t k = 0; k < victims.size(); ++k) {
        auto& e = *es[victims[k]];
        INFO("victim " << victims[k] << " closed by way " << k % 3);
        const auto do_close = [&e] {
            e.closed = true;
            e.s.close();
        };
        switch (k % 3) {
        case 0: // between turns, from the test body
            do_close();
            break;
        case 1: // inside a turn
            r.post(do_close);
            r.poll();
            break;
        default: { // posted from another thread while the reactor is blocked in its wait
            const auto res = conf::post_while_blocked(r, do_close);
            REQUIRE(res.ran);
            blocked_closes += res.saw_blocked ? 1 : 0;
            break;
        }
        }
        REQUIRE(e.closed);
        survivors_unchanged();
        r.poll();
        survivors_unchanged();
    }
    CHECK(blocked_closes > 0);

    // Every victim's pending ops resumed exactly once, cancelled.
    REQUIRE(test::run_until(
        r,
        [&] {
            for (int v : victims) {
                auto& e = *es[v];
                if ((e.mode & rd_bit) && e.rd.resumed == 0) return false;
                if ((e.mode & wr_bit) && e.wr.resumed == 0) return false;
            }
            return true;
        },
        5s));
    conf::idle_for(r, 20ms);
    for (int v : victims) {
        auto& e = *es[v];
        INFO("victim " << v);
        CHECK_FALSE(r.core().table.find(e.tok));
        if (e.mode & rd_bit) {
            CHECK(e.rd.resumed == 1);
            CHECK(e.rd.ec == evio::errc::operation_canceled);
        }
        if (e.mode & wr_bit) {
            CHECK(e.wr.resumed == 1);
            CHECK(e.wr.ec == evio::errc::operation_canceled);
        }
    }
    survivors_unchanged();

    // Each survivor still completes its own read when its peer sends, and its write when its
    // peer drains.
    for (int i = 0; i < n; ++i) {
        auto& e = *es[i];
        if (!e.closed && (e.mode & rd_bit)) conf::raw_send(e.peer, "s" + std::to_string(i));
    }
    REQUIRE(test::run_until(
        r,
        [&] {
            bool all = true;
            for (auto& e : es) {
                if (e->closed) continue;
                if (e->mode & wr_bit) conf::drain(e->peer);
                if ((e->mode & rd_bit) && e->rd.resumed == 0) all = false;
                if ((e->mode & wr_bit) && e->wr.resumed == 0) all = false;
            }
            return all;
        },
        5s));
    for (int i = 0; i < n; ++i) {
        auto& e = *es[i];
        if (e.closed) continue;
        INFO("survivor " << i);
        if (e.mode & rd_bit) {
            CHECK(e.rd.resumed == 1);
            CHECK(e.rd.data == "s" + std::to_string(i));
        }
        if (e.mode & wr_bit) {
            CHECK(e.wr.resumed == 1);
            CHECK(e.wr.ok);
        }
    }
    for (auto& e : es) {
        e->s.close();
        conf::close_sock(e->peer);
    }
}

TEST_CASE("19: token reuse: A's late completion never reaches B, which reuses A's slot") {
    evio::reactor r{test::options()};
    conf::raw_listener lis;
    int reused = 0;
    for (int round = 0; round < 40; ++round) {
        INFO("round " << round);
        const bool late_data = round % 2 == 0;
        auto a_raw = conf::make_raw_pair(lis);
        evio::tcp_stream a = conf::adopt(r, a_raw.server);
        op_record ra;
        evio::spawn(r, conf::read_once(r, a, ra));
        r.poll();
        r.poll();
        REQUIRE(ra.resumed == 0);
        if (late_data) { // A's read may already be complete in the kernel when A is closed
            conf::raw_send(a_raw.client, "A-late");
            REQUIRE(conf::wait_readable(r, a, 6));
        }
        const evio::token ta = a.native_token();
        a.close();
        CHECK_FALSE(r.core().table.find(ta));

        // B is registered at once; C right after A's waiter resumed (A's slot is free by then
        // on every backend). One of them takes A's slot: LIFO reuse.
        auto b_raw = conf::make_raw_pair(lis);
        evio::tcp_stream b = conf::adopt(r, b_raw.server);
        const evio::token tb = b.native_token();
        op_record rb;
        evio::spawn(r, conf::read_once(r, b, rb));
        REQUIRE(test::run_until(
            r, [&] { return ra.resumed > 0; }, 5s));
        auto c_raw = conf::make_raw_pair(lis);
        evio::tcp_stream c = conf::adopt(r, c_raw.server);
        const evio::token tc = c.native_token();
        op_record rc;
        evio::spawn(r, conf::read_once(r, c, rc));
        const bool b_reuses = tb.index == ta.index;
        const bool c_reuses = tc.index == ta.index;
        CHECK((b_reuses || c_reuses));
        if (b_reuses) CHECK(tb.generation != ta.generation);
        if (c_reuses) CHECK(tc.generation != ta.generation);
        reused += (b_reuses || c_reuses) ? 1 : 0;

        // A's late completion has been delivered to A (once) and to nobody else.
        conf::idle_for(r, 10ms);
        CHECK(ra.resumed == 1);
        if (ra.ok) {
            CHECK(late_data);
            CHECK(ra.data == "A-late");
        } else {
            CHECK(ra.ec == evio::errc::operation_canceled);
        }
        CHECK(rb.resumed == 0);
        CHECK(rc.resumed == 0);
        CHECK(conf::interest_of(r, tb) == rd_bit);
        CHECK(conf::interest_of(r, tc) == rd_bit);

        // B's and C's first completions are their own.
        conf::raw_send(b_raw.client, "B");
        conf::raw_send(c_raw.client, "C");
        REQUIRE(test::run_until(
            r, [&] { return rb.resumed && rc.resumed; }, 5s));
        CHECK(rb.data == "B");
        CHECK(rc.data == "C");
        conf::idle_for(r, 5ms);
        CHECK(ra.resumed == 1);
        CHECK(rb.resumed == 1);
        CHECK(rc.resumed == 1);
        b.close();
        c.close();
        conf::close_sock(a_raw.client);
        conf::close_sock(b_raw.client);
        conf::close_sock(c_raw.client);
    }
    CHECK(reused == 40);
}

TEST_CASE("20: fd reuse: A's late cancel never removes or alters B, which got A's fd number") {
    evio::reactor r{test::options()};
    conf::raw_listener lis;
    for (int round = 0; round < 30; ++round) {
        INFO("round " << round);
        auto a_raw = conf::make_raw_pair(lis);
        evio::tcp_stream a = conf::adopt(r, a_raw.server);
        op_record ra;
        evio::spawn(r, conf::read_once(r, a, ra));
        r.poll();
        r.poll();
        REQUIRE(ra.resumed == 0);
        const conf::sock_t fa = a.native_handle();
        a.close(); // io_uring: the cancel is queued, the kernel still holds A's read

        // Open sockets until the OS hands out A's descriptor number (Windows, Wine: handle
        // values of closed sockets are reused at once too).
        std::vector<conf::sock_t> others;
        conf::sock_t bfd = conf::no_sock;
        for (int k = 0; k < 64 && bfd == conf::no_sock; ++k) {
            const conf::sock_t fd = conf::new_socket();
            if (fd == fa) bfd = fd;
            else others.push_back(fd);
        }
        REQUIRE(bfd == fa);
        const auto [b_peer_srv, b_fd] = lis.connect_and_accept(bfd);
        REQUIRE(b_fd == fa);
        evio::tcp_stream b = conf::adopt(r, b_fd);
        const evio::token tb = b.native_token();
        op_record rb;
        evio::spawn(r, conf::read_once(r, b, rb));

        // A's late cancel completion arrives now (io_uring: after B's read was submitted).
        REQUIRE(test::run_until(
            r, [&] { return ra.resumed > 0; }, 5s));
        conf::idle_for(r, 10ms);
        CHECK(ra.resumed == 1);
        CHECK(ra.ec == evio::errc::operation_canceled);
        const evio::detail::slot* sb = r.core().table.find(tb);
        REQUIRE(sb != nullptr);
        CHECK(sb->handle == fa);
        CHECK(sb->interest == rd_bit);
        CHECK(rb.resumed == 0);

        // B still receives: its registration was neither removed nor altered.
        conf::raw_send(b_peer_srv, "mine");
        REQUIRE(test::run_until(
            r, [&] { return rb.resumed == 1; }, 5s));
        CHECK(rb.data == "mine");
        op_record wb;
        evio::spawn(r, conf::write_text(b, "reply", wb));
        REQUIRE(test::run_until(
            r, [&] { return wb.resumed == 1; }, 5s));
        CHECK(wb.ok);
        REQUIRE(conf::wait_readable(b_peer_srv, 5));
        CHECK(conf::raw_recv_text(b_peer_srv) == "reply");
        b.close();
        conf::close_sock(b_peer_srv);
        conf::close_sock(a_raw.client);
        for (const conf::sock_t fd : others)
            conf::close_sock(fd);
    }
}

namespace {

/// True once the RST reached `s`: the kernel moved its connection to CLOSED (Linux), or the
/// read pending on it finished in the kernel (IOCP: it failed there; the packet is queued).
bool rst_arrived(evio::reactor& r, const evio::tcp_stream& s) {
#if EVIO_PLATFORM_WINDOWS
    return conf::wait_kernel_done(r, s.native_token(), 0ms);
#else
    (void)r;
    tcp_info ti{};
    socklen_t len = sizeof ti;
    return ::getsockopt(s.native_handle(), IPPROTO_TCP, TCP_INFO, &ti, &len) == 0 &&
           ti.tcpi_state == TCP_CLOSE;
#endif
}

} // namespace

TEST_CASE("22: error isolation: one token's failure does not hold back the others") {
    evio::reactor r{test::options()};
    constexpr int n = 8;
    std::vector<test::stream_pair> good;
    for (int i = 0; i < n; ++i)
        good.push_back(test::connected_pair(r));
    auto bad = test::connected_pair(r);
    std::vector<op_record> recs(n);
    for (int i = 0; i < n; ++i)
        evio::spawn(r, conf::read_once(r, good[i].server, recs[i]));
    op_record bad_rec;

    SECTION("the failing read is in the same batch (the peer reset)") {
        evio::spawn(r, conf::read_once(r, bad.server, bad_rec));
        r.poll();
        r.poll();
        for (int i = 0; i < n; ++i)
            conf::raw_send(good[i].client.native_handle(), "g" + std::to_string(i));
        test::reset_and_close(bad.client);
        for (int i = 0; i < n; ++i)
            REQUIRE(conf::wait_readable(r, good[i].server, 2));
        const auto end = std::chrono::steady_clock::now() + 2s;
        while (!rst_arrived(r, bad.server) && std::chrono::steady_clock::now() < end)
            std::this_thread::yield();
        REQUIRE(rst_arrived(r, bad.server));
        r.run_once(1s); // one turn: every completion is ready
        int delivered = 0;
        for (auto& rec : recs)
            delivered += rec.resumed;
        CHECK(delivered + bad_rec.resumed == n + 1);
        REQUIRE(test::run_until(
            r,
            [&] {
                for (auto& rec : recs)
                    if (!rec.resumed) return false;
                return bad_rec.resumed == 1;
            },
            5s));
        CHECK(bad_rec.ec == evio::errc::connection_reset);
    }

    SECTION("the failing read's handle was replaced behind evio's back (not a socket)") {
#if EVIO_PLATFORM_WINDOWS
        // No dup2 on Windows: a handle value cannot be pointed at another object. The closest
        // real case is a socket closed behind evio's back: its handle names no socket any
        // more (WSAENOTSOCK), and nothing reuses the value before bad.server.close() below.
        REQUIRE(::closesocket(static_cast<SOCKET>(bad.server.native_handle())) == 0);
#else
        const int devnull = ::open("/dev/null", O_RDWR | O_CLOEXEC);
        REQUIRE(devnull >= 0);
        REQUIRE(::dup2(devnull, bad.server.native_handle()) == bad.server.native_handle());
        ::close(devnull);
#endif
        r.poll();
        r.poll();
        for (int i = 0; i < n; ++i)
            conf::raw_send(good[i].client.native_handle(), "g" + std::to_string(i));
        for (int i = 0; i < n; ++i)
            REQUIRE(conf::wait_readable(r, good[i].server, 2));
        // The bad read starts in the same turn that delivers the good completions.
        evio::spawn(r, conf::read_once(r, bad.server, bad_rec));
        REQUIRE(test::run_until(
            r,
            [&] {
                for (auto& rec : recs)
                    if (!rec.resumed) return false;
                return bad_rec.resumed == 1;
            },
            5s));
        CHECK_FALSE(bad_rec.ok);
#if EVIO_PLATFORM_WINDOWS
        CHECK(bad_rec.ec == evio::errc::closed); // WSAENOTSOCK (detail/iocp/errors.hpp)
#else
        CHECK(bad_rec.ec == std::errc::not_a_socket);
#endif
    }

    SECTION("the failing op is a write on a socket shut down behind evio's back") {
#if EVIO_PLATFORM_WINDOWS
        REQUIRE(::shutdown(static_cast<SOCKET>(bad.server.native_handle()), SD_SEND) == 0);
#else
        REQUIRE(::shutdown(bad.server.native_handle(), SHUT_WR) == 0);
#endif
        r.poll();
        r.poll();
        for (int i = 0; i < n; ++i)
            conf::raw_send(good[i].client.native_handle(), "g" + std::to_string(i));
        for (int i = 0; i < n; ++i)
            REQUIRE(conf::wait_readable(r, good[i].server, 2));
        evio::spawn(r, conf::write_once(r, bad.server, bad_rec, 64));
        REQUIRE(test::run_until(
            r,
            [&] {
                for (auto& rec : recs)
                    if (!rec.resumed) return false;
                return bad_rec.resumed == 1;
            },
            5s));
        CHECK_FALSE(bad_rec.ok);
        CHECK(bad_rec.ec == evio::errc::broken_pipe);
    }

    for (int i = 0; i < n; ++i) {
        INFO("good " << i);
        CHECK(recs[i].resumed == 1);
        CHECK(recs[i].data == "g" + std::to_string(i));
    }
    // The failing token is still registered and can be closed normally; the others still work.
    bad.server.close();
    op_record again;
    evio::spawn(r, conf::read_once(r, good[0].server, again));
    r.poll();
    conf::raw_send(good[0].client.native_handle(), "again");
    REQUIRE(test::run_until(
        r, [&] { return again.resumed == 1; }, 5s));
    CHECK(again.data == "again");
}

namespace {

/// A second handle to the same socket: dup(2), or WSADuplicateSocket + WSASocket (the Windows
/// way to share one socket between handles).
conf::sock_t duplicate(conf::sock_t s) {
#if EVIO_PLATFORM_WINDOWS
    WSAPROTOCOL_INFOW info{};
    if (::WSADuplicateSocketW(static_cast<SOCKET>(s), ::GetCurrentProcessId(), &info) != 0)
        return conf::no_sock;
    const SOCKET d = ::WSASocketW(FROM_PROTOCOL_INFO, FROM_PROTOCOL_INFO, FROM_PROTOCOL_INFO, &info,
                                  0, WSA_FLAG_OVERLAPPED);
    return d == INVALID_SOCKET ? conf::no_sock : static_cast<conf::sock_t>(d);
#else
    return ::dup(s);
#endif
}

} // namespace

TEST_CASE("24: a duplicated handle registered twice: closing one never disturbs the other") {
    evio::reactor r{test::options()};
    for (const bool close_original : {true, false}) {
        INFO((close_original ? "close the original" : "close the duplicate"));
        const auto raw = conf::make_raw_pair();
        evio::tcp_stream s1 = conf::adopt(r, raw.server);
        const conf::sock_t d = duplicate(raw.server);
        REQUIRE(d != conf::no_sock);
        auto t2 = r.register_handle(d);
        if (!t2) { // rejecting the duplicate is allowed; the original must be unaffected
            // (IOCP: one kernel object keeps its first completion port association)
            conf::close_sock(d);
            op_record rd;
            evio::spawn(r, conf::read_once(r, s1, rd));
            r.poll();
            conf::raw_send(raw.client, "x");
            REQUIRE(test::run_until(
                r, [&] { return rd.resumed == 1; }, 5s));
            CHECK(rd.data == "x");
            s1.close();
            conf::close_sock(raw.client);
            continue;
        }
        evio::tcp_stream s2(r, d, *t2);
        evio::tcp_stream& gone = close_original ? s1 : s2;
        evio::tcp_stream& kept = close_original ? s2 : s1;
        const evio::token kept_tok = kept.native_token();
        op_record rg, rk;
        evio::spawn(r, conf::read_once(r, gone, rg));
        evio::spawn(r, conf::read_once(r, kept, rk));
        r.poll();
        r.poll();
        REQUIRE(conf::interest_of(r, kept_tok) == rd_bit);

        gone.close();
        REQUIRE(test::run_until(
            r, [&] { return rg.resumed == 1; }, 5s));
        CHECK(rg.ec == evio::errc::operation_canceled);
        CHECK(rk.resumed == 0);
        CHECK(conf::interest_of(r, kept_tok) == rd_bit);

        // The kept registration still reads and writes; the closed one never hears of it.
        conf::raw_send(raw.client, "dup");
        REQUIRE(test::run_until(
            r, [&] { return rk.resumed == 1; }, 5s));
        CHECK(rk.data == "dup");
        op_record rk2;
        evio::spawn(r, conf::read_once(r, kept, rk2));
        r.poll();
        conf::raw_send(raw.client, "twice");
        REQUIRE(test::run_until(
            r, [&] { return rk2.resumed == 1; }, 5s));
        CHECK(rk2.data == "twice");
        op_record wk;
        evio::spawn(r, conf::write_text(kept, "out", wk));
        REQUIRE(test::run_until(
            r, [&] { return wk.resumed == 1; }, 5s));
        CHECK(wk.ok);
        REQUIRE(conf::wait_readable(raw.client, 3));
        CHECK(conf::raw_recv_text(raw.client) == "out");
        conf::idle_for(r, 10ms);
        CHECK(rg.resumed == 1);

        // Closing the second one as well ends the connection: the peer sees end of stream.
        kept.close();
        CHECK(conf::recv_result(raw.client) == 0);
        conf::close_sock(raw.client);
    }
    REQUIRE(conf::settle_table(r));
    CHECK(r.core().table.live() == 0);
}
