// SPDX-License-Identifier: MIT
// evio::when_all / evio::when_any: run tasks concurrently; when_any cancels the losers and waits
// for them to finish before it returns.
#pragma once

#include <evio/detail/cancel.hpp>
#include <evio/task.hpp>

#include <array>
#include <coroutine>
#include <cstddef>
#include <exception>
#include <optional>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>

namespace evio {

/// What when_any returns: which task finished first, and its value (std::monostate for void).
template <class... Ts>
struct when_any_result {
    std::size_t index;
    std::variant<Ts...> value;
};

namespace detail {

template <class T>
using join_value_t = std::conditional_t<std::is_void_v<T>, std::monostate, T>;

/// What the runners of one when_all/when_any share (lives in the when_* coroutine's frame).
struct join_state {
    std::size_t remaining = 0;
    std::coroutine_handle<> parent{};
    bool any = false;                  ///< when_any: the first finisher cancels the others
    std::size_t winner = ~std::size_t{0};
    cancel_slot* slots = nullptr;      ///< one per child
    std::size_t count = 0;

    void child_done(std::size_t index) {
        if (any && winner == ~std::size_t{0}) {
            winner = index;
            for (std::size_t i = 0; i < count; ++i)
                if (i != index) slots[i].request();
        }
    }
};

/// Runs one child task in its own cancellation scope; its frame is owned by the when_* frame.
template <class T>
struct join_runner {
    struct promise_type {
        cancel_slot* cancel = nullptr;
        join_state* state = nullptr;
        std::size_t index = 0;
        std::optional<join_value_t<T>> value{};
        std::exception_ptr exception{};

        join_runner get_return_object() noexcept {
            return {std::coroutine_handle<promise_type>::from_promise(*this)};
        }
        std::suspend_always initial_suspend() const noexcept { return {}; }
        struct final_awaiter {
            bool await_ready() const noexcept { return false; }
            std::coroutine_handle<> await_suspend(std::coroutine_handle<promise_type> h) noexcept {
                join_state& st = *h.promise().state;
                st.child_done(h.promise().index);
                if (--st.remaining == 0) return st.parent;
                return std::noop_coroutine();
            }
            void await_resume() const noexcept {}
        };
        final_awaiter final_suspend() const noexcept { return {}; }
        template <class U>
        void return_value(U&& v) {
            value.emplace(std::forward<U>(v));
        }
        void unhandled_exception() noexcept { exception = std::current_exception(); }
    };

    std::coroutine_handle<promise_type> handle;

    join_runner(std::coroutine_handle<promise_type> h) : handle(h) {}
    join_runner(join_runner&& o) noexcept : handle(std::exchange(o.handle, {})) {}
    ~join_runner() {
        if (handle) handle.destroy();
    }
};

template <class T>
join_runner<T> run_child(task<T> t) {
    if constexpr (std::is_void_v<T>) {
        co_await std::move(t);
        co_return std::monostate{};
    } else {
        co_return co_await std::move(t);
    }
}

/// Starts every runner, then suspends the when_* coroutine until all of them finished.
/// The caller's cancellation scope is forwarded to every child.
template <std::size_t N>
struct join_awaiter {
    join_state& st;
    std::array<std::coroutine_handle<>, N> starts;
    cancel_slot* parent = nullptr;

    bool await_ready() const noexcept { return N == 0; }
    template <class P>
    bool await_suspend(std::coroutine_handle<P> h) {
        st.parent = h;
        st.remaining = N + 1; // +1: no child may resume us while we are still starting others
        if constexpr (has_cancel_slot<P>) {
            parent = h.promise().cancel;
            if (parent && !parent->attach(&forward, &st))
                for (std::size_t i = 0; i < N; ++i) st.slots[i].requested = true;
        }
        for (auto c : starts) c.resume();
        return --st.remaining != 0;
    }
    void await_resume() noexcept {
        if (parent) parent->detach(&st);
    }
    static void forward(void* p) {
        auto* st = static_cast<join_state*>(p);
        for (std::size_t i = 0; i < st->count; ++i) st->slots[i].request();
    }
};

template <class... Ts, std::size_t... I>
auto make_runners(join_state& st, std::array<cancel_slot, sizeof...(Ts)>& slots,
                  std::index_sequence<I...>, task<Ts>&... ts) {
    std::tuple<join_runner<Ts>...> runners{run_child(std::move(ts))...};
    ((std::get<I>(runners).handle.promise().state = &st,
      std::get<I>(runners).handle.promise().index = I,
      std::get<I>(runners).handle.promise().cancel = &slots[I]),
     ...);
    return runners;
}

template <class Runners, std::size_t... I>
std::array<std::coroutine_handle<>, sizeof...(I)> start_handles(Runners& rs, std::index_sequence<I...>) {
    return {std::get<I>(rs).handle...};
}

} // namespace detail

/// Runs every task concurrently and returns all their values (std::monostate for void) once all
/// finished. Cancelling the awaiting scope cancels every child. If a child threw, the first
/// exception (in argument order) is rethrown after all children finished.
template <class... Ts>
task<std::tuple<detail::join_value_t<Ts>...>> when_all(task<Ts>... ts) {
    constexpr std::size_t n = sizeof...(Ts);
    std::array<detail::cancel_slot, n> slots{};
    detail::join_state st;
    st.slots = slots.data();
    st.count = n;
    auto runners = detail::make_runners<Ts...>(st, slots, std::index_sequence_for<Ts...>{}, ts...);
    co_await detail::join_awaiter<n>{st, detail::start_handles(runners, std::index_sequence_for<Ts...>{})};
    std::exception_ptr first;
    std::apply([&](auto&... r) { ((first = first ? first : r.handle.promise().exception), ...); },
               runners);
    if (first) std::rethrow_exception(first);
    co_return std::apply(
        [](auto&... r) {
            return std::tuple<detail::join_value_t<Ts>...>(std::move(*r.handle.promise().value)...);
        },
        runners);
}

/// Runs every task concurrently; when the first finishes, cancels the others (their current
/// operations resume with operation_canceled) and waits until every one of them finished, so no
/// operation is left in flight. Returns the first finisher's index and value. If the winner
/// threw, its exception is rethrown.
template <class... Ts>
task<when_any_result<detail::join_value_t<Ts>...>> when_any(task<Ts>... ts) {
    constexpr std::size_t n = sizeof...(Ts);
    static_assert(n > 0, "when_any needs at least one task");
    std::array<detail::cancel_slot, n> slots{};
    detail::join_state st;
    st.any = true;
    st.slots = slots.data();
    st.count = n;
    auto runners = detail::make_runners<Ts...>(st, slots, std::index_sequence_for<Ts...>{}, ts...);
    co_await detail::join_awaiter<n>{st, detail::start_handles(runners, std::index_sequence_for<Ts...>{})};
    using result_type = when_any_result<detail::join_value_t<Ts>...>;
    std::optional<result_type> out;
    auto pick = [&]<std::size_t I>(std::integral_constant<std::size_t, I>) {
        if (I != st.winner) return;
        auto& p = std::get<I>(runners).handle.promise();
        if (p.exception) std::rethrow_exception(p.exception);
        out.emplace(result_type{I, std::variant<detail::join_value_t<Ts>...>(
                                       std::in_place_index<I>, std::move(*p.value))});
    };
    [&]<std::size_t... I>(std::index_sequence<I...>) {
        (pick(std::integral_constant<std::size_t, I>{}), ...);
    }(std::index_sequence_for<Ts...>{});
    co_return std::move(*out);
}

} // namespace evio
