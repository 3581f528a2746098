// SPDX-License-Identifier: MIT
// Platform detection: the only header that tests OS macros; says which rooms exist here.
#pragma once

#include <cstdint>

#if defined(_WIN32)
#define EVIO_PLATFORM_WINDOWS 1
#define EVIO_PLATFORM_LINUX 0
#define EVIO_HAS_IOCP 1
#define EVIO_HAS_EPOLL 0
#define EVIO_HAS_URING 0
#elif defined(__linux__)
#define EVIO_PLATFORM_WINDOWS 0
#define EVIO_PLATFORM_LINUX 1
#define EVIO_HAS_IOCP 0
#define EVIO_HAS_EPOLL 1
#if !defined(EVIO_NO_URING) && __has_include(<liburing.h>)
#define EVIO_HAS_URING 1
#else
#define EVIO_HAS_URING 0
#endif
#else
#error "evio supports Linux (io_uring, epoll) and Windows (IOCP)"
#endif

#define EVIO_HAS_POSIX EVIO_PLATFORM_LINUX

/// Inlining pins on the path from co_await to the room (GCC and clang; nothing elsewhere): the
/// layout that callgrind measured best (docs/benchmarks.md, findings item 14).
#if defined(__GNUC__)
#define EVIO_NOINLINE __attribute__((noinline))
#define EVIO_ALWAYS_INLINE __attribute__((always_inline))
#else
#define EVIO_NOINLINE
#define EVIO_ALWAYS_INLINE
#endif

namespace evio::detail {

#if EVIO_PLATFORM_WINDOWS
/// A Winsock SOCKET, spelled without <winsock2.h>.
using native_handle = std::uintptr_t;
inline constexpr native_handle invalid_handle = ~native_handle{0};
#else
/// A POSIX file descriptor.
using native_handle = int;
inline constexpr native_handle invalid_handle = -1;
#endif

} // namespace evio::detail
