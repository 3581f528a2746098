// SPDX-License-Identifier: MIT
// Room iocp: Win32 and Winsock error codes map onto the same evio::errc values as errno on Linux.
#include "support/fixture.hpp"

#include <evio/detail/iocp/errors.hpp>
#include <evio/detail/iocp/winsock.hpp>

#include <array>
#include <chrono>

using namespace std::chrono_literals;
namespace test = evio::test;
using evio::errc;
using evio::detail::error_from_native;

TEST_CASE("iocp errors: Winsock codes (calls that fail at once) map onto errc") {
    CHECK(error_from_native(0) == std::error_code{});
    CHECK(error_from_native(WSAECONNREFUSED) == errc::connection_refused);
    CHECK(error_from_native(WSAECONNRESET) == errc::connection_reset);
    CHECK(error_from_native(WSAECONNABORTED) == errc::connection_aborted);
    CHECK(error_from_native(WSAESHUTDOWN) == errc::broken_pipe);
    CHECK(error_from_native(WSAEADDRINUSE) == errc::address_in_use);
    CHECK(error_from_native(WSAEADDRNOTAVAIL) == errc::address_not_available);
    CHECK(error_from_native(WSAEMFILE) == errc::too_many_open_files);
    CHECK(error_from_native(WSAENOTCONN) == errc::not_connected);
    CHECK(error_from_native(WSAETIMEDOUT) == errc::timed_out);
    CHECK(error_from_native(WSAENETUNREACH) == errc::network_unreachable);
    CHECK(error_from_native(WSAENETDOWN) == errc::network_unreachable);
    CHECK(error_from_native(WSAEHOSTUNREACH) == errc::host_unreachable);
    CHECK(error_from_native(WSAEINVAL) == errc::invalid_argument);
    CHECK(error_from_native(WSAENOBUFS) == errc::no_buffer_space);
    CHECK(error_from_native(WSAEACCES) == errc::permission_denied);
    CHECK(error_from_native(WSAEOPNOTSUPP) == errc::not_supported);
    CHECK(error_from_native(WSAEAFNOSUPPORT) == errc::not_supported);
    CHECK(error_from_native(WSAENOTSOCK) == errc::closed);
    CHECK(error_from_native(WSAECANCELLED) == errc::operation_canceled);
}

TEST_CASE("iocp errors: Win32 codes (completion packets) map onto the same errc") {
    // GetOverlappedResult turns the packet's NTSTATUS into these (RtlNtStatusToDosError).
    CHECK(error_from_native(ERROR_OPERATION_ABORTED) == errc::operation_canceled);
    CHECK(error_from_native(evio::detail::native_cancel_error) == errc::operation_canceled);
    CHECK(error_from_native(ERROR_CONNECTION_REFUSED) == errc::connection_refused);
    CHECK(error_from_native(ERROR_PORT_UNREACHABLE) == errc::connection_refused);
    CHECK(error_from_native(ERROR_NETNAME_DELETED) == errc::connection_reset);
    CHECK(error_from_native(ERROR_CONNECTION_ABORTED) == errc::connection_aborted);
    CHECK(error_from_native(ERROR_SEM_TIMEOUT) == errc::timed_out);
    CHECK(error_from_native(ERROR_NETWORK_UNREACHABLE) == errc::network_unreachable);
    CHECK(error_from_native(ERROR_HOST_UNREACHABLE) == errc::host_unreachable);
    CHECK(error_from_native(ERROR_TOO_MANY_OPEN_FILES) == errc::too_many_open_files);
    CHECK(error_from_native(ERROR_NOT_ENOUGH_MEMORY) == errc::no_buffer_space);
    CHECK(error_from_native(ERROR_ACCESS_DENIED) == errc::permission_denied);
    CHECK(error_from_native(ERROR_INVALID_PARAMETER) == errc::invalid_argument);
    CHECK(error_from_native(ERROR_INVALID_HANDLE) == errc::closed);
}

TEST_CASE("iocp errors: unmapped codes keep std::system_category and their value") {
    const auto ec = error_from_native(ERROR_FILE_NOT_FOUND);
    CHECK(ec.category() == std::system_category());
    CHECK(ec.value() == ERROR_FILE_NOT_FOUND);
    // The evio values still compare equal to the portable std::errc conditions.
    CHECK(error_from_native(WSAECONNREFUSED) == std::errc::connection_refused);
    CHECK(error_from_native(ERROR_OPERATION_ABORTED) == std::errc::operation_canceled);
}

namespace {

evio::task<std::error_code> connect_error(evio::reactor& r, evio::endpoint ep) {
    auto c = co_await evio::tcp_stream::connect(r, ep);
    co_return c ? std::error_code{} : c.error();
}

evio::task<std::error_code> write_error(evio::tcp_stream& s) {
    const std::array<std::byte, 4> b{};
    auto w = co_await s.write_some(b);
    co_return w ? std::error_code{} : w.error();
}

/// One read_some on `s`; its error (none: an empty error_code) lands in `out`.
evio::task<void> read_error(evio::tcp_stream& s, std::error_code& out, bool& done) {
    std::array<std::byte, 16> b{};
    auto n = co_await s.read_some(b);
    out = n ? std::error_code{} : n.error();
    done = true;
}

} // namespace

TEST_CASE("iocp errors: real failures surface as the portable values") {
    evio::reactor r{test::options()};
    REQUIRE(r.backend() == evio::backend_kind::iocp);

    SECTION("ConnectEx to a closed port: connection_refused (packet: ERROR_CONNECTION_REFUSED)") {
        std::uint16_t port = 0;
        {
            auto l = test::listen_any(r);
            port = l.local_endpoint().value().port();
        } // closed: nobody listens there now
        CHECK(evio::sync_wait(r, connect_error(r, evio::endpoint::loopback_v4(port))) ==
              errc::connection_refused);
    }
    SECTION("bind on a port in use (SO_EXCLUSIVEADDRUSE): address_in_use") {
        auto l = test::listen_any(r);
        auto again = evio::tcp_listener::bind(r, l.local_endpoint().value());
        REQUIRE_FALSE(again);
        CHECK(again.error() == errc::address_in_use);
    }
    SECTION("write after shutdown(SD_SEND): broken_pipe (WSAESHUTDOWN)") {
        auto p = test::connected_pair(r);
        REQUIRE(p.client.shutdown_send());
        CHECK(evio::sync_wait(r, write_error(p.client)) == errc::broken_pipe);
    }
    SECTION("write after the peer's FIN was read: broken_pipe, as Linux's EPIPE") {
        auto p = test::connected_pair(r);
        p.client.close(); // FIN; our first write draws the peer's RST
        std::error_code rd{errc::closed};
        bool eof = false;
        evio::spawn(r, read_error(p.server, rd, eof));
        REQUIRE(test::run_until(
            r, [&] { return eof; }, 5s));
        REQUIRE_FALSE(rd); // end of stream: 0 bytes, no error
        std::error_code last{};
        for (int i = 0; i < 50 && !last; ++i) {
            last = evio::sync_wait(r, write_error(p.server));
            if (!last) r.run_once(5ms); // let the RST come back
        }
        CHECK(last == errc::broken_pipe); // Winsock: WSAECONNRESET / ERROR_NETNAME_DELETED
    }
    SECTION("peer RST with a read pending: connection_reset (packet: ERROR_NETNAME_DELETED)") {
        auto p = test::connected_pair(r);
        std::error_code got{errc::closed};
        bool done = false;
        evio::spawn(r, read_error(p.server, got, done));
        r.poll(); // the read is in the kernel now
        REQUIRE_FALSE(done);
        test::reset_and_close(p.client);
        REQUIRE(test::run_until(
            r, [&] { return done; }, 5s));
        CHECK(got == errc::connection_reset);
    }
}
