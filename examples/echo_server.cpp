// SPDX-License-Identifier: MIT
// Echo server: one coroutine per connection; idle clients are closed after --idle-ms.
//
//   echo_server [--port N] [--backend auto|epoll|io_uring|iocp] [--idle-ms N] [--max-seconds N]
//
// Prints "listening on ADDR backend NAME" as its first line (port 0 picks a free port).
#include <evio/evio.hpp>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

namespace {

struct options {
    std::uint16_t port = 9000;
    evio::backend_kind backend = evio::backend_kind::automatic;
    long idle_ms = 0;     // 0: never time out idle clients
    long max_seconds = 0; // 0: run until killed
};

/// Echoes until the peer closes; with an idle limit, a read that sees no byte for `idle_ms`
/// times out (the read is cancelled and retired) and the connection is closed.
evio::task<void> session(evio::reactor& r, evio::tcp_stream s, long idle_ms) {
    (void)s.set_nodelay(true);
    std::array<std::byte, 16384> buf;
    for (;;) {
        auto n = idle_ms > 0
                     ? co_await evio::with_timeout(r, std::chrono::milliseconds(idle_ms), s.read_some(buf))
                     : co_await s.read_some(buf);
        if (!n || *n == 0) break; // error, idle timeout (errc::timed_out) or EOF
        if (!co_await s.write_all(std::span(buf).first(*n))) break;
    }
}

evio::task<void> serve(evio::reactor& r, evio::tcp_listener& lis, long idle_ms) {
    for (;;) {
        auto s = co_await lis.accept();
        if (s) evio::spawn(r, session(r, std::move(*s), idle_ms));
        else if (s.error() == evio::errc::operation_canceled) co_return; // listener closed
        // too_many_open_files: the next accept waits for a free descriptor; keep serving.
    }
}

bool parse(int argc, char** argv, options& o) {
    for (int i = 1; i < argc; ++i) {
        const std::string_view a = argv[i];
        const char* v = i + 1 < argc ? argv[i + 1] : nullptr;
        if (a == "--port" && v) o.port = static_cast<std::uint16_t>(std::atoi(argv[++i]));
        else if (a == "--idle-ms" && v) o.idle_ms = std::atol(argv[++i]);
        else if (a == "--max-seconds" && v) o.max_seconds = std::atol(argv[++i]);
        else if (a == "--backend" && v) {
            const std::string_view b = argv[++i];
            if (b == "epoll") o.backend = evio::backend_kind::epoll;
            else if (b == "io_uring") o.backend = evio::backend_kind::io_uring;
            else if (b == "iocp") o.backend = evio::backend_kind::iocp;
            else if (b != "auto" && b != "automatic") return false;
        } else return false;
    }
    return true;
}

} // namespace

int main(int argc, char** argv) {
    options o;
    if (!parse(argc, argv, o)) {
        std::fprintf(stderr, "usage: echo_server [--port N] [--backend auto|epoll|io_uring|iocp] "
                             "[--idle-ms N] [--max-seconds N]\n");
        return 2;
    }
    try {
        evio::reactor r{evio::reactor_options{o.backend}};
        auto lis = evio::tcp_listener::bind(r, evio::endpoint::loopback_v4(o.port));
        if (!lis) {
            std::fprintf(stderr, "bind 127.0.0.1:%u: %s\n", o.port, lis.error().message().c_str());
            return 1;
        }
        std::printf("listening on %s backend %s\n", lis->local_endpoint().value().to_string().c_str(),
                    evio::to_string(r.backend()));
        std::fflush(stdout);
        evio::spawn(r, serve(r, *lis, o.idle_ms));
        if (o.max_seconds > 0) {
            evio::spawn(r, [&]() -> evio::task<void> {
                co_await evio::sleep_for(r, std::chrono::seconds(o.max_seconds));
                r.stop();
            });
        }
        r.run();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "echo_server: %s\n", e.what());
        return 1;
    }
}
