// SPDX-License-Identifier: MIT
// Test helpers shared by unit and conformance tests: backend choice, connected pairs, peers.
#pragma once

#include "support/catch.hpp"

#include <evio/evio.hpp>

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#if EVIO_PLATFORM_WINDOWS
#include <evio/detail/iocp/winsock.hpp>
#else
#include <sys/socket.h>
#endif

namespace evio::test {

/// The backend named by EVIO_TEST_BACKEND (automatic when unset).
inline backend_kind backend_from_env() {
    const char* name = std::getenv("EVIO_TEST_BACKEND");
    if (!name) return backend_kind::automatic;
    const std::string_view v{name};
    if (v == "epoll") return backend_kind::epoll;
    if (v == "io_uring") return backend_kind::io_uring;
    if (v == "iocp") return backend_kind::iocp;
    return backend_kind::automatic;
}

/// A reactor on the backend under test.
inline reactor_options options() {
    reactor_options o;
    o.backend = backend_from_env();
    return o;
}

/// Bytes from text, for readable test payloads.
inline std::vector<std::byte> bytes(std::string_view s) {
    std::vector<std::byte> v(s.size());
    std::memcpy(v.data(), s.data(), s.size());
    return v;
}
inline std::string text(std::span<const std::byte> b) {
    return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

/// A connected pair on loopback: `server` (accepted) and `client` (connected).
struct stream_pair {
    tcp_stream server;
    tcp_stream client;
};

inline task<stream_pair> make_pair_task(reactor& r, tcp_listener& lis) {
    const auto ep = lis.local_endpoint().value();
    auto accepted = lis.accept(); // awaited after the connect started
    auto c = co_await tcp_stream::connect(r, ep);
    if (!c) throw std::runtime_error("connect: " + c.error().message());
    auto s = co_await accepted;
    if (!s) throw std::runtime_error("accept: " + s.error().message());
    co_return stream_pair{std::move(*s), std::move(*c)};
}

/// A listener on 127.0.0.1 with an OS-chosen port.
inline tcp_listener listen_any(reactor& r) {
    return tcp_listener::bind(r, endpoint::loopback_v4(0)).value();
}

/// A connected loopback pair, made synchronously.
inline stream_pair connected_pair(reactor& r) {
    auto lis = listen_any(r);
    return sync_wait(r, make_pair_task(r, lis));
}

/// Runs turns until `done()` or `limit` passed; returns done(). Bounded: never hangs a test.
template <class F>
bool run_until(reactor& r, F&& done, std::chrono::milliseconds limit = std::chrono::seconds(10)) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (!done()) {
        if (std::chrono::steady_clock::now() > end) return false;
        r.run_once(std::chrono::milliseconds(10));
    }
    return true;
}

/// Abortive close: the peer sees RST (SO_LINGER {1, 0}), then the stream is closed.
inline void reset_and_close(tcp_stream& s) {
    struct linger lg{};
    lg.l_onoff = 1;
    lg.l_linger = 0;
#if EVIO_PLATFORM_WINDOWS
    ::setsockopt(static_cast<SOCKET>(s.native_handle()), SOL_SOCKET, SO_LINGER,
                 reinterpret_cast<const char*>(&lg), sizeof lg);
#else
    ::setsockopt(s.native_handle(), SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
#endif
    s.close();
}

/// Contract violations observed in-process: the handler throws this.
struct contract_error : std::runtime_error {
    std::string id;
    explicit contract_error(const contract_violation& v)
        : std::runtime_error(std::string("contract ") + v.id), id(v.id) {}
};

/// Installs a throwing contract handler for the scope.
struct throwing_contracts {
    contract_handler previous;
    throwing_contracts()
        : previous(set_contract_handler([](const contract_violation& v) { throw contract_error(v); })) {}
    ~throwing_contracts() { set_contract_handler(previous); }
};

} // namespace evio::test
