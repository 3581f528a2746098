// SPDX-License-Identifier: MIT
// detail::cancel_slot: how a cancellation request reaches the one operation a coroutine awaits.
#pragma once

#include <concepts>

namespace evio::detail {

/// One per cancellation scope (with_timeout, with_cancellation, each child of when_any/when_all).
/// The operation a coroutine of that scope is suspended on attaches its cancel function here;
/// `request()` calls it once. Requests are sticky: an operation that attaches after the request
/// does not start at all (it completes at once with operation_canceled). Reactor thread only.
struct cancel_slot {
    using cancel_fn = void (*)(void*);

    bool requested = false;
    cancel_fn fn = nullptr;
    void* ctx = nullptr;

    /// Attaches the suspended operation `ctx`. Returns false when cancellation was already
    /// requested (the caller must not start its operation).
    bool attach(cancel_fn f, void* c) noexcept {
        if (requested) return false;
        fn = f;
        ctx = c;
        return true;
    }
    /// Detaches `c` if it is the attached operation (it completed).
    void detach(void* c) noexcept {
        if (ctx == c) {
            fn = nullptr;
            ctx = nullptr;
        }
    }
    /// Requests cancellation: the attached operation (if any) is asked to stop; later
    /// operations in this scope complete at once with operation_canceled.
    void request() {
        requested = true;
        if (fn) {
            const cancel_fn f = fn;
            void* c = ctx;
            fn = nullptr;
            ctx = nullptr;
            f(c);
        }
    }
};

/// True for promise types that carry a cancellation scope pointer (evio's task and roots).
template <class P>
concept has_cancel_slot = requires(P& p) {
    { p.cancel } -> std::convertible_to<cancel_slot*>;
};

} // namespace evio::detail
