// SPDX-License-Identifier: MIT
// Helpers shared by the conformance tests: raw loopback pairs, fd probes, one-shot op recorders.
#pragma once

#include "support/fixture.hpp"

#include <evio/evio.hpp>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <new>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace evio::conf {

using namespace std::chrono_literals;

[[noreturn]] inline void sys_fail(const char* what) {
    throw std::system_error(errno, std::generic_category(), what);
}

inline void set_nonblocking(int fd) {
    const int fl = ::fcntl(fd, F_GETFL);
    if (fl < 0 || ::fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0) sys_fail("fcntl");
}

/// Small socket buffers, so a few KiB fill a connection (set before connect/listen).
inline void small_buffers(int fd, int bytes = 4096) {
    (void)::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof bytes);
    (void)::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes);
}

inline void nodelay(int fd) {
    const int one = 1;
    (void)::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/// A blocking raw listener on 127.0.0.1 with an OS-chosen port (outside evio).
struct raw_listener {
    int fd = -1;
    std::uint16_t port = 0;

    explicit raw_listener(int buffer_bytes = 0) {
        fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) sys_fail("socket");
        if (buffer_bytes > 0) small_buffers(fd, buffer_bytes);
        sockaddr_in sa{};
        sa.sin_family = AF_INET;
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) sys_fail("bind");
        if (::listen(fd, 128) != 0) sys_fail("listen");
        socklen_t len = sizeof sa;
        if (::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) != 0) sys_fail("getsockname");
        port = ntohs(sa.sin_port);
    }
    raw_listener(const raw_listener&) = delete;
    raw_listener& operator=(const raw_listener&) = delete;
    ~raw_listener() {
        if (fd >= 0) ::close(fd);
    }

    /// Connects socket `c` (blocking; loopback completes at once) and accepts the server side.
    /// Both ends are returned non-blocking.
    std::pair<int, int> connect_and_accept(int c, int buffer_bytes = 0) const {
        if (buffer_bytes > 0) small_buffers(c, buffer_bytes);
        sockaddr_in sa{};
        sa.sin_family = AF_INET;
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        sa.sin_port = htons(port);
        if (::connect(c, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) sys_fail("connect");
        const int s = ::accept4(fd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (s < 0) sys_fail("accept4");
        set_nonblocking(c);
        return {s, c};
    }
};

/// A connected loopback TCP pair made synchronously outside evio: {server fd, client fd}, both
/// non-blocking and owned by the caller.
struct raw_pair {
    int server = -1;
    int client = -1;
};

inline raw_pair make_raw_pair(const raw_listener& l, int buffer_bytes = 0) {
    const int c = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c < 0) sys_fail("socket");
    auto [s, cc] = l.connect_and_accept(c, buffer_bytes);
    return {s, cc};
}

inline raw_pair make_raw_pair(int buffer_bytes = 0) {
    raw_listener l(buffer_bytes);
    return make_raw_pair(l, buffer_bytes);
}

/// Registers `fd` with `r` and wraps it in a tcp_stream that owns it.
inline tcp_stream adopt(reactor& r, int fd) {
    auto t = r.register_handle(fd);
    if (!t) throw std::system_error(t.error(), "register_handle");
    return tcp_stream(r, fd, *t);
}

/// A stream adopted into a reactor plus its raw peer descriptor (closed on destruction). The
/// buffers are small and set before connecting, so the path fills with a few KiB and stays full.
struct adopted_pair {
    tcp_stream server;
    int peer = -1;

    adopted_pair() = default;
    adopted_pair(adopted_pair&& o) noexcept
        : server(std::move(o.server)), peer(std::exchange(o.peer, -1)) {}
    adopted_pair& operator=(adopted_pair&&) = delete;
    ~adopted_pair() {
        if (peer >= 0) ::close(peer);
    }
};

inline adopted_pair make_adopted_pair(reactor& r, int buffer_bytes = 4096) {
    const auto raw = make_raw_pair(buffer_bytes);
    adopted_pair p;
    p.peer = raw.client;
    p.server = adopt(r, raw.server);
    return p;
}

/// Bytes waiting in `fd`'s receive queue (FIONREAD).
inline int readable_bytes(int fd) {
    int n = 0;
    if (::ioctl(fd, FIONREAD, &n) != 0) return -1;
    return n;
}

/// Spins (bounded, no sleeping) until `fd` has at least `n` bytes queued.
inline bool wait_readable(int fd, int n = 1, std::chrono::milliseconds limit = 2s) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (readable_bytes(fd) < n) {
        if (std::chrono::steady_clock::now() > end) return false;
        std::this_thread::yield();
    }
    return true;
}

inline void raw_send(int fd, std::string_view s) {
    std::size_t off = 0;
    for (int guard = 0; off < s.size() && guard < 10000; ++guard) {
        const ssize_t n = ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
        if (n > 0) off += static_cast<std::size_t>(n);
        else if (n < 0 && errno != EAGAIN && errno != EINTR) sys_fail("send");
        else std::this_thread::yield();
    }
    if (off != s.size()) throw std::runtime_error("raw_send: peer does not drain");
}

/// Writes into `fd` until the kernel says EAGAIN; returns the byte count.
inline std::size_t fill_send_buffer(int fd) {
    static const std::vector<char> chunk(4096, 'f');
    std::size_t total = 0;
    for (int i = 0; i < 100000; ++i) {
        const ssize_t n = ::send(fd, chunk.data(), chunk.size(), MSG_NOSIGNAL);
        if (n > 0) {
            total += static_cast<std::size_t>(n);
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return total;
        sys_fail("send (fill)");
    }
    throw std::runtime_error("fill_send_buffer: never blocked");
}

/// Fills `fd`'s send path so that it stays full until the peer reads: writes until EAGAIN, and
/// again after every ACK still in flight freed space, until everything sent is acknowledged and
/// only unsent bytes (held back by the peer's zero window) remain. Spins on ioctls; bounded.
inline std::size_t fill_send_buffer_stable(int fd, std::chrono::milliseconds limit = 3s) {
    const auto end = std::chrono::steady_clock::now() + limit;
    std::size_t total = fill_send_buffer(fd);
    for (;;) {
        int queued = 0, unsent = 0;
        if (::ioctl(fd, SIOCOUTQ, &queued) != 0 || ::ioctl(fd, SIOCOUTQNSD, &unsent) != 0)
            sys_fail("ioctl(SIOCOUTQ)");
        const std::size_t more = fill_send_buffer(fd);
        total += more;
        if (more == 0 && queued == unsent && unsent > 0) return total;
        if (std::chrono::steady_clock::now() > end)
            throw std::runtime_error("fill_send_buffer_stable: the send path never settled");
        std::this_thread::yield();
    }
}

/// Reads everything queued in `fd` right now; returns the byte count.
inline std::size_t drain(int fd) {
    char buf[65536];
    std::size_t total = 0;
    for (;;) {
        const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n > 0) {
            total += static_cast<std::size_t>(n);
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        return total;
    }
}

/// Reads what is queued in `fd` as text.
inline std::string raw_recv_text(int fd) {
    char buf[4096];
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
}

/// Open descriptors of this process (entries of /proc/self/fd).
inline int open_fd_count() {
    DIR* d = ::opendir("/proc/self/fd");
    if (!d) return -1;
    int n = 0;
    while (::readdir(d) != nullptr)
        ++n;
    ::closedir(d);
    return n;
}

/// What one awaited operation produced, and when.
struct op_record {
    int resumed = 0;
    bool ok = false;
    std::error_code ec{};
    std::size_t n = 0;
    std::uint64_t turn = 0;
    std::string data;
};

/// One read_some on `s` into `rec`.
inline task<void> read_once(reactor& r, tcp_stream& s, op_record& rec, std::size_t max = 512) {
    std::vector<std::byte> buf(max);
    auto res = co_await s.read_some(buf);
    rec.turn = r.core().turn;
    ++rec.resumed;
    if (res) {
        rec.ok = true;
        rec.n = *res;
        rec.data = test::text(std::span<const std::byte>(buf.data(), *res));
    } else {
        rec.ec = res.error();
    }
}

/// What a reading loop saw, split at the moment its stream was closed (`closed` is set by
/// whoever closes the stream, just before close()).
struct loop_record {
    bool closed = false;
    bool finished = false;
    int before_close = 0;               ///< resumptions before the close
    std::vector<std::error_code> after; ///< results after the close (success: empty code)
    std::size_t bytes_after = 0;        ///< bytes delivered after the close
};

/// Reads `s` until an error or end of stream, `chunk` bytes at a time.
inline task<void> read_loop(tcp_stream& s, loop_record& rec, std::size_t chunk = 512) {
    std::vector<std::byte> buf(chunk);
    for (;;) {
        auto res = co_await s.read_some(buf);
        if (rec.closed) {
            rec.after.push_back(res ? std::error_code{} : res.error());
            if (res) rec.bytes_after += *res;
        } else {
            ++rec.before_close;
        }
        if (!res || *res == 0) break;
    }
    rec.finished = true;
}

/// One write_some of `len` bytes on `s` into `rec`.
inline task<void> write_once(reactor& r, tcp_stream& s, op_record& rec, std::size_t len = 4096) {
    std::vector<std::byte> buf(len, std::byte{'w'});
    auto res = co_await s.write_some(buf);
    rec.turn = r.core().turn;
    ++rec.resumed;
    if (res) {
        rec.ok = true;
        rec.n = *res;
    } else {
        rec.ec = res.error();
    }
}

/// One accept on `l` into `rec`; the accepted stream goes to `out`.
inline task<void> accept_once(reactor& r, tcp_listener& l, op_record& rec, tcp_stream& out) {
    auto res = co_await l.accept();
    rec.turn = r.core().turn;
    ++rec.resumed;
    if (res) {
        rec.ok = true;
        out = std::move(*res);
    } else {
        rec.ec = res.error();
    }
}

/// Writes `msg` whole.
inline task<void> write_text(tcp_stream& s, std::string msg, op_record& rec) {
    auto b = test::bytes(msg);
    auto res = co_await s.write_all(b);
    ++rec.resumed;
    rec.ok = static_cast<bool>(res);
    rec.ec = res.error();
}

/// The interest bits of a live token (0xff when the token is not live).
inline std::uint8_t interest_of(reactor& r, token t) {
    const detail::slot* s = r.core().table.find(t);
    return s ? s->interest : std::uint8_t{0xff};
}

/// Runs the reactor for `d` (a deliberate waiting period in which nothing is expected).
inline void idle_for(reactor& r, std::chrono::milliseconds d) {
    const auto end = std::chrono::steady_clock::now() + d;
    while (std::chrono::steady_clock::now() < end)
        r.run_once(5ms);
}

/// Slots still deregistering (io_uring: waiting for the kernel's last completion).
inline std::size_t deregistering_slots(reactor& r) {
    std::size_t n = 0;
    r.core().table.for_each_live([&](std::uint32_t, detail::slot& s) {
        if (s.state == detail::slot_state::deregistering) ++n;
    });
    return n;
}

/// Runs turns until every deregistration finished (bounded); the table then counts only live
/// registrations.
inline bool settle_table(reactor& r, std::chrono::milliseconds limit = 2s) {
    return test::run_until(
        r, [&] { return deregistering_slots(r) == 0; }, limit);
}

/// Runs `f`; returns the id of the contract violation it raised (empty when none). Needs a
/// test::throwing_contracts in scope.
template <class F>
std::string contract_id_of(F&& f) {
    try {
        f();
    } catch (const test::contract_error& e) {
        return e.id;
    }
    return {};
}

/// Holds a T whose destructor must never run (e.g. a stream built on a stale token, whose
/// close() would be a contract violation in a noexcept destructor).
template <class T>
struct no_destroy {
    union {
        T value;
    };
    template <class... A>
    explicit no_destroy(A&&... a) {
        ::new (static_cast<void*>(&value)) T(std::forward<A>(a)...);
    }
    ~no_destroy() {}
    T& operator*() noexcept { return value; }
    T* operator->() noexcept { return &value; }
};

// ---- blocked-reactor detection, for "while the reactor is blocked" cases ----

inline long this_tid() {
    return static_cast<long>(::syscall(SYS_gettid));
}

/// True when thread `tid` of this process sleeps inside epoll_wait/io_uring_enter (or, when
/// /proc/<tid>/syscall is unreadable, sleeps at all).
inline bool thread_blocked_in_wait(long tid) {
    char path[96];
    std::snprintf(path, sizeof path, "/proc/self/task/%ld/stat", tid);
    FILE* f = std::fopen(path, "r");
    if (!f) return false;
    char line[1024];
    const bool got = std::fgets(line, sizeof line, f) != nullptr;
    std::fclose(f);
    if (!got) return false;
    const char* close_paren = std::strrchr(line, ')');
    if (!close_paren || close_paren[1] == '\0' || close_paren[2] != 'S') return false;
    std::snprintf(path, sizeof path, "/proc/self/task/%ld/syscall", tid);
    f = std::fopen(path, "r");
    if (!f) return true;
    long nr = -1;
    const int got_nr = std::fscanf(f, "%ld", &nr);
    std::fclose(f);
    if (got_nr != 1) return true;
#if defined(__x86_64__)
    return nr == SYS_epoll_wait || nr == SYS_epoll_pwait || nr == 441 /* epoll_pwait2 */ ||
           nr == 426 /* io_uring_enter */;
#else
    return true;
#endif
}

/// Waits (bounded, spinning on /proc) until thread `tid` is blocked in the reactor's wait.
inline bool wait_until_blocked(long tid, std::chrono::milliseconds limit = 3s) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (!thread_blocked_in_wait(tid)) {
        if (std::chrono::steady_clock::now() > end) return false;
        std::this_thread::yield();
    }
    return true;
}

/// Posts `fn` from another thread once the calling (reactor) thread is blocked in run_once, and
/// runs the reactor until `fn` ran. Returns {ran, the poster saw the reactor blocked}.
struct blocked_post_result {
    bool ran = false;
    bool saw_blocked = false;
};
inline blocked_post_result post_while_blocked(reactor& r, std::function<void()> fn,
                                              std::chrono::milliseconds limit = 5s) {
    const long tid = this_tid();
    bool ran = false;
    std::atomic<bool> saw{false};
    std::thread poster([&] {
        saw = wait_until_blocked(tid);
        r.post([&] {
            fn();
            ran = true;
        });
    });
    const auto end = std::chrono::steady_clock::now() + limit;
    while (!ran && std::chrono::steady_clock::now() < end)
        r.run_once(limit);
    poster.join();
    if (!ran) r.poll(); // the post is in the queue by now: never leave `fn` behind
    return {ran, saw.load()};
}

} // namespace evio::conf
