// SPDX-License-Identifier: MIT
// evio::spawn and evio::sync_wait: how a task<T> gets onto a reactor.
#pragma once

#include <evio/detail/contract.hpp>
#include <evio/detail/reactor_core.hpp>
#include <evio/reactor.hpp>
#include <evio/task.hpp>

#include <coroutine>
#include <exception>
#include <optional>
#include <type_traits>
#include <utility>

namespace evio {

namespace detail {

/// The detached root a spawned task runs under. Its frame is owned by the reactor's spawned
/// list: it frees itself when the task finishes, or the reactor destroys it.
struct spawn_root {
    struct promise_type : spawn_list_node {
        reactor_core* core;

        promise_type(reactor_core& c, task<void>&) noexcept : core(&c) {
            frame = std::coroutine_handle<promise_type>::from_promise(*this);
            link_after(c.spawned_list);
            ++c.spawned;
        }
        ~promise_type() {
            unlink();
            --core->spawned;
        }
        spawn_root get_return_object() noexcept {
            return {std::coroutine_handle<promise_type>::from_promise(*this)};
        }
        std::suspend_always initial_suspend() const noexcept { return {}; }
        std::suspend_never final_suspend() const noexcept { return {}; }
        void return_void() const noexcept {}
        void unhandled_exception() noexcept {
            if (!core->spawned_exception) core->spawned_exception = std::current_exception();
        }
    };
    std::coroutine_handle<promise_type> handle;
};

inline spawn_root spawn_body(reactor_core&, task<void> t) { co_await std::move(t); }

/// Keeps a callable (a capturing lambda) alive in this frame while the task it returns runs.
template <class F>
task<void> invoke_owned(F f) {
    co_await f();
}

/// The root sync_wait drives: suspends at the end so sync_wait can read the result.
struct sync_root {
    struct promise_type {
        std::exception_ptr exception{};
        sync_root get_return_object() noexcept {
            return {std::coroutine_handle<promise_type>::from_promise(*this)};
        }
        std::suspend_always initial_suspend() const noexcept { return {}; }
        std::suspend_always final_suspend() const noexcept { return {}; }
        void return_void() const noexcept {}
        void unhandled_exception() noexcept { exception = std::current_exception(); }
    };
    std::coroutine_handle<promise_type> handle;
};

template <class T>
sync_root sync_body(task<T>& t, std::optional<T>& out) {
    out.emplace(co_await std::move(t));
}
inline sync_root sync_body_void(task<void>& t) { co_await std::move(t); }

} // namespace detail

/// Runs `t` detached on `r`: it starts in the reactor's next turn, and the reactor owns it
/// (destroys it with itself if it has not finished). An exception escaping `t` is rethrown by
/// `run()`. Preconditions: `t` owns a coroutine that has not started (contract `spawn.invalid`).
inline void spawn(reactor& r, task<void> t) {
    // Contract: spawning an empty or started task would resume nothing or resume twice.
    EVIO_CONTRACT(1, "spawn.invalid", t.valid() && !t.done());
    auto root = detail::spawn_body(r.core(), std::move(t));
    r.schedule(root.handle);
}

/// Runs `f()` (a callable returning task<void>, typically a capturing lambda) detached on `r`.
/// Unlike `spawn(r, lambda())`, the callable is moved into the coroutine frame first, so its
/// captures live as long as the task: a lambda coroutine's captures are not copied into its
/// frame, and the temporary closure of `spawn(r, [&] { ... }())` dies at the end of the statement.
template <class F>
    requires std::is_invocable_r_v<task<void>, F&>
void spawn(reactor& r, F f) {
    spawn(r, detail::invoke_owned(std::move(f)));
}

/// Runs `r` until `t` finishes and returns its value (or rethrows its exception).
/// Preconditions: not called from a coroutine running on `r` (contract `reactor.reentrant_run`).
template <class T>
T sync_wait(reactor& r, task<T> t) {
    if constexpr (std::is_void_v<T>) {
        auto root = detail::sync_body_void(t);
        r.schedule(root.handle); // starts inside the loop, where reactor::current() is set
        while (!root.handle.done()) r.run_once();
        auto ex = root.handle.promise().exception;
        root.handle.destroy();
        if (ex) std::rethrow_exception(ex);
    } else {
        std::optional<T> out;
        auto root = detail::sync_body(t, out);
        r.schedule(root.handle);
        while (!root.handle.done()) r.run_once();
        auto ex = root.handle.promise().exception;
        root.handle.destroy();
        if (ex) std::rethrow_exception(ex);
        return std::move(*out);
    }
}

} // namespace evio
