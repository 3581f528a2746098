// SPDX-License-Identifier: MIT
// evio::sleep_for / sleep_until: awaitable timers on the reactor's steady-clock heap.
#pragma once

#include <evio/detail/reactor_core.hpp>
#include <evio/reactor.hpp>

#include <chrono>
#include <coroutine>

namespace evio {

/// Awaitable of `sleep_for`/`sleep_until`. The timer node lives in the coroutine frame (no
/// allocation); start and cancel are O(log n).
class sleep_op {
public:
    sleep_op(reactor& r, detail::clock::time_point deadline) noexcept : r_(&r) {
        node_.deadline = deadline;
    }
    sleep_op(const sleep_op&) = delete;
    sleep_op& operator=(const sleep_op&) = delete;
    ~sleep_op() {
        if (node_.armed()) r_->cancel_timer(node_);
    }

    bool await_ready() const noexcept { return node_.deadline <= detail::clock::now(); }
    void await_suspend(std::coroutine_handle<> h) {
        node_.waiter = h;
        r_->add_timer(node_);
    }
    void await_resume() const noexcept {}

private:
    reactor* r_;
    detail::timer_node node_{};
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
