// SPDX-License-Identifier: MIT
// Closed-loop echo load generator, independent of evio (plain C++ and epoll, one thread).
//
//   loadgen --target NAME=HOST:PORT:PID [--target ...] [--conns N] [--size BYTES]
//           [--warmup SECONDS] [--rounds R] [--round-secs SECONDS] [--until-closed]
//           [--max-secs SECONDS] [--lockstep]
//
// Every target gets N connections. Each connection sends one message of S bytes, waits for the
// whole echo, checks every byte and sends the next one. Targets are measured interleaved so that
// machine drift hits every server alike: each target is warmed up in turn, then in each of R
// rounds each target is driven alone for T seconds (the connections of the other targets stay
// idle), the order rotated by one per round (A B C, B C A, ...) so that no server always runs
// right after the same neighbour. Per target and round it prints one tab-separated line:
//
//   R round target conns size msgs secs msgs_per_s mib_per_s p50_us p99_us p999_us errors
//     cpu_us_per_msg user_us_per_msg
//
// cpu_us_per_msg is the server's utime+stime (/proc/PID/stat, all threads, clock ticks) over
// the interval divided by the messages, user_us_per_msg its utime alone (the server's own
// code; the rest is the kernel's); PID 0 leaves both at -1. Round 0 is the warm-up (no
// latencies recorded; count its errors, ignore its rates). Messages still in flight when the
// interval ends are completed (drained) before the next target starts and are not counted.
//
// --until-closed (callgrind runs): one phase per target without warm-up that lasts until the
// server has closed every connection (it exits after --max-reads), bounded by --max-secs.
// --lockstep (the instruction and system-call counts): a connection's next message waits until
// every connection of the target has its echo, so each server sees the same bursts of N messages
// and its count per message does not depend on how the two CPUs happened to interleave.
// Exit status: 0, or 1 when any byte was wrong, a connection failed, or nothing was echoed.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <string_view>
#include <vector>

namespace {

constexpr std::size_t pool_span = 65536; // message offsets into the pattern pool

struct options {
    std::size_t conns = 16;
    std::size_t size = 64;
    double warmup = 1.0;
    int rounds = 5;
    double round_secs = 1.0;
    bool until_closed = false;
    bool lockstep = false;
    double max_secs = 120.0;
};

struct target {
    std::string name;
    std::string host;
    std::uint16_t port = 0;
    int pid = 0;
    std::size_t first = 0; // index of its first connection in the global table
};

struct conn {
    int fd = -1;
    std::uint32_t id = 0;
    std::uint64_t seq = 0;
    const unsigned char* msg = nullptr; // the expected bytes of the message in flight
    std::size_t sent = 0;
    std::size_t recvd = 0;
    std::int64_t started_ns = 0;
    bool busy = false;    // a message is in flight
    bool want_out = false; // EPOLLOUT is in the interest set
};

struct phase_result {
    std::uint64_t msgs = 0;
    double secs = 0;
    std::uint64_t errors = 0;
    long long cpu_ticks = -1;
    long long user_ticks = -1;
    std::vector<std::uint32_t> lat_ns;
};

std::int64_t now_ns() {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

/// utime + stime of every thread of `pid` in clock ticks (utime alone in `user`), or -1.
long long cpu_ticks(int pid, long long& user) {
    if (pid <= 0) return -1;
    char path[64];
    std::snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE* f = std::fopen(path, "r");
    if (!f) return -1;
    char buf[1024];
    const std::size_t n = std::fread(buf, 1, sizeof buf - 1, f);
    std::fclose(f);
    buf[n] = '\0';
    const char* p = std::strrchr(buf, ')'); // the command name may hold spaces
    if (!p) return -1;
    // Fields after the name: 3 state ... 14 utime 15 stime; p points before field 3.
    unsigned long long utime = 0, stime = 0;
    int field = 2;
    for (const char* q = p + 1; *q; ++q) {
        if (*q == ' ') {
            ++field;
            if (field == 14) utime = std::strtoull(q + 1, nullptr, 10);
            if (field == 15) {
                stime = std::strtoull(q + 1, nullptr, 10);
                break;
            }
        }
    }
    user = static_cast<long long>(utime);
    return static_cast<long long>(utime + stime);
}

class loadgen {
public:
    loadgen(const options& o, std::vector<target> targets) : o_(o), targets_(std::move(targets)) {
        // The pattern pool: message (connection, sequence) is pool_[offset(id, seq)..+size].
        pool_.resize(pool_span + o_.size);
        std::uint64_t x = 0x9e3779b97f4a7c15ULL;
        for (auto& b : pool_) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            b = static_cast<unsigned char>(x >> 24);
        }
        scratch_.resize(std::max<std::size_t>(o_.size, 65536));
        ep_ = ::epoll_create1(EPOLL_CLOEXEC);
    }

    ~loadgen() {
        for (auto& c : conns_)
            if (c.fd >= 0) ::close(c.fd);
        if (ep_ >= 0) ::close(ep_);
    }

    bool connect_all() {
        conns_.resize(targets_.size() * o_.conns);
        for (std::size_t t = 0; t < targets_.size(); ++t) {
            auto& tg = targets_[t];
            tg.first = t * o_.conns;
            sockaddr_in sa{};
            sa.sin_family = AF_INET;
            sa.sin_port = htons(tg.port);
            if (::inet_pton(AF_INET, tg.host.c_str(), &sa.sin_addr) != 1) {
                std::fprintf(stderr, "loadgen: bad address %s\n", tg.host.c_str());
                return false;
            }
            for (std::size_t i = 0; i < o_.conns; ++i) {
                auto& c = conns_[tg.first + i];
                c.id = static_cast<std::uint32_t>(tg.first + i);
                c.fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
                if (c.fd < 0 || ::connect(c.fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
                    std::fprintf(stderr, "loadgen: connect %s (%s:%u) #%zu: %s\n", tg.name.c_str(),
                                 tg.host.c_str(), tg.port, i, std::strerror(errno));
                    return false;
                }
                const int one = 1;
                ::setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                ::fcntl(c.fd, F_SETFL, ::fcntl(c.fd, F_GETFL) | O_NONBLOCK);
                epoll_event ev{};
                ev.events = EPOLLIN;
                ev.data.u64 = c.id;
                ::epoll_ctl(ep_, EPOLL_CTL_ADD, c.fd, &ev);
            }
        }
        return true;
    }

    /// Drives target `t` alone for `secs` (or until its connections are closed), then drains.
    phase_result run_phase(std::size_t t, double secs, bool record, bool until_closed) {
        phase_result r;
        auto& tg = targets_[t];
        cur_ = &r;
        recording_ = record;
        stopping_ = false;
        until_closed_ = until_closed;
        outstanding_ = 0;
        first_ = tg.first;
        if (record) r.lat_ns.reserve(1 << 20);
        long long user0 = 0;
        const long long cpu0 = cpu_ticks(tg.pid, user0);
        const std::int64_t t0 = now_ns();
        const std::int64_t stop_at = t0 + static_cast<std::int64_t>(secs * 1e9);
        for (std::size_t i = 0; i < o_.conns; ++i) {
            auto& c = conns_[tg.first + i];
            if (c.fd >= 0) start(c, t0);
        }
        std::int64_t t1 = 0;
        epoll_event evs[256];
        for (;;) {
            const std::int64_t now = now_ns();
            if (!stopping_ && (now >= stop_at || outstanding_ == 0)) {
                stopping_ = true;
                t1 = now;
                r.secs = static_cast<double>(t1 - t0) / 1e9;
                if (r.cpu_ticks == -1 && cpu0 >= 0) {
                    long long user1 = 0;
                    const long long cpu1 = cpu_ticks(tg.pid, user1);
                    r.cpu_ticks = cpu1 >= 0 ? cpu1 - cpu0 : -1;
                    r.user_ticks = cpu1 >= 0 ? user1 - user0 : -1;
                }
            }
            if (stopping_ && outstanding_ == 0) break;
            if (stopping_ && now > t1 + 5'000'000'000LL) { // a server that stopped answering
                for (std::size_t i = 0; i < o_.conns; ++i) {
                    auto& c = conns_[tg.first + i];
                    if (c.busy) fail(c, "no echo within 5 s after the interval");
                }
                break;
            }
            int timeout_ms = 100;
            if (!stopping_) timeout_ms = static_cast<int>(std::max<std::int64_t>(0, (stop_at - now) / 1'000'000));
            const int n = ::epoll_wait(ep_, evs, 256, timeout_ms);
            for (int k = 0; k < n; ++k) {
                auto& c = conns_[evs[k].data.u64];
                if (c.fd < 0) continue;
                if (!c.busy) { // data nobody asked for, or the peer closed an idle connection
                    if (until_closed_) close_conn(c);
                    else fail(c, "unexpected data or close on an idle connection");
                    continue;
                }
                if (evs[k].events & EPOLLOUT) on_writable(c);
                if (c.fd >= 0 && (evs[k].events & (EPOLLIN | EPOLLERR | EPOLLHUP))) on_readable(c);
            }
        }
        cur_ = nullptr;
        return r;
    }

    std::vector<target>& targets() { return targets_; }

private:
    const unsigned char* message(const conn& c) const {
        std::uint64_t h = (static_cast<std::uint64_t>(c.id) << 32) ^ c.seq;
        h *= 0x9e3779b97f4a7c15ULL;
        return pool_.data() + (h >> 40) % pool_span;
    }

    void start(conn& c, std::int64_t now) {
        c.msg = message(c);
        c.sent = 0;
        c.recvd = 0;
        c.started_ns = now;
        c.busy = true;
        ++outstanding_;
        on_writable(c);
    }

    void set_out(conn& c, bool on) {
        if (c.want_out == on) return;
        c.want_out = on;
        epoll_event ev{};
        ev.events = EPOLLIN | (on ? EPOLLOUT : 0u);
        ev.data.u64 = c.id;
        ::epoll_ctl(ep_, EPOLL_CTL_MOD, c.fd, &ev);
    }

    void on_writable(conn& c) {
        while (c.sent < o_.size) {
            const ssize_t n = ::send(c.fd, c.msg + c.sent, o_.size - c.sent, MSG_NOSIGNAL);
            if (n > 0) {
                c.sent += static_cast<std::size_t>(n);
                continue;
            }
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                set_out(c, true);
                return;
            }
            if (until_closed_) close_conn(c);
            else fail(c, std::strerror(errno));
            return;
        }
        set_out(c, false);
    }

    void on_readable(conn& c) {
        for (;;) {
            // Never read past the message: an extra byte would be an echo of nothing.
            const std::size_t want = std::min(scratch_.size(), o_.size - c.recvd + 1);
            const ssize_t n = ::recv(c.fd, scratch_.data(), want, 0);
            if (n > 0) {
                const auto got = static_cast<std::size_t>(n);
                if (c.recvd + got > o_.size || c.recvd + got > c.sent) {
                    fail(c, "echo longer than what was sent");
                    return;
                }
                if (std::memcmp(scratch_.data(), c.msg + c.recvd, got) != 0) {
                    fail(c, "echoed bytes differ from the bytes sent");
                    return;
                }
                c.recvd += got;
                if (c.recvd == o_.size) {
                    complete(c);
                    return;
                }
                continue;
            }
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
            if (until_closed_) close_conn(c); // the server exited after --max-reads
            else fail(c, n == 0 ? "server closed the connection" : std::strerror(errno));
            return;
        }
    }

    void complete(conn& c) {
        const std::int64_t now = now_ns();
        c.busy = false;
        --outstanding_;
        ++c.seq;
        if (!stopping_) {
            ++cur_->msgs;
            if (recording_) cur_->lat_ns.push_back(static_cast<std::uint32_t>(
                std::min<std::int64_t>(now - c.started_ns, UINT32_MAX)));
            if (!o_.lockstep) {
                start(c, now);
            } else if (outstanding_ == 0) { // the burst is echoed: the next one, on every connection
                for (std::size_t i = 0; i < o_.conns; ++i)
                    if (auto& n = conns_[first_ + i]; n.fd >= 0) start(n, now);
            }
        }
    }

    void close_conn(conn& c) {
        if (c.busy) {
            c.busy = false;
            --outstanding_;
        }
        ::epoll_ctl(ep_, EPOLL_CTL_DEL, c.fd, nullptr);
        ::close(c.fd);
        c.fd = -1;
    }

    void fail(conn& c, const char* why) {
        if (cur_) ++cur_->errors;
        if (errors_printed_++ < 10) std::fprintf(stderr, "loadgen: connection %u: %s\n", c.id, why);
        close_conn(c);
    }

    options o_;
    std::vector<target> targets_;
    std::vector<conn> conns_;
    std::vector<unsigned char> pool_;
    std::vector<unsigned char> scratch_;
    int ep_ = -1;
    phase_result* cur_ = nullptr;
    bool recording_ = false;
    bool stopping_ = false;
    bool until_closed_ = false;
    std::size_t first_ = 0; ///< the current target's first connection
    std::size_t outstanding_ = 0;
    int errors_printed_ = 0;
};

double percentile_us(std::vector<std::uint32_t>& v, double q) {
    if (v.empty()) return 0;
    const auto k = static_cast<std::size_t>(std::min<double>(v.size() - 1, std::floor(q * v.size())));
    std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
    return v[k] / 1000.0;
}

bool parse_target(std::string_view s, target& t) {
    const auto eq = s.find('=');
    if (eq == std::string_view::npos) return false;
    t.name = std::string(s.substr(0, eq));
    s.remove_prefix(eq + 1);
    const auto c1 = s.find(':');
    if (c1 == std::string_view::npos) return false;
    t.host = std::string(s.substr(0, c1));
    s.remove_prefix(c1 + 1);
    const auto c2 = s.find(':');
    t.port = static_cast<std::uint16_t>(std::atoi(std::string(s.substr(0, c2)).c_str()));
    t.pid = c2 == std::string_view::npos ? 0 : std::atoi(std::string(s.substr(c2 + 1)).c_str());
    return !t.name.empty() && t.port != 0;
}

int usage() {
    std::fprintf(stderr, "usage: loadgen --target NAME=HOST:PORT:PID [--target ...] [--conns N] "
                         "[--size BYTES] [--warmup S] [--rounds R] [--round-secs S] "
                         "[--until-closed] [--max-secs S] [--lockstep]\n");
    return 2;
}

} // namespace

int main(int argc, char** argv) {
    options o;
    std::vector<target> targets;
    for (int i = 1; i < argc; ++i) {
        const std::string_view a = argv[i];
        if (a == "--until-closed") {
            o.until_closed = true;
            continue;
        }
        if (a == "--lockstep") {
            o.lockstep = true;
            continue;
        }
        if (i + 1 >= argc) return usage();
        const char* v = argv[++i];
        if (a == "--target") {
            target t;
            if (!parse_target(v, t)) return usage();
            targets.push_back(t);
        } else if (a == "--conns") o.conns = std::strtoul(v, nullptr, 10);
        else if (a == "--size") o.size = std::strtoul(v, nullptr, 10);
        else if (a == "--warmup") o.warmup = std::atof(v);
        else if (a == "--rounds") o.rounds = std::atoi(v);
        else if (a == "--round-secs") o.round_secs = std::atof(v);
        else if (a == "--max-secs") o.max_secs = std::atof(v);
        else return usage();
    }
    if (targets.empty() || o.conns == 0 || o.size == 0) return usage();

    // 1000 connections x 6 servers: raise the descriptor limit as far as allowed.
    rlimit rl{};
    if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        ::setrlimit(RLIMIT_NOFILE, &rl);
    }

    loadgen lg(o, targets);
    if (!lg.connect_all()) return 1;
    const double tick_us = 1e6 / static_cast<double>(::sysconf(_SC_CLK_TCK));

    std::printf("# R round target conns size msgs secs msgs_per_s mib_per_s p50_us p99_us p999_us "
                "errors cpu_us_per_msg user_us_per_msg\n");
    std::uint64_t total_errors = 0, total_msgs = 0;
    auto report = [&](int round, const target& t, phase_result& r) {
        const double rate = r.secs > 0 ? static_cast<double>(r.msgs) / r.secs : 0;
        const double mib = rate * static_cast<double>(o.size) / (1024.0 * 1024.0);
        const double cpu = r.cpu_ticks >= 0 && r.msgs > 0
                               ? static_cast<double>(r.cpu_ticks) * tick_us / static_cast<double>(r.msgs)
                               : -1;
        const double user = r.user_ticks >= 0 && r.msgs > 0
                                ? static_cast<double>(r.user_ticks) * tick_us / static_cast<double>(r.msgs)
                                : -1;
        const double p50 = percentile_us(r.lat_ns, 0.50);
        const double p99 = percentile_us(r.lat_ns, 0.99);
        const double p999 = percentile_us(r.lat_ns, 0.999);
        std::printf("R\t%d\t%s\t%zu\t%zu\t%llu\t%.4f\t%.1f\t%.2f\t%.1f\t%.1f\t%.1f\t%llu\t%.3f\t%.3f\n",
                    round, t.name.c_str(), o.conns, o.size, static_cast<unsigned long long>(r.msgs),
                    r.secs, rate, mib, p50, p99, p999, static_cast<unsigned long long>(r.errors), cpu, user);
        std::fflush(stdout);
        total_errors += r.errors;
        total_msgs += r.msgs;
    };

    if (o.until_closed) {
        for (std::size_t t = 0; t < lg.targets().size(); ++t) {
            auto r = lg.run_phase(t, o.max_secs, true, true);
            report(1, lg.targets()[t], r);
        }
    } else {
        for (std::size_t t = 0; t < lg.targets().size(); ++t) { // warm-up: round 0
            auto r = lg.run_phase(t, o.warmup, false, false);
            report(0, lg.targets()[t], r);
        }
        const std::size_t n = lg.targets().size();
        for (int round = 1; round <= o.rounds; ++round) {
            for (std::size_t i = 0; i < n; ++i) { // rotated: A B C, B C A, C A B, ...
                const std::size_t t = (static_cast<std::size_t>(round - 1) + i) % n;
                auto r = lg.run_phase(t, o.round_secs, true, false);
                report(round, lg.targets()[t], r);
            }
        }
    }
    if (total_errors != 0 || total_msgs == 0) {
        std::fprintf(stderr, "loadgen: %llu errors, %llu messages\n",
                     static_cast<unsigned long long>(total_errors),
                     static_cast<unsigned long long>(total_msgs));
        return 1;
    }
    return 0;
}
