// SPDX-License-Identifier: MIT
// Descriptor exhaustion: a naive accept loop gets too_many_open_files but does not spin, and the
// listener accepts again once descriptors are free.
#include "conformance/helpers.hpp"

#include <algorithm>

#if !EVIO_PLATFORM_WINDOWS
#include <fcntl.h>
#include <sys/resource.h>
#endif

using namespace std::chrono_literals;
using evio::conf::op_record;
namespace conf = evio::conf;
namespace test = evio::test;

#if EVIO_PLATFORM_WINDOWS

// Windows has no descriptor limit to lower: socket handles are bounded only by memory. What the
// case means there is the error a real exhausted system gives: creating the accepted socket
// (WSASocket, before AcceptEx) fails with WSAEMFILE. While `fd_exhaustion` is alive, evio's
// fault seam makes every socket creation fail so, except for the ones `release` allows: the
// same shape as a full descriptor table with `release` closing fillers. AcceptEx's socket, the
// probe below and any other socket evio creates go through that seam (sys::socket).

namespace {

bool ubsan_vptr_runtime() {
    return false;
}

std::atomic<bool> exhausted{false};
std::atomic<int> allowed{0};

bool emfile_hook(evio::detail::sys call, int* err) {
    if (call != evio::detail::sys::socket || !exhausted.load()) return false;
    for (int a = allowed.load(); a > 0;)
        if (allowed.compare_exchange_weak(a, a - 1)) return false;
    *err = WSAEMFILE;
    return true;
}

struct fd_exhaustion {
    std::vector<int> fillers; ///< one entry per socket creation still refused (for the checks)
    evio::detail::fault_hook previous = nullptr;

    explicit fd_exhaustion(int headroom) : fillers(static_cast<std::size_t>(headroom), 0) {
        allowed = 0;
        exhausted = true;
        previous = evio::detail::set_fault_hook(&emfile_hook);
    }
    fd_exhaustion(const fd_exhaustion&) = delete;
    fd_exhaustion& operator=(const fd_exhaustion&) = delete;
    void release(std::size_t n) {
        n = std::min(n, fillers.size());
        fillers.resize(fillers.size() - n);
        allowed += static_cast<int>(n);
    }
    ~fd_exhaustion() {
        exhausted = false;
        (void)evio::detail::set_fault_hook(previous);
    }
};

/// True when one more socket can be created right now.
bool descriptor_available() {
    const SOCKET s = evio::detail::open_overlapped_socket(4);
    if (s == INVALID_SOCKET) return false;
    ::closesocket(s);
    return true;
}

} // namespace

#else

// UBSan's vptr check needs a pipe to inspect memory; with the descriptor table full it reports
// every virtual call as a violation. Detect that runtime (weak symbols) and skip the scenario
// there.
extern "C" __attribute__((weak)) void __ubsan_handle_dynamic_type_cache_miss(void*, void*, void*);
extern "C" __attribute__((weak)) void __ubsan_handle_dynamic_type_cache_miss_abort(void*, void*,
                                                                                   void*);

namespace {

bool ubsan_vptr_runtime() {
    return &__ubsan_handle_dynamic_type_cache_miss != nullptr ||
           &__ubsan_handle_dynamic_type_cache_miss_abort != nullptr;
}

int highest_open_fd() {
    int highest = -1;
    DIR* d = ::opendir("/proc/self/fd");
    if (!d) return -1;
    while (dirent* e = ::readdir(d)) {
        if (e->d_name[0] == '.') continue;
        highest = std::max(highest, std::atoi(e->d_name));
    }
    ::closedir(d);
    return highest;
}

/// Lowers RLIMIT_NOFILE and fills the descriptor table; restores both on destruction.
struct fd_exhaustion {
    rlimit old{};
    std::vector<int> fillers;

    explicit fd_exhaustion(int headroom) {
        if (::getrlimit(RLIMIT_NOFILE, &old) != 0) conf::sys_fail("getrlimit");
        rlimit low = old;
        low.rlim_cur = static_cast<rlim_t>(highest_open_fd() + 1 + headroom);
        if (::setrlimit(RLIMIT_NOFILE, &low) != 0) conf::sys_fail("setrlimit");
        for (int i = 0; i < 100000; ++i) {
            const int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
            if (fd < 0) break;
            fillers.push_back(fd);
        }
    }
    void release(std::size_t n) {
        for (std::size_t i = 0; i < n && !fillers.empty(); ++i) {
            ::close(fillers.back());
            fillers.pop_back();
        }
    }
    ~fd_exhaustion() {
        release(fillers.size());
        ::setrlimit(RLIMIT_NOFILE, &old);
    }
};

/// True when one more descriptor can be opened right now.
bool descriptor_available() {
    const int probe = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (probe < 0) return false;
    ::close(probe);
    return true;
}

} // namespace

#endif

namespace {

struct accept_counters {
    int attempts = 0;
    int emfile = 0;
    int other_errors = 0;
    int accepted = 0;
    bool finished = false;
    std::vector<evio::tcp_stream> streams;
};

/// The naive loop of the brief: no back-off of its own.
evio::task<void> naive_accept_loop(evio::tcp_listener& lis, accept_counters& c) {
    for (;;) {
        auto s = co_await lis.accept();
        ++c.attempts;
        if (!s) {
            if (s.error() == evio::errc::operation_canceled || s.error() == evio::errc::closed)
                break;
            if (s.error() == evio::errc::too_many_open_files) ++c.emfile;
            else ++c.other_errors;
            continue;
        }
        ++c.accepted;
        c.streams.push_back(std::move(*s));
    }
    c.finished = true;
}

} // namespace

TEST_CASE("emfile: a naive accept loop sees too_many_open_files without spinning, then recovers") {
    if (ubsan_vptr_runtime()) {
        WARN("skipped under UBSan's vptr check: its runtime needs free descriptors");
        SUCCEED();
        return;
    }
    evio::reactor r{test::options()};
    auto lis = test::listen_any(r);
    const auto port = lis.local_endpoint().value().port();
    auto other = test::connected_pair(r);
    op_record other_rd;
    evio::spawn(r, conf::read_once(r, other.server, other_rd));
    constexpr int clients = 4;
    std::vector<conf::sock_t> client_fds;
    for (int i = 0; i < clients; ++i)
        client_fds.push_back(conf::new_socket());
    r.poll();
    accept_counters c;
    // Measured while the table is full; asserted afterwards (Catch and sanitizer runtimes may
    // need descriptors of their own to report).
    bool filled = false, table_full = false, connected = true, other_served = false;
    bool recovered = false;
    int attempts_while_full = 0, emfile_while_full = 0, accepted_while_full = 0;
    int attempts_after = 0, attempts_later = 0;
    {
        fd_exhaustion full(8);
        filled = !full.fillers.empty();
        table_full = !descriptor_available();
        evio::spawn(r, naive_accept_loop(lis, c));
        // The clients connect (their sockets exist already: no descriptor needed).
        for (const conf::sock_t fd : client_fds)
            connected = connected && conf::connect_loopback(fd, port);

        conf::idle_for(r, 300ms); // the loop hits EMFILE; it must not spin meanwhile
        attempts_while_full = c.attempts;
        emfile_while_full = c.emfile;
        accepted_while_full = c.accepted;

        // Other tokens are served while the listener backs off.
        conf::raw_send(other.client.native_handle(), "alive");
        other_served = test::run_until(
            r, [&] { return other_rd.resumed == 1; }, 3s);

        // Descriptors come free: the same loop accepts every waiting client.
        full.release(8);
        recovered = test::run_until(
            r, [&] { return c.accepted == clients; }, 3s);
        attempts_after = c.attempts;
        conf::idle_for(r, 50ms);
        attempts_later = c.attempts;
    } // limit restored, fillers closed
    REQUIRE(filled);
    REQUIRE(table_full);
    REQUIRE(connected);
    CHECK(emfile_while_full >= 1);
    CHECK(attempts_while_full < 50);
    CHECK(accepted_while_full == 0);
    CHECK(other_served);
    CHECK(other_rd.data == "alive");
    CHECK(recovered);
    CHECK(c.accepted == clients);
    CHECK(c.other_errors == 0);
    CHECK(attempts_later == attempts_after); // nothing to accept: the loop waits quietly
    for (auto& s : c.streams)
        CHECK(s.is_open());
    lis.close();
    REQUIRE(test::run_until(
        r, [&] { return c.finished; }, 3s));
    for (const conf::sock_t fd : client_fds)
        conf::close_sock(fd);
}
