// SPDX-License-Identifier: MIT
// Package consumer test: one co_await echo round trip on loopback through evio as a consumer sees it.
//
// Built by each consumer project under tests/package/ (find_package, add_subdirectory, FetchContent,
// pkg-config) against an installed or embedded evio. A listener on 127.0.0.1:0 accepts one
// connection, reads a message with read_exact and writes it back with write_all; the client
// connects, writes it with write_all, reads the echo with read_exact and compares. Exits 0 and
// prints "evio <version> (<backend>): echo round trip ok" on success.
//
// EVIO_EXPECTED_VERSION (a string literal, set by the consumer's build) must equal version.hpp's
// EVIO_VERSION_STRING: this is how the package's version file is checked against the headers.
#include <evio/evio.hpp>

#include <array>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <exception>
#include <span>
#include <string_view>
#include <utility>

#ifndef EVIO_EXPECTED_VERSION
#error "EVIO_EXPECTED_VERSION must be defined by the consumer build (the version it found)"
#endif
static_assert(std::string_view(EVIO_VERSION_STRING) == std::string_view(EVIO_EXPECTED_VERSION),
              "the package's version (CMake/pkg-config) differs from evio/version.hpp");

namespace {

constexpr std::string_view message = "evio package test: hello over loopback";

void report(const char* what, const std::error_code& ec) {
    std::fprintf(stderr, "echo_roundtrip: %s failed: %s\n", what, ec.message().c_str());
}

/// Accepts one connection and echoes one message back.
evio::task<void> serve_one(evio::tcp_listener lis, bool& served) {
    auto s = co_await lis.accept();
    if (!s) {
        report("accept", s.error());
        co_return;
    }
    std::array<std::byte, message.size()> buf{};
    if (auto r = co_await s->read_exact(buf); !r) {
        report("server read_exact", r.error());
        co_return;
    }
    if (auto w = co_await s->write_all(buf); !w) {
        report("server write_all", w.error());
        co_return;
    }
    served = true;
}

/// Connects, sends the message, reads the echo; 0 when it came back unchanged.
evio::task<int> client(evio::reactor& r, evio::endpoint ep) {
    auto s = co_await evio::tcp_stream::connect(r, ep);
    if (!s) {
        report("connect", s.error());
        co_return 1;
    }
    if (auto w = co_await s->write_all(std::as_bytes(std::span(message))); !w) {
        report("client write_all", w.error());
        co_return 1;
    }
    std::array<std::byte, message.size()> in{};
    if (auto rd = co_await s->read_exact(in); !rd) {
        report("client read_exact", rd.error());
        co_return 1;
    }
    if (std::memcmp(in.data(), message.data(), message.size()) != 0) {
        std::fprintf(stderr, "echo_roundtrip: the echo differs from what was sent\n");
        co_return 1;
    }
    co_return 0;
}

} // namespace

int main() {
    try {
        evio::reactor r;
        auto lis = evio::tcp_listener::bind(r, evio::endpoint::loopback_v4(0));
        if (!lis) {
            report("bind", lis.error());
            return 1;
        }
        auto ep = lis->local_endpoint();
        if (!ep) {
            report("local_endpoint", ep.error());
            return 1;
        }
        bool served = false;
        evio::spawn(r, serve_one(std::move(*lis), served));
        const int rc = evio::sync_wait(r, client(r, *ep));
        r.run(); // lets the server task finish
        if (rc != 0 || !served) return 1;
        std::printf("evio %s (%s): echo round trip ok\n", evio::version_string,
                    evio::to_string(r.backend()));
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "echo_roundtrip: exception: %s\n", e.what());
        return 1;
    }
}
