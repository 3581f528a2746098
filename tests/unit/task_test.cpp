// SPDX-License-Identifier: MIT
// evio::task<T>, spawn and sync_wait: laziness, values, exceptions, deep chains, ownership.
#include "support/catch.hpp"
#include "support/fixture.hpp"

#include <stdexcept>

namespace {

evio::task<int> answer() { co_return 42; }

evio::task<int> add(int a, int b) { co_return a + b; }

evio::task<int> chain(int depth) {
    if (depth == 0) co_return 0;
    co_return 1 + co_await chain(depth - 1);
}

evio::task<void> thrower() {
    throw std::runtime_error("boom");
    co_return;
}

struct guard {
    int* counter;
    ~guard() { ++*counter; }
};

} // namespace

TEST_CASE("task is lazy and returns its value") {
    evio::reactor r{evio::test::options()};
    bool started = false;
    auto body = [&]() -> evio::task<int> { // named: a lambda coroutine's captures live in
        started = true;                       // the closure, not in the coroutine frame
        co_return 1;
    };
    auto t = body();
    CHECK_FALSE(started);
    CHECK(evio::sync_wait(r, std::move(t)) == 1);
    CHECK(started);
    CHECK(evio::sync_wait(r, answer()) == 42);
    CHECK(evio::sync_wait(r, add(2, 3)) == 5);
}

TEST_CASE("deep task chains do not overflow the stack (symmetric transfer)") {
    evio::reactor r{evio::test::options()};
#if EVIO_PLATFORM_WINDOWS
    constexpr int depth = 1000; // mingw-w64 does not emit the tail call on the Windows x64 ABI
#else
    constexpr int depth = 20000; // g++ -O2 and clang (musttail) resume by tail call
#endif
    CHECK(evio::sync_wait(r, chain(depth)) == depth);
}

TEST_CASE("exceptions propagate through await and sync_wait") {
    evio::reactor r{evio::test::options()};
    CHECK_THROWS_WITH(evio::sync_wait(r, thrower()), "boom");
    auto outer = []() -> evio::task<bool> {
        try {
            co_await thrower();
        } catch (const std::runtime_error&) {
            co_return true;
        }
        co_return false;
    };
    CHECK(evio::sync_wait(r, outer()));
}

TEST_CASE("spawn runs detached tasks; run returns when they finish") {
    evio::reactor r{evio::test::options()};
    int done = 0;
    for (int i = 0; i < 10; ++i)
        evio::spawn(r, [&]() -> evio::task<void> {
            ++done;
            co_return;
        });
    CHECK(done == 0); // spawned tasks start in the reactor's next turn
    r.run();
    CHECK(done == 10);
}

TEST_CASE("an exception escaping a spawned task is rethrown by run") {
    evio::reactor r{evio::test::options()};
    evio::spawn(r, thrower());
    CHECK_THROWS_WITH(r.run(), "boom");
}

TEST_CASE("the reactor destroys unfinished spawned tasks with itself") {
    int destroyed = 0;
    bool resumed = false;
    {
        evio::reactor r{evio::test::options()};
        evio::spawn(r, [&]() -> evio::task<void> {
            guard g{&destroyed};
            co_await evio::sleep_for(r, std::chrono::hours(1));
            resumed = true;
        });
        r.poll();
        CHECK(destroyed == 0);
    }
    CHECK(destroyed == 1);
    CHECK_FALSE(resumed);
}

TEST_CASE("destroying an unstarted task destroys its frame") {
    int destroyed = 0;
    {
        auto body = [&]() -> evio::task<void> {
            guard g{&destroyed};
            co_return;
        };
        auto t = body();
        (void)t;
    }
    CHECK(destroyed == 0); // the body never ran, so its locals never existed
    auto arg_guard = [](guard g) -> evio::task<void> {
        (void)g;
        co_return;
    };
    {
        auto t = arg_guard(guard{&destroyed});
        CHECK(destroyed >= 1); // the temporary argument
    }
}

TEST_CASE("stop makes run return; a later run continues") {
    evio::reactor r{evio::test::options()};
    int steps = 0;
    evio::spawn(r, [&]() -> evio::task<void> {
        ++steps;
        r.stop();
        co_await evio::sleep_for(r, std::chrono::milliseconds(1));
        ++steps;
    });
    r.run();
    CHECK(steps == 1);
    r.run();
    CHECK(steps == 2);
}
