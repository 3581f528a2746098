// SPDX-License-Identifier: MIT
// reactor_options::busy_poll: a turn polls (waits that do not block) before it blocks, for at
// most the poll time and never past the next timer; the adaptive poll (the default with
// busy_poll) polls only while waits end within busy_poll; I/O, timers, posts from other threads and
// stop() behave as without it. The fault seam counts the kernel waits (epoll_wait, io_uring_enter,
// GetQueuedCompletionStatusEx): the one way to see whether the reactor polled without timing it.
#include "conformance/helpers.hpp"

#include <evio/detail/syscall.hpp>

#include <atomic>
#include <thread>

using namespace std::chrono_literals;
namespace test = evio::test;
using evio::detail::sys;

namespace {

std::atomic<long> waits{0};

/// Counts the backend's wait calls while it lives; injects nothing.
struct count_waits {
    count_waits() {
        waits = 0;
        evio::detail::set_fault_hook([](sys call, int*) {
            if (call == sys::epoll_wait || call == sys::uring_submit || call == sys::iocp_wait) ++waits;
            return false;
        });
    }
    ~count_waits() { evio::detail::set_fault_hook(nullptr); }
    count_waits(const count_waits&) = delete;
    count_waits& operator=(const count_waits&) = delete;
};

/// A fixed poll (every blocking turn polls for the whole time), unless `adaptive`.
evio::reactor_options with_poll(std::chrono::microseconds poll, bool adaptive = false) {
    auto o = test::options();
    o.busy_poll = poll;
    o.busy_poll_adaptive = adaptive;
    return o;
}

/// Sleeps `times` x `each` on `r` (each sleep ends no sooner than its deadline); returns the
/// wait calls they took.
long waits_for_sleeps(evio::reactor& r, int times, std::chrono::milliseconds each) {
    count_waits counter;
    evio::sync_wait(r, [&]() -> evio::task<void> {
        for (int i = 0; i < times; ++i) {
            const auto start = std::chrono::steady_clock::now();
            co_await evio::sleep_for(r, each);
            CHECK(std::chrono::steady_clock::now() - start >= each);
        }
    }());
    return waits.load();
}

/// Runs one 40 ms sleep on a reactor with `poll`; returns the wait calls it took. The sleep must
/// not end before its deadline.
long waits_for_one_sleep(std::chrono::microseconds poll) {
    evio::reactor r{with_poll(poll)};
    count_waits counter;
    const auto start = std::chrono::steady_clock::now();
    std::chrono::steady_clock::duration slept{};
    evio::spawn(r, [&]() -> evio::task<void> {
        co_await evio::sleep_for(r, 40ms);
        slept = std::chrono::steady_clock::now() - start;
    });
    r.run();
    CHECK(slept >= 40ms);
    return waits.load();
}

/// A 5 ms sleep (the reader is polling by then), then "ping" from one end of a pair to a
/// read_some on the other; checks what arrived.
void ping_while_polling(evio::reactor& r) {
    auto p = test::connected_pair(r);
    std::string got;
    evio::spawn(r, [&]() -> evio::task<void> {
        co_await evio::sleep_for(r, 5ms);
        auto w = co_await p.client.write_all(test::bytes("ping"));
        CHECK(w);
    });
    evio::sync_wait(r, [&]() -> evio::task<void> {
        std::array<std::byte, 16> buf{};
        auto n = co_await p.server.read_some(buf);
        REQUIRE(n);
        got = test::text(std::span(buf).first(*n));
    }());
    CHECK(got == "ping");
}

} // namespace

TEST_CASE("busy_poll: a turn polls before it blocks; a timer still fires at its deadline") {
    const long blocking = waits_for_one_sleep(0us);
    const long polling = waits_for_one_sleep(20ms);
    INFO("wait calls: " << blocking << " without busy_poll, " << polling << " with 20 ms");
    CHECK(blocking <= 5);  // one blocking wait for the sleep (and the turns around it)
    CHECK(polling >= 20);  // 20 ms of waits that return at once, then one that blocks
}

TEST_CASE("busy_poll: the poll ends at the next timer, not after the whole poll time") {
    evio::reactor r{with_poll(1s)};
    const auto start = std::chrono::steady_clock::now();
    bool fired = false;
    evio::spawn(r, [&]() -> evio::task<void> {
        co_await evio::sleep_for(r, 30ms);
        fired = true;
    });
    r.run();
    CHECK(fired);
    CHECK(std::chrono::steady_clock::now() - start < 800ms); // coarse: not the 1 s poll
}

TEST_CASE("busy_poll: I/O that completes during the poll resumes its waiter") {
    evio::reactor r{with_poll(1s)};
    const auto start = std::chrono::steady_clock::now();
    ping_while_polling(r);
    // Coarse: the completion ended the poll; a poll that missed it would run its whole second.
    CHECK(std::chrono::steady_clock::now() - start < 800ms);
}

TEST_CASE("busy_poll: a post and stop() from another thread reach a polling reactor") {
    evio::reactor r{with_poll(1s)};
    auto p = test::connected_pair(r);
    evio::conf::op_record idle_read; // outstanding work: run() would not return by itself
    evio::spawn(r, evio::conf::read_once(r, p.server, idle_read));
    std::atomic<bool> ran{false};
    std::thread poster([&] {
        std::this_thread::sleep_for(20ms);
        r.post([&] {
            ran = true;
            r.stop();
        });
    });
    const auto start = std::chrono::steady_clock::now();
    r.run();
    poster.join();
    CHECK(ran);
    // Coarse: the wake-up ended the poll; a poll that missed it would run its whole second.
    CHECK(std::chrono::steady_clock::now() - start < 800ms);
    CHECK(idle_read.resumed == 0);
}

TEST_CASE("busy_poll: out of range is an error that names it") {
    for (auto bad : {std::chrono::microseconds(-1), std::chrono::microseconds(1'000'001)}) {
        try {
            evio::reactor r{with_poll(bad)};
            FAIL("accepted busy_poll " << bad.count() << " us");
        } catch (const std::system_error& e) {
            CHECK(e.code() == evio::errc::invalid_argument);
            CHECK(std::string(e.what()).find("busy_poll") != std::string::npos);
        }
    }
    evio::reactor ok{with_poll(1s)}; // the upper bound itself is fine
}

TEST_CASE("busy_poll adaptive: an idle reactor (waits longer than busy_poll) never polls") {
    evio::reactor r{with_poll(20ms, true)};
    const long w = waits_for_sleeps(r, 3, 40ms); // every wait lasts 40 ms > 20 ms
    INFO("wait calls for three 40 ms sleeps: " << w);
    CHECK(w <= 12); // as without busy_poll: one blocking wait per sleep (and the turns around it)
}

TEST_CASE("busy_poll adaptive: short waits grow the poll; one long wait stops it") {
    evio::reactor r{with_poll(200ms, true)};
    // Waits of 5 ms (< 200 ms): the window doubles from 10 us each turn until it covers the
    // whole 5 ms, then the later sleeps are spent polling.
    const long growing = waits_for_sleeps(r, 30, 5ms);
    INFO("wait calls for thirty 5 ms sleeps: " << growing);
    CHECK(growing >= 300);
    // A wait longer than busy_poll (polled for the window, then blocked): back to 0 ...
    (void)waits_for_sleeps(r, 1, 300ms);
    // ... so the next waits block at once, until short waits grow the window again.
    const long after = waits_for_sleeps(r, 1, 5ms);
    INFO("wait calls for one 5 ms sleep after the long one: " << after);
    CHECK(after <= 4);
}

TEST_CASE("busy_poll adaptive: I/O and a post from another thread reach an adapted reactor") {
    evio::reactor r{with_poll(1s, true)};
    (void)waits_for_sleeps(r, 40, 1ms); // short waits: the window is 1 s by now (10 us x 2^17)
    const auto start = std::chrono::steady_clock::now();
    ping_while_polling(r);
    std::atomic<bool> ran{false};
    std::thread poster([&] {
        std::this_thread::sleep_for(20ms);
        r.post([&] { ran = true; });
    });
    while (!ran) r.run_once(); // blocks (after its poll) until the post wakes it
    poster.join();
    CHECK(ran);
    // Coarse: the completion and the wake-up ended the polls; polls that missed them would
    // each run a whole second.
    CHECK(std::chrono::steady_clock::now() - start < 800ms);
}
