// SPDX-License-Identifier: MIT
// Micro-benchmarks (Google Benchmark): the cost of one awaited operation against the raw
// syscall it wraps, and the heap allocations per operation in steady state (a counting global
// operator new: read_some, write_all, timers and with_timeout must allocate nothing).
//
//   evio_micro [Google Benchmark flags, e.g. --benchmark_format=json]
//
// Socket benchmarks use one loopback TCP connection whose peer is kept ahead: reads find data
// already queued (the peer refills 16 KiB at a time, outside the timed region), writes find
// room (the peer drains 16 KiB at a time, outside the timed region). 64-byte transfers.
#include <evio/evio.hpp>

#include <benchmark/benchmark.h>

#include <arpa/inet.h>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <new>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <vector>

// ---- counting global allocator (single-threaded benchmarks) ----
namespace {
std::size_t g_allocs = 0;
void* counted_alloc(std::size_t n) noexcept {
    ++g_allocs;
    return std::malloc(n ? n : 1);
}
void release(void* p) noexcept { std::free(p); }
} // namespace
void* operator new(std::size_t n) {
    if (void* p = counted_alloc(n)) return p;
    throw std::bad_alloc();
}
void* operator new[](std::size_t n) { return ::operator new(n); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept { return counted_alloc(n); }
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept { return counted_alloc(n); }
void operator delete(void* p) noexcept { release(p); }
void operator delete(void* p, std::size_t) noexcept { release(p); }
void operator delete[](void* p) noexcept { release(p); }
void operator delete[](void* p, std::size_t) noexcept { release(p); }

namespace {

constexpr std::size_t msg = 64;
constexpr std::size_t chunk = 16 * 1024;
constexpr int warmup_ops = 256; // grows every vector the steady state uses before counting

[[noreturn]] void die(const char* what) {
    std::perror(what);
    std::exit(1);
}

/// A connected loopback pair: `local` is non-blocking (the side under test), `peer` blocking.
struct tcp_pair {
    int local = -1, peer = -1;
    tcp_pair() {
        const int l = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof a;
        if (l < 0 || ::bind(l, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(l, 1) != 0 ||
            ::getsockname(l, reinterpret_cast<sockaddr*>(&a), &len) != 0)
            die("listener");
        peer = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (peer < 0 || ::connect(peer, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) die("connect");
        local = ::accept4(l, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (local < 0) die("accept");
        ::close(l);
        const int one = 1;
        ::setsockopt(local, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        ::setsockopt(peer, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    ~tcp_pair() {
        if (peer >= 0) ::close(peer);
        // `local` belongs to the tcp_stream that adopted it (or is closed by raw benchmarks).
    }
    tcp_pair(const tcp_pair&) = delete;
    tcp_pair& operator=(const tcp_pair&) = delete;

    /// Queues `n` bytes for `local` to read and waits until they all arrived.
    void refill(std::size_t n) const {
        static const std::array<char, chunk> data{};
        for (std::size_t sent = 0; sent < n;) {
            const ssize_t k = ::send(peer, data.data(), std::min(n - sent, data.size()), 0);
            if (k <= 0) die("refill send");
            sent += static_cast<std::size_t>(k);
        }
        for (int avail = 0;;) {
            if (::ioctl(local, FIONREAD, &avail) != 0) die("FIONREAD");
            if (static_cast<std::size_t>(avail) >= n) return;
        }
    }
    /// Reads `n` bytes that `local` wrote.
    void drain(std::size_t n) const {
        static std::array<char, chunk> sink;
        for (std::size_t got = 0; got < n;) {
            const ssize_t k = ::recv(peer, sink.data(), std::min(n - got, sink.size()), 0);
            if (k <= 0) die("drain recv");
            got += static_cast<std::size_t>(k);
        }
    }
};

evio::reactor_options opts(evio::backend_kind k) { return evio::reactor_options{k, 1024, false}; }

void report_allocs(benchmark::State& st, std::size_t allocs) {
    st.counters["allocs_per_op"] =
        benchmark::Counter(static_cast<double>(allocs) / static_cast<double>(st.iterations()));
    st.counters["allocs"] = benchmark::Counter(static_cast<double>(allocs));
}

// ---- raw syscalls: the limit ----

void BM_raw_recv(benchmark::State& st) {
    tcp_pair p;
    std::array<char, msg> buf;
    std::size_t left = 0;
    for (auto _ : st) {
        if (left < msg) {
            st.PauseTiming();
            p.refill(chunk);
            left += chunk;
            st.ResumeTiming();
        }
        const ssize_t n = ::recv(p.local, buf.data(), buf.size(), 0);
        if (n <= 0) {
            st.SkipWithError("recv");
            break;
        }
        left -= static_cast<std::size_t>(n);
    }
    ::close(p.local);
}

void BM_raw_send(benchmark::State& st) {
    tcp_pair p;
    const std::array<char, msg> buf{};
    std::size_t queued = 0;
    for (auto _ : st) {
        if (queued >= chunk) {
            st.PauseTiming();
            p.drain(queued);
            queued = 0;
            st.ResumeTiming();
        }
        const ssize_t n = ::send(p.local, buf.data(), buf.size(), MSG_NOSIGNAL);
        if (n != static_cast<ssize_t>(msg)) {
            st.SkipWithError("send");
            break;
        }
        queued += msg;
    }
    p.drain(queued);
    ::close(p.local);
}

// ---- awaited operations ----

evio::task<void> read_loop(benchmark::State& st, evio::tcp_stream& s, const tcp_pair& p, bool timeout) {
    std::array<std::byte, msg> buf;
    std::size_t left = 0;
    auto one = [&]() -> evio::task<bool> {
        if (left < msg) {
            p.refill(chunk);
            left += chunk;
        }
        auto n = timeout ? co_await evio::with_timeout(*s.owner(), std::chrono::seconds(30), s.read_some(buf))
                         : co_await s.read_some(buf);
        if (!n || *n == 0) co_return false;
        left -= *n;
        co_return true;
    };
    for (int i = 0; i < warmup_ops; ++i)
        if (!co_await one()) co_return;
    const std::size_t a0 = g_allocs;
    for (auto _ : st) {
        if (left < msg) {
            st.PauseTiming();
            p.refill(chunk);
            left += chunk;
            st.ResumeTiming();
        }
        auto n = timeout ? co_await evio::with_timeout(*s.owner(), std::chrono::seconds(30), s.read_some(buf))
                         : co_await s.read_some(buf);
        if (!n || *n == 0) {
            st.SkipWithError("read_some");
            break;
        }
        left -= *n;
    }
    report_allocs(st, g_allocs - a0);
}

void BM_read_some(benchmark::State& st, evio::backend_kind kind, bool timeout) {
    evio::reactor r{opts(kind)};
    tcp_pair p;
    evio::tcp_stream s(r, p.local, r.register_handle(p.local).value());
    evio::sync_wait(r, read_loop(st, s, p, timeout));
}

evio::task<void> write_loop(benchmark::State& st, evio::tcp_stream& s, const tcp_pair& p) {
    const std::array<std::byte, msg> buf{};
    std::size_t queued = 0;
    for (int i = 0; i < warmup_ops; ++i) {
        if (queued >= chunk) {
            p.drain(queued);
            queued = 0;
        }
        if (!co_await s.write_all(buf)) co_return;
        queued += msg;
    }
    const std::size_t a0 = g_allocs;
    for (auto _ : st) {
        if (queued >= chunk) {
            st.PauseTiming();
            p.drain(queued);
            queued = 0;
            st.ResumeTiming();
        }
        if (!co_await s.write_all(buf)) {
            st.SkipWithError("write_all");
            break;
        }
        queued += msg;
    }
    report_allocs(st, g_allocs - a0);
    p.drain(queued);
}

void BM_write_all(benchmark::State& st, evio::backend_kind kind) {
    evio::reactor r{opts(kind)};
    tcp_pair p;
    evio::tcp_stream s(r, p.local, r.register_handle(p.local).value());
    evio::sync_wait(r, write_loop(st, s, p));
}

// ---- coroutines ----

evio::task<int> leaf(int v) { co_return v + 1; }

evio::task<void> task_loop(benchmark::State& st) {
    int x = 0;
    for (int i = 0; i < warmup_ops; ++i) x = co_await leaf(x);
    const std::size_t a0 = g_allocs;
    for (auto _ : st) {
        x = co_await leaf(x); // create + start + await + destroy
        benchmark::DoNotOptimize(x);
    }
    report_allocs(st, g_allocs - a0);
}

void BM_task_await(benchmark::State& st) {
    evio::reactor r{opts(evio::backend_kind::epoll)};
    evio::sync_wait(r, task_loop(st));
}

evio::task<void> noop(int& counter) {
    ++counter;
    co_return;
}

/// spawn + run to completion + free; the reactor turns (a zero-timeout poll) once per 256.
void BM_spawn(benchmark::State& st) {
    evio::reactor r{opts(evio::backend_kind::epoll)};
    int ran = 0, batch = 0;
    for (int i = 0; i < warmup_ops; ++i) evio::spawn(r, noop(ran));
    r.poll();
    const std::size_t a0 = g_allocs;
    for (auto _ : st) {
        evio::spawn(r, noop(ran));
        if (++batch == 256) {
            r.poll();
            batch = 0;
        }
    }
    r.poll();
    report_allocs(st, g_allocs - a0);
    if (ran != static_cast<int>(st.iterations()) + warmup_ops) st.SkipWithError("spawned tasks did not all run");
}

/// Timer start + cancel on the reactor's heap, the deadline read from the steady clock as
/// sleep_for does; `range(0)` other timers stay armed meanwhile.
void BM_timer_start_cancel(benchmark::State& st) {
    evio::reactor r{opts(evio::backend_kind::epoll)};
    std::vector<evio::detail::timer_node> others(static_cast<std::size_t>(st.range(0)));
    const auto far = evio::detail::clock::now() + std::chrono::hours(1);
    for (std::size_t i = 0; i < others.size(); ++i) {
        others[i].deadline = far + std::chrono::milliseconds(i);
        r.add_timer(others[i]);
    }
    evio::detail::timer_node n;
    for (int i = 0; i < warmup_ops; ++i) {
        n.deadline = evio::detail::clock::now() + std::chrono::seconds(30);
        r.add_timer(n);
        r.cancel_timer(n);
    }
    const std::size_t a0 = g_allocs;
    for (auto _ : st) {
        n.deadline = evio::detail::clock::now() + std::chrono::seconds(30);
        r.add_timer(n);
        r.cancel_timer(n);
        benchmark::DoNotOptimize(n);
    }
    report_allocs(st, g_allocs - a0);
    for (auto& o : others) r.cancel_timer(o);
}

void register_all() {
    using evio::backend_kind;
    benchmark::RegisterBenchmark("raw_recv", BM_raw_recv);
    benchmark::RegisterBenchmark("raw_send", BM_raw_send);
    for (const auto k : {backend_kind::epoll, backend_kind::io_uring}) {
        if (!evio::reactor::is_available(k)) continue;
        const std::string b = evio::to_string(k);
        benchmark::RegisterBenchmark(("read_some/" + b).c_str(), BM_read_some, k, false);
        benchmark::RegisterBenchmark(("with_timeout_read_some/" + b).c_str(), BM_read_some, k, true);
        benchmark::RegisterBenchmark(("write_all/" + b).c_str(), BM_write_all, k);
    }
    benchmark::RegisterBenchmark("task_await", BM_task_await);
    benchmark::RegisterBenchmark("spawn", BM_spawn);
    benchmark::RegisterBenchmark("timer_start_cancel", BM_timer_start_cancel)->Arg(0)->Arg(10000);
}

} // namespace

int main(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    register_all();
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
}
