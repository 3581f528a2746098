// SPDX-License-Identifier: MIT
// evio::task<T>: a lazy, move-only coroutine that resumes its awaiter by symmetric transfer.
#pragma once

#include <evio/detail/cancel.hpp>
#include <evio/detail/contract.hpp>

#include <coroutine>
#include <exception>
#include <type_traits>
#include <utility>

namespace evio {

template <class T = void>
class task;

namespace detail {

struct task_promise_base {
    std::coroutine_handle<> continuation{};
    std::exception_ptr exception{};
    /// The cancellation scope this task runs in (inherited from its awaiter); null: none.
    cancel_slot* cancel = nullptr;

    struct final_awaiter {
        bool await_ready() const noexcept { return false; }
        template <class P>
        std::coroutine_handle<> await_suspend(std::coroutine_handle<P> h) const noexcept {
            auto c = h.promise().continuation;
            return c ? c : std::noop_coroutine();
        }
        void await_resume() const noexcept {}
    };

    std::suspend_always initial_suspend() const noexcept { return {}; }
    final_awaiter final_suspend() const noexcept { return {}; }
    void unhandled_exception() noexcept { exception = std::current_exception(); }
};

template <class T>
struct task_promise final : task_promise_base {
    union {
        T value;
    };
    bool has_value = false;

    task_promise() noexcept {}
    ~task_promise() {
        if (has_value) value.~T();
    }
    task<T> get_return_object() noexcept;
    template <class U>
        requires std::is_convertible_v<U&&, T>
    void return_value(U&& v) noexcept(std::is_nothrow_constructible_v<T, U&&>) {
        ::new (static_cast<void*>(std::addressof(value))) T(std::forward<U>(v));
        has_value = true;
    }
    T take() {
        if (exception) std::rethrow_exception(exception);
        return std::move(value);
    }
};

template <>
struct task_promise<void> final : task_promise_base {
    task<void> get_return_object() noexcept;
    void return_void() const noexcept {}
    void take() const {
        if (exception) std::rethrow_exception(exception);
    }
};

} // namespace detail

/// A lazy coroutine returning T. It starts when awaited (or handed to `spawn`/`sync_wait`) and
/// resumes its awaiter by symmetric transfer when it finishes, so deep chains do not grow the
/// stack. Move-only; destroying an unstarted or finished task destroys its frame.
/// Preconditions: awaited at most once (contract `task.awaited_twice`).
template <class T>
class [[nodiscard]] task {
public:
    using promise_type = detail::task_promise<T>;
    using handle_type = std::coroutine_handle<promise_type>;

    task() noexcept = default;
    explicit task(handle_type h) noexcept : h_(h) {}
    task(task&& o) noexcept : h_(std::exchange(o.h_, {})) {}
    task& operator=(task&& o) noexcept {
        if (this != &o) {
            if (h_) h_.destroy();
            h_ = std::exchange(o.h_, {});
        }
        return *this;
    }
    task(const task&) = delete;
    task& operator=(const task&) = delete;
    ~task() {
        if (h_) h_.destroy();
    }

    /// True when this task owns a coroutine.
    bool valid() const noexcept { return static_cast<bool>(h_); }
    /// True when the coroutine ran to completion.
    bool done() const noexcept { return h_ && h_.done(); }

    struct awaiter {
        handle_type h;
        bool await_ready() const noexcept { return false; }
        template <class P>
        std::coroutine_handle<> await_suspend(std::coroutine_handle<P> caller) {
            // Contract: a task runs once; awaiting it again would resume a finished frame.
            EVIO_CONTRACT(1, "task.awaited_twice", h && !h.done() && !h.promise().continuation);
            // The child runs in its awaiter's cancellation scope.
            if constexpr (detail::has_cancel_slot<P>) h.promise().cancel = caller.promise().cancel;
            h.promise().continuation = caller;
            return h;
        }
        T await_resume() { return h.promise().take(); }
    };

    /// Starts the task and suspends the caller until it finishes; returns its value or rethrows.
    awaiter operator co_await() && noexcept { return awaiter{h_}; }
    awaiter operator co_await() & noexcept { return awaiter{h_}; }

    /// Gives up ownership of the coroutine frame.
    handle_type release() noexcept { return std::exchange(h_, {}); }

private:
    handle_type h_{};
};

namespace detail {
template <class T>
task<T> task_promise<T>::get_return_object() noexcept {
    return task<T>{std::coroutine_handle<task_promise<T>>::from_promise(*this)};
}
inline task<void> task_promise<void>::get_return_object() noexcept {
    return task<void>{std::coroutine_handle<task_promise<void>>::from_promise(*this)};
}
} // namespace detail

} // namespace evio
