// SPDX-License-Identifier: MIT
// The one include of the Windows headers (<winsock2.h> before <windows.h>), with NOMINMAX.
//
// Order matters: <windows.h> without WIN32_LEAN_AND_MEAN pulls in the old <winsock.h>, whose
// declarations clash with <winsock2.h>. Including <winsock2.h> first defines _WINSOCKAPI_, so a
// later <windows.h> (ours or the user's) skips <winsock.h>. When the user included <windows.h>
// first: mingw-w64's headers cope (only a #warning, stepped around below so -Werror builds
// pass); MSVC's SDK fails with redefinitions, so there we stop with a message that says how to
// fix it (the rule Asio enforces). tests/backend/iocp/windows_h_first_test.cpp checks this.
// NOMINMAX is defined only around our include; evio never uses the names min/max, so a user's
// min/max macros (from an earlier <windows.h>) are harmless.
#pragma once

#include <evio/detail/platform.hpp>

#if EVIO_HAS_IOCP

#if defined(_WIN32_WINNT) && _WIN32_WINNT < 0x0600
#error "evio's IOCP backend needs _WIN32_WINNT >= 0x0600 (Vista)"
#endif

#if defined(_MSC_VER) && !defined(__clang__) && defined(_WINSOCKAPI_) && !defined(_WINSOCK2API_)
// <winsock.h> came in through <windows.h> without WIN32_LEAN_AND_MEAN: MSVC's <winsock2.h>
// would now fail with redefinitions.
#error "include evio (or <winsock2.h>) before <windows.h>, or define WIN32_LEAN_AND_MEAN"
#endif

#ifndef NOMINMAX
#define NOMINMAX
#define EVIO_UNDEF_NOMINMAX_
#endif

#if defined(__MINGW32__) && defined(_WINSOCKAPI_) && !defined(_WINSOCK2API_)
// mingw-w64's <winsock.h> and <winsock2.h> share their common part (__WINSOCK_WS1_SHARED), so
// both may be included; only the #warning keys on _WINSOCKAPI_. GCC < 13 cannot silence a
// #warning with a diagnostic pragma in C++ (GCC PR 53431), so step around it.
#undef _WINSOCKAPI_
#endif

// This order is the point of the file: <winsock2.h> before <windows.h>.
// clang-format off
#include <winsock2.h>
#include <ws2tcpip.h>
#include <mswsock.h>
#include <windows.h>
// clang-format on

#ifdef EVIO_UNDEF_NOMINMAX_
#undef NOMINMAX
#undef EVIO_UNDEF_NOMINMAX_
#endif

#include <type_traits>

namespace evio::detail {

static_assert(std::is_same_v<native_handle, SOCKET> || sizeof(native_handle) == sizeof(SOCKET),
              "detail::native_handle must hold a SOCKET");

/// The SOCKET behind a native_handle.
inline SOCKET to_socket(native_handle h) noexcept {
    return static_cast<SOCKET>(h);
}
/// The same socket seen as a kernel HANDLE (CreateIoCompletionPort, CancelIoEx).
inline HANDLE to_handle(native_handle h) noexcept {
    return reinterpret_cast<HANDLE>(h);
}

} // namespace evio::detail

#endif // EVIO_HAS_IOCP
