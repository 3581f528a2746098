// SPDX-License-Identifier: MIT
// Soak programs (loopback only, bounded), run by scripts/soak.sh and, shorter, by the reliability
// stage of scripts/test.sh. Backend from EVIO_BACKEND (epoll, io_uring). Each prints its figures
// and exits 0 when its assertions hold.
//
//   soak cycles <n>            n connect/close cycles (4 clients in parallel, each cycle echoes one
//                              byte); asserts the open-fd count returns to its start value and RSS
//                              grows by less than 1 MiB after a warm-up of n/10 cycles
//   soak slowloris <idle> <s>  <idle> connections that send half a request and stop (held by a
//                              child process), while 16 clients keep doing request/response round
//                              trips: s seconds without, then s seconds with the idle ones; asserts
//                              every client is served in both phases; prints the rate ratio
//   soak emfile                RLIMIT_NOFILE 256: the server holds connections until accept fails
//                              with EMFILE, measures its CPU time while parked (must be < 20% of
//                              one core), then frees them; asserts every client is then served
#include <evio/evio.hpp>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <string>
#include <string_view>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace evio;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

namespace {

int failures = 0;

void expect(bool ok, const char* what) {
    std::printf("  %s: %s\n", ok ? "ok  " : "FAIL", what);
    if (!ok) ++failures;
}

std::size_t open_fds() {
    std::size_t n = 0;
    if (DIR* d = ::opendir("/proc/self/fd")) {
        while (const dirent* e = ::readdir(d))
            if (e->d_name[0] != '.') ++n;
        ::closedir(d);
        --n; // the directory stream itself
    }
    return n;
}

long rss_kib() {
    FILE* f = std::fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    long kib = -1;
    while (std::fgets(line, sizeof line, f))
        if (std::strncmp(line, "VmRSS:", 6) == 0) kib = std::strtol(line + 6, nullptr, 10);
    std::fclose(f);
    return kib;
}

double cpu_seconds() {
    rusage ru{};
    ::getrusage(RUSAGE_SELF, &ru);
    return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/// A raw blocking client connection to 127.0.0.1:port (for the child processes).
int raw_connect(std::uint16_t port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = htons(port);
    timeval tv{30, 0};
    (void)::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    (void)::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

void raise_fd_limit() {
    rlimit rl{};
    ::getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &rl);
}

// ---- cycles ----

/// Echoes one byte, waits for the client's close, closes.
task<void> serve_one_byte(tcp_stream s) {
    std::array<std::byte, 1> b{};
    if (auto n = co_await s.read_some(b); n && *n == 1) {
        (void)co_await s.write_all(b);
        (void)co_await s.read_some(b); // end of stream
    }
}

task<void> accept_loop(reactor& r, tcp_listener& l, std::size_t& accepted, bool& stop) {
    while (!stop) {
        auto c = co_await l.accept();
        if (!c) {
            if (c.error() == errc::operation_canceled || c.error() == errc::closed) co_return;
            continue;
        }
        ++accepted;
        spawn(r, serve_one_byte(std::move(*c)));
    }
}

task<void> cycle_client(reactor& r, endpoint ep, std::size_t n, std::size_t& done, std::size_t& errors) {
    std::array<std::byte, 1> b{std::byte{42}};
    for (std::size_t i = 0; i < n; ++i) {
        auto s = co_await tcp_stream::connect(r, ep);
        if (!s) {
            ++errors;
            continue;
        }
        if (co_await s->write_all(b) && co_await s->read_exact(b)) ++done;
        else ++errors;
        s->close();
    }
}

int run_cycles(std::size_t n) {
    reactor r;
    std::printf("cycles: backend %s, %zu connect/close cycles\n", to_string(r.backend()), n);
    auto l = tcp_listener::bind(r, endpoint::loopback_v4(0));
    if (!l) return std::printf("bind: %s\n", l.error().message().c_str()), 1;
    const endpoint ep = *l->local_endpoint();
    std::size_t accepted = 0, done = 0, errors = 0;
    bool stop = false;
    spawn(r, accept_loop(r, *l, accepted, stop));
    constexpr std::size_t clients = 4;
    auto batch = [&](std::size_t cycles) {
        const std::size_t before = done + errors;
        for (std::size_t c = 0; c < clients; ++c)
            spawn(r, cycle_client(r, ep, cycles / clients, done, errors));
        while (done + errors < before + cycles / clients * clients) r.run_once(100ms);
        // Let the servers see the last ends of stream and close.
        for (int i = 0; i < 100 && r.core().table.live() > 1; ++i) r.run_once(10ms);
    };
    const std::size_t warm = std::max<std::size_t>(n / 10, clients);
    const auto t0 = steady::now();
    batch(warm);
    const std::size_t fd0 = open_fds();
    const long rss0 = rss_kib();
    batch(n);
    const std::size_t fd1 = open_fds();
    const long rss1 = rss_kib();
    const double secs = std::chrono::duration<double>(steady::now() - t0).count();
    stop = true;
    l->close();
    r.run();
    std::printf("  %zu cycles served, %zu errors, %zu accepted (after a warm-up of %zu), %.1f s, "
                "%.0f cycles/s\n", done, errors, accepted, warm, secs,
                static_cast<double>(done) / secs);
    std::printf("  open fds: %zu -> %zu; RSS: %ld KiB -> %ld KiB (%+ld KiB)\n", fd0, fd1, rss0,
                rss1, rss1 - rss0);
    expect(errors == 0, "every cycle connected and echoed its byte");
    expect(fd1 == fd0, "the open-fd count returned to its start value");
    expect(rss1 - rss0 < 1024, "RSS grew by less than 1 MiB");
    return failures == 0 ? 0 : 1;
}

// ---- slowloris ----

constexpr std::size_t request_size = 64;

/// Request/response: reads 64 bytes, answers 64; forever (until the peer closes).
task<void> serve_requests(tcp_stream s) {
    std::array<std::byte, request_size> b{};
    while (co_await s.read_exact(b))
        if (!co_await s.write_all(b)) break;
}

task<void> accept_requests(reactor& r, tcp_listener& l, std::size_t& accepted) {
    for (;;) {
        auto c = co_await l.accept();
        if (!c) {
            if (c.error() == errc::operation_canceled || c.error() == errc::closed) co_return;
            continue;
        }
        ++accepted;
        spawn(r, serve_requests(std::move(*c)));
    }
}

task<void> active_client(reactor& r, endpoint ep, const bool& stop, std::size_t& count,
                         std::size_t& running) {
    ++running;
    struct leave {
        std::size_t& n;
        ~leave() { --n; }
    } guard{running};
    auto s = co_await tcp_stream::connect(r, ep);
    if (!s) co_return;
    std::array<std::byte, request_size> b{};
    while (!stop) {
        if (!co_await s->write_all(b) || !co_await s->read_exact(b)) co_return;
        ++count;
    }
}

int run_slowloris(std::size_t idle, int seconds) {
    raise_fd_limit();
    reactor r;
    std::printf("slowloris: backend %s, %zu idle connections, 16 active clients, %d s per phase\n",
                to_string(r.backend()), idle, seconds);
    auto l = tcp_listener::bind(r, endpoint::loopback_v4(0), 4096);
    if (!l) return 1;
    const endpoint ep = *l->local_endpoint();
    std::size_t accepted = 0;
    spawn(r, accept_requests(r, *l, accepted));

    constexpr std::size_t active = 16;
    std::size_t running = 0;
    auto phase = [&](const char* name) {
        std::array<std::size_t, active> counts{};
        bool stop = false;
        for (auto& c : counts) spawn(r, active_client(r, ep, stop, c, running));
        const auto end = steady::now() + std::chrono::seconds(seconds);
        while (steady::now() < end) r.run_once(50ms);
        stop = true;
        // The clients reference `stop` and `counts`: wait until each has finished.
        while (running > 0) r.run_once(10ms);
        std::size_t total = 0, lo = ~std::size_t{0}, hi = 0;
        for (auto c : counts) total += c, lo = std::min(lo, c), hi = std::max(hi, c);
        const double rate = static_cast<double>(total) / seconds;
        std::printf("  %s: %zu round trips (%.0f/s), per client min %zu max %zu\n", name, total,
                    rate, lo, hi);
        return std::pair{rate, lo};
    };
    const auto [base_rate, base_min] = phase("baseline (no idle connections)");

    // The idle connections: a child process opens them, sends half a request each, and holds
    // them until the parent closes the pipe.
    int ready[2], hold[2];
    if (::pipe(ready) != 0 || ::pipe(hold) != 0) return 1;
    const pid_t child = ::fork();
    if (child == 0) {
        raise_fd_limit();
        ::close(ready[0]);
        ::close(hold[1]);
        std::vector<int> fds;
        std::array<std::byte, request_size / 2> half{};
        for (std::size_t i = 0; i < idle; ++i) {
            const int fd = raw_connect(ep.port());
            if (fd < 0) break;
            (void)::send(fd, half.data(), half.size(), MSG_NOSIGNAL);
            fds.push_back(fd);
        }
        const std::size_t n = fds.size();
        (void)!::write(ready[1], &n, sizeof n);
        char c;
        (void)!::read(hold[0], &c, 1); // returns 0 when the parent closes its end
        for (int fd : fds) ::close(fd);
        ::_exit(0);
    }
    ::close(ready[1]);
    ::close(hold[0]);
    // Serve the accepts while the child connects; it reports how many it holds.
    std::size_t held = 0;
    const std::size_t before = accepted;
    for (;;) {
        r.run_once(10ms);
        pollfd pfd{ready[0], POLLIN, 0};
        if (::poll(&pfd, 1, 0) == 1) {
            (void)!::read(ready[0], &held, sizeof held);
            break;
        }
    }
    for (int i = 0; i < 1000 && accepted - before < held; ++i) r.run_once(10ms);
    std::printf("  idle connections held: %zu, accepted by the server: %zu, open fds: %zu\n", held,
                accepted - before, open_fds());
    const auto [idle_rate, idle_min] = phase("with the idle connections");
    ::close(hold[1]);
    int status = 0;
    ::waitpid(child, &status, 0);
    ::close(ready[0]);
    const double ratio = base_rate > 0 ? idle_rate / base_rate : 0;
    std::printf("  rate ratio (with idle / baseline): %.2f\n", ratio);
    expect(held == idle, "the child holds every idle connection");
    expect(accepted - before >= held, "the server accepted every idle connection");
    expect(base_min > 0, "every active client was served in the baseline");
    expect(idle_min > 0, "every active client was served next to the idle connections");
    l->close();
    for (int i = 0; i < 2000 && r.core().spawned > 0; ++i) r.run_once(10ms);
    return failures == 0 ? 0 : 1;
}

// ---- EMFILE ----

task<void> emfile_server(reactor& r, tcp_listener& l, std::vector<tcp_stream>& held, bool& parked,
                         std::size_t& emfile_errors, std::size_t& served, bool& release) {
    for (;;) {
        auto c = co_await l.accept();
        if (!c) {
            if (c.error() == errc::too_many_open_files) {
                ++emfile_errors;
                parked = true;
                continue; // evio parks the next accept until an fd is free (no spin)
            }
            co_return;
        }
        if (!release) {
            held.push_back(std::move(*c));
            continue;
        }
        spawn(r, [s = std::move(*c), &served]() mutable -> task<void> {
            std::array<std::byte, 1> b{};
            if (co_await s.read_exact(b) && co_await s.write_all(b)) ++served;
        });
    }
}

int run_emfile() {
    constexpr std::size_t clients = 400;
    reactor r;
    std::printf("emfile: backend %s, RLIMIT_NOFILE 256, %zu clients\n", to_string(r.backend()),
                clients);
    auto l = tcp_listener::bind(r, endpoint::loopback_v4(0), 1024);
    if (!l) return 1;
    const endpoint ep = *l->local_endpoint();
    // The clients: a child with its own descriptor budget; each sends one byte and waits for it.
    const pid_t child = ::fork();
    if (child == 0) {
        std::vector<int> fds;
        for (std::size_t i = 0; i < clients; ++i) {
            const int fd = raw_connect(ep.port());
            if (fd < 0) ::_exit(2);
            const char c = 'x';
            (void)::send(fd, &c, 1, MSG_NOSIGNAL);
            fds.push_back(fd);
        }
        std::size_t ok = 0;
        for (int fd : fds) {
            char c = 0;
            if (::recv(fd, &c, 1, MSG_WAITALL) == 1) ++ok;
            ::close(fd);
        }
        ::_exit(ok == clients ? 0 : 1);
    }
    rlimit rl{};
    ::getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = 256;
    if (::setrlimit(RLIMIT_NOFILE, &rl) != 0) return std::printf("setrlimit failed\n"), 1;

    std::vector<tcp_stream> held;
    bool parked = false, release = false;
    std::size_t emfile_errors = 0, served = 0;
    spawn(r, emfile_server(r, *l, held, parked, emfile_errors, served, release));
    for (int i = 0; i < 3000 && !parked; ++i) r.run_once(10ms);
    expect(parked, "accept reported too_many_open_files");
    std::printf("  held %zu connections at EMFILE\n", held.size());

    // Parked at EMFILE with clients still queued: the loop must sleep, not spin.
    const std::size_t errors_before = emfile_errors;
    const double cpu0 = cpu_seconds();
    const auto w0 = steady::now();
    while (steady::now() - w0 < 1s) r.run_once(100ms);
    const double cpu = cpu_seconds() - cpu0;
    const double wall = std::chrono::duration<double>(steady::now() - w0).count();
    std::printf("  parked 1 s: CPU %.3f s of %.3f s wall (%.1f%% of one core), %zu more EMFILE "
                "results\n", cpu, wall, 100 * cpu / wall, emfile_errors - errors_before);
    expect(cpu / wall < 0.20, "the reactor does not spin at EMFILE (< 20% of one core)");

    // Free the held connections (answer them): the listener resumes as descriptors free up.
    release = true;
    for (auto& s : held)
        spawn(r, [s = std::move(s), &served]() mutable -> task<void> {
            std::array<std::byte, 1> b{};
            if (co_await s.read_exact(b) && co_await s.write_all(b)) ++served;
        });
    held.clear();
    const auto t0 = steady::now();
    while (served < clients && steady::now() - t0 < 60s) r.run_once(50ms);
    int status = 0;
    ::waitpid(child, &status, 0);
    std::printf("  served %zu of %zu clients; %zu EMFILE results in all\n", served, clients,
                emfile_errors);
    expect(served == clients, "every client was served once descriptors were free");
    expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "every client got its answer");
    l->close();
    for (int i = 0; i < 500 && r.core().spawned > 0; ++i) r.run_once(10ms);
    return failures == 0 ? 0 : 1;
}

} // namespace

int main(int argc, char** argv) {
    std::signal(SIGPIPE, SIG_IGN);
    std::setvbuf(stdout, nullptr, _IOLBF, 0);
    const std::string_view mode = argc > 1 ? argv[1] : "";
    try {
        if (mode == "cycles") return run_cycles(argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 10'000);
        if (mode == "slowloris")
            return run_slowloris(argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 2'000,
                                 argc > 3 ? std::atoi(argv[3]) : 2);
        if (mode == "emfile") return run_emfile();
        if (mode == "probe") { // exit 0 when the backend EVIO_BACKEND names is available here
            reactor r;
            return 0;
        }
    } catch (const std::exception& e) {
        std::printf("soak %s: exception: %s\n", std::string(mode).c_str(), e.what());
        return 1;
    }
    std::fprintf(stderr, "usage: soak cycles <n> | slowloris <idle> <seconds> | emfile\n");
    return 2;
}
