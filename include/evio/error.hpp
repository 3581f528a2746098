// SPDX-License-Identifier: MIT
// evio::errc, its std::error_category, and the mapping from OS error numbers.
#pragma once

#include <string>
#include <system_error>
#include <type_traits>

namespace evio {

/// Portable error values. OS errors are mapped onto these on every backend, so
/// `ec == evio::errc::connection_refused` means the same on Linux and Windows.
enum class errc {
    operation_canceled = 1,  ///< The operation was cancelled (close, deregistration, timeout).
    timed_out,               ///< A deadline expired.
    connection_refused,      ///< Nobody listens at the remote endpoint.
    connection_reset,        ///< The peer reset the connection (RST).
    connection_aborted,      ///< The connection was aborted locally or before accept.
    broken_pipe,             ///< Write after the peer closed its side.
    address_in_use,          ///< bind: the address is taken.
    address_not_available,   ///< bind/connect: the address is not local / not usable.
    invalid_argument,        ///< Bad input (endpoint text, sizes, state).
    too_many_open_files,     ///< EMFILE/ENFILE: the process or system is out of descriptors.
    not_connected,           ///< The socket is not connected (or already closed).
    eof,                     ///< read_exact: the peer closed before the buffer was full.
    network_unreachable,     ///< No route to the network.
    host_unreachable,        ///< No route to the host.
    no_buffer_space,         ///< The OS is out of buffer space / memory.
    permission_denied,       ///< The OS refused (e.g. seccomp blocked io_uring, privileged port).
    backend_unavailable,     ///< The requested backend cannot run here.
    not_supported,           ///< The operation is not supported on this backend/platform.
    closed,                  ///< The object was closed (or moved from) before the operation.
};

namespace detail {

class error_category_impl final : public std::error_category {
public:
    const char* name() const noexcept override { return "evio"; }

    std::string message(int ev) const override {
        switch (static_cast<errc>(ev)) {
        case errc::operation_canceled: return "operation canceled";
        case errc::timed_out: return "timed out";
        case errc::connection_refused: return "connection refused";
        case errc::connection_reset: return "connection reset by peer";
        case errc::connection_aborted: return "connection aborted";
        case errc::broken_pipe: return "broken pipe";
        case errc::address_in_use: return "address in use";
        case errc::address_not_available: return "address not available";
        case errc::invalid_argument: return "invalid argument";
        case errc::too_many_open_files: return "too many open files";
        case errc::not_connected: return "not connected";
        case errc::eof: return "end of stream";
        case errc::network_unreachable: return "network unreachable";
        case errc::host_unreachable: return "host unreachable";
        case errc::no_buffer_space: return "no buffer space";
        case errc::permission_denied: return "permission denied";
        case errc::backend_unavailable: return "backend unavailable";
        case errc::not_supported: return "operation not supported";
        case errc::closed: return "closed";
        }
        return "unknown evio error";
    }

    std::error_condition default_error_condition(int ev) const noexcept override {
        using std::errc;
        switch (static_cast<evio::errc>(ev)) {
        case evio::errc::operation_canceled: return errc::operation_canceled;
        case evio::errc::timed_out: return errc::timed_out;
        case evio::errc::connection_refused: return errc::connection_refused;
        case evio::errc::connection_reset: return errc::connection_reset;
        case evio::errc::connection_aborted: return errc::connection_aborted;
        case evio::errc::broken_pipe: return errc::broken_pipe;
        case evio::errc::address_in_use: return errc::address_in_use;
        case evio::errc::address_not_available: return errc::address_not_available;
        case evio::errc::invalid_argument: return errc::invalid_argument;
        case evio::errc::too_many_open_files: return errc::too_many_files_open;
        case evio::errc::not_connected: return errc::not_connected;
        case evio::errc::network_unreachable: return errc::network_unreachable;
        case evio::errc::host_unreachable: return errc::host_unreachable;
        case evio::errc::no_buffer_space: return errc::no_buffer_space;
        case evio::errc::permission_denied: return errc::permission_denied;
        case evio::errc::not_supported: return errc::not_supported;
        default: return {ev, *this};
        }
    }
};

} // namespace detail

/// The category of evio::errc values; its name() is "evio".
inline const std::error_category& error_category() noexcept {
    static const detail::error_category_impl instance;
    return instance;
}

/// Makes an error_code from an evio::errc (found by ADL; enables `ec == evio::errc::x`).
inline std::error_code make_error_code(errc e) noexcept {
    return {static_cast<int>(e), error_category()};
}

} // namespace evio

template <>
struct std::is_error_code_enum<evio::errc> : std::true_type {};
