// SPDX-License-Identifier: MIT
// Leak check at reactor destruction with operations pending (docs/reliability.md, "Sanitizers and
// leak checks"): a counting allocator proves that destroying a reactor while reads, a blocked
// write_all, an accept, a connect in flight, sleeps, timeouts and a when_any are pending frees
// every allocation it made. Runs on every backend, IOCP under Wine included, where neither ASan
// nor valgrind is available.
#include "support/fixture.hpp"

#include <atomic>
#include <cstdlib>
#include <new>
#include <vector>

#include "support/counting_new.hpp"

namespace heap = evio::test::heap;

namespace {

using namespace std::chrono_literals;

struct outcome {
    int resumed = 0;
    int destroyed = 0;
};

struct frame_counter {
    int* n;
    ~frame_counter() { ++*n; }
};

/// Builds a reactor, leaves every kind of operation pending, destroys it; `o` counts what the
/// frames saw (written to until the reactor's destructor returns).
void destroy_with_pending(outcome& o) {
    evio::reactor r{evio::test::options()};
    auto pair = evio::test::connected_pair(r);
    auto lis = evio::test::listen_any(r);
    auto full = evio::tcp_listener::bind(r, evio::endpoint::loopback_v4(0), 1).value();
    const auto full_ep = full.local_endpoint().value();
    std::vector<std::byte> big(8 << 20); // more than both socket buffers hold: write_all waits
    std::array<std::byte, 16> rbuf{};

    evio::spawn(r, [&]() -> evio::task<void> {
        frame_counter g{&o.destroyed};
        (void)co_await pair.server.read_some(rbuf);
        ++o.resumed;
    });
    evio::spawn(r, [&]() -> evio::task<void> {
        frame_counter g{&o.destroyed};
        (void)co_await pair.client.write_all(big);
        ++o.resumed;
    });
    evio::spawn(r, [&]() -> evio::task<void> {
        frame_counter g{&o.destroyed};
        (void)co_await evio::with_timeout(r, 1h, lis.accept());
        ++o.resumed;
    });
    evio::spawn(r, [&]() -> evio::task<void> {
        frame_counter g{&o.destroyed};
        (void)co_await evio::sleep_for(r, 1h);
        ++o.resumed;
    });
    evio::spawn(r, [&]() -> evio::task<void> {
        frame_counter g{&o.destroyed};
        auto sleeper = [](evio::reactor& rr) -> evio::task<void> { (void)co_await evio::sleep_for(rr, 1h); };
        auto reader = [](evio::tcp_listener& l) -> evio::task<void> { (void)co_await l.accept(); };
        (void)co_await evio::when_any(sleeper(r), reader(lis));
        ++o.resumed;
    });
    // Connects to a listener that never accepts: the first fill its queue, a later one may stay
    // in flight (SYN dropped); either way some connect is pending or holds a stream.
    for (int i = 0; i < 4; ++i)
        evio::spawn(r, [&]() -> evio::task<void> {
            frame_counter g{&o.destroyed};
            auto c = co_await evio::tcp_stream::connect(r, full_ep);
            if (c) (void)co_await c->read_some(rbuf); // the listener never answers: stays pending
            ++o.resumed;
        });
    for (int i = 0; i < 10; ++i) r.run_once(5ms);
    // The handles must not outlive the reactor (contract reactor.outlived_by_handle): close them;
    // their operations resume later, which the destruction below never lets happen.
    pair.server.close();
    pair.client.close();
    lis.close();
    full.close();
    o.resumed = 0;
} // ~reactor with everything pending (the handles above are destroyed first, already closed)

} // namespace

TEST_CASE("reactor destruction with operations pending frees every allocation") {
    // Warm-up: first-use statics (error categories, Winsock, thread-locals) allocate once.
    outcome warm;
    destroy_with_pending(warm);
    outcome o;
    heap::start();
    destroy_with_pending(o);
    heap::counting = false;
    const long live_blocks = heap::allocations.load() - heap::deallocations.load();
    INFO("blocks still allocated after the reactor was destroyed: " << live_blocks);
    CHECK(live_blocks == 0);
    CHECK(heap::counter_works()); // else the zero above proves nothing
    CHECK(o.resumed == 0);   // destruction resumes nobody
    CHECK(o.destroyed == 9); // and destroys every frame, once
}
