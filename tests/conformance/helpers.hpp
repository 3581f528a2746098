// SPDX-License-Identifier: MIT
// Helpers shared by the conformance tests: raw loopback pairs, fd probes, one-shot op recorders.
// One file for every platform: raw sockets are sock_t (int on POSIX, SOCKET on Windows); the few
// calls that differ sit in small #if EVIO_PLATFORM_WINDOWS blocks.
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
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#if EVIO_PLATFORM_WINDOWS
// Through the library's one include of the Windows headers (as tests/backend/iocp does).
#include <evio/detail/iocp/winsock.hpp>
#else
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
#endif

namespace evio::conf {

using namespace std::chrono_literals;

/// A raw socket made outside evio: an fd on POSIX, a SOCKET on Windows (evio's native_handle).
using sock_t = detail::native_handle;
inline constexpr sock_t no_sock = detail::invalid_handle;

#if EVIO_PLATFORM_WINDOWS

/// Winsock stays started for the whole test program: a reactor's WSACleanup must never take
/// the raw sockets of a test with it.
inline const bool winsock_started = [] {
    WSADATA wsa{};
    return ::WSAStartup(MAKEWORD(2, 2), &wsa) == 0;
}();

inline int last_sock_error() {
    return ::WSAGetLastError();
}
inline bool would_block(int e) {
    return e == WSAEWOULDBLOCK;
}
[[noreturn]] inline void sys_fail(const char* what) {
    throw std::system_error(last_sock_error(), std::system_category(), what);
}
inline void close_sock(sock_t s) {
    if (s != no_sock) (void)::closesocket(static_cast<SOCKET>(s));
}
/// A new TCP socket for 127.0.0.1. socket() creates overlapped sockets, so one made here can
/// also be adopted by the IOCP reactor.
inline sock_t new_socket() {
    const SOCKET s = ::socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
    if (s == INVALID_SOCKET) sys_fail("socket");
    return static_cast<sock_t>(s);
}
/// Sockets are blocking on Windows outside the helpers below (blocking peers; a socket evio
/// adopted is never switched by evio). The helpers that must not block switch for one call.
inline void set_blocking(sock_t s, bool blocking) {
    u_long nb = blocking ? 0 : 1;
    if (::ioctlsocket(static_cast<SOCKET>(s), FIONBIO, &nb) != 0) sys_fail("ioctlsocket(FIONBIO)");
}
inline int sock_send(sock_t s, const char* p, std::size_t n) {
    return ::send(static_cast<SOCKET>(s), p, static_cast<int>(n), 0);
}
inline int sock_recv(sock_t s, char* p, std::size_t n) {
    return ::recv(static_cast<SOCKET>(s), p, static_cast<int>(n), 0);
}
template <class T>
int set_opt(sock_t s, int level, int name, const T& v) {
    return ::setsockopt(static_cast<SOCKET>(s), level, name, reinterpret_cast<const char*>(&v),
                        static_cast<int>(sizeof v));
}

/// True when this Windows program runs under Wine (ntdll exports wine_get_version). Used only
/// where Wine is known to differ from Windows; the native MSVC job runs the strict checks.
inline bool under_wine() {
    static const bool wine = [] {
        const HMODULE ntdll = ::GetModuleHandleW(L"ntdll.dll");
        return ntdll != nullptr && ::GetProcAddress(ntdll, "wine_get_version") != nullptr;
    }();
    return wine;
}

#else

inline int last_sock_error() {
    return errno;
}
inline bool would_block(int e) {
    return e == EAGAIN || e == EWOULDBLOCK;
}
[[noreturn]] inline void sys_fail(const char* what) {
    throw std::system_error(errno, std::generic_category(), what);
}
inline void close_sock(sock_t s) {
    if (s >= 0) ::close(s);
}
inline sock_t new_socket() {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) sys_fail("socket");
    return fd;
}
inline void set_blocking(sock_t fd, bool blocking) {
    const int fl = ::fcntl(fd, F_GETFL);
    if (fl < 0 || ::fcntl(fd, F_SETFL, blocking ? (fl & ~O_NONBLOCK) : (fl | O_NONBLOCK)) != 0)
        sys_fail("fcntl");
}
inline ssize_t sock_send(sock_t s, const char* p, std::size_t n) {
    return ::send(s, p, n, MSG_NOSIGNAL);
}
inline ssize_t sock_recv(sock_t s, char* p, std::size_t n) {
    return ::recv(s, p, n, 0);
}
template <class T>
int set_opt(sock_t s, int level, int name, const T& v) {
    return ::setsockopt(s, level, name, &v, static_cast<socklen_t>(sizeof v));
}
inline bool under_wine() {
    return false;
}

#endif

/// True when the reactor under test is the IOCP one (the only backend on Windows).
inline bool on_iocp() {
    return EVIO_PLATFORM_WINDOWS != 0;
}

/// Switches a socket to non-blocking mode for one helper call (Windows: sockets are blocking
/// outside the helpers; POSIX: raw sockets are non-blocking already, nothing to do).
struct nonblocking_scope {
    sock_t s;
    explicit nonblocking_scope(sock_t sock) : s(sock) {
        if constexpr (EVIO_PLATFORM_WINDOWS != 0) set_blocking(s, false);
    }
    nonblocking_scope(const nonblocking_scope&) = delete;
    nonblocking_scope& operator=(const nonblocking_scope&) = delete;
    ~nonblocking_scope() {
        if constexpr (EVIO_PLATFORM_WINDOWS != 0) set_blocking(s, true);
    }
};

/// Small socket buffers, so a few KiB fill a connection (set before connect/listen).
inline void small_buffers(sock_t fd, int bytes = 4096) {
    (void)set_opt(fd, SOL_SOCKET, SO_SNDBUF, bytes);
    (void)set_opt(fd, SOL_SOCKET, SO_RCVBUF, bytes);
}

inline void nodelay(sock_t fd) {
    const int one = 1;
    (void)set_opt(fd, IPPROTO_TCP, TCP_NODELAY, one);
}

/// 127.0.0.1:port as a sockaddr_in.
inline sockaddr_in loopback_addr(std::uint16_t port) {
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = htons(port);
    return sa;
}

/// Connects `s` to 127.0.0.1:port (blocking; loopback completes at once). True on success.
inline bool connect_loopback(sock_t s, std::uint16_t port) {
    const sockaddr_in sa = loopback_addr(port);
    return ::connect(s, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) == 0;
}

/// A new socket connected to 127.0.0.1:port (blocking on Windows, non-blocking on POSIX never
/// matters here: the caller only sends small messages and closes it).
inline sock_t raw_connect(std::uint16_t port) {
    const sock_t s = new_socket();
    if (!connect_loopback(s, port)) {
        const int e = last_sock_error();
        close_sock(s);
#if EVIO_PLATFORM_WINDOWS
        ::WSASetLastError(e);
#else
        errno = e;
#endif
        sys_fail("connect");
    }
    return s;
}

/// A raw socket bound to 127.0.0.1 with an OS-chosen port (not listening); returns the port.
inline std::uint16_t bind_loopback(sock_t s) {
    sockaddr_in sa = loopback_addr(0);
    if (::bind(s, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) sys_fail("bind");
#if EVIO_PLATFORM_WINDOWS
    int len = sizeof sa;
#else
    socklen_t len = sizeof sa;
#endif
    if (::getsockname(s, reinterpret_cast<sockaddr*>(&sa), &len) != 0) sys_fail("getsockname");
    return ntohs(sa.sin_port);
}

/// A blocking raw listener on 127.0.0.1 with an OS-chosen port (outside evio).
struct raw_listener {
    sock_t fd = no_sock;
    std::uint16_t port = 0;

    explicit raw_listener(int buffer_bytes = 0) {
        fd = new_socket();
        if (buffer_bytes > 0) small_buffers(fd, buffer_bytes);
        port = bind_loopback(fd);
        if (::listen(fd, 128) != 0) sys_fail("listen");
    }
    raw_listener(const raw_listener&) = delete;
    raw_listener& operator=(const raw_listener&) = delete;
    ~raw_listener() { close_sock(fd); }

    /// Connects socket `c` (blocking; loopback completes at once) and accepts the server side.
    /// POSIX: both ends are returned non-blocking. Windows: both stay blocking (the helpers
    /// switch for the calls that must not block), and the accepted socket is overlapped (it
    /// inherits that from the listener), so evio can adopt it.
    std::pair<sock_t, sock_t> connect_and_accept(sock_t c, int buffer_bytes = 0) const {
        if (buffer_bytes > 0) small_buffers(c, buffer_bytes);
        if (!connect_loopback(c, port)) sys_fail("connect");
#if EVIO_PLATFORM_WINDOWS
        const SOCKET s = ::accept(static_cast<SOCKET>(fd), nullptr, nullptr);
        if (s == INVALID_SOCKET) sys_fail("accept");
        return {static_cast<sock_t>(s), c};
#else
        const int s = ::accept4(fd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (s < 0) sys_fail("accept4");
        set_blocking(c, false);
        return {s, c};
#endif
    }
};

/// A connected loopback TCP pair made synchronously outside evio: {server, client}, owned by the
/// caller (non-blocking on POSIX, blocking on Windows).
struct raw_pair {
    sock_t server = no_sock;
    sock_t client = no_sock;
};

inline raw_pair make_raw_pair(const raw_listener& l, int buffer_bytes = 0) {
    auto [s, c] = l.connect_and_accept(new_socket(), buffer_bytes);
    return {s, c};
}

inline raw_pair make_raw_pair(int buffer_bytes = 0) {
    raw_listener l(buffer_bytes);
    return make_raw_pair(l, buffer_bytes);
}

/// Registers `fd` with `r` and wraps it in a tcp_stream that owns it.
inline tcp_stream adopt(reactor& r, sock_t fd) {
    auto t = r.register_handle(fd);
    if (!t) throw std::system_error(t.error(), "register_handle");
    return tcp_stream(r, fd, *t);
}

/// A stream adopted into a reactor plus its raw peer socket (closed on destruction). The
/// buffers are small and set before connecting, so the path fills with a few KiB and stays full.
struct adopted_pair {
    tcp_stream server;
    sock_t peer = no_sock;

    adopted_pair() = default;
    adopted_pair(adopted_pair&& o) noexcept
        : server(std::move(o.server)), peer(std::exchange(o.peer, no_sock)) {}
    adopted_pair& operator=(adopted_pair&&) = delete;
    ~adopted_pair() { close_sock(peer); }
};

inline adopted_pair make_adopted_pair(reactor& r, int buffer_bytes = 4096) {
    const auto raw = make_raw_pair(buffer_bytes);
    adopted_pair p;
    p.peer = raw.client;
    p.server = adopt(r, raw.server);
    return p;
}

/// Bytes waiting in `fd`'s receive queue (FIONREAD). On Windows, 0 while an overlapped read is
/// pending on the socket (it takes arriving data at once): use wait_readable(r, stream, n).
inline int readable_bytes(sock_t fd) {
#if EVIO_PLATFORM_WINDOWS
    u_long n = 0;
    if (::ioctlsocket(static_cast<SOCKET>(fd), FIONREAD, &n) != 0) return -1;
    return static_cast<int>(n);
#else
    int n = 0;
    if (::ioctl(fd, FIONREAD, &n) != 0) return -1;
    return n;
#endif
}

/// Spins (bounded, no sleeping) until `fd` has at least `n` bytes queued. For a socket no
/// overlapped read is pending on (a raw peer, or an evio stream with no read outstanding).
inline bool wait_readable(sock_t fd, int n = 1, std::chrono::milliseconds limit = 2s) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (readable_bytes(fd) < n) {
        if (std::chrono::steady_clock::now() > end) return false;
        std::this_thread::yield();
    }
    return true;
}

/// Bytes that arrived for the socket `fd` registered in `r` as `t` and are not delivered yet:
/// queued in the socket, plus (IOCP) what its pending overlapped read already took once that
/// read completed in the kernel (its OVERLAPPED left STATUS_PENDING; the packet may still wait
/// in the port).
inline int arrived_bytes(reactor& r, token t, sock_t fd) {
    int n = readable_bytes(fd);
#if EVIO_PLATFORM_WINDOWS
    const detail::slot* sl = r.core().table.find(t);
    const detail::operation* op = sl ? sl->queue[0].head : nullptr;
    if (op && op->in_kernel) {
        OVERLAPPED ov;
        std::memcpy(&ov, op->overlapped, sizeof ov);
        if (ov.Internal != STATUS_PENDING) n += static_cast<int>(ov.InternalHigh);
    }
#else
    (void)r;
    (void)t;
#endif
    return n;
}

/// wait_readable for a registered socket that may have a read pending: spins (bounded) until
/// `n` bytes arrived for it (see arrived_bytes).
inline bool wait_readable(reactor& r, token t, sock_t fd, int n = 1,
                          std::chrono::milliseconds limit = 2s) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (arrived_bytes(r, t, fd) < n) {
        if (std::chrono::steady_clock::now() > end) return false;
        std::this_thread::yield();
    }
    return true;
}
inline bool wait_readable(reactor& r, const tcp_stream& s, int n = 1,
                          std::chrono::milliseconds limit = 2s) {
    return wait_readable(r, s.native_token(), s.native_handle(), n, limit);
}

/// IOCP: waits (bounded) until the read-direction operation (read or accept) the kernel holds
/// for `t` finished there (its OVERLAPPED left STATUS_PENDING; the packet may still wait in the
/// port). Readiness backends: true at once (the caller's connect or send already made the
/// socket ready). For "the completion is there before the next turn" cases.
inline bool wait_kernel_done(reactor& r, token t, std::chrono::milliseconds limit = 2s) {
#if EVIO_PLATFORM_WINDOWS
    const auto end = std::chrono::steady_clock::now() + limit;
    for (;;) {
        const detail::slot* sl = r.core().table.find(t);
        const detail::operation* op = sl ? sl->queue[0].head : nullptr;
        if (!op || !op->in_kernel) return false;
        OVERLAPPED ov;
        std::memcpy(&ov, op->overlapped, sizeof ov);
        if (ov.Internal != STATUS_PENDING) return true;
        if (std::chrono::steady_clock::now() > end) return false;
        std::this_thread::yield();
    }
#else
    (void)r;
    (void)t;
    (void)limit;
    return true;
#endif
}

/// One non-blocking send attempt; the result of send (bytes, or -1).
inline long try_send(sock_t fd, std::string_view s) {
    nonblocking_scope nb(fd);
    return static_cast<long>(sock_send(fd, s.data(), s.size()));
}

inline void raw_send(sock_t fd, std::string_view s) {
    nonblocking_scope nb(fd);
    std::size_t off = 0;
    for (int guard = 0; off < s.size() && guard < 10000; ++guard) {
        const auto n = sock_send(fd, s.data() + off, s.size() - off);
        if (n > 0) off += static_cast<std::size_t>(n);
        else if (n < 0 && !would_block(last_sock_error()) && last_sock_error() != EINTR)
            sys_fail("send");
        else std::this_thread::yield();
    }
    if (off != s.size()) throw std::runtime_error("raw_send: peer does not drain");
}

/// Writes into `fd` until the kernel says it would block; returns the byte count.
inline std::size_t fill_send_buffer(sock_t fd) {
    nonblocking_scope nb(fd);
    static const std::vector<char> chunk(4096, 'f');
    std::size_t total = 0;
    for (int i = 0; i < 100000; ++i) {
        const auto n = sock_send(fd, chunk.data(), chunk.size());
        if (n > 0) {
            total += static_cast<std::size_t>(n);
            continue;
        }
        const int e = last_sock_error();
        if (n < 0 && e == EINTR) continue;
        if (n < 0 && would_block(e)) return total;
        sys_fail("send (fill)");
    }
    throw std::runtime_error("fill_send_buffer: never blocked");
}

/// Fills `fd`'s send path so that it stays full until the peer reads: writes until EAGAIN, and
/// again after every ACK still in flight freed space, until everything sent is acknowledged and
/// only unsent bytes (held back by the peer's zero window) remain. Bounded.
/// Linux: spins on SIOCOUTQ/SIOCOUTQNSD. Windows has no such query: the path counts as settled
/// when fills spaced by short sleeps took nothing three times in a row.
inline std::size_t fill_send_buffer_stable(sock_t fd, std::chrono::milliseconds limit = 3s) {
    const auto end = std::chrono::steady_clock::now() + limit;
    std::size_t total = fill_send_buffer(fd);
#if EVIO_PLATFORM_WINDOWS
    for (int quiet = 0; quiet < 3;) {
        std::this_thread::sleep_for(5ms);
        const std::size_t more = fill_send_buffer(fd);
        total += more;
        quiet = more == 0 ? quiet + 1 : 0;
        if (std::chrono::steady_clock::now() > end)
            throw std::runtime_error("fill_send_buffer_stable: the send path never settled");
    }
    return total;
#else
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
#endif
}

/// Reads everything queued in `fd` right now; returns the byte count.
inline std::size_t drain(sock_t fd) {
    nonblocking_scope nb(fd);
    static char buf[65536];
    std::size_t total = 0;
    for (;;) {
        const auto n = sock_recv(fd, buf, sizeof buf);
        if (n > 0) {
            total += static_cast<std::size_t>(n);
            continue;
        }
        if (n < 0 && last_sock_error() == EINTR) continue;
        return total;
    }
}

/// Reads what is queued in `fd` as text.
inline std::string raw_recv_text(sock_t fd) {
    nonblocking_scope nb(fd);
    char buf[4096];
    const auto n = sock_recv(fd, buf, sizeof buf);
    return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
}

/// Waits (bounded) until a recv on `fd` no longer would block; returns what it returned:
/// 0 at end of stream, > 0 with data, -1 on an error (or when `limit` passed).
inline long recv_result(sock_t fd, std::chrono::milliseconds limit = 2s) {
    nonblocking_scope nb(fd);
    const auto end = std::chrono::steady_clock::now() + limit;
    char c;
    while (std::chrono::steady_clock::now() < end) {
        const auto got = sock_recv(fd, &c, 1);
        if (got >= 0 || !would_block(last_sock_error())) return static_cast<long>(got);
        std::this_thread::yield();
    }
    return -1;
}

/// Open descriptors (handles on Windows) of this process. Windows: GetProcessHandleCount, or,
/// where that reports 0 (Wine), the process's entries in SystemExtendedHandleInformation.
inline int open_fd_count() {
#if EVIO_PLATFORM_WINDOWS
    DWORD count = 0;
    if (::GetProcessHandleCount(::GetCurrentProcess(), &count) && count > 0)
        return static_cast<int>(count);
    using query_fn = LONG(WINAPI*)(ULONG, PVOID, ULONG, PULONG);
    const auto query = reinterpret_cast<query_fn>(reinterpret_cast<void (*)()>(
        ::GetProcAddress(::GetModuleHandleW(L"ntdll.dll"), "NtQuerySystemInformation")));
    if (!query) return -1;
    struct entry { // SYSTEM_HANDLE_TABLE_ENTRY_INFO_EX
        PVOID object;
        ULONG_PTR pid;
        ULONG_PTR handle;
        ULONG access;
        USHORT creator_back_trace;
        USHORT type_index;
        ULONG attributes;
        ULONG reserved;
    };
    struct info {
        ULONG_PTR count;
        ULONG_PTR reserved;
        entry handles[1];
    };
    constexpr ULONG extended_handle_information = 64;
    constexpr LONG info_length_mismatch = static_cast<LONG>(0xC0000004L);
    std::vector<ULONG_PTR> buf(1 << 16);
    for (int i = 0; i < 8; ++i) {
        ULONG len = 0;
        const auto bytes = static_cast<ULONG>(buf.size() * sizeof(ULONG_PTR));
        const LONG st = query(extended_handle_information, buf.data(), bytes, &len);
        if (st == info_length_mismatch) {
            buf.resize(buf.size() * 2);
            continue;
        }
        if (st != 0) return -1;
        const auto* hi = reinterpret_cast<const info*>(buf.data());
        int n = 0;
        const ULONG_PTR me = ::GetCurrentProcessId();
        for (ULONG_PTR k = 0; k < hi->count; ++k)
            if (hi->handles[k].pid == me) ++n;
        return n;
    }
    return -1;
#else
    DIR* d = ::opendir("/proc/self/fd");
    if (!d) return -1;
    int n = 0;
    while (::readdir(d) != nullptr)
        ++n;
    ::closedir(d);
    return n;
#endif
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

/// The calling (reactor) thread, for wait_until_blocked: its id, and on Windows how many
/// completion-port waits had begun when it was taken.
struct reactor_thread {
    long id = 0;
    unsigned long waits = 0;
};

#if EVIO_PLATFORM_WINDOWS

// Windows offers no portable view of where another thread sleeps (Wine reports every thread as
// running in SystemProcessInformation; thread CPU times are too coarse to tell). So the probe
// uses evio's fault seam: a hook that fails nothing and counts the reactor's calls into
// GetQueuedCompletionStatusEx (sys::iocp_wait). "Blocked" means: a wait began on that thread
// after the reactor_thread was taken (plus a short sleep, so the call reaches the kernel).
namespace wait_probe {
inline std::atomic<unsigned long> entries{0};
inline std::atomic<DWORD> last_thread{0};
inline bool hook(detail::sys call, int*) {
    if (call == detail::sys::iocp_wait) {
        last_thread.store(::GetCurrentThreadId());
        entries.fetch_add(1);
    }
    return false;
}
/// Installs the hook unless a test installed its own (then no wait is seen: saw_blocked stays
/// false and the test says so).
inline void install() {
    const detail::fault_hook prev = detail::set_fault_hook(&hook);
    if (prev != nullptr && prev != &hook) (void)detail::set_fault_hook(prev);
}
} // namespace wait_probe

inline reactor_thread this_reactor_thread() {
    wait_probe::install();
    return {static_cast<long>(::GetCurrentThreadId()), wait_probe::entries.load()};
}

/// Waits (bounded) until thread `t` began a completion-port wait after `t` was taken.
inline bool wait_until_blocked(const reactor_thread& t, std::chrono::milliseconds limit = 3s) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (wait_probe::entries.load() <= t.waits ||
           static_cast<long>(wait_probe::last_thread.load()) != t.id) {
        if (std::chrono::steady_clock::now() > end) return false;
        std::this_thread::yield();
    }
    std::this_thread::sleep_for(2ms);
    return true;
}

#else

inline reactor_thread this_reactor_thread() {
    return {static_cast<long>(::syscall(SYS_gettid)), 0};
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

/// Waits (bounded, spinning on /proc) until thread `t` is blocked in the reactor's wait.
inline bool wait_until_blocked(const reactor_thread& t, std::chrono::milliseconds limit = 3s) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (!thread_blocked_in_wait(t.id)) {
        if (std::chrono::steady_clock::now() > end) return false;
        std::this_thread::yield();
    }
    return true;
}

#endif

/// Posts `fn` from another thread once the calling (reactor) thread is blocked in run_once, and
/// runs the reactor until `fn` ran. Returns {ran, the poster saw the reactor blocked}.
struct blocked_post_result {
    bool ran = false;
    bool saw_blocked = false;
};
inline blocked_post_result post_while_blocked(reactor& r, std::function<void()> fn,
                                              std::chrono::milliseconds limit = 5s) {
    const reactor_thread me = this_reactor_thread();
    bool ran = false;
    std::atomic<bool> saw{false};
    std::thread poster([&] {
        saw = wait_until_blocked(me);
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
