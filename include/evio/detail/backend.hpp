// SPDX-License-Identifier: MIT
// The one place that names the rooms: includes each that this platform has.
#pragma once

#include <evio/detail/platform.hpp>
#include <evio/detail/room.hpp>

#if EVIO_HAS_URING
#include <evio/detail/uring/reactor.hpp>
#endif
#if EVIO_HAS_EPOLL
#include <evio/detail/epoll/reactor.hpp>
#endif
#if EVIO_HAS_IOCP
#include <evio/detail/iocp/reactor.hpp>
#endif

namespace evio {

/// Which backend a reactor runs on. `automatic` picks io_uring, then epoll, on Linux; IOCP on
/// Windows.
enum class backend_kind { automatic, io_uring, epoll, iocp };

/// "automatic", "io_uring", "epoll" or "iocp".
constexpr const char* to_string(backend_kind k) noexcept {
    switch (k) {
    case backend_kind::automatic: return "automatic";
    case backend_kind::io_uring: return "io_uring";
    case backend_kind::epoll: return "epoll";
    case backend_kind::iocp: return "iocp";
    }
    return "unknown";
}

} // namespace evio
