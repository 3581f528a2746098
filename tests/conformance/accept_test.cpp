// SPDX-License-Identifier: MIT
// Conformance cases 16, 17: many accept waiters; the mio#1757 scenario in its strict form.
#include "conformance/helpers.hpp"

#include <algorithm>
#include <cstring>
#include <set>

using namespace std::chrono_literals;
using evio::conf::op_record;
namespace conf = evio::conf;
namespace test = evio::test;

namespace {

/// Accepts one connection and reads the 4-byte id its client sends.
evio::task<void> accept_and_identify(evio::tcp_listener& lis, op_record& rec, int& id) {
    auto s = co_await lis.accept();
    ++rec.resumed;
    if (!s) {
        rec.ec = s.error();
        co_return;
    }
    rec.ok = true;
    std::array<std::byte, 4> buf{};
    auto r = co_await s->read_exact(buf);
    if (r) std::memcpy(&id, buf.data(), 4);
}

void send_id(conf::sock_t fd, int id) {
    char b[4];
    std::memcpy(b, &id, 4);
    conf::raw_send(fd, std::string_view(b, 4));
}

} // namespace

TEST_CASE("16: many coroutines awaiting accept on one listener all complete, one connection each") {
    evio::reactor r{test::options()};
    auto lis = test::listen_any(r);
    const auto port = lis.local_endpoint().value().port();
    constexpr int n = 48;
    std::vector<op_record> recs(n);
    std::vector<int> ids(n, -1);
    for (int i = 0; i < n; ++i)
        evio::spawn(r, accept_and_identify(lis, recs[i], ids[i]));
    r.poll();
    r.poll();
    for (auto& rec : recs)
        REQUIRE(rec.resumed == 0);

    std::vector<conf::sock_t> clients;
    for (int i = 0; i < n; ++i) {
        clients.push_back(conf::raw_connect(port));
        send_id(clients.back(), 1000 + i);
    }
    REQUIRE(test::run_until(
        r, [&] { return std::all_of(ids.begin(), ids.end(), [](int id) { return id >= 0; }); },
        5s));
    std::set<int> distinct;
    for (int i = 0; i < n; ++i) {
        CHECK(recs[i].resumed == 1);
        CHECK(recs[i].ok);
        distinct.insert(ids[i]);
    }
    CHECK(distinct.size() == static_cast<std::size_t>(n));
    CHECK(*distinct.begin() == 1000);
    CHECK(*distinct.rbegin() == 1000 + n - 1);
    CHECK(conf::interest_of(r, lis.native_token()) == evio::detail::interest_none);
    for (const conf::sock_t fd : clients)
        conf::close_sock(fd);
}

TEST_CASE("16: more connections than waiters: the rest wait for later accepts, none is lost") {
    evio::reactor r{test::options()};
    auto lis = test::listen_any(r);
    const auto port = lis.local_endpoint().value().port();
    constexpr int n = 16;
    std::vector<op_record> recs(2 * n);
    std::vector<int> ids(2 * n, -1);
    for (int i = 0; i < n; ++i)
        evio::spawn(r, accept_and_identify(lis, recs[i], ids[i]));
    r.poll();
    std::vector<conf::sock_t> clients;
    for (int i = 0; i < 2 * n; ++i) {
        clients.push_back(conf::raw_connect(port));
        send_id(clients.back(), i);
    }
    REQUIRE(test::run_until(
        r,
        [&] { return std::all_of(ids.begin(), ids.begin() + n, [](int id) { return id >= 0; }); },
        5s));
    conf::idle_for(r, 20ms);
    // Exactly the first n waiters completed; the other connections wait in the kernel (or in
    // the backend's queue) for accept calls that do not exist yet.
    for (int i = n; i < 2 * n; ++i)
        CHECK(recs[i].resumed == 0);
    for (int i = n; i < 2 * n; ++i)
        evio::spawn(r, accept_and_identify(lis, recs[i], ids[i]));
    REQUIRE(test::run_until(
        r, [&] { return std::all_of(ids.begin(), ids.end(), [](int id) { return id >= 0; }); },
        5s));
    std::set<int> distinct(ids.begin(), ids.end());
    CHECK(distinct.size() == static_cast<std::size_t>(2 * n));
    for (auto& rec : recs)
        CHECK(rec.resumed == 1);
    for (const conf::sock_t fd : clients)
        conf::close_sock(fd);
}

namespace {

struct round_stats {
    int served = 0;
    int client_ok = 0;
    int server_errors = 0;
    int client_errors = 0;
    bool server_done = false;
    bool client_done = false;
    std::vector<std::uint8_t> listener_interest; ///< seen by the server just before each accept
};

/// The server of mio#1757: one co_await accept() per connection, no drain loop. Each connection
/// is read, answered, read to its end, and closed.
evio::task<void> one_accept_per_client(evio::reactor& r, evio::tcp_listener& lis, int rounds,
                                       round_stats& st) {
    for (int i = 0; i < rounds; ++i) {
        st.listener_interest.push_back(conf::interest_of(r, lis.native_token()));
        auto s = co_await lis.accept();
        if (!s) {
            ++st.server_errors;
            break;
        }
        std::array<std::byte, 16> req{};
        if (!co_await s->read_exact(req)) {
            ++st.server_errors;
            continue;
        }
        auto reply = req;
        reply[0] = std::byte{'R'};
        if (!co_await s->write_all(reply)) {
            ++st.server_errors;
            continue;
        }
        std::array<std::byte, 8> tail{};
        auto end = co_await s->read_some(tail); // the client closes: 0
        if (!end || *end != 0) ++st.server_errors;
        s->close(); // its server socket is closed
        ++st.served;
    }
    st.server_done = true;
}

evio::task<void> clients_one_by_one(evio::reactor& r, evio::endpoint ep, int rounds,
                                    round_stats& st) {
    for (int i = 0; i < rounds; ++i) {
        auto c = co_await evio::tcp_stream::connect(r, ep);
        if (!c) {
            ++st.client_errors;
            break;
        }
        (void)c->set_nodelay(true);
        char text[17];
        std::snprintf(text, sizeof text, "Q%015d", i);
        auto req = test::bytes(std::string_view(text, 16));
        if (!co_await c->write_all(req)) {
            ++st.client_errors;
            continue;
        }
        std::array<std::byte, 16> reply{};
        if (!co_await c->read_exact(reply)) {
            ++st.client_errors;
            continue;
        }
        if (reply[0] == std::byte{'R'} && std::memcmp(reply.data() + 1, text + 1, 15) == 0)
            ++st.client_ok;
        c->close(); // the client talks, then closes
    }
    st.client_done = true;
}

} // namespace

TEST_CASE("17: mio#1757 seed scenario, one accept per client, 200 rounds") {
    evio::reactor r{test::options()};
    auto lis = test::listen_any(r);
    constexpr int rounds = 200;
    round_stats st;
    evio::spawn(r, one_accept_per_client(r, lis, rounds, st));
    evio::spawn(r, clients_one_by_one(r, lis.local_endpoint().value(), rounds, st));
    REQUIRE(test::run_until(
        r, [&] { return st.server_done && st.client_done; }, 8s));
    CHECK(st.served == rounds);
    CHECK(st.client_ok == rounds);
    CHECK(st.server_errors == 0);
    CHECK(st.client_errors == 0);
    // Deregistering each client never changed what the listener waits for: before every accept
    // the listener had no accept outstanding and nothing else touched its interest.
    REQUIRE(st.listener_interest.size() == static_cast<std::size_t>(rounds));
    for (auto bits : st.listener_interest)
        CHECK(bits == evio::detail::interest_none);
    CHECK(conf::interest_of(r, lis.native_token()) == evio::detail::interest_none);
}

TEST_CASE("17: mio#1757 with the server closing first and clients arriving in bursts") {
    evio::reactor r{test::options()};
    auto lis = test::listen_any(r);
    const auto port = lis.local_endpoint().value().port();
    int served = 0;
    int errors = 0;
    auto server = [&]() -> evio::task<void> {
        for (int i = 0; i < 200; ++i) {
            auto s = co_await lis.accept();
            if (!s) {
                ++errors;
                co_return;
            }
            std::array<std::byte, 4> b{};
            if (co_await s->read_exact(b)) ++served;
            // Closed here, before the client: the server side goes first this time.
        }
    };
    evio::spawn(r, server);
    for (int burst = 0; burst < 20; ++burst) {
        std::vector<conf::sock_t> fds;
        for (int i = 0; i < 10; ++i) {
            fds.push_back(conf::raw_connect(port));
            send_id(fds.back(), burst * 10 + i);
        }
        const int want = (burst + 1) * 10;
        REQUIRE(test::run_until(
            r, [&] { return served == want || errors > 0; }, 5s));
        for (const conf::sock_t fd : fds)
            conf::close_sock(fd);
    }
    CHECK(served == 200);
    CHECK(errors == 0);
}
