// SPDX-License-Identifier: MIT
// The syscall seam: every OS call goes through EVIO_SYSCALL so fault tests can make it fail.
#pragma once

#include <atomic>
#include <cerrno>
#include <cstddef>

namespace evio::detail {

/// Names of the calls that can be intercepted (fault injection, probe tests). ring_recv,
/// ring_send and ring_connect are io_uring SQEs about to be prepared (no syscall: recv and send
/// count real recv(2)/send(2) calls only).
enum class sys : unsigned char {
    socket, bind, listen, accept, connect, recv, send, close, setsockopt, getsockopt,
    epoll_create, epoll_ctl, epoll_wait, eventfd, uring_setup, uring_probe, uring_submit,
    iocp_create, iocp_cancel, iocp_associate, iocp_wait, iocp_post, wsa_startup,
    ring_recv, ring_send, ring_connect, count_
};

/// A fault hook: returns true to make `call` fail with the error it stores in `*err`
/// (errno or Win32 error), false to let the real call run. Installed by tests; null by default.
using fault_hook = bool (*)(sys call, int* err);

/// A fault hook that may also shorten a transfer: `len` is the request length of a recv/send
/// (null for every other call). Returning false after lowering `*len` (to at least 1) makes the
/// real call run with fewer bytes; the result is never altered, so no byte is lost or repeated.
using io_fault_hook = bool (*)(sys call, int* err, std::size_t* len);

inline std::atomic<io_fault_hook>& fault_hook_slot() noexcept {
    static std::atomic<io_fault_hook> hook{nullptr};
    return hook;
}

inline std::atomic<fault_hook>& plain_fault_hook_slot() noexcept {
    static std::atomic<fault_hook> hook{nullptr};
    return hook;
}

/// Installs an io_fault_hook (null removes it); returns the previous one. The seam holds one
/// hook: this replaces a hook installed by set_fault_hook.
inline io_fault_hook set_io_fault_hook(io_fault_hook h) noexcept {
    return fault_hook_slot().exchange(h);
}

/// Installs a fault hook (null removes it); returns the previous one. The call sites still load
/// a single pointer: a plain hook is reached through a trampoline.
inline fault_hook set_fault_hook(fault_hook h) noexcept {
    const fault_hook prev = plain_fault_hook_slot().exchange(h);
    set_io_fault_hook(h ? +[](sys call, int* err, std::size_t*) {
        const fault_hook p = plain_fault_hook_slot().load(std::memory_order_relaxed);
        return p != nullptr && p(call, err);
    } : nullptr);
    return prev;
}

/// True (and *err set) when the installed hook wants `call` to fail; the hook may also lower
/// `*len` (recv/send request length) when `len` is not null.
inline bool fault_injected(sys call, int* err, std::size_t* len = nullptr) noexcept {
    const io_fault_hook h = fault_hook_slot().load(std::memory_order_relaxed);
    return h != nullptr && h(call, err, len);
}

/// The seam for a room's I/O call: 0 to run the call, or the error the installed hook wants it
/// to fail with. `len` is the request length the call reads (0 when it moves no bytes); the hook
/// may lower it. With no hook installed the cost is one relaxed load and a branch.
struct io_fault {
    int error;       ///< 0: run the call
    std::size_t len; ///< the request length to run it with
};

/// The out-of-line half of fault_error_io (a hook is installed). Out of line and returning by
/// value, so the caller keeps no value alive across a call on its hot path.
#if defined(_MSC_VER) && !defined(__clang__)
__declspec(noinline)
#else
__attribute__((noinline, cold))
#endif
inline io_fault call_io_fault_hook(io_fault_hook h, sys call, std::size_t len) noexcept {
    int err = 0;
    std::size_t shorter = len;
    if (h(call, &err, len != 0 ? &shorter : nullptr)) return {err != 0 ? err : EIO, len};
    return {0, shorter > 0 && shorter < len ? shorter : len};
}

inline int fault_error_io(sys call, std::size_t& len) noexcept {
    const io_fault_hook h = fault_hook_slot().load(std::memory_order_relaxed);
    if (h == nullptr) [[likely]]
        return 0;
    const io_fault f = call_io_fault_hook(h, call, len);
    len = f.len;
    return f.error;
}

} // namespace evio::detail

/// Runs `expr` (a POSIX call returning -1 and setting errno on failure) unless the fault hook
/// wants `name` to fail, in which case errno is set and the value is `failed`.
#define EVIO_SYSCALL(name, failed, expr)                                                           \
    ([&]() {                                                                                       \
        int evio_injected_err_ = 0;                                                                \
        if (::evio::detail::fault_injected(::evio::detail::sys::name, &evio_injected_err_))        \
            [[unlikely]] {                                                                         \
            errno = evio_injected_err_;                                                            \
            return static_cast<decltype(expr)>(failed);                                            \
        }                                                                                          \
        return (expr);                                                                             \
    }())

/// EVIO_SYSCALL for a room's I/O call: `len` (a std::size_t lvalue) is the request length
/// `expr` reads, which the hook may lower before `expr` runs (0 when the call moves no bytes);
/// `injected` (a bool lvalue) is set when the hook made the call fail, so a room can tell an
/// injected EAGAIN from the kernel's.
#define EVIO_SYSCALL_IO(name, failed, len, injected, expr)                                         \
    ([&]() {                                                                                       \
        if (const int evio_injected_err_ =                                                         \
                ::evio::detail::fault_error_io(::evio::detail::sys::name, (len)))                  \
            [[unlikely]] {                                                                         \
            (injected) = true;                                                                     \
            errno = evio_injected_err_;                                                            \
            return static_cast<decltype(expr)>(failed);                                            \
        }                                                                                          \
        return (expr);                                                                             \
    }())
