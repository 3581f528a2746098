// SPDX-License-Identifier: MIT
// Conformance case 10: post and stop from another thread reach a reactor blocked in its wait.
#include "conformance/helpers.hpp"

#include <atomic>
#include <thread>

using namespace std::chrono_literals;
using evio::conf::op_record;
namespace conf = evio::conf;
namespace test = evio::test;

namespace {

/// One long sleep that bounds run(): when it fires, the wake-up did not work. Nothing else
/// wakes the reactor in between (the reactor destroys this frame at the end of the test).
evio::task<void> watchdog(evio::reactor& r, bool& fired, std::chrono::milliseconds limit) {
    co_await evio::sleep_for(r, limit);
    fired = true;
    r.stop();
}

} // namespace

TEST_CASE("10: post from another thread while the reactor is blocked is delivered") {
    evio::reactor r{test::options()};
    // Something to wait for, so the reactor really blocks in its wait with work outstanding.
    auto p = test::connected_pair(r);
    op_record idle_read;
    evio::spawn(r, conf::read_once(r, p.server, idle_read));
    r.poll();

    constexpr int rounds = 25;
    int ran = 0;
    int saw_blocked = 0;
    for (int i = 0; i < rounds; ++i) {
        const auto start = std::chrono::steady_clock::now();
        const auto res = conf::post_while_blocked(
            r, [&] { ++ran; }, 5s);
        const auto took = std::chrono::steady_clock::now() - start;
        INFO("round " << i);
        REQUIRE(res.ran);
        saw_blocked += res.saw_blocked ? 1 : 0;
        // Coarse bound: delivered by the wake-up, not by the 5 s limit of the wait.
        CHECK(took < 4s);
    }
    CHECK(ran == rounds);
    CHECK(saw_blocked > 0); // the poster really found the reactor asleep in its wait
    CHECK(idle_read.resumed == 0);
}

TEST_CASE("10: posts from several threads at once are all delivered, in order per thread") {
    evio::reactor r{test::options()};
    auto p = test::connected_pair(r);
    op_record idle_read;
    evio::spawn(r, conf::read_once(r, p.server, idle_read));
    r.poll();

    constexpr int threads = 4;
    constexpr int per_thread = 200;
    std::vector<std::vector<int>> seen(threads);
    std::atomic<int> started{0};
    const auto tid = conf::this_reactor_thread();
    std::vector<std::thread> posters;
    for (int t = 0; t < threads; ++t) {
        posters.emplace_back([&, t] {
            ++started;
            (void)conf::wait_until_blocked(tid, 2s);
            for (int i = 0; i < per_thread; ++i)
                r.post([&seen, t, i] { seen[t].push_back(i); });
        });
    }
    const auto all_seen = [&] {
        for (auto& v : seen)
            if (v.size() != per_thread) return false;
        return true;
    };
    const auto end = std::chrono::steady_clock::now() + 8s;
    while (!all_seen() && std::chrono::steady_clock::now() < end)
        r.run_once(5s);
    for (auto& th : posters)
        th.join();
    r.poll();
    REQUIRE(all_seen());
    for (int t = 0; t < threads; ++t)
        for (int i = 0; i < per_thread; ++i)
            CHECK(seen[t][i] == i);
}

TEST_CASE("10: stop from another thread while run() is blocked makes run() return") {
    evio::reactor r{test::options()};
    auto p = test::connected_pair(r);
    op_record idle_read;
    evio::spawn(r, conf::read_once(r, p.server, idle_read));
    bool watchdog_fired = false;
    evio::spawn(r, watchdog(r, watchdog_fired, 6s));

    for (int round = 0; round < 5; ++round) {
        INFO("round " << round);
        const auto tid = conf::this_reactor_thread();
        std::atomic<bool> saw{false};
        std::thread stopper([&] {
            saw = conf::wait_until_blocked(tid);
            r.stop();
        });
        const auto start = std::chrono::steady_clock::now();
        r.run(); // blocks: a read is pending and the watchdog sleeps
        const auto took = std::chrono::steady_clock::now() - start;
        stopper.join();
        REQUIRE_FALSE(watchdog_fired);
        CHECK(saw);
        CHECK(took < 4s);
        CHECK_FALSE(r.stopped()); // run() returned and reset the flag
    }

    // A post from another thread, then a stop, while run() is blocked: both arrive.
    int posted = 0;
    const auto tid = conf::this_reactor_thread();
    std::thread both([&] {
        (void)conf::wait_until_blocked(tid);
        r.post([&] { ++posted; });
        r.post([&] { r.stop(); });
    });
    r.run();
    both.join();
    CHECK(posted == 1);
    CHECK_FALSE(watchdog_fired);

    // The reactor still delivers I/O after all that.
    conf::raw_send(p.client.native_handle(), "io");
    REQUIRE(test::run_until(
        r, [&] { return idle_read.resumed == 1; }, 5s));
    CHECK(idle_read.data == "io");
    CHECK_FALSE(watchdog_fired);
    CHECK(r.core().spawned == 1); // the watchdog, destroyed with the reactor
}
