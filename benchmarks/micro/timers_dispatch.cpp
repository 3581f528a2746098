// SPDX-License-Identifier: MIT
// Does a large timer heap slow down I/O dispatch? Echo round trips on one connection with 1 and
// with 100,000 armed (far-future) timers, interleaved rounds, median ratio. (Having any timer
// armed costs two steady_clock reads per turn, whatever the count: the baseline has one.)
//
//   timers_dispatch [--timers N] [--messages N] [--rounds N] [--backend auto|epoll|io_uring]
#include <evio/evio.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <vector>

namespace {

using clock_type = std::chrono::steady_clock;

evio::task<void> echo(evio::tcp_stream s) {
    std::array<std::byte, 64> buf;
    for (;;) {
        auto n = co_await s.read_some(buf);
        if (!n || *n == 0) co_return;
        if (!co_await s.write_all(std::span(buf).first(*n))) co_return;
    }
}

evio::task<double> ping(evio::reactor& r, evio::endpoint ep, int messages) {
    auto c = co_await evio::tcp_stream::connect(r, ep);
    std::array<std::byte, 64> out{}, in{};
    const auto t0 = clock_type::now();
    for (int i = 0; i < messages; ++i) {
        out[0] = static_cast<std::byte>(i);
        if (!co_await c->write_all(out) || !co_await c->read_exact(in)) co_return 0.0;
    }
    co_return messages / std::chrono::duration<double>(clock_type::now() - t0).count();
}

/// Round trips per second with `timers` sleeping coroutines armed on the same reactor.
double run(evio::backend_kind backend, int timers, int messages) {
    evio::reactor r{evio::reactor_options{backend}};
    auto lis = evio::tcp_listener::bind(r, evio::endpoint::loopback_v4(0)).value();
    const auto ep = lis.local_endpoint().value();
    for (int i = 0; i < timers; ++i) // spread over an hour: none fires during the run
        evio::spawn(r, [&r, i]() -> evio::task<void> {
            co_await evio::sleep_for(r, std::chrono::seconds(3600 + i % 3600));
        });
    r.poll(); // every sleeper is armed
    evio::spawn(r, [&]() -> evio::task<void> {
        auto s = co_await lis.accept();
        if (s) co_await echo(std::move(*s));
    });
    const double rate = evio::sync_wait(r, ping(r, ep, messages));
    std::printf("  backend %-8s timers %6zu  %9.0f round trips/s\n", evio::to_string(r.backend()),
                r.core().timers.size(), rate);
    r.stop();
    return rate;
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

} // namespace

int main(int argc, char** argv) {
    int timers = 100000, messages = 50000, rounds = 5;
    evio::backend_kind backend = evio::backend_kind::automatic;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string_view a = argv[i];
        if (a == "--timers") timers = std::atoi(argv[i + 1]);
        else if (a == "--messages") messages = std::atoi(argv[i + 1]);
        else if (a == "--rounds") rounds = std::atoi(argv[i + 1]);
        else if (a == "--backend") {
            const std::string_view b = argv[i + 1];
            backend = b == "epoll" ? evio::backend_kind::epoll
                      : b == "io_uring" ? evio::backend_kind::io_uring
                                        : evio::backend_kind::automatic;
        }
    }
    std::printf("timers_dispatch: %d messages x %d interleaved rounds, contracts level %d\n", messages,
                rounds, EVIO_CONTRACTS);
    std::vector<double> base, loaded, ratio;
    for (int k = 0; k < rounds; ++k) { // A B A B ...: machine drift hits both alike
        const double a = run(backend, 1, messages);
        const double b = run(backend, timers, messages);
        base.push_back(a);
        loaded.push_back(b);
        ratio.push_back(b / a);
    }
    std::printf("median: %.0f round trips/s with 1 timer, %.0f with %d timers; ratio %.3f\n",
                median(base), median(loaded), timers, median(ratio));
}
