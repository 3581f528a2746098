// SPDX-License-Identifier: MIT
// Closed-loop echo load: N connections each send a message, wait for its echo, verify, repeat.
//
//   echo_client [--host 127.0.0.1] [--port N] [--connections N] [--size BYTES] [--seconds S]
//               [--backend auto|epoll|io_uring|iocp]
//
// Prints messages/s, MiB/s, p50/p99 round-trip latency and errors; exits 1 on any error.
#include <evio/evio.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

namespace {

using clock_type = std::chrono::steady_clock;

struct options {
    std::string host = "127.0.0.1";
    std::uint16_t port = 9000;
    int connections = 16;
    std::size_t size = 64;
    double seconds = 3;
    evio::backend_kind backend = evio::backend_kind::automatic;
};

struct stats {
    std::uint64_t messages = 0;
    std::uint64_t errors = 0;
    std::vector<std::uint32_t> latency_us; // sampled
};

evio::task<void> client(evio::reactor& r, evio::endpoint ep, std::size_t size,
                        clock_type::time_point end, stats& st, int id) {
    auto s = co_await evio::tcp_stream::connect(r, ep);
    if (!s) {
        ++st.errors;
        std::fprintf(stderr, "connect: %s\n", s.error().message().c_str());
        co_return;
    }
    (void)s->set_nodelay(true);
    std::vector<std::byte> out(size), in(size);
    std::uint64_t seq = static_cast<std::uint64_t>(id) << 40;
    while (clock_type::now() < end) {
        for (std::size_t i = 0; i < size; ++i) out[i] = static_cast<std::byte>((seq + i) * 31);
        const auto t0 = clock_type::now();
        if (!co_await s->write_all(out)) {
            ++st.errors;
            co_return;
        }
        if (auto rr = co_await s->read_exact(in); !rr) {
            ++st.errors;
            std::fprintf(stderr, "read: %s\n", rr.error().message().c_str());
            co_return;
        }
        if (in != out) {
            ++st.errors;
            std::fprintf(stderr, "echo mismatch on connection %d\n", id);
            co_return;
        }
        ++st.messages;
        if ((st.messages & 15) == 0)
            st.latency_us.push_back(static_cast<std::uint32_t>(
                std::chrono::duration_cast<std::chrono::microseconds>(clock_type::now() - t0).count()));
        ++seq;
    }
}

bool parse(int argc, char** argv, options& o) {
    for (int i = 1; i < argc; ++i) {
        const std::string_view a = argv[i];
        if (i + 1 >= argc) return false;
        const char* v = argv[++i];
        if (a == "--host") o.host = v;
        else if (a == "--port") o.port = static_cast<std::uint16_t>(std::atoi(v));
        else if (a == "--connections") o.connections = std::atoi(v);
        else if (a == "--size") o.size = static_cast<std::size_t>(std::atol(v));
        else if (a == "--seconds") o.seconds = std::atof(v);
        else if (a == "--backend") {
            const std::string_view b = v;
            if (b == "epoll") o.backend = evio::backend_kind::epoll;
            else if (b == "io_uring") o.backend = evio::backend_kind::io_uring;
            else if (b == "iocp") o.backend = evio::backend_kind::iocp;
            else if (b != "auto" && b != "automatic") return false;
        } else return false;
    }
    return o.connections > 0 && o.size > 0 && o.seconds > 0;
}

} // namespace

int main(int argc, char** argv) {
    options o;
    if (!parse(argc, argv, o)) {
        std::fprintf(stderr, "usage: echo_client [--host H] [--port N] [--connections N] "
                             "[--size BYTES] [--seconds S] [--backend B]\n");
        return 2;
    }
    auto ep = evio::endpoint::parse(o.host + ":" + std::to_string(o.port));
    if (!ep) {
        std::fprintf(stderr, "bad address %s:%u\n", o.host.c_str(), o.port);
        return 2;
    }
    try {
        evio::reactor r{evio::reactor_options{o.backend}};
        stats st;
        const auto start = clock_type::now();
        const auto end = start + std::chrono::duration_cast<clock_type::duration>(
                                     std::chrono::duration<double>(o.seconds));
        for (int i = 0; i < o.connections; ++i)
            evio::spawn(r, client(r, *ep, o.size, end, st, i));
        r.run();
        const double secs = std::chrono::duration<double>(clock_type::now() - start).count();
        std::sort(st.latency_us.begin(), st.latency_us.end());
        auto pct = [&](double p) -> unsigned {
            if (st.latency_us.empty()) return 0;
            return st.latency_us[std::min(st.latency_us.size() - 1,
                                          static_cast<std::size_t>(p * st.latency_us.size()))];
        };
        std::printf("echo_client: backend %s, %d connections x %zu B, %.1f s\n",
                    evio::to_string(r.backend()), o.connections, o.size, secs);
        std::printf("  %.0f msgs/s  %.2f MiB/s  p50 %u us  p99 %u us  p99.9 %u us  errors %llu\n",
                    static_cast<double>(st.messages) / secs,
                    static_cast<double>(st.messages) * static_cast<double>(o.size) * 2 / secs /
                        (1024.0 * 1024.0),
                    pct(0.50), pct(0.99), pct(0.999),
                    static_cast<unsigned long long>(st.errors));
        return st.errors == 0 && st.messages > 0 ? 0 : 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "echo_client: %s\n", e.what());
        return 1;
    }
}
