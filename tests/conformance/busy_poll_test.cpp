// SPDX-License-Identifier: MIT
// reactor_options::busy_poll: a turn polls (waits that do not block) before it blocks, for at
// most the poll time and never past the next timer; I/O, timers, posts from other threads and
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

evio::reactor_options with_poll(std::chrono::microseconds poll) {
    auto o = test::options();
    o.busy_poll = poll;
    return o;
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
    auto p = test::connected_pair(r);
    std::string got;
    const auto start = std::chrono::steady_clock::now();
    evio::spawn(r, [&]() -> evio::task<void> {
        co_await evio::sleep_for(r, 5ms); // the reader is polling by now
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
