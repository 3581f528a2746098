// SPDX-License-Identifier: MIT
// Fairness: a peer whose data is always ready cannot starve a ping-pong peer on the same reactor.
#include "conformance/helpers.hpp"

#include <atomic>
#include <thread>

using namespace std::chrono_literals;
namespace conf = evio::conf;
namespace test = evio::test;

namespace {

struct flood_state {
    std::size_t bytes = 0;
    std::size_t reads = 0;
    bool finished = false;
};

/// The hang guards below (never the property) are 3 times longer under Wine, where every read
/// and every round trip goes through wineserver and a loaded machine slows them a lot.
std::chrono::milliseconds guard(std::chrono::milliseconds d) {
    return conf::under_wine() ? 3 * d : d;
}

/// Reads until end of stream. Bounded by its own deadline: without fairness it would never give
/// the reactor back, and the test would hang instead of failing.
evio::task<void> flood_reader(evio::tcp_stream& s, flood_state& st, std::size_t chunk) {
    std::vector<std::byte> buf(chunk);
    const auto deadline = std::chrono::steady_clock::now() + guard(12s);
    for (;;) {
        auto n = co_await s.read_some(buf);
        if (!n || *n == 0 || std::chrono::steady_clock::now() > deadline) break;
        st.bytes += *n;
        ++st.reads;
    }
    st.finished = true;
}

evio::task<void> echo_server(evio::tcp_stream& s) {
    std::array<std::byte, 8> buf{};
    for (;;) {
        if (!co_await s.read_exact(buf)) co_return;
        if (!co_await s.write_all(buf)) co_return;
    }
}

/// Round trips: at least `rounds`, then more until `stop` (when given) is set.
evio::task<void> ping_pong(evio::tcp_stream& s, int rounds, int& done, bool& ok,
                           const bool* stop = nullptr) {
    std::array<std::byte, 8> out{}, in{};
    for (int i = 0; i < rounds || (stop && !*stop && i < 10'000'000); ++i) {
        std::memcpy(out.data(), &i, sizeof i);
        if (!co_await s.write_all(out) || !co_await s.read_exact(in) || in != out) {
            ok = false;
            co_return;
        }
        ++done;
    }
}

} // namespace

TEST_CASE("fairness: a flooding peer does not starve a ping-pong peer") {
    const std::size_t chunk = GENERATE(std::size_t{16}, std::size_t{65536});
    INFO("flood reader buffer " << chunk);
    evio::reactor r{test::options()};
    // Bounded socket buffers: the flood is always ready, yet drains quickly at the end.
    const auto flood_raw = conf::make_raw_pair(64 * 1024);
    evio::tcp_stream flood = conf::adopt(r, flood_raw.server);
    auto pp = test::connected_pair(r);
    (void)pp.server.set_nodelay(true);
    (void)pp.client.set_nodelay(true);

    // The flooder: another thread writing as fast as the socket takes it, so data for the flood
    // reader is always ready.
    std::atomic<bool> stop{false};
    const conf::sock_t fc = flood_raw.client;
#if EVIO_PLATFORM_WINDOWS
    // A send that hits SO_SNDTIMEO leaves a Windows socket in an indeterminate state: the
    // flooder sends non-blocking and naps briefly when the socket is full.
    conf::set_blocking(fc, false);
    std::thread flooder([&] {
        std::vector<char> data(1 << 16, 'F');
        while (!stop.load())
            if (conf::sock_send(fc, data.data(), data.size()) < 0) std::this_thread::sleep_for(1ms);
        ::shutdown(static_cast<SOCKET>(fc), SD_SEND);
    });
#else
    conf::set_blocking(fc, true);
    const timeval tv{0, 100'000};
    REQUIRE(::setsockopt(fc, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) == 0);
    std::thread flooder([&] {
        std::vector<char> data(1 << 16, 'F');
        while (!stop.load())
            (void)::send(fc, data.data(), data.size(), MSG_NOSIGNAL);
        ::shutdown(fc, SHUT_WR);
    });
#endif

    flood_state fs;
    evio::spawn(r, flood_reader(flood, fs, chunk));
    // IOCP under Wine: every 16-byte read is a trip through wineserver (about 3,000 per second,
    // docs/backends.md), so 64 KiB of 16-byte reads cannot flow in 5 s there. On iocp the
    // 16-byte case asks for 4 KiB (256 reads) instead; the property (the flood keeps being read
    // while the ping-pong peer finishes its rounds) is asserted the same way.
    const std::size_t flood_progress = conf::on_iocp() && chunk == 16 ? 4 * 1024 : 64 * 1024;
    const bool flowing = test::run_until(
        r, [&] { return fs.bytes > flood_progress; }, guard(5s));

    // Both must progress side by side: the ping-pong peer completes its round trips and the
    // flood keeps being read meanwhile (fair in both directions). On iocp under Wine each round
    // trip and each flood read is a trip through wineserver, so 100 rounds there.
    const int rounds = conf::on_iocp() ? 100 : 300;
    int done = 0;
    bool ok = true;
    bool stop_pp = false;
    const std::size_t flood_before = fs.bytes;
    evio::spawn(r, echo_server(pp.server));
    evio::spawn(r, ping_pong(pp.client, rounds, done, ok, &stop_pp));
    const bool finished = test::run_until(
        r,
        [&] {
            return !ok || fs.finished ||
                   (done >= rounds && fs.bytes - flood_before >= flood_progress);
        },
        guard(8s));
    stop_pp = true;
    const int done_during = done;
    const std::size_t flood_during = fs.bytes - flood_before;
    const bool flood_alive = !fs.finished;

    stop = true;
    const bool drained = test::run_until(
        r, [&] { return fs.finished; }, guard(5s));
    flooder.join();

    REQUIRE(flowing);
    INFO("round trips " << done_during << " (" << done << " after the flood), flood bytes read "
                        << "meanwhile " << flood_during << " in " << fs.reads << " reads");
    CHECK(finished);
    CHECK(ok);
    CHECK(done >= rounds);
    // The flood kept running the whole time: the ping-pong peer was served alongside it.
    CHECK(flood_alive);
    CHECK(flood_during >= flood_progress);
    CHECK(drained);
    pp.client.close();
    REQUIRE(test::run_until(
        r, [&] { return r.core().spawned == 0; }, 5s));
    flood.close();
    conf::close_sock(fc);
}

TEST_CASE("fairness: a reactor kept busy by posted work in every turn still delivers I/O") {
    evio::reactor r{test::options()};
    auto pp = test::connected_pair(r);
    (void)pp.server.set_nodelay(true);
    (void)pp.client.set_nodelay(true);
    // A chain of posts: every turn has posted work, so no turn ever blocks in the kernel (the
    // reactor only runs zero-timeout waits while the chain lasts).
    bool busy = true;
    int posts = 0;
    std::function<void()> again;
    again = [&] {
        ++posts;
        if (busy) r.post(again);
    };

    SECTION("a read whose data arrived while the reactor was busy") {
        evio::conf::op_record rd;
        evio::spawn(r, conf::read_once(r, pp.server, rd));
        r.poll();
        r.poll(); // the read is parked / held by the kernel
        REQUIRE(rd.resumed == 0);
        r.post(again);
        conf::raw_send(pp.client.native_handle(), "busy");
        REQUIRE(conf::wait_readable(r, pp.server, 4));
        const auto end = std::chrono::steady_clock::now() + 2s;
        int turns = 0;
        while (rd.resumed == 0 && std::chrono::steady_clock::now() < end) {
            r.run_once(1s); // never blocks: posted work is always pending
            ++turns;
        }
        const bool delivered_while_busy = rd.resumed == 1;
        busy = false;
        INFO("turns run while busy: " << turns);
        CHECK(delivered_while_busy);
        REQUIRE(test::run_until(
            r, [&] { return rd.resumed == 1; }, 5s));
        CHECK(rd.data == "busy");
        CHECK(posts >= turns);
    }

    SECTION("a ping-pong peer") {
        r.post(again);
        constexpr int rounds = 100;
        int done = 0;
        bool ok = true;
        evio::spawn(r, echo_server(pp.server));
        evio::spawn(r, ping_pong(pp.client, rounds, done, ok));
        const bool finished = test::run_until(
            r, [&] { return done == rounds || !ok; }, 5s);
        busy = false;
        r.poll();
        r.poll();
        CHECK(finished);
        CHECK(ok);
        CHECK(done == rounds);
        CHECK(posts > 0);
        pp.client.close();
        REQUIRE(test::run_until(
            r, [&] { return r.core().spawned == 0; }, 5s));
    }
}
