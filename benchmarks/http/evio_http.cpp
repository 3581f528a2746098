// SPDX-License-Identifier: MIT
// HTTP/1.1 keep-alive plaintext responder on evio ("Hello, World!"), one coroutine per
// connection, single-threaded. The parser is shared with asio_http.cpp (http_common.hpp).
//
//   evio_http [--port N] [--backend auto|epoll|io_uring] [--max-seconds N]
//
// Prints "listening on PORT backend NAME" as its first line (port 0 picks a free port).
#include "http_common.hpp"

#include <evio/evio.hpp>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

namespace {

evio::task<void> session(evio::tcp_stream s) {
    (void)s.set_nodelay(true);
    std::array<char, 8192> in;
    std::size_t have = 0, scan_from = 0;
    std::string out;
    out.reserve(4096);
    for (;;) {
        auto n = co_await s.read_some(std::as_writable_bytes(std::span(in).subspan(have)));
        if (!n || *n == 0) co_return;
        have += *n;
        out.clear();
        const auto p = http_bench::parse(std::string_view(in.data(), have), out, scan_from);
        if (p.consumed == 0 && have == in.size() && !p.close) { // a head larger than the buffer
            out.append(http_bench::bad_request);
            (void)co_await s.write_all(std::as_bytes(std::span(out)));
            co_return;
        }
        if (!out.empty() && !co_await s.write_all(std::as_bytes(std::span(out)))) co_return;
        if (p.close) co_return;
        have -= p.consumed;
        if (have != 0 && p.consumed != 0) std::memmove(in.data(), in.data() + p.consumed, have);
    }
}

evio::task<void> serve(evio::reactor& r, evio::tcp_listener& lis) {
    for (;;) {
        auto s = co_await lis.accept();
        if (s) evio::spawn(r, session(std::move(*s)));
        else if (s.error() == evio::errc::operation_canceled) co_return;
    }
}

} // namespace

int main(int argc, char** argv) {
    std::uint16_t port = 0;
    long max_seconds = 0;
    evio::backend_kind backend = evio::backend_kind::automatic;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string_view a = argv[i], v = argv[i + 1];
        if (a == "--port") port = static_cast<std::uint16_t>(std::atoi(argv[i + 1]));
        else if (a == "--max-seconds") max_seconds = std::atol(argv[i + 1]);
        else if (a == "--backend")
            backend = v == "epoll" ? evio::backend_kind::epoll
                      : v == "io_uring" ? evio::backend_kind::io_uring
                                        : evio::backend_kind::automatic;
    }
    try {
        evio::reactor r{evio::reactor_options{backend}};
        auto lis = evio::tcp_listener::bind(r, evio::endpoint::loopback_v4(port));
        if (!lis) {
            std::fprintf(stderr, "evio_http: bind: %s\n", lis.error().message().c_str());
            return 1;
        }
        std::printf("listening on %u backend %s\n", lis->local_endpoint().value().port(),
                    evio::to_string(r.backend()));
        std::fflush(stdout);
        evio::spawn(r, serve(r, *lis));
        if (max_seconds > 0) {
            evio::spawn(r, [&]() -> evio::task<void> {
                co_await evio::sleep_for(r, std::chrono::seconds(max_seconds));
                r.stop();
            });
        }
        r.run();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "evio_http: %s\n", e.what());
        return 1;
    }
}
