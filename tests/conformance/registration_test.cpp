// SPDX-License-Identifier: MIT
// Conformance cases 1, 3, 4, 5, 9, 12: registration lifecycle, contracts on misuse, no leaks.
#include "conformance/helpers.hpp"

#include <array>
#include <memory>

using namespace std::chrono_literals;
using evio::conf::op_record;
namespace conf = evio::conf;
namespace test = evio::test;

TEST_CASE("1: a registered socket with no activity produces no completion; a pending read stays "
          "pending") {
    evio::reactor r{test::options()};
    auto p = test::connected_pair(r);
    auto lis = test::listen_any(r);
    evio::tcp_stream accepted;
    op_record rd, acc;
    evio::spawn(r, conf::read_once(r, p.server, rd));
    evio::spawn(r, conf::accept_once(r, lis, acc, accepted));

    conf::idle_for(r, 100ms); // deliberate quiet period: nothing may complete
    CHECK(rd.resumed == 0);
    CHECK(acc.resumed == 0);
    CHECK(conf::interest_of(r, p.server.native_token()) == evio::detail::interest_read);
    CHECK(conf::interest_of(r, lis.native_token()) == evio::detail::interest_read);
    CHECK(conf::interest_of(r, p.client.native_token()) == evio::detail::interest_none);

    // Zero-timeout turns do not invent completions either.
    for (int i = 0; i < 20; ++i)
        r.poll();
    CHECK(rd.resumed == 0);
    CHECK(acc.resumed == 0);

    // The read was really pending (not lost): activity completes it, exactly once.
    conf::raw_send(p.client.native_handle(), "wake");
    REQUIRE(test::run_until(
        r, [&] { return rd.resumed == 1; }, 5s));
    CHECK(rd.ok);
    CHECK(rd.data == "wake");
    CHECK(acc.resumed == 0);
    conf::idle_for(r, 30ms);
    CHECK(rd.resumed == 1);
    CHECK(conf::interest_of(r, p.server.native_token()) == evio::detail::interest_none);
}

TEST_CASE("3: register, deregister, register again on the same reactor") {
    evio::reactor r{test::options()};
    auto raw = conf::make_raw_pair();
    const std::size_t live_before = r.core().table.live();

    evio::token first{};
    evio::token last{};
    for (int round = 0; round < 50; ++round) {
        const auto t = r.register_handle(raw.server);
        REQUIRE(t.has_value());
        if (round == 0) first = *t;
        if (round > 0) {
            // LIFO reuse: the same slot, a newer generation.
            CHECK(t->index == last.index);
            CHECK(t->generation != last.generation);
            CHECK_FALSE(r.core().table.find(last));
        }
        CHECK(r.core().table.find(*t) != nullptr);
        last = *t;
        r.deregister(*t, false); // keep the fd: it is registered again next round
        CHECK_FALSE(r.core().table.find(*t));
    }
    CHECK(r.core().table.live() == live_before);

    // The final registration is fully usable in both directions.
    evio::tcp_stream s = conf::adopt(r, raw.server);
    CHECK(s.native_token().index == first.index);
    op_record rd;
    evio::spawn(r, conf::read_once(r, s, rd));
    r.poll();
    conf::raw_send(raw.client, "again");
    REQUIRE(test::run_until(
        r, [&] { return rd.resumed == 1; }, 5s));
    CHECK(rd.data == "again");

    op_record wr;
    evio::spawn(r, conf::write_text(s, "back", wr));
    REQUIRE(test::run_until(
        r, [&] { return wr.resumed == 1; }, 5s));
    CHECK(wr.ok);
    REQUIRE(conf::wait_readable(raw.client, 4));
    CHECK(conf::raw_recv_text(raw.client) == "back");

    // A listener closed and bound again on the same port works too.
    auto lis = test::listen_any(r);
    const auto ep = lis.local_endpoint().value();
    lis.close();
    auto again = evio::tcp_listener::bind(r, ep);
    REQUIRE(again.has_value());
    evio::tcp_stream acc_stream;
    op_record acc;
    evio::spawn(r, conf::accept_once(r, *again, acc, acc_stream));
    const conf::sock_t c = conf::new_socket();
    REQUIRE(conf::connect_loopback(c, ep.port()));
    REQUIRE(test::run_until(
        r, [&] { return acc.resumed == 1; }, 5s));
    CHECK(acc.ok);
    conf::close_sock(c);
    s.close();
    conf::close_sock(raw.client);
}

TEST_CASE("4: double deregistration and operations on stale tokens are contract violations") {
    evio::reactor r{test::options()};
    test::throwing_contracts contracts;

    SECTION("deregister twice: deregister.twice") {
        auto raw = conf::make_raw_pair();
        const auto t = r.register_handle(raw.server).value();
        r.deregister(t); // closes raw.server
        CHECK(conf::contract_id_of([&] { r.deregister(t); }) == "deregister.twice");
        CHECK(r.core().table.live() == 0);
        conf::close_sock(raw.client);
    }

    SECTION("deregister a token whose slot was reused: deregister.stale") {
        auto a = conf::make_raw_pair();
        auto b = conf::make_raw_pair();
        const auto ta = r.register_handle(a.server).value();
        r.deregister(ta, false);
        const auto tb = r.register_handle(b.server).value(); // reuses ta's slot (LIFO)
        REQUIRE(tb.index == ta.index);
        CHECK(conf::contract_id_of([&] { r.deregister(ta); }) == "deregister.stale");
        // B is untouched by the rejected call.
        REQUIRE(r.core().table.find(tb) != nullptr);
        CHECK(r.core().table.find(tb)->handle == b.server);
        CHECK(r.core().table.find(tb)->state == evio::detail::slot_state::registered);
        r.deregister(tb);
        // Two generations later, with the slot free again: still stale (not "twice").
        CHECK(conf::contract_id_of([&] { r.deregister(ta); }) == "deregister.stale");
        // An index the table never handed out.
        CHECK(conf::contract_id_of([&] {
                  r.deregister(evio::token{4'000'000, 1, r.id()});
              }) == "deregister.stale");
        conf::close_sock(a.server);
        conf::close_sock(a.client);
        conf::close_sock(b.client);
    }

    SECTION("an operation on a stream built from a stale token: op.stale_token") {
        auto p = test::connected_pair(r);
        const auto stale = p.server.native_token();
        const conf::sock_t fd = p.server.native_handle();
        p.server.close();
        // The stream would deregister its (stale) token in its noexcept destructor: never run it.
        conf::no_destroy<evio::tcp_stream> s(r, fd, stale);
        auto body = [&]() -> evio::task<void> {
            std::array<std::byte, 16> buf{};
            (void)co_await s->read_some(buf);
        };
        CHECK(conf::contract_id_of([&] { evio::sync_wait(r, body()); }) == "op.stale_token");
        auto write_body = [&]() -> evio::task<void> {
            std::array<std::byte, 4> buf{};
            (void)co_await s->write_some(buf);
        };
        CHECK(conf::contract_id_of([&] { evio::sync_wait(r, write_body()); }) == "op.stale_token");
        // The raw awaitable with the stale token, as the contract program does.
        auto raw_body = [&]() -> evio::task<void> {
            std::array<std::byte, 16> buf{};
            (void)co_await evio::read_some_op(&r, stale, buf);
        };
        CHECK(conf::contract_id_of([&] { evio::sync_wait(r, raw_body()); }) == "op.stale_token");
        REQUIRE(conf::settle_table(r));
        CHECK(r.core().table.live() == 1); // p.client
    }

    SECTION("the reactor still works after rejected calls") {
        auto raw = conf::make_raw_pair();
        const auto t = r.register_handle(raw.server).value();
        r.deregister(t, false);
        CHECK(conf::contract_id_of([&] { r.deregister(t); }) == "deregister.twice");
        evio::tcp_stream s = conf::adopt(r, raw.server);
        op_record rd;
        evio::spawn(r, conf::read_once(r, s, rd));
        r.poll();
        conf::raw_send(raw.client, "ok");
        REQUIRE(test::run_until(
            r, [&] { return rd.resumed == 1; }, 5s));
        CHECK(rd.data == "ok");
        s.close();
        conf::close_sock(raw.client);
    }
    REQUIRE(conf::settle_table(r));
    CHECK(r.core().table.live() == 0);
}

TEST_CASE("5: a token used on a reactor it is not registered with is rejected") {
    evio::reactor ra{test::options()};
    evio::reactor rb{test::options()};
    REQUIRE(ra.id() != rb.id());
    test::throwing_contracts contracts;

    auto raw = conf::make_raw_pair();
    evio::tcp_stream sa = conf::adopt(ra, raw.server);
    const evio::token ta = sa.native_token();
    // rb has a live slot at the same index, so only the owner check can tell them apart.
    auto other = conf::make_raw_pair();
    evio::tcp_stream sb = conf::adopt(rb, other.server);
    REQUIRE(sb.native_token().index == ta.index);

    CHECK(conf::contract_id_of([&] { rb.deregister(ta); }) == "deregister.foreign");

    auto foreign_read = [&]() -> evio::task<void> {
        std::array<std::byte, 8> buf{};
        (void)co_await evio::read_some_op(&rb, ta, buf);
    };
    CHECK(conf::contract_id_of([&] { evio::sync_wait(rb, foreign_read()); }) == "token.foreign");
    auto foreign_write = [&]() -> evio::task<void> {
        std::array<std::byte, 8> buf{};
        (void)co_await evio::write_some_op(&rb, ta, buf);
    };
    CHECK(conf::contract_id_of([&] { evio::sync_wait(rb, foreign_write()); }) == "token.foreign");

    // Neither registration was touched.
    REQUIRE(ra.core().table.find(ta) != nullptr);
    CHECK(ra.core().table.find(ta)->handle == raw.server);
    CHECK(ra.core().table.find(ta)->interest == evio::detail::interest_none);
    REQUIRE(rb.core().table.find(sb.native_token()) != nullptr);
    CHECK(rb.core().table.find(sb.native_token())->handle == other.server);

    // And both still work on their own reactors.
    op_record rda, rdb;
    evio::spawn(ra, conf::read_once(ra, sa, rda));
    evio::spawn(rb, conf::read_once(rb, sb, rdb));
    ra.poll();
    rb.poll();
    conf::raw_send(raw.client, "A");
    conf::raw_send(other.client, "B");
    REQUIRE(test::run_until(
        ra, [&] { return rda.resumed == 1; }, 5s));
    REQUIRE(test::run_until(
        rb, [&] { return rdb.resumed == 1; }, 5s));
    CHECK(rda.data == "A");
    CHECK(rdb.data == "B");
    sa.close();
    sb.close();
    conf::close_sock(raw.client);
    conf::close_sock(other.client);
}

namespace {

evio::task<void> accept_and_drop(evio::reactor& r, evio::tcp_listener& lis, op_record& rec) {
    auto s = co_await lis.accept();
    rec.turn = r.core().turn;
    ++rec.resumed;
    rec.ok = static_cast<bool>(s);
    // `s` is destroyed here without close(): the destructor deregisters it.
}

} // namespace

TEST_CASE("9: closing through the destructor (no explicit deregistration) keeps the reactor "
          "running") {
    evio::reactor r{test::options()};
    auto keep = test::connected_pair(r);
    REQUIRE(conf::settle_table(r));
    const std::size_t live_before = r.core().table.live();
    const int fds_before = conf::open_fd_count();

    std::vector<op_record> reads(20);
    for (auto& rec : reads) {
        auto p = std::make_unique<test::stream_pair>(test::connected_pair(r));
        evio::spawn(r, conf::read_once(r, p->server, rec));
        r.run_once(0ms);
        // The streams go out of scope with a read pending: destructor path.
        p.reset();
    }
    REQUIRE(test::run_until(
        r,
        [&] {
            for (auto& rec : reads)
                if (rec.resumed == 0) return false;
            return true;
        },
        5s));
    for (auto& rec : reads) {
        CHECK(rec.resumed == 1);
        CHECK(rec.ec == evio::errc::operation_canceled);
    }

    // A stream accepted inside a coroutine and dropped at its end.
    auto lis = test::listen_any(r);
    op_record acc;
    evio::spawn(r, accept_and_drop(r, lis, acc));
    r.poll();
    auto client_rec = op_record{};
    evio::tcp_stream client;
    auto connect_task = [&]() -> evio::task<void> {
        auto c = co_await evio::tcp_stream::connect(r, lis.local_endpoint().value());
        client_rec.ok = static_cast<bool>(c);
        if (c) client = std::move(*c);
        ++client_rec.resumed;
    };
    evio::sync_wait(r, connect_task());
    REQUIRE(test::run_until(
        r, [&] { return acc.resumed == 1; }, 5s));
    CHECK(acc.ok);
    // The server side is gone (destructor closed it): the client sees end of stream.
    op_record eof;
    evio::spawn(r, conf::read_once(r, client, eof));
    REQUIRE(test::run_until(
        r, [&] { return eof.resumed == 1; }, 5s));
    CHECK((eof.ok && eof.n == 0));
    client.close();
    lis.close(); // the listener's destructor would do the same

    // The reactor keeps running: the surviving pair still talks.
    op_record rd;
    evio::spawn(r, conf::read_once(r, keep.server, rd));
    r.poll();
    conf::raw_send(keep.client.native_handle(), "alive");
    REQUIRE(test::run_until(
        r, [&] { return rd.resumed == 1; }, 5s));
    CHECK(rd.data == "alive");
    REQUIRE(conf::settle_table(r));
    CHECK(r.core().table.live() == live_before);
    CHECK(conf::open_fd_count() == fds_before);
}

TEST_CASE("12: creating and destroying 2000 reactors leaks no descriptor") {
    const int before = conf::open_fd_count();
    REQUIRE(before > 0);
    for (int i = 0; i < 2000; ++i) {
        evio::reactor r{test::options()};
        if (i % 100 == 0) r.poll(); // some of them ran a turn (io_uring: ring enabled, wake armed)
    }
    CHECK(conf::open_fd_count() == before);

    // Reactors that did I/O and were destroyed with operations pending leak nothing either.
    for (int i = 0; i < 50; ++i) {
        evio::reactor r{test::options()};
        auto p = std::make_unique<test::stream_pair>(test::connected_pair(r));
        op_record rd;
        // The pair moves into the coroutine frame; the reactor destroys the frame.
        evio::spawn(r, [&r, &rd, pp = std::move(p)]() -> evio::task<void> {
            co_await conf::read_once(r, pp->server, rd);
        });
        r.run_once(0ms);
        r.run_once(0ms);
        REQUIRE(rd.resumed == 0);
    }
    CHECK(conf::open_fd_count() == before);
}
