// SPDX-License-Identifier: MIT
// evio::with_timeout: an operation's own result, or errc::timed_out once it was cancelled at the
// deadline and fully retired.
#pragma once

#include <evio/detail/reactor_core.hpp>
#include <evio/detail/scoped_op.hpp>
#include <evio/reactor.hpp>
#include <evio/result.hpp>

#include <chrono>
#include <type_traits>
#include <utility>

namespace evio {

/// Awaitable of `with_timeout`.
template <class A>
class timeout_op : public detail::scoped_op<timeout_op<A>, A> {
    using base = detail::scoped_op<timeout_op<A>, A>;
    friend base;

public:
    timeout_op(reactor& r, detail::clock::time_point deadline, A&& a)
        : base(std::move(a)), r_(&r), deadline_(deadline) {}
    timeout_op(timeout_op&& o) noexcept(std::is_nothrow_move_constructible_v<A>)
        : base(std::move(o)), r_(o.r_), deadline_(o.deadline_) {}
    ~timeout_op() {
        if (timer_.armed()) r_->cancel_timer(timer_);
    }

private:
    void on_suspend() {
        if (this->scope_.requested) return;
        if (deadline_ <= detail::clock::now()) { // already late: do not even start
            fired_ = true;
            this->scope_.requested = true;
            return;
        }
        timer_.deadline = deadline_;
        timer_.fire = &on_timer;
        timer_.ctx = this;
        r_->add_timer(timer_);
    }
    void on_resume() noexcept {
        if (timer_.armed()) r_->cancel_timer(timer_);
    }
    template <class R>
    R shape(R res) {
        if (!fired_ || !base::canceled(res)) return res; // its own outcome, data included
        if constexpr (std::is_same_v<R, result<void>>)
            return result<void>(make_error_code(errc::timed_out), res.transferred());
        else
            return R(errc::timed_out);
    }
    static void on_timer(detail::timer_node* t) {
        auto* self = static_cast<timeout_op*>(t->ctx);
        self->fired_ = true;
        self->scope_.request();
    }

    reactor* r_;
    detail::clock::time_point deadline_;
    detail::timer_node timer_{};
    bool fired_ = false;
};

/// Runs `a` (an I/O operation, sleep_for, a task, or another wrapper) with a deadline `d` from
/// now. Returns: `a`'s own result, or errc::timed_out when the deadline passed first; the
/// operation was then cancelled and has fully retired (the kernel released its buffer) before
/// this returns. When the operation finished in the same moment, its real result wins: no data
/// is lost. A timed-out read_exact/write_all keeps its byte count in `transferred()`.
/// Allocates nothing. Preconditions: awaited inside an evio::task running on `r`.
template <class A, class Rep, class Period>
[[nodiscard]] timeout_op<A> with_timeout(reactor& r, std::chrono::duration<Rep, Period> d, A a) {
    return timeout_op<A>(r, detail::clock::now() + std::chrono::ceil<detail::clock::duration>(d),
                         std::move(a));
}

/// Like with_timeout, with an absolute steady-clock deadline.
template <class A, class Duration>
[[nodiscard]] timeout_op<A>
with_deadline(reactor& r, std::chrono::time_point<std::chrono::steady_clock, Duration> tp, A a) {
    return timeout_op<A>(r, std::chrono::time_point_cast<detail::clock::duration>(tp), std::move(a));
}

} // namespace evio
