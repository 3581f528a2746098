// SPDX-License-Identifier: MIT
// Load generator of the idle-connections benchmark (evio-independent, single thread, epoll):
// `--active` connections echo `--size`-byte messages in a closed loop (each waits for its echo,
// verified byte for byte, before sending the next) while `--idle` other connections stay open
// and silent. Each round measures the active ones alone, then opens the idle ones, measures
// again, and drops them (SO_LINGER 0: a reset, no TIME_WAIT left behind).
//
//   idle_client --port N [--idle 10000] [--active 16] [--size 64] [--seconds 2] [--rounds 3]
//
// Last line: "RESULT alone=<msgs/s> loaded=<msgs/s> ratio=<loaded/alone>", medians over rounds.
#include <algorithm>
#include <arpa/inet.h>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string_view>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace {

using clock_type = std::chrono::steady_clock;

[[noreturn]] void die(const char* what) {
    std::fprintf(stderr, "idle_client: %s: %s\n", what, std::strerror(errno));
    std::exit(1);
}

int connect_to(std::uint16_t port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) die("socket");
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) die("connect");
    return fd;
}

struct active_conn {
    int fd = -1;
    std::size_t got = 0;
    unsigned char seq = 0;
};

/// Echoes for `warmup` then `seconds`; returns messages per second of the measured part.
double measure(std::vector<active_conn>& conns, std::size_t size, double warmup, double seconds) {
    const int ep = ::epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) die("epoll_create1");
    std::vector<unsigned char> out(size), in(size);
    for (std::size_t i = 0; i < conns.size(); ++i) {
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u64 = i;
        if (::epoll_ctl(ep, EPOLL_CTL_ADD, conns[i].fd, &ev) != 0) die("epoll_ctl");
    }
    auto send_one = [&](active_conn& c) {
        ++c.seq;
        std::memset(out.data(), c.seq, size);
        if (::send(c.fd, out.data(), size, MSG_NOSIGNAL) != static_cast<ssize_t>(size)) die("send");
        c.got = 0;
    };
    for (auto& c : conns) send_one(c);
    const auto start = clock_type::now();
    const auto measured_from = start + std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(warmup));
    const auto end = measured_from + std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(seconds));
    std::uint64_t count = 0;
    bool measuring = false;
    epoll_event events[64];
    for (;;) {
        const int n = ::epoll_wait(ep, events, 64, 1000);
        if (n < 0 && errno != EINTR) die("epoll_wait");
        for (int i = 0; i < n; ++i) {
            active_conn& c = conns[events[i].data.u64];
            const ssize_t k = ::recv(c.fd, in.data() + c.got, size - c.got, 0);
            if (k <= 0) die("recv (server closed or failed)");
            for (ssize_t j = 0; j < k; ++j)
                if (in[c.got + static_cast<std::size_t>(j)] != c.seq) {
                    std::fprintf(stderr, "idle_client: echoed byte mismatch\n");
                    std::exit(1);
                }
            c.got += static_cast<std::size_t>(k);
            if (c.got == size) {
                if (measuring) ++count;
                send_one(c);
            }
        }
        const auto now = clock_type::now();
        if (!measuring && now >= measured_from) {
            measuring = true;
            count = 0;
        }
        if (now >= end) break;
    }
    // Collect the echoes still in flight so the next measurement starts clean.
    for (auto& c : conns) {
        while (c.got < size) {
            const ssize_t k = ::recv(c.fd, in.data() + c.got, size - c.got, 0);
            if (k <= 0) die("recv (drain)");
            c.got += static_cast<std::size_t>(k);
        }
    }
    ::close(ep);
    return static_cast<double>(count) / seconds;
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

} // namespace

int main(int argc, char** argv) {
    std::uint16_t port = 0;
    int idle = 10000, active = 16, rounds = 3;
    std::size_t size = 64;
    double seconds = 2.0, warmup = 0.3;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string_view a = argv[i];
        if (a == "--port") port = static_cast<std::uint16_t>(std::atoi(argv[i + 1]));
        else if (a == "--idle") idle = std::atoi(argv[i + 1]);
        else if (a == "--active") active = std::atoi(argv[i + 1]);
        else if (a == "--size") size = static_cast<std::size_t>(std::atol(argv[i + 1]));
        else if (a == "--seconds") seconds = std::atof(argv[i + 1]);
        else if (a == "--rounds") rounds = std::atoi(argv[i + 1]);
    }
    if (port == 0 || size == 0 || active <= 0 || rounds <= 0) {
        std::fprintf(stderr, "usage: idle_client --port N [--idle N] [--active N] [--size B] "
                             "[--seconds S] [--rounds N]\n");
        return 2;
    }
    rlimit nofile{};
    if (::getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
        nofile.rlim_cur = nofile.rlim_max;
        (void)::setrlimit(RLIMIT_NOFILE, &nofile);
    }
    if (nofile.rlim_cur < static_cast<rlim_t>(idle + active + 16)) {
        std::fprintf(stderr, "idle_client: RLIMIT_NOFILE %llu is too low for %d connections\n",
                     static_cast<unsigned long long>(nofile.rlim_cur), idle + active);
        return 1;
    }
    std::vector<active_conn> conns(static_cast<std::size_t>(active));
    const int one = 1;
    for (auto& c : conns) {
        c.fd = connect_to(port);
        ::setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    std::vector<double> alone, loaded, ratio;
    std::vector<int> idle_fds;
    idle_fds.reserve(static_cast<std::size_t>(idle));
    for (int r = 0; r < rounds; ++r) {
        const double a = measure(conns, size, warmup, seconds);
        const auto t0 = clock_type::now();
        const linger drop{1, 0};
        for (int i = 0; i < idle; ++i) {
            const int fd = connect_to(port);
            ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &drop, sizeof drop);
            idle_fds.push_back(fd);
        }
        const double open_s = std::chrono::duration<double>(clock_type::now() - t0).count();
        const double b = measure(conns, size, warmup, seconds);
        for (const int fd : idle_fds) ::close(fd);
        idle_fds.clear();
        std::this_thread::sleep_for(std::chrono::milliseconds(300)); // the server drops them
        std::printf("round %d: alone %.0f msgs/s, with %d idle %.0f msgs/s, ratio %.3f "
                    "(idle connections opened in %.2f s)\n",
                    r + 1, a, idle, b, b / a, open_s);
        std::fflush(stdout);
        alone.push_back(a);
        loaded.push_back(b);
        ratio.push_back(b / a);
    }
    std::printf("RESULT alone=%.0f loaded=%.0f ratio=%.3f\n", median(alone), median(loaded), median(ratio));
}
