// SPDX-License-Identifier: MIT
// evio::sleep_for / sleep_until: awaitable timers on the reactor's steady-clock heap.
#pragma once

#include <evio/detail/cancel.hpp>
#include <evio/detail/reactor_core.hpp>
#include <evio/error.hpp>
#include <evio/result.hpp>
#include <evio/reactor.hpp>

#include <chrono>
#include <coroutine>

namespace evio {

/// Awaitable of `sleep_for`/`sleep_until`: result<void>, operation_canceled when its scope
/// (with_timeout, with_cancellation, when_any) cancelled it. The timer node lives in the
/// coroutine frame (no allocation); start and cancel are O(log n).
class sleep_op {
public:
    sleep_op(reactor& r, detail::clock::time_point deadline) noexcept : r_(&r) {
        node_.deadline = deadline;
    }
    sleep_op(sleep_op&& o) noexcept : r_(o.r_) { node_.deadline = o.node_.deadline; }
    sleep_op(const sleep_op&) = delete;
    sleep_op& operator=(const sleep_op&) = delete;
    ~sleep_op() {
        if (node_.armed()) r_->cancel_timer(node_);
    }

    bool await_ready() const noexcept { return node_.deadline <= detail::clock::now(); }

    template <class P>
    bool await_suspend(std::coroutine_handle<P> h) {
        node_.waiter = h;
        if constexpr (detail::has_cancel_slot<P>) {
            if (detail::cancel_slot* c = h.promise().cancel) {
                if (!c->attach(&cancel_this, this)) {
                    canceled_ = true;
                    return false;
                }
                scope_ = c;
            }
        }
        r_->add_timer(node_);
        return true;
    }

    result<void> await_resume() noexcept {
        if (scope_) scope_->detach(this);
        scope_ = nullptr;
        if (canceled_) return errc::operation_canceled;
        return {};
    }

private:
    static void cancel_this(void* self) {
        auto* s = static_cast<sleep_op*>(self);
        if (!s->node_.armed()) return; // already fired
        s->r_->cancel_timer(s->node_);
        s->canceled_ = true;
        s->r_->schedule(s->node_.waiter);
    }

    reactor* r_;
    detail::timer_node node_{};
    detail::cancel_slot* scope_ = nullptr;
    bool canceled_ = false;
};

/// Suspends until `d` has passed (never earlier) on the steady clock.
template <class Rep, class Period>
[[nodiscard]] sleep_op sleep_for(reactor& r, std::chrono::duration<Rep, Period> d) noexcept {
    return sleep_op(r, detail::clock::now() +
                           std::chrono::ceil<detail::clock::duration>(d));
}

/// Suspends until `tp` on the steady clock.
template <class Duration>
[[nodiscard]] sleep_op sleep_until(reactor& r,
                                   std::chrono::time_point<std::chrono::steady_clock, Duration> tp) noexcept {
    return sleep_op(r, std::chrono::time_point_cast<detail::clock::duration>(tp));
}

} // namespace evio
