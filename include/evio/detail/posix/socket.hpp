// SPDX-License-Identifier: MIT
// POSIX socket helpers shared by the uring and epoll rooms: sockaddr <-> endpoint, setup calls.
#pragma once

#include <evio/detail/platform.hpp>

#if EVIO_HAS_POSIX

#include <evio/detail/posix/errors.hpp>
#include <evio/detail/syscall.hpp>
#include <evio/endpoint.hpp>
#include <evio/result.hpp>

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

namespace evio::detail {

inline std::error_code last_error() noexcept { return error_from_errno(errno); }

/// Writes `ep` as a sockaddr into `out`; returns its length.
inline socklen_t to_sockaddr(const endpoint& ep, void* out) noexcept {
    if (ep.is_v4()) {
        sockaddr_in sa{};
        sa.sin_family = AF_INET;
        sa.sin_port = htons(ep.port());
        std::memcpy(&sa.sin_addr, ep.address_bytes().data(), 4);
        std::memcpy(out, &sa, sizeof sa);
        return sizeof sa;
    }
    sockaddr_in6 sa{};
    sa.sin6_family = AF_INET6;
    sa.sin6_port = htons(ep.port());
    sa.sin6_scope_id = ep.scope_id();
    std::memcpy(&sa.sin6_addr, ep.address_bytes().data(), 16);
    std::memcpy(out, &sa, sizeof sa);
    return sizeof sa;
}

inline endpoint from_sockaddr(const sockaddr_storage& ss) noexcept {
    if (ss.ss_family == AF_INET6) {
        sockaddr_in6 sa;
        std::memcpy(&sa, &ss, sizeof sa);
        std::array<std::uint8_t, 16> a;
        std::memcpy(a.data(), &sa.sin6_addr, 16);
        return endpoint::v6(a, ntohs(sa.sin6_port), sa.sin6_scope_id);
    }
    sockaddr_in sa;
    std::memcpy(&sa, &ss, sizeof sa);
    std::array<std::uint8_t, 4> a;
    std::memcpy(a.data(), &sa.sin_addr, 4);
    return endpoint::v4(a, ntohs(sa.sin_port));
}

/// A new non-blocking, close-on-exec TCP socket for `ep`'s family.
inline result<native_handle> open_tcp_socket(const endpoint& ep) noexcept {
    const int fd = EVIO_SYSCALL(socket, -1,
                                ::socket(ep.is_v4() ? AF_INET : AF_INET6,
                                         SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP));
    if (fd < 0) return last_error();
    return fd;
}

/// Closes a socket (the name every platform's socket helpers share).
inline void close_native(native_handle fd) noexcept {
    if (fd < 0) return;
    // Linux frees the descriptor even when close(2) reports an error (EINTR, EIO), so an
    // injected close fault still closes: the seam sees the call, the descriptor never leaks.
    int err = 0;
    (void)fault_injected(sys::close, &err);
    (void)::close(fd);
}

/// A bound, listening socket (SO_REUSEADDR on, so restarts do not wait out TIME_WAIT).
inline result<native_handle> open_listener(const endpoint& ep, int backlog) noexcept {
    auto fd = open_tcp_socket(ep);
    if (!fd) return fd;
    const int one = 1;
    (void)::setsockopt(*fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (ep.is_v6()) (void)::setsockopt(*fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    sockaddr_storage ss{};
    const socklen_t len = to_sockaddr(ep, &ss);
    if (EVIO_SYSCALL(bind, -1, ::bind(*fd, reinterpret_cast<sockaddr*>(&ss), len)) != 0 ||
        EVIO_SYSCALL(listen, -1, ::listen(*fd, backlog)) != 0) {
        const auto ec = last_error();
        close_native(*fd);
        return ec;
    }
    return fd;
}

inline result<endpoint> local_endpoint_of(native_handle fd) noexcept {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return last_error();
    return from_sockaddr(ss);
}

inline result<endpoint> remote_endpoint_of(native_handle fd) noexcept {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (::getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return last_error();
    return from_sockaddr(ss);
}

inline result<void> set_nodelay(native_handle fd, bool on) noexcept {
    const int v = on ? 1 : 0;
    if (EVIO_SYSCALL(setsockopt, -1, ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, sizeof v)) != 0)
        return last_error();
    return {};
}

inline result<void> shutdown_send(native_handle fd) noexcept {
    if (::shutdown(fd, SHUT_WR) != 0) return last_error();
    return {};
}

/// The pending error of a socket whose connect finished (SO_ERROR), 0 when connected.
inline int socket_error(native_handle fd) noexcept {
    int err = 0;
    socklen_t len = sizeof err;
    if (EVIO_SYSCALL(getsockopt, -1, ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len)) != 0)
        return errno;
    return err;
}

} // namespace evio::detail

#endif
