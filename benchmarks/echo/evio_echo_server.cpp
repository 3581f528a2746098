// SPDX-License-Identifier: MIT
// evio echo server for the side-by-side benchmark: written the way a user would (accept loop,
// one spawned coroutine per connection, co_await read_some / write_all), no tuning.
//
//   evio_echo_server [--backend io_uring|epoll|auto] [--api receive|read_some] [--port N]
//                    [--max-reads N] [--busy-poll MICROSECONDS] [--poll adaptive|fixed]
//
// --api receive (the default) reads with tcp_stream::receive(): buffer leases (on io_uring a
// multishot recv into the kernel's provided-buffer ring, as the raw liburing server does);
// --api read_some reads into a 16 KiB array in the coroutine frame. --busy-poll sets
// reactor_options::busy_poll (default 0: a turn blocks at once when nothing is ready), --poll
// reactor_options::busy_poll_adaptive (default adaptive).
//
// Prints "port N pid P backend NAME" as its first line (port 0 picks a free port). With
// --max-reads N it stops after N successful reads in total (callgrind counts a known number of
// echoed messages that way).
#include <evio/evio.hpp>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <unistd.h>

namespace {

struct options {
    std::uint16_t port = 0;
    evio::backend_kind backend = evio::backend_kind::automatic;
    long long max_reads = 0; // 0: run until killed
    bool receive = true;     // --api receive (default) or read_some
    long busy_poll_us = 0;   // --busy-poll
    bool adaptive = true;    // --poll adaptive (default) or fixed
};

long long reads_left = 0; // counts down when --max-reads is given

evio::task<void> session(evio::reactor& r, evio::tcp_stream s) {
    (void)s.set_nodelay(true);
    std::array<std::byte, 16384> buf; // the same read size in every server of the benchmark
    for (;;) {
        auto n = co_await s.read_some(buf);
        if (!n || *n == 0) break;
        if (reads_left > 0 && --reads_left == 0) r.stop();
        if (!co_await s.write_all(std::span(buf).first(*n))) break;
    }
}

evio::task<void> session_receive(evio::reactor& r, evio::tcp_stream s) {
    (void)s.set_nodelay(true);
    for (;;) {
        auto data = co_await s.receive(); // a lease on a 16 KiB reactor buffer
        if (!data && data.error() == evio::errc::no_buffer_space) { // every buffer in use
            co_await evio::sleep_for(r, std::chrono::milliseconds(1));
            continue;
        }
        if (!data || data->empty()) break;
        if (reads_left > 0 && --reads_left == 0) r.stop();
        if (!co_await s.write_all(data->data())) break;
    }
}

evio::task<void> serve(evio::reactor& r, evio::tcp_listener& lis, bool receive) {
    for (;;) {
        auto s = co_await lis.accept();
        if (s && receive) evio::spawn(r, session_receive(r, std::move(*s)));
        else if (s) evio::spawn(r, session(r, std::move(*s)));
        else if (s.error() == evio::errc::operation_canceled) co_return;
    }
}

bool parse(int argc, char** argv, options& o) {
    for (int i = 1; i < argc; ++i) {
        const std::string_view a = argv[i];
        if (i + 1 >= argc) return false;
        const std::string_view v = argv[++i];
        if (a == "--port") o.port = static_cast<std::uint16_t>(std::atoi(v.data()));
        else if (a == "--max-reads") o.max_reads = std::atoll(v.data());
        else if (a == "--busy-poll") o.busy_poll_us = std::atol(v.data());
        else if (a == "--poll") {
            if (v == "adaptive") o.adaptive = true;
            else if (v == "fixed") o.adaptive = false;
            else return false;
        }
        else if (a == "--api") {
            if (v == "receive") o.receive = true;
            else if (v == "read_some") o.receive = false;
            else return false;
        }
        else if (a == "--backend") {
            if (v == "epoll") o.backend = evio::backend_kind::epoll;
            else if (v == "io_uring") o.backend = evio::backend_kind::io_uring;
            else if (v != "auto") return false;
        } else return false;
    }
    return true;
}

} // namespace

int main(int argc, char** argv) {
    options o;
    if (!parse(argc, argv, o)) {
        std::fprintf(stderr, "usage: evio_echo_server [--backend io_uring|epoll|auto] "
                             "[--api receive|read_some] [--port N] [--max-reads N] "
                             "[--busy-poll MICROSECONDS] [--poll adaptive|fixed]\n");
        return 2;
    }
    reads_left = o.max_reads;
    try {
        evio::reactor_options ro{o.backend, 1024, false};
        ro.receive_buffers_max = 8192; // as the raw liburing server: 1000 connections x 64 KiB fit
        ro.busy_poll = std::chrono::microseconds(o.busy_poll_us);
        ro.busy_poll_adaptive = o.adaptive;
        evio::reactor r{ro};
        if (o.backend != evio::backend_kind::automatic && r.backend() != o.backend) {
            std::fprintf(stderr, "evio_echo_server: backend %s unavailable\n",
                         o.backend == evio::backend_kind::epoll ? "epoll" : "io_uring");
            return 1;
        }
        auto lis = evio::tcp_listener::bind(r, evio::endpoint::loopback_v4(o.port), 4096);
        if (!lis) {
            std::fprintf(stderr, "bind 127.0.0.1:%u: %s\n", o.port, lis.error().message().c_str());
            return 1;
        }
        std::printf("port %u pid %d backend %s\n", lis->local_endpoint().value().port(),
                    static_cast<int>(::getpid()), evio::to_string(r.backend()));
        std::fflush(stdout);
        evio::spawn(r, serve(r, *lis, o.receive));
        r.run();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "evio_echo_server: %s\n", e.what());
        return 1;
    }
}
