// SPDX-License-Identifier: MIT
// Winsock socket helpers for the IOCP room, with the same names as detail/posix/socket.hpp.
//
// Winsock start-up (WSAStartup) is owned by detail::iocp_reactor: these helpers assume a reactor
// exists (every public path that reaches them has one).
#pragma once

#include <evio/detail/platform.hpp>

#if EVIO_HAS_IOCP

#include <evio/detail/iocp/errors.hpp>
#include <evio/detail/iocp/winsock.hpp>
#include <evio/detail/syscall.hpp>
#include <evio/endpoint.hpp>
#include <evio/result.hpp>

#include <array>
#include <cstdint>
#include <cstring>

namespace evio::detail {

/// Writes `ep` as a sockaddr into `out` (at least sizeof(sockaddr_in6) bytes); returns its length.
inline int to_sockaddr(const endpoint& ep, void* out) noexcept {
    if (ep.is_v4()) {
        sockaddr_in sa{};
        sa.sin_family = AF_INET;
        sa.sin_port = ::htons(ep.port());
        std::memcpy(&sa.sin_addr, ep.address_bytes().data(), 4);
        std::memcpy(out, &sa, sizeof sa);
        return static_cast<int>(sizeof sa);
    }
    sockaddr_in6 sa{};
    sa.sin6_family = AF_INET6;
    sa.sin6_port = ::htons(ep.port());
    sa.sin6_scope_id = ep.scope_id();
    std::memcpy(&sa.sin6_addr, ep.address_bytes().data(), 16);
    std::memcpy(out, &sa, sizeof sa);
    return static_cast<int>(sizeof sa);
}

inline endpoint from_sockaddr(const sockaddr_storage& ss) noexcept {
    if (ss.ss_family == AF_INET6) {
        sockaddr_in6 sa;
        std::memcpy(&sa, &ss, sizeof sa);
        std::array<std::uint8_t, 16> a;
        std::memcpy(a.data(), &sa.sin6_addr, 16);
        return endpoint::v6(a, ::ntohs(sa.sin6_port), sa.sin6_scope_id);
    }
    sockaddr_in sa;
    std::memcpy(&sa, &ss, sizeof sa);
    std::array<std::uint8_t, 4> a;
    std::memcpy(a.data(), &sa.sin_addr, 4);
    return endpoint::v4(a, ::ntohs(sa.sin_port));
}

/// A new overlapped, non-inheritable TCP socket of family 4 or 6, or INVALID_SOCKET with the
/// Winsock error in WSAGetLastError (the room needs the raw code for AcceptEx's socket).
inline SOCKET open_overlapped_socket(int family) noexcept {
    const int af = family == 6 ? AF_INET6 : AF_INET;
    SOCKET s = EVIO_WINCALL(socket, INVALID_SOCKET,
                            ::WSASocketW(af, SOCK_STREAM, IPPROTO_TCP, nullptr, 0,
                                         WSA_FLAG_OVERLAPPED | WSA_FLAG_NO_HANDLE_INHERIT));
    if (s == INVALID_SOCKET && ::WSAGetLastError() == WSAEINVAL) {
        // Windows 7 before SP1 does not know WSA_FLAG_NO_HANDLE_INHERIT (KB2398378).
        s = ::WSASocketW(af, SOCK_STREAM, IPPROTO_TCP, nullptr, 0, WSA_FLAG_OVERLAPPED);
        if (s != INVALID_SOCKET)
            (void)::SetHandleInformation(reinterpret_cast<HANDLE>(s), HANDLE_FLAG_INHERIT, 0);
    }
    return s;
}

/// A new overlapped TCP socket for `ep`'s family (not inherited by child processes).
inline result<native_handle> open_tcp_socket(const endpoint& ep) noexcept {
    const SOCKET s = open_overlapped_socket(ep.is_v4() ? 4 : 6);
    if (s == INVALID_SOCKET) return last_error();
    return static_cast<native_handle>(s);
}

/// Closes a socket (the name every platform's socket helpers share). Closing cancels what the
/// kernel still holds for it; those packets still arrive (ERROR_OPERATION_ABORTED).
inline void close_native(native_handle h) noexcept {
    if (h == invalid_handle) return;
    // evio never sets a linger timeout, the one case where closesocket leaves the socket open
    // (WSAEWOULDBLOCK): an injected close fault is seen by the seam, the socket still closes
    // (otherwise the peer would wait forever for an end of stream that never comes).
    int err = 0;
    (void)fault_injected(sys::close, &err);
    (void)::closesocket(to_socket(h));
}

/// A bound, listening socket. SO_EXCLUSIVEADDRUSE instead of SO_REUSEADDR: on Windows
/// SO_REUSEADDR would let another socket bind the same port and steal its connections.
inline result<native_handle> open_listener(const endpoint& ep, int backlog) noexcept {
    auto h = open_tcp_socket(ep);
    if (!h) return h;
    const SOCKET s = to_socket(*h);
    const BOOL one = TRUE;
    (void)::setsockopt(s, SOL_SOCKET, SO_EXCLUSIVEADDRUSE, reinterpret_cast<const char*>(&one),
                       sizeof one);
    if (ep.is_v6()) {
        const DWORD v6only = 1;
        (void)::setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, reinterpret_cast<const char*>(&v6only),
                           sizeof v6only);
    }
    sockaddr_storage ss{};
    const int len = to_sockaddr(ep, &ss);
    const auto* sa = reinterpret_cast<const sockaddr*>(&ss);
    if (EVIO_WINCALL(bind, SOCKET_ERROR, ::bind(s, sa, len)) != 0 ||
        EVIO_WINCALL(listen, SOCKET_ERROR, ::listen(s, backlog)) != 0) {
        const auto ec = last_error();
        close_native(*h);
        return ec;
    }
    return h;
}

inline result<endpoint> local_endpoint_of(native_handle h) noexcept {
    sockaddr_storage ss{};
    int len = sizeof ss;
    if (::getsockname(to_socket(h), reinterpret_cast<sockaddr*>(&ss), &len) != 0)
        return last_error();
    return from_sockaddr(ss);
}

inline result<endpoint> remote_endpoint_of(native_handle h) noexcept {
    sockaddr_storage ss{};
    int len = sizeof ss;
    if (::getpeername(to_socket(h), reinterpret_cast<sockaddr*>(&ss), &len) != 0)
        return last_error();
    return from_sockaddr(ss);
}

inline result<void> set_nodelay(native_handle h, bool on) noexcept {
    const BOOL v = on ? TRUE : FALSE;
    if (EVIO_WINCALL(setsockopt, SOCKET_ERROR,
                     ::setsockopt(to_socket(h), IPPROTO_TCP, TCP_NODELAY,
                                  reinterpret_cast<const char*>(&v), sizeof v)) != 0)
        return last_error();
    return {};
}

inline result<void> shutdown_send(native_handle h) noexcept {
    if (::shutdown(to_socket(h), SD_SEND) != 0) return last_error();
    return {};
}

} // namespace evio::detail

#endif // EVIO_HAS_IOCP
