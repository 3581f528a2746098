// SPDX-License-Identifier: MIT
// Reactor state per connection: the heap the reactor grows when going from 0 to N registered
// connections with one pending read each, minus the coroutine frames (measured apart: the bytes
// allocated while each reading coroutine is created), through a counting global operator new
// that tracks live bytes. Kernel memory (socket buffers, the io_uring rings) is not heap and is
// not counted.
//
//   reactor_memory [--connections 10000] [--backend epoll|io_uring|all]
//
// Prints one Markdown table row per backend (see benchmarks/memory/run.sh).
#include <evio/evio.hpp>

#include <arpa/inet.h>
#include <array>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <netinet/in.h>
#include <new>
#include <string_view>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

// ---- counting global allocator: live bytes (a 16-byte header keeps each block's size) ----
namespace {
std::size_t g_live = 0;
std::size_t g_allocs = 0;
constexpr std::size_t header = 16;
void* counted_alloc(std::size_t n) noexcept {
    auto* p = static_cast<unsigned char*>(std::malloc(n + header));
    if (!p) return nullptr;
    std::memcpy(p, &n, sizeof n);
    g_live += n;
    ++g_allocs;
    return p + header;
}
void counted_free(void* q) noexcept {
    if (!q) return;
    auto* p = static_cast<unsigned char*>(q) - header;
    std::size_t n;
    std::memcpy(&n, p, sizeof n);
    g_live -= n;
    std::free(p);
}
} // namespace
void* operator new(std::size_t n) {
    if (void* p = counted_alloc(n)) return p;
    throw std::bad_alloc();
}
void* operator new[](std::size_t n) { return ::operator new(n); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept { return counted_alloc(n); }
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept { return counted_alloc(n); }
void operator delete(void* p) noexcept { counted_free(p); }
void operator delete(void* p, std::size_t) noexcept { counted_free(p); }
void operator delete[](void* p) noexcept { counted_free(p); }
void operator delete[](void* p, std::size_t) noexcept { counted_free(p); }

namespace {

[[noreturn]] void die(const char* what) {
    std::fprintf(stderr, "reactor_memory: %s: %s\n", what, std::strerror(errno));
    std::exit(1);
}

/// The connection's coroutine: one pending read, nothing else.
evio::task<void> reader(evio::tcp_stream s) {
    std::array<std::byte, 16> buf;
    (void)co_await s.read_some(buf);
}

struct figures {
    std::size_t growth = 0, frames = 0, allocs = 0, slots = 0;
};

/// `fds`: accepted, non-blocking connections; each gets a token and one pending read.
figures measure(evio::backend_kind kind, const std::vector<int>& fds, int warm_fd) {
    figures f;
    evio::reactor r{evio::reactor_options{kind, 1024, false}};
    constexpr int batch = 64; // spawns queued between turns: the ready queue is grown in warm-up
    {
        // Warm-up: one registration, a pending read, a close; `batch` spawns through one turn.
        evio::spawn(r, reader(evio::tcp_stream(r, warm_fd, r.register_handle(warm_fd).value())));
        for (int i = 0; i < 2 * batch; ++i) evio::spawn(r, []() -> evio::task<void> { co_return; }());
        r.poll();
    }
    const std::size_t live0 = g_live, allocs0 = g_allocs;
    std::size_t frames = 0, frame_allocs = 0;
    for (std::size_t i = 0; i < fds.size(); ++i) {
        const evio::token t = r.register_handle(fds[i]).value();
        const std::size_t before = g_live, before_n = g_allocs;
        evio::spawn(r, reader(evio::tcp_stream(r, fds[i], t)));
        frames += g_live - before;
        frame_allocs += g_allocs - before_n;
        if (i % batch == batch - 1) r.poll();
    }
    r.poll();
    if (r.core().pending_ops < fds.size()) {
        std::fprintf(stderr, "reactor_memory: only %zu of %zu reads pending\n", r.core().pending_ops,
                     fds.size());
        std::exit(1);
    }
    f.growth = g_live - live0;
    f.frames = frames;
    f.allocs = g_allocs - allocs0 - frame_allocs;
    f.slots = r.core().table.capacity();
    return f; // the reactor destroys the frames, which close their sockets
}

int listener(sockaddr_in& a) {
    const int l = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    a = {};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (l < 0 || ::bind(l, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(l, 4096) != 0 ||
        ::getsockname(l, reinterpret_cast<sockaddr*>(&a), &len) != 0)
        die("listener");
    return l;
}

/// A child process opens `n` connections to `a` and holds them until `hold` closes.
pid_t connector(const sockaddr_in& a, int n, int hold_read, int hold_write) {
    const pid_t pid = ::fork();
    if (pid < 0) die("fork");
    if (pid > 0) return pid;
    ::close(hold_write);
    std::vector<int> fds;
    for (int i = 0; i < n; ++i) {
        const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || ::connect(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0) _exit(1);
        fds.push_back(fd);
    }
    char c;
    (void)!::read(hold_read, &c, 1); // returns when the parent closes its end
    _exit(0);
}

} // namespace

int main(int argc, char** argv) {
    int n = 10000;
    std::string_view which = "all";
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string_view a = argv[i];
        if (a == "--connections") n = std::atoi(argv[i + 1]);
        else if (a == "--backend") which = argv[i + 1];
    }
    rlimit nofile{};
    if (::getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
        nofile.rlim_cur = nofile.rlim_max;
        (void)::setrlimit(RLIMIT_NOFILE, &nofile);
    }
    std::printf("| backend | connections | heap growth | coroutine frames | reactor state | "
                "reactor allocations | reactor bytes per connection |\n");
    std::printf("|---|---:|---:|---:|---:|---:|---:|\n");
    for (const auto kind : {evio::backend_kind::epoll, evio::backend_kind::io_uring}) {
        if (which != "all" && which != evio::to_string(kind)) continue;
        if (!evio::reactor::is_available(kind)) continue;
        sockaddr_in a{};
        const int l = listener(a);
        int hold[2];
        if (::pipe2(hold, O_CLOEXEC) != 0) die("pipe");
        const pid_t child = connector(a, n + 1, hold[0], hold[1]);
        ::close(hold[0]);
        std::vector<int> fds;
        fds.reserve(static_cast<std::size_t>(n));
        int warm_fd = -1;
        for (int i = 0; i <= n; ++i) {
            const int fd = ::accept4(l, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (fd < 0) die("accept4");
            if (i == 0) warm_fd = fd;
            else fds.push_back(fd);
        }
        ::close(l);
        const figures f = measure(kind, fds, warm_fd);
        ::close(hold[1]);
        int status = 0;
        ::waitpid(child, &status, 0);
        const std::size_t reactor_bytes = f.growth - f.frames;
        std::printf("| %s | %d | %zu B | %zu B (%zu per connection) | %zu B | %zu | **%.1f** |\n",
                    evio::to_string(kind), n, f.growth, f.frames, f.frames / static_cast<std::size_t>(n),
                    reactor_bytes, f.allocs, static_cast<double>(reactor_bytes) / n);
    }
    const std::size_t cap = std::bit_ceil(static_cast<std::size_t>(n));
    std::printf("\nsizeof(detail::slot) = %zu B: the token table's per-connection entry, in a std::vector "
                "that doubles (%d slots in a capacity of %zu: %zu x %zu / %d = %.1f B per connection). "
                "sizeof(detail::operation) = %zu B and sizeof(tcp_stream) = %zu B live in the coroutine "
                "frame.\n",
                sizeof(evio::detail::slot), n, cap, cap, sizeof(evio::detail::slot), n,
                static_cast<double>(cap * sizeof(evio::detail::slot)) / n, sizeof(evio::detail::operation),
                sizeof(evio::tcp_stream));
}
