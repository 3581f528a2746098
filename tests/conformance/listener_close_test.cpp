// SPDX-License-Identifier: MIT
// A closed listener stops listening before run() returns, also after it accepted (found by the
// reactor fuzzer, tests/fuzz: on io_uring the armed multishot accept kept the listening socket
// open after close() until the reactor's next turn, and run() did not wait for it).
#include "support/fixture.hpp"

using namespace std::chrono_literals;

TEST_CASE("a listener closed after an accept refuses connections once run() returned") {
    evio::reactor r{evio::test::options()};
    auto lis = evio::test::listen_any(r);
    const auto ep = lis.local_endpoint().value();
    {
        auto first = evio::sync_wait(r, [&]() -> evio::task<evio::result<evio::tcp_stream>> {
            auto accepted = lis.accept();
            auto c = co_await evio::tcp_stream::connect(r, ep);
            if (!c) co_return c.error();
            co_return co_await accepted;
        }());
        REQUIRE(first.has_value());
    }
    lis.close();
    r.run();
    CHECK(r.core().table.live() == 0);
    CHECK(r.core().pending_ops == 0);
    // The port is closed now: a connect is refused (it would be accepted into a live backlog if
    // the kernel still held the listening socket).
    auto again = evio::sync_wait(r, [&]() -> evio::task<evio::result<evio::tcp_stream>> {
        co_return co_await evio::with_timeout(r, 5s, evio::tcp_stream::connect(r, ep));
    }());
    CHECK(!again.has_value());
    if (!again) CHECK(again.error() == evio::errc::connection_refused);
}
