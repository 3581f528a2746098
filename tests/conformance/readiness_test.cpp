// SPDX-License-Identifier: MIT
// Conformance cases 6, 11, 23: re-arming after would-block, zero-timeout turns, direction
// isolation.
#include "conformance/helpers.hpp"

using namespace std::chrono_literals;
using evio::conf::op_record;
namespace conf = evio::conf;
namespace test = evio::test;

namespace {

struct progress {
    std::size_t bytes = 0;
    int completions = 0;
    bool stop = false;
    bool finished = false;
    std::error_code ec{};
};

evio::task<void> reader(evio::tcp_stream& s, progress& p, std::size_t chunk) {
    std::vector<std::byte> buf(chunk);
    while (!p.stop) {
        auto n = co_await s.read_some(buf);
        if (!n || *n == 0) {
            p.ec = n.error();
            break;
        }
        p.bytes += *n;
        ++p.completions;
    }
    p.finished = true;
}

evio::task<void> writer(evio::tcp_stream& s, progress& p, std::size_t chunk) {
    std::vector<std::byte> buf(chunk, std::byte{'w'});
    while (!p.stop) {
        auto n = co_await s.write_some(buf);
        if (!n) {
            p.ec = n.error();
            break;
        }
        p.bytes += *n;
        ++p.completions;
    }
    p.finished = true;
}

/// Runs the reactor until `p` made no progress for three quiet periods in a row while `t` has
/// an operation waiting in direction `bit` (the op parked on would-block). Bounded.
bool settle(evio::reactor& r, const progress& p, evio::token t, std::uint8_t bit) {
    const auto end = std::chrono::steady_clock::now() + 3s;
    int quiet = 0;
    while (std::chrono::steady_clock::now() < end) {
        const int before = p.completions;
        conf::idle_for(r, 10ms);
        if (p.completions == before && (conf::interest_of(r, t) & bit)) {
            if (++quiet == 3) return true;
        } else {
            quiet = 0;
        }
    }
    return false;
}

} // namespace

TEST_CASE("6: drain to would-block, new activity, the read completes again") {
    evio::reactor r{test::options()};
    auto pr = test::connected_pair(r);
    progress rp;
    evio::spawn(r, reader(pr.server, rp, 256));
    std::size_t expected = 0;
    for (int round = 0; round < 40; ++round) {
        INFO("round " << round);
        const std::size_t k = 100 + static_cast<std::size_t>(round) * 97;
        conf::raw_send(pr.client.native_handle(), std::string(k, 'd'));
        expected += k;
        REQUIRE(test::run_until(
            r, [&] { return rp.bytes == expected; }, 5s));
        // Drained: the next read is parked on would-block and stays so without activity.
        const int completions = rp.completions;
        for (int i = 0; i < 3; ++i)
            r.poll();
        r.run_once(5ms);
        CHECK(rp.completions == completions);
        CHECK(conf::interest_of(r, pr.server.native_token()) == evio::detail::interest_read);
    }
    CHECK(rp.bytes == expected);
    CHECK_FALSE(rp.finished);
    pr.client.shutdown_send();
    REQUIRE(test::run_until(
        r, [&] { return rp.finished; }, 5s));
    CHECK(rp.bytes == expected);
}

TEST_CASE("6: fill to would-block, the peer drains, the write completes again") {
    evio::reactor r{test::options()};
    auto raw = conf::make_raw_pair(8192);
    evio::tcp_stream s = conf::adopt(r, raw.server);
    progress wp;
    evio::spawn(r, writer(s, wp, 4096));
    std::size_t drained = 0;
    for (int round = 0; round < 15; ++round) {
        INFO("round " << round);
        REQUIRE(settle(r, wp, s.native_token(), evio::detail::interest_write));
        const int completions = wp.completions;
        // The peer drains: the parked write completes and the writer runs until blocked again.
        REQUIRE(test::run_until(
            r,
            [&] {
                drained += conf::drain(raw.client);
                return wp.completions > completions;
            },
            5s));
    }
    wp.stop = true;
    REQUIRE(test::run_until(
        r,
        [&] {
            drained += conf::drain(raw.client);
            return wp.finished;
        },
        5s));
    drained += conf::drain(raw.client);
    CHECK(wp.ec == std::error_code{});
    CHECK(drained <= wp.bytes);
    CHECK(drained > 0);
    s.close();
    conf::close_sock(raw.client);
}

TEST_CASE("11: a zero-timeout turn still reports ready completions") {
    evio::reactor r{test::options()};

    SECTION("a pending read whose data already arrived") {
        auto p = test::connected_pair(r);
        for (int round = 0; round < 20; ++round) {
            INFO("round " << round);
            op_record rd;
            evio::spawn(r, conf::read_once(r, p.server, rd));
            r.poll(); // starts the read
            r.poll(); // io_uring: the request reaches the kernel
            REQUIRE(rd.resumed == 0);
            conf::raw_send(p.client.native_handle(), "ready");
            REQUIRE(conf::wait_readable(r, p.server, 5));
            r.poll(); // one zero-timeout turn
            CHECK(rd.resumed == 1);
            CHECK(rd.data == "ready");
            if (rd.resumed == 0)
                REQUIRE(test::run_until(
                    r, [&] { return rd.resumed == 1; }, 5s));
        }
    }

    SECTION("a pending accept whose connection already arrived") {
        auto lis = test::listen_any(r);
        for (int round = 0; round < 10; ++round) {
            INFO("round " << round);
            evio::tcp_stream accepted;
            op_record acc;
            evio::spawn(r, conf::accept_once(r, lis, acc, accepted));
            r.poll();
            r.poll();
            REQUIRE(acc.resumed == 0);
            const conf::sock_t c = conf::new_socket();
            REQUIRE(conf::connect_loopback(c, lis.local_endpoint().value().port()));
            REQUIRE(conf::wait_kernel_done(r, lis.native_token())); // IOCP: AcceptEx finished
            r.poll();
            CHECK(acc.resumed == 1);
            if (acc.resumed == 0)
                REQUIRE(test::run_until(
                    r, [&] { return acc.resumed == 1; }, 5s));
            CHECK(acc.ok);
            conf::close_sock(c);
        }
    }

    SECTION("poll() alone eventually delivers (no blocking turn ever runs)") {
        auto p = test::connected_pair(r);
        op_record rd;
        evio::spawn(r, conf::read_once(r, p.server, rd));
        r.poll();
        r.poll();
        conf::raw_send(p.client.native_handle(), "spin");
        REQUIRE(conf::wait_readable(r, p.server, 4));
        const auto end = std::chrono::steady_clock::now() + 1s;
        while (rd.resumed == 0 && std::chrono::steady_clock::now() < end)
            r.poll();
        CHECK(rd.resumed == 1);
        if (rd.resumed == 0)
            REQUIRE(test::run_until(
                r, [&] { return rd.resumed == 1; }, 5s));
    }
}

TEST_CASE("23: direction isolation: readiness in one direction never resumes the other") {
    evio::reactor r{test::options()};
    auto raw = conf::make_raw_pair(4096);
    evio::tcp_stream s = conf::adopt(r, raw.server);
    const evio::token t = s.native_token();
    constexpr auto rd_bit = evio::detail::interest_read;
    constexpr auto wr_bit = evio::detail::interest_write;

    // Both directions pending: the path to the peer is full, nothing to read.
    REQUIRE(conf::fill_send_buffer_stable(raw.server) > 0);
    op_record w1, r1;
    evio::spawn(r, conf::write_once(r, s, w1, 4096));
    evio::spawn(r, conf::read_once(r, s, r1));
    conf::idle_for(r, 30ms);
    REQUIRE(w1.resumed == 0);
    REQUIRE(r1.resumed == 0);
    REQUIRE(conf::interest_of(r, t) == (rd_bit | wr_bit));

    // Read readiness completes the read only; the write stays pending.
    conf::raw_send(raw.client, "in");
    REQUIRE(test::run_until(
        r, [&] { return r1.resumed == 1; }, 5s));
    CHECK(r1.data == "in");
    conf::idle_for(r, 30ms);
    CHECK(w1.resumed == 0);
    CHECK(conf::interest_of(r, t) == wr_bit);

    // A read that would block does not resume the pending write.
    op_record r2;
    evio::spawn(r, conf::read_once(r, s, r2));
    conf::idle_for(r, 30ms);
    CHECK(r2.resumed == 0);
    CHECK(w1.resumed == 0);
    CHECK(conf::interest_of(r, t) == (rd_bit | wr_bit));

    // Write readiness completes the write only; the read stays pending.
    std::size_t drained = 0;
    REQUIRE(test::run_until(
        r,
        [&] {
            drained += conf::drain(raw.client);
            return w1.resumed == 1;
        },
        5s));
    CHECK(w1.ok);
    CHECK(w1.n > 0);
    conf::idle_for(r, 30ms);
    CHECK(r2.resumed == 0);
    CHECK(conf::interest_of(r, t) == rd_bit);

    // A write that completes at once does not resume the pending read.
    op_record w2;
    evio::spawn(r, conf::write_once(r, s, w2, 16));
    REQUIRE(test::run_until(
        r, [&] { return w2.resumed == 1; }, 5s));
    CHECK(w2.ok);
    conf::idle_for(r, 30ms);
    CHECK(r2.resumed == 0);
    CHECK(conf::interest_of(r, t) == rd_bit);

    // And the read still completes with its own data.
    conf::raw_send(raw.client, "last");
    REQUIRE(test::run_until(
        r, [&] { return r2.resumed == 1; }, 5s));
    CHECK(r2.data == "last");
    CHECK(w1.resumed == 1);
    CHECK(w2.resumed == 1);
    CHECK(conf::interest_of(r, t) == evio::detail::interest_none);
    s.close();
    conf::close_sock(raw.client);
}
