// SPDX-License-Identifier: MIT
// The syscall seam: every OS call goes through EVIO_SYSCALL so fault tests can make it fail.
#pragma once

#include <atomic>

namespace evio::detail {

/// Names of the calls that can be intercepted (fault injection, probe tests).
enum class sys : unsigned char {
    socket, bind, listen, accept, connect, recv, send, close, setsockopt, getsockopt,
    epoll_create, epoll_ctl, epoll_wait, eventfd, uring_setup, uring_probe, uring_submit,
    iocp_create, iocp_cancel, iocp_associate, iocp_wait, iocp_post, wsa_startup, count_
};

/// A fault hook: returns true to make `call` fail with the error it stores in `*err`
/// (errno or Win32 error), false to let the real call run. Installed by tests; null by default.
using fault_hook = bool (*)(sys call, int* err);

inline std::atomic<fault_hook>& fault_hook_slot() noexcept {
    static std::atomic<fault_hook> hook{nullptr};
    return hook;
}

/// Installs a fault hook (null removes it); returns the previous one.
inline fault_hook set_fault_hook(fault_hook h) noexcept { return fault_hook_slot().exchange(h); }

/// True (and *err set) when the installed hook wants `call` to fail.
inline bool fault_injected(sys call, int* err) noexcept {
    const fault_hook h = fault_hook_slot().load(std::memory_order_relaxed);
    return h != nullptr && h(call, err);
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
