// SPDX-License-Identifier: MIT
// A small evio echo server for the idle-connections benchmark: one coroutine per connection,
// each parked in read_some while its client is idle (a 512-byte buffer keeps 10,000 frames
// small).
//
//   idle_server [--port N] [--backend auto|epoll|io_uring]
//
// Prints "listening on PORT backend NAME" as its first line (port 0 picks a free port).
#include <evio/evio.hpp>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <sys/resource.h>

namespace {

evio::task<void> session(evio::tcp_stream s) {
    (void)s.set_nodelay(true);
    std::array<std::byte, 512> buf;
    for (;;) {
        auto n = co_await s.read_some(buf);
        if (!n || *n == 0) co_return; // EOF, or the reset the client uses to drop idle ones
        if (!co_await s.write_all(std::span(buf).first(*n))) co_return;
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
    evio::backend_kind backend = evio::backend_kind::automatic;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string_view a = argv[i], v = argv[i + 1];
        if (a == "--port") port = static_cast<std::uint16_t>(std::atoi(argv[i + 1]));
        else if (a == "--backend")
            backend = v == "epoll" ? evio::backend_kind::epoll
                      : v == "io_uring" ? evio::backend_kind::io_uring
                                        : evio::backend_kind::automatic;
    }
    rlimit nofile{}; // 10,000 idle connections need more descriptors than the usual soft limit
    if (::getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
        nofile.rlim_cur = nofile.rlim_max;
        (void)::setrlimit(RLIMIT_NOFILE, &nofile);
    }
    try {
        evio::reactor r{evio::reactor_options{backend}};
        auto lis = evio::tcp_listener::bind(r, evio::endpoint::loopback_v4(port), 4096);
        if (!lis) {
            std::fprintf(stderr, "idle_server: bind: %s\n", lis.error().message().c_str());
            return 1;
        }
        std::printf("listening on %u backend %s\n", lis->local_endpoint().value().port(),
                    evio::to_string(r.backend()));
        std::fflush(stdout);
        evio::spawn(r, serve(r, *lis));
        r.run();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "idle_server: %s\n", e.what());
        return 1;
    }
}
