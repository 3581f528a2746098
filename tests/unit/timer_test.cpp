// SPDX-License-Identifier: MIT
// sleep_for / sleep_until: never early, in deadline order, cancelled with their frames.
#include "support/catch.hpp"
#include "support/fixture.hpp"

#include <vector>

using namespace std::chrono_literals;

TEST_CASE("sleep never returns early") {
    evio::reactor r{evio::test::options()};
    for (auto d : {1ms, 5ms, 20ms}) {
        const auto t0 = std::chrono::steady_clock::now();
        evio::sync_wait(r, [&]() -> evio::task<void> { co_await evio::sleep_for(r, d); }());
        const auto dt = std::chrono::steady_clock::now() - t0;
        CHECK(dt >= d);
        CHECK(dt < d + 2s); // coarse upper bound only: the machine is shared
    }
}

TEST_CASE("timers fire in deadline order, ties in start order") {
    evio::reactor r{evio::test::options()};
    std::vector<int> order;
    const auto base = std::chrono::steady_clock::now() + 20ms;
    for (int i : {3, 1, 2, 0}) {
        evio::spawn(r, [&, i]() -> evio::task<void> {
            co_await evio::sleep_until(r, base + std::chrono::milliseconds(i * 5));
            order.push_back(i);
        });
    }
    evio::spawn(r, [&]() -> evio::task<void> {
        co_await evio::sleep_until(r, base + 5ms);
        order.push_back(10); // same deadline as 1, started later
    });
    r.run();
    CHECK(order == std::vector<int>{0, 1, 10, 2, 3});
}

TEST_CASE("a zero or past deadline completes without suspending") {
    evio::reactor r{evio::test::options()};
    evio::sync_wait(r, [&]() -> evio::task<void> {
        co_await evio::sleep_for(r, 0ms);
        co_await evio::sleep_until(r, std::chrono::steady_clock::now() - 1s);
    }());
    CHECK(r.core().timers.empty());
}

TEST_CASE("many timers: heap stays consistent under interleaved cancels") {
    evio::reactor r{evio::test::options()};
    std::vector<evio::detail::timer_node> nodes(1000);
    const auto now = std::chrono::steady_clock::now();
    for (std::size_t i = 0; i < nodes.size(); ++i) {
        nodes[i].deadline = now + std::chrono::milliseconds((i * 7919) % 1000);
        r.add_timer(nodes[i]);
    }
    for (std::size_t i = 0; i < nodes.size(); i += 3) r.cancel_timer(nodes[i]);
    auto prev = now - 1s;
    std::size_t popped = 0;
    auto& heap = r.core().timers;
    while (auto* t = heap.top()) {
        CHECK(t->deadline >= prev);
        prev = t->deadline;
        heap.remove(t);
        ++popped;
    }
    CHECK(popped == nodes.size() - (nodes.size() + 2) / 3);
}
