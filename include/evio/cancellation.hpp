// SPDX-License-Identifier: MIT
// evio::with_cancellation: runs an operation that a std::stop_token can cancel, from any thread.
#pragma once

#include <evio/detail/contract.hpp>
#include <evio/detail/reactor_core.hpp>
#include <evio/detail/scoped_op.hpp>
#include <evio/reactor.hpp>
#include <evio/result.hpp>

#include <optional>
#include <stop_token>
#include <type_traits>
#include <utility>

namespace evio {

/// Awaitable of `with_cancellation`.
template <class A>
class cancellation_op : public detail::scoped_op<cancellation_op<A>, A> {
    using base = detail::scoped_op<cancellation_op<A>, A>;
    friend base;

public:
    cancellation_op(std::stop_token st, A&& a) : base(std::move(a)), st_(std::move(st)) {}
    cancellation_op(cancellation_op&& o) noexcept(std::is_nothrow_move_constructible_v<A>)
        : base(std::move(o)), st_(std::move(o.st_)) {}
    ~cancellation_op() { unbind(); }

private:
    struct on_stop {
        cancellation_op* self;
        void operator()() const noexcept { self->stop_requested(); }
    };

    void on_suspend() {
        remote_.scope = &this->scope_;
        if (st_.stop_requested()) { // before the start: the operation never starts
            this->scope_.requested = true;
            return;
        }
        r_ = reactor::current();
        // Contract: the stop callback must reach the reactor that runs the awaiting coroutine.
        EVIO_CONTRACT(1, "cancellation.no_reactor", r_ != nullptr);
        callback_.emplace(st_, on_stop{this});
    }
    void on_resume() noexcept { unbind(); }
    template <class R>
    R shape(R res) {
        return res;
    }

    void unbind() noexcept {
        callback_.reset(); // waits for a callback running on another thread
        if (r_) r_->forget_remote_cancel(remote_);
        r_ = nullptr;
    }

    /// Any thread. On the reactor's own thread the scope is cancelled at once; from elsewhere
    /// the request is queued and the reactor woken.
    void stop_requested() noexcept {
        if (reactor::current() == r_)
            this->scope_.request();
        else
            r_->request_remote_cancel(remote_);
    }

    std::stop_token st_;
    reactor* r_ = nullptr;
    detail::remote_cancel remote_{};
    std::optional<std::stop_callback<on_stop>> callback_{};
};

/// Runs `a` (an I/O operation, sleep_for, a task, or another wrapper) until it finishes or `st`
/// is stopped. Returns: `a`'s result; after a stop, errc::operation_canceled once the kernel
/// released the operation (or the operation's own result if it finished first). A stop
/// requested before the operation starts cancels it without starting it. `st` may be stopped
/// from any thread. Allocates nothing but the stop callback registration.
/// Preconditions: awaited inside an evio::task running on a reactor.
template <class A>
[[nodiscard]] cancellation_op<A> with_cancellation(std::stop_token st, A a) {
    return cancellation_op<A>(std::move(st), std::move(a));
}

} // namespace evio
