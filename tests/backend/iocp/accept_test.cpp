// SPDX-License-Identifier: MIT
// Room iocp: AcceptEx with a pre-created socket: per-connection failures retry with a fresh
// socket, other failures reach the caller, accept contexts are updated, many accepts queue.
#include "support/fixture.hpp"

#include <evio/detail/iocp/winsock.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <memory>
#include <set>
#include <system_error>
#include <vector>

using namespace std::chrono_literals;
namespace test = evio::test;
using evio::errc;
using evio::detail::sys;

namespace {

// ---- fault hook: fail the next N AcceptEx / WSASocket calls with a chosen error ----
std::atomic<int> accept_failures{0};
std::atomic<int> accept_error{0};
std::atomic<int> socket_failures{0};
std::atomic<int> socket_error{0};
std::atomic<int> accept_calls{0};
std::atomic<int> close_calls{0};

bool hook(sys call, int* err) {
    if (call == sys::accept) {
        ++accept_calls;
        if (accept_failures > 0) {
            --accept_failures;
            *err = accept_error;
            return true;
        }
    }
    if (call == sys::socket && socket_failures > 0) {
        --socket_failures;
        *err = socket_error;
        return true;
    }
    if (call == sys::close) ++close_calls;
    return false;
}

struct hook_scope {
    hook_scope() {
        accept_failures = accept_error = socket_failures = socket_error = 0;
        accept_calls = close_calls = 0;
        evio::detail::set_fault_hook(&hook);
    }
    ~hook_scope() { evio::detail::set_fault_hook(nullptr); }
};

struct accept_record {
    int resumed = 0;
    std::error_code ec{};
    evio::tcp_stream stream;
};

evio::task<void> accept_into(evio::tcp_listener& l, accept_record& rec) {
    auto res = co_await l.accept();
    ++rec.resumed;
    if (res) rec.stream = std::move(*res);
    else rec.ec = res.error();
}

/// A plain blocking Winsock client connected to `ep` (loopback: the backlog takes it at once).
struct raw_client {
    SOCKET s = INVALID_SOCKET;
    explicit raw_client(const evio::endpoint& ep) {
        s = ::socket(ep.is_v4() ? AF_INET : AF_INET6, SOCK_STREAM, IPPROTO_TCP);
        REQUIRE(s != INVALID_SOCKET);
        sockaddr_storage ss{};
        const int len = evio::detail::to_sockaddr(ep, &ss);
        REQUIRE(::connect(s, reinterpret_cast<const sockaddr*>(&ss), len) == 0);
    }
    raw_client(const raw_client&) = delete;
    raw_client& operator=(const raw_client&) = delete;
    ~raw_client() {
        if (s != INVALID_SOCKET) ::closesocket(s);
    }
    evio::endpoint local() const {
        return evio::detail::local_endpoint_of(static_cast<evio::detail::native_handle>(s)).value();
    }
};

} // namespace

TEST_CASE("iocp accept: a per-connection AcceptEx failure closes the socket and retries") {
    evio::reactor r{test::options()};
    auto lis = test::listen_any(r);
    hook_scope scope;
    for (const int code :
         {WSAECONNRESET, static_cast<int>(ERROR_NETNAME_DELETED), WSAECONNABORTED}) {
        accept_failures = 3;
        accept_error = code;
        accept_calls = 0;
        close_calls = 0;
        accept_record rec;
        evio::spawn(r, accept_into(lis, rec));
        r.poll();
        CHECK(rec.resumed == 0); // the failures were absorbed: the accept is waiting
        CHECK(accept_calls == 4);
        CHECK(close_calls == 3); // each failed attempt's pre-created socket was closed
        raw_client c(lis.local_endpoint().value());
        REQUIRE(test::run_until(
            r, [&] { return rec.resumed == 1; }, 5s));
        REQUIRE_FALSE(rec.ec);
        CHECK(rec.stream.remote_endpoint().value() == c.local());
    }
}

TEST_CASE("iocp accept: a listener-level failure reaches the caller; the next accept works") {
    evio::reactor r{test::options()};
    auto lis = test::listen_any(r);
    hook_scope scope;
    accept_failures = 1;
    accept_error = WSAEINVAL;
    accept_record bad;
    evio::spawn(r, accept_into(lis, bad));
    REQUIRE(test::run_until(
        r, [&] { return bad.resumed == 1; }, 5s));
    CHECK(bad.ec == errc::invalid_argument);
    CHECK(close_calls == 1);

    accept_record good;
    evio::spawn(r, accept_into(lis, good));
    raw_client c(lis.local_endpoint().value());
    REQUIRE(test::run_until(
        r, [&] { return good.resumed == 1; }, 5s));
    CHECK_FALSE(good.ec);
    CHECK(good.stream.is_open());
}

TEST_CASE("iocp accept: endless per-connection failures are bounded (64): the error surfaces") {
    evio::reactor r{test::options()};
    auto lis = test::listen_any(r);
    hook_scope scope;
    accept_failures = 1000;
    accept_error = WSAECONNRESET;
    accept_record rec;
    evio::spawn(r, accept_into(lis, rec));
    REQUIRE(test::run_until(
        r, [&] { return rec.resumed == 1; }, 5s));
    CHECK(rec.ec == errc::connection_reset);
    CHECK(accept_calls == 64);
    accept_failures = 0;
    accept_record next;
    evio::spawn(r, accept_into(lis, next));
    raw_client c(lis.local_endpoint().value());
    REQUIRE(test::run_until(
        r, [&] { return next.resumed == 1; }, 5s));
    CHECK_FALSE(next.ec);
}

TEST_CASE("iocp accept: no socket for AcceptEx (WSAEMFILE): too_many_open_files, then back-off") {
    evio::reactor r{test::options()};
    auto lis = test::listen_any(r);
    hook_scope scope;
    socket_failures = 1;
    socket_error = WSAEMFILE;
    accept_record first;
    evio::spawn(r, accept_into(lis, first));
    REQUIRE(test::run_until(
        r, [&] { return first.resumed == 1; }, 5s));
    CHECK(first.ec == errc::too_many_open_files);
    CHECK(r.core().table.at(lis.native_token().index).accept_backoff);

    // The next accept waits out the back-off (or a freed descriptor), then takes the connection.
    accept_record second;
    evio::spawn(r, accept_into(lis, second));
    raw_client c(lis.local_endpoint().value());
    REQUIRE(test::run_until(
        r, [&] { return second.resumed == 1; }, 5s));
    CHECK_FALSE(second.ec);
    CHECK_FALSE(r.core().table.at(lis.native_token().index).accept_backoff);
}

namespace {

evio::task<void> connect_into(evio::reactor& r, evio::endpoint ep, accept_record& rec) {
    auto res = co_await evio::tcp_stream::connect(r, ep);
    ++rec.resumed;
    if (res) rec.stream = std::move(*res);
    else rec.ec = res.error();
}

evio::task<std::size_t> read_some_count(evio::tcp_stream& s) {
    std::array<std::byte, 16> buf{};
    auto n = co_await s.read_some(buf);
    co_return n ? *n : std::size_t{999};
}

} // namespace

TEST_CASE("iocp accept/connect: SO_UPDATE_ACCEPT_CONTEXT / SO_UPDATE_CONNECT_CONTEXT applied") {
    evio::reactor r{test::options()};
    const auto run_family = [&](const evio::endpoint& where) {
        auto bound = evio::tcp_listener::bind(r, where);
        if (!bound) return false; // no IPv6 here
        auto& lis = *bound;
        accept_record acc, con;
        evio::spawn(r, accept_into(lis, acc));
        evio::spawn(r, connect_into(r, lis.local_endpoint().value(), con));
        REQUIRE(test::run_until(
            r, [&] { return acc.resumed == 1 && con.resumed == 1; }, 5s));
        REQUIRE_FALSE(acc.ec);
        REQUIRE_FALSE(con.ec);
        // getpeername/getsockname work on both ends only after the context updates.
        CHECK(acc.stream.remote_endpoint().value() == con.stream.local_endpoint().value());
        CHECK(con.stream.remote_endpoint().value() == acc.stream.local_endpoint().value());
        CHECK(con.stream.remote_endpoint().value() == lis.local_endpoint().value());
        // shutdown works on both (WSAENOTCONN without the update).
        REQUIRE(con.stream.shutdown_send());
        CHECK(evio::sync_wait(r, read_some_count(acc.stream)) == 0);
        REQUIRE(acc.stream.shutdown_send());
        CHECK(evio::sync_wait(r, read_some_count(con.stream)) == 0);
        return true;
    };
    CHECK(run_family(evio::endpoint::loopback_v4(0)));
    if (!run_family(evio::endpoint::loopback_v6(0))) WARN("no IPv6 loopback: v6 part skipped");
}

TEST_CASE("iocp accept: many accepts waiting on one listener complete one connection each") {
    evio::reactor r{test::options()};
    auto lis = test::listen_any(r);
    constexpr int n = 16;
    std::vector<accept_record> recs(n);
    for (auto& rec : recs)
        evio::spawn(r, accept_into(lis, rec));
    r.poll();
    CHECK(r.core().table.at(lis.native_token().index).in_flight == 1); // one AcceptEx at a time
    std::vector<std::unique_ptr<raw_client>> clients;
    for (int i = 0; i < n; ++i)
        clients.push_back(std::make_unique<raw_client>(lis.local_endpoint().value()));
    REQUIRE(test::run_until(
        r,
        [&] {
            for (const auto& rec : recs)
                if (rec.resumed != 1) return false;
            return true;
        },
        10s));
    std::set<std::uint16_t> peers;
    for (auto& rec : recs) {
        REQUIRE_FALSE(rec.ec);
        peers.insert(rec.stream.remote_endpoint().value().port());
    }
    CHECK(peers.size() == n);
    CHECK(r.core().pending_ops == 0);
}
