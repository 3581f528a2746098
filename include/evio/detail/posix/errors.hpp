// SPDX-License-Identifier: MIT
// Maps errno values onto evio::errc (unmapped values keep std::system_category).
#pragma once

#include <evio/detail/platform.hpp>
#include <evio/error.hpp>

#if EVIO_HAS_POSIX

#include <cerrno>

namespace evio::detail {

/// operation::error of an operation cancelled by deregistration (maps to operation_canceled);
/// detail/iocp/errors.hpp defines the Windows value (ERROR_OPERATION_ABORTED).
inline constexpr int native_cancel_error = ECANCELED;

/// The portable error_code for a positive errno value.
inline std::error_code error_from_errno(int e) noexcept {
    switch (e) {
    case 0: return {};
    case ECANCELED: return errc::operation_canceled;
    case ETIMEDOUT:
    case ETIME: return errc::timed_out;
    case ECONNREFUSED: return errc::connection_refused;
    case ECONNRESET: return errc::connection_reset;
    case ECONNABORTED: return errc::connection_aborted;
    case EPIPE: return errc::broken_pipe;
    case EADDRINUSE: return errc::address_in_use;
    case EADDRNOTAVAIL: return errc::address_not_available;
    case EINVAL: return errc::invalid_argument;
    case EMFILE:
    case ENFILE: return errc::too_many_open_files;
    case ENOTCONN: return errc::not_connected;
    case ENETUNREACH:
    case ENETDOWN: return errc::network_unreachable;
    case EHOSTUNREACH:
    case EHOSTDOWN: return errc::host_unreachable;
    case ENOBUFS:
    case ENOMEM: return errc::no_buffer_space;
    case EACCES:
    case EPERM: return errc::permission_denied;
    case EOPNOTSUPP: return errc::not_supported;
    case EBADF: return errc::closed;
    default: return {e, std::system_category()};
    }
}

/// The portable error_code for an operation's native error (errno on POSIX).
inline std::error_code error_from_native(int e) noexcept { return error_from_errno(e); }

} // namespace evio::detail

#endif
