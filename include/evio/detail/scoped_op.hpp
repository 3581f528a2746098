// SPDX-License-Identifier: MIT
// detail::scoped_op: runs any awaitable inside its own cancellation scope (with_timeout,
// with_cancellation), without allocating: the scope lives in the awaiter, in the caller's frame.
#pragma once

#include <evio/detail/cancel.hpp>
#include <evio/error.hpp>
#include <evio/result.hpp>

#include <coroutine>
#include <optional>
#include <type_traits>
#include <utility>

namespace evio::detail {

/// The awaiter of an awaitable: its operator co_await() result, or itself.
template <class A>
decltype(auto) get_awaiter(A& a) {
    if constexpr (requires { a.operator co_await(); })
        return a.operator co_await();
    else
        return (a);
}

template <class A>
using awaiter_t = decltype(get_awaiter(std::declval<A&>()));

template <class A>
using await_result_t = decltype(std::declval<std::remove_reference_t<awaiter_t<A>>&>().await_resume());

template <class T>
struct is_result : std::false_type {};
template <class T>
struct is_result<result<T>> : std::true_type {};

/// What a scoped wrapper returns: the awaitable's own result<...>, or result<T> around a plain T.
template <class A>
using scoped_result_t =
    std::conditional_t<is_result<await_result_t<A>>::value, await_result_t<A>,
                       result<await_result_t<A>>>;

/// Calls `a.await_suspend(h)` whatever it returns (void, bool, handle) and turns it into a
/// handle for symmetric transfer.
template <class Aw, class P>
std::coroutine_handle<> suspend_inner(Aw& a, std::coroutine_handle<P> h) {
    using R = decltype(a.await_suspend(h));
    if constexpr (std::is_void_v<R>) {
        a.await_suspend(h);
        return std::noop_coroutine();
    } else if constexpr (std::is_same_v<R, bool>) {
        return a.await_suspend(h) ? std::noop_coroutine() : std::coroutine_handle<>(h);
    } else {
        return a.await_suspend(h);
    }
}

/// The shared machinery: holds the awaitable, opens a scope chained to the caller's, runs the
/// awaitable with the caller's promise pointing at the scope, restores everything on resume.
/// `Derived` supplies on_suspend() (arm a timer, bind a stop_token), on_resume() and shape().
template <class Derived, class A>
class scoped_op {
public:
    explicit scoped_op(A&& a) : aw_(std::move(a)) {}
    scoped_op(scoped_op&& o) noexcept(std::is_nothrow_move_constructible_v<A>)
        : aw_(std::move(o.aw_)) {}
    scoped_op(const scoped_op&) = delete;
    scoped_op& operator=(const scoped_op&) = delete;

    bool await_ready() const noexcept { return false; }

    template <class P>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<P> h) {
        static_assert(has_cancel_slot<P>,
                      "with_timeout/with_cancellation must be awaited inside an evio::task");
        cancel_ptr_ = &h.promise().cancel;
        parent_ = *cancel_ptr_;
        if (parent_ && !parent_->attach(&forward, this)) scope_.requested = true;
        *cancel_ptr_ = &scope_;
        static_cast<Derived*>(this)->on_suspend();
        auto& a = inner();
        if (a.await_ready()) return h;
        return suspend_inner(a, h);
    }

    scoped_result_t<A> await_resume() {
        struct restore {
            scoped_op* self;
            ~restore() {
                *self->cancel_ptr_ = self->parent_;
                if (self->parent_) self->parent_->detach(self);
                static_cast<Derived*>(self)->on_resume();
            }
        } guard{this};
        if constexpr (std::is_void_v<await_result_t<A>>) {
            inner().await_resume();
            return static_cast<Derived*>(this)->shape(result<void>{});
        } else {
            return static_cast<Derived*>(this)->shape(scoped_result_t<A>(inner().await_resume()));
        }
    }

protected:
    cancel_slot scope_{};

    /// True when `r` reports operation_canceled.
    template <class R>
    static bool canceled(const R& r) noexcept {
        return !r && r.error() == errc::operation_canceled;
    }

private:
    static void forward(void* self) { static_cast<scoped_op*>(self)->scope_.request(); }

    auto& inner() {
        if constexpr (std::is_reference_v<awaiter_t<A>>) {
            return aw_;
        } else {
            if (!held_) held_.emplace(get_awaiter(aw_));
            return *held_;
        }
    }

    struct none {};
    A aw_;
    [[no_unique_address]] std::conditional_t<std::is_reference_v<awaiter_t<A>>, none,
                                             std::optional<std::remove_cvref_t<awaiter_t<A>>>>
        held_{};
    cancel_slot** cancel_ptr_ = nullptr;
    cancel_slot* parent_ = nullptr;
};

} // namespace evio::detail
