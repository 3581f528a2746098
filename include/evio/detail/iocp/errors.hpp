// SPDX-License-Identifier: MIT
// Maps Win32 and Winsock error codes onto evio::errc; the EVIO_WINCALL fault-injection seam.
#pragma once

#include <evio/detail/platform.hpp>
#include <evio/error.hpp>

#if EVIO_HAS_IOCP

#include <evio/detail/iocp/winsock.hpp>
#include <evio/detail/syscall.hpp>

#include <system_error>

namespace evio::detail {

/// operation::error of an operation cancelled by deregistration (GetOverlappedResult reports
/// STATUS_CANCELLED as ERROR_OPERATION_ABORTED; maps to errc::operation_canceled).
inline constexpr int native_cancel_error = ERROR_OPERATION_ABORTED;

/// The portable error_code for a Win32 (GetLastError, completion status) or Winsock
/// (WSAGetLastError) error code. Completions report Win32 codes (RtlNtStatusToDosError of the
/// packet's NTSTATUS), calls that fail at once report WSA codes; both map to the same errc.
inline std::error_code error_from_win32(int e) noexcept {
    switch (e) {
    case 0:
        return {};
    case ERROR_OPERATION_ABORTED: // == WSA_OPERATION_ABORTED: CancelIoEx, closesocket
    case ERROR_CANCELLED:
    case WSAECANCELLED:
    case WSAEINTR:
        return errc::operation_canceled;
    case WSAETIMEDOUT:
    case ERROR_SEM_TIMEOUT: // STATUS_IO_TIMEOUT: ConnectEx gave up
    case WAIT_TIMEOUT:
        return errc::timed_out;
    case WSAECONNREFUSED:
    case ERROR_CONNECTION_REFUSED:
    case ERROR_PORT_UNREACHABLE:
        return errc::connection_refused;
    case WSAECONNRESET:
    case ERROR_NETNAME_DELETED:
        return errc::connection_reset; // STATUS_CONNECTION_RESET
    case WSAECONNABORTED:
    case ERROR_CONNECTION_ABORTED:
    case ERROR_REQUEST_ABORTED:
        return errc::connection_aborted;
    case WSAESHUTDOWN: // send after shutdown(SD_SEND)
    case ERROR_BROKEN_PIPE:
    case ERROR_NO_DATA:
        return errc::broken_pipe;
    case WSAEADDRINUSE:
    case ERROR_ADDRESS_ALREADY_ASSOCIATED:
        return errc::address_in_use;
    case WSAEADDRNOTAVAIL:
        return errc::address_not_available;
    case WSAEINVAL:
    case ERROR_INVALID_PARAMETER:
        return errc::invalid_argument;
    case WSAEMFILE:
    case ERROR_TOO_MANY_OPEN_FILES:
        return errc::too_many_open_files;
    case WSAENOTCONN:
    case ERROR_CONNECTION_INVALID:
        return errc::not_connected;
    case WSAENETUNREACH:
    case WSAENETDOWN:
    case ERROR_NETWORK_UNREACHABLE:
        return errc::network_unreachable;
    case WSAEHOSTUNREACH:
    case WSAEHOSTDOWN:
    case ERROR_HOST_UNREACHABLE:
        return errc::host_unreachable;
    case WSAENOBUFS:
    case ERROR_NOT_ENOUGH_MEMORY:
    case ERROR_OUTOFMEMORY:
    case ERROR_NO_SYSTEM_RESOURCES:
        return errc::no_buffer_space;
    case WSAEACCES:
    case ERROR_ACCESS_DENIED:
        return errc::permission_denied;
    case WSAEOPNOTSUPP:
    case WSAEAFNOSUPPORT:
    case WSAEPROTONOSUPPORT:
    case ERROR_NOT_SUPPORTED:
        return errc::not_supported;
    case WSAENOTSOCK:
    case ERROR_INVALID_HANDLE:
        return errc::closed;
    default:
        return {e, std::system_category()};
    }
}

/// The portable error_code for an operation's native error (a Win32/WSA code on Windows).
inline std::error_code error_from_native(int e) noexcept {
    return error_from_win32(e);
}

/// The calling thread's last Winsock error, mapped (WSAGetLastError == GetLastError).
inline std::error_code last_error() noexcept {
    return error_from_win32(::WSAGetLastError());
}

} // namespace evio::detail

/// Runs `expr` (a Win32/Winsock call reporting failure through GetLastError) unless the fault
/// hook wants `name` to fail, in which case the last error is set and the value is `failed`.
/// The Windows twin of EVIO_SYSCALL (detail/syscall.hpp).
#define EVIO_WINCALL(name, failed, expr)                                                           \
    ([&]() {                                                                                       \
        int evio_injected_err_ = 0;                                                                \
        if (::evio::detail::fault_injected(::evio::detail::sys::name, &evio_injected_err_))        \
            [[unlikely]] {                                                                         \
            ::SetLastError(static_cast<DWORD>(evio_injected_err_));                                \
            return static_cast<decltype(expr)>(failed);                                            \
        }                                                                                          \
        return (expr);                                                                             \
    }())

/// EVIO_WINCALL for a transfer: `len` (a std::size_t lvalue) is the request length `expr` reads,
/// which the hook may lower before `expr` runs (see EVIO_SYSCALL_IO).
#define EVIO_WINCALL_IO(name, failed, len, expr)                                                   \
    ([&]() {                                                                                       \
        if (const int evio_injected_err_ =                                                         \
                ::evio::detail::fault_error_io(::evio::detail::sys::name, (len)))                  \
            [[unlikely]] {                                                                         \
            ::SetLastError(static_cast<DWORD>(evio_injected_err_));                                \
            return static_cast<decltype(expr)>(failed);                                            \
        }                                                                                          \
        return (expr);                                                                             \
    }())

#endif // EVIO_HAS_IOCP
