// SPDX-License-Identifier: MIT
// io_uring room: probe and fallback, cancel semantics, CQ overflow, thousands of pending ops,
// multishot accept re-arm, and no recv/send syscalls on the data path.
#include "support/catch.hpp"
#include "support/fixture.hpp"

#include <evio/detail/syscall.hpp>

#include <algorithm>
#include <atomic>
#include <random>
#include <string>
#include <sys/resource.h>
#include <vector>

using namespace std::chrono_literals;

namespace {

evio::reactor_options uring(unsigned entries = 1024) {
    evio::reactor_options o;
    o.backend = evio::backend_kind::io_uring;
    o.uring_entries = entries;
    o.honor_environment = false;
    return o;
}

/// Makes the named call fail with `err` while in scope.
struct injected_failure {
    static inline evio::detail::sys target;
    static inline int error;
    injected_failure(evio::detail::sys s, int e) {
        target = s;
        error = e;
        evio::detail::set_fault_hook([](evio::detail::sys call, int* err) {
            if (call != target) return false;
            *err = error;
            return true;
        });
    }
    ~injected_failure() { evio::detail::set_fault_hook(nullptr); }
};

struct fd_limit {
    rlimit saved{};
    explicit fd_limit(rlim_t soft) {
        getrlimit(RLIMIT_NOFILE, &saved);
        rlimit l = saved;
        l.rlim_cur = std::min<rlim_t>(soft, saved.rlim_max);
        setrlimit(RLIMIT_NOFILE, &l);
    }
    ~fd_limit() { setrlimit(RLIMIT_NOFILE, &saved); }
};

} // namespace

TEST_CASE("probe failure: automatic falls back to epoll, explicit io_uring fails loudly") {
    for (auto call : {evio::detail::sys::uring_setup, evio::detail::sys::uring_probe}) {
        injected_failure f{call, EPERM};
        evio::reactor_options o;
        o.honor_environment = false;
        evio::reactor r{o};
        CHECK(r.backend() == evio::backend_kind::epoll);
        CHECK(r.fallback_reason().find("io_uring") != std::string::npos);
        try {
            evio::reactor explicit_uring{uring()};
            FAIL("an explicit io_uring request must not fall back");
        } catch (const std::system_error& e) {
            const std::string what = e.what();
            INFO(what);
            CHECK(what.find("io_uring") != std::string::npos);
            CHECK(what.find("seccomp") != std::string::npos);
            CHECK(e.code() == std::errc::operation_not_permitted);
        }
    }
    evio::reactor r{uring()}; // the hook is gone: io_uring works again
    CHECK(r.backend() == evio::backend_kind::io_uring);
}

TEST_CASE("EVIO_BACKEND overrides automatic") {
    ::setenv("EVIO_BACKEND", "epoll", 1);
    {
        evio::reactor r;
        CHECK(r.backend() == evio::backend_kind::epoll);
    }
    ::setenv("EVIO_BACKEND", "io_uring", 1);
    {
        evio::reactor r;
        CHECK(r.backend() == evio::backend_kind::io_uring);
    }
    ::setenv("EVIO_BACKEND", "bogus", 1);
    CHECK_THROWS_AS(evio::reactor{}, std::system_error);
    ::unsetenv("EVIO_BACKEND");
}

TEST_CASE("cancel: the read resumes once, after its CQE; the slot is freed only then") {
    evio::reactor r{uring()};
    auto p = evio::test::connected_pair(r);
    std::array<std::byte, 64> buf{};
    int resumed = 0;
    std::error_code got;
    evio::spawn(r, [&]() -> evio::task<void> {
        auto n = co_await p.server.read_some(buf);
        ++resumed;
        got = n.error();
    });
    r.poll();
    const evio::token t = p.server.native_token();
    CHECK(r.core().table.at(t.index).in_flight == 1);
    p.server.close();
    // The kernel has not answered the cancel yet: the slot waits in `deregistering`.
    CHECK(r.core().table.at(t.index).state == evio::detail::slot_state::deregistering);
    CHECK(resumed == 0);
    REQUIRE(evio::test::run_until(r, [&] { return resumed > 0; }));
    CHECK(resumed == 1);
    CHECK(got == evio::errc::operation_canceled);
    CHECK(r.core().table.at(t.index).state == evio::detail::slot_state::free);
    for (int i = 0; i < 5; ++i) r.poll();
    CHECK(resumed == 1);
}

TEST_CASE("CQ overflow: a tiny ring loses no completion") {
    evio::reactor r{uring(8)}; // SQ 8, CQ 32
    constexpr int n = 200;
    std::vector<evio::test::stream_pair> pairs;
    for (int i = 0; i < n; ++i) pairs.push_back(evio::test::connected_pair(r));
    std::vector<std::array<std::byte, 8>> bufs(n);
    int done = 0;
    for (int i = 0; i < n; ++i)
        evio::spawn(r, [&, i]() -> evio::task<void> {
            auto got = co_await pairs[i].server.read_exact(bufs[i]);
            if (got && bufs[i][0] == static_cast<std::byte>(i)) ++done;
        });
    r.poll();
    for (int i = 0; i < n; ++i)
        evio::spawn(r, [&, i]() -> evio::task<void> {
            std::array<std::byte, 8> out{};
            out.fill(static_cast<std::byte>(i));
            (void)co_await pairs[i].client.write_all(out);
        });
    REQUIRE(evio::test::run_until(r, [&] { return done == n; }, 20s));
    CHECK(done == n);
}

TEST_CASE("4096 idle connections with a pending read each; traffic on a random subset") {
    fd_limit lim{20000};
    evio::reactor r{uring(4096)};
    constexpr int n = 4096;
    std::vector<evio::test::stream_pair> pairs;
    pairs.reserve(n);
    auto lis = evio::test::listen_any(r);
    for (int i = 0; i < n; ++i) pairs.push_back(evio::sync_wait(r, evio::test::make_pair_task(r, lis)));
    std::vector<std::array<std::byte, 4>> bufs(n);
    std::vector<int> got(n, 0);
    for (int i = 0; i < n; ++i)
        evio::spawn(r, [&, i]() -> evio::task<void> {
            auto rr = co_await pairs[i].server.read_exact(bufs[i]);
            got[i] = rr ? 1 : -1;
        });
    r.poll();
    std::vector<int> subset(n);
    for (int i = 0; i < n; ++i) subset[i] = i;
    std::mt19937 rng(1757);
    std::shuffle(subset.begin(), subset.end(), rng);
    subset.resize(300);
    for (int i : subset)
        evio::spawn(r, [&, i]() -> evio::task<void> {
            const std::array<std::byte, 4> out{std::byte{1}, std::byte{2}, std::byte{3}, std::byte{4}};
            (void)co_await pairs[i].client.write_all(out);
        });
    int expected = static_cast<int>(subset.size());
    REQUIRE(evio::test::run_until(r, [&] {
        return std::count(got.begin(), got.end(), 1) == expected;
    }, 30s));
    for (int i = 0; i < n; ++i) {
        const bool in_subset = std::find(subset.begin(), subset.end(), i) != subset.end();
        CHECK(got[i] == (in_subset ? 1 : 0));
    }
    CHECK(std::count(got.begin(), got.end(), -1) == 0);
}

TEST_CASE("multishot accept is re-armed after the kernel ends it (EMFILE)") {
    evio::reactor r{uring()};
    auto lis = evio::test::listen_any(r);
    const auto ep = lis.local_endpoint().value();
    // Fill the descriptor table so the kernel's multishot accept fails with EMFILE and ends.
    std::vector<int> filler;
    std::vector<evio::tcp_stream> clients;
    evio::result<evio::tcp_stream> first = evio::errc::closed;
    {
        fd_limit lim{256};
        while (true) {
            const int fd = ::dup(0);
            if (fd < 0) break;
            filler.push_back(fd);
        }
        // Free two: one for the client socket, none left for accept.
        ::close(filler.back());
        filler.pop_back();
        evio::spawn(r, [&]() -> evio::task<void> { first = co_await lis.accept(); });
        r.poll();
        evio::spawn(r, [&]() -> evio::task<void> {
            auto c = co_await evio::tcp_stream::connect(r, ep);
            if (c) clients.push_back(std::move(*c));
        });
        REQUIRE(evio::test::run_until(r, [&] { return !first && first.error() != evio::errc::closed; }));
        CHECK(first.error() == evio::errc::too_many_open_files);
        for (int fd : filler) ::close(fd);
        filler.clear();
    }
    // Descriptors are free again: the next accept re-arms and gets the waiting connection.
    evio::result<evio::tcp_stream> second = evio::errc::closed;
    evio::spawn(r, [&]() -> evio::task<void> { second = co_await lis.accept(); });
    REQUIRE(evio::test::run_until(r, [&] { return second.has_value(); }, 5s));
    // And later connections keep arriving through the re-armed multishot.
    for (int i = 0; i < 20; ++i) {
        auto p = evio::sync_wait(r, evio::test::make_pair_task(r, lis));
        CHECK(p.server.is_open());
    }
}

TEST_CASE("an echo round trip on io_uring: reads stay in the ring, each write is one send(2)") {
    // Room note: a send goes out at once (send(2)) unless the token's last send found the socket
    // full; a read of a socket with nothing queued is an SQE.
    static std::atomic<int> recv_calls{0};
    static std::atomic<int> send_calls{0};
    evio::detail::set_fault_hook([](evio::detail::sys call, int*) {
        if (call == evio::detail::sys::recv || call == evio::detail::sys::epoll_wait) ++recv_calls;
        if (call == evio::detail::sys::send) ++send_calls;
        return false;
    });
    for (auto kind : {evio::backend_kind::epoll, evio::backend_kind::io_uring}) {
        evio::reactor_options o = uring();
        o.backend = kind;
        evio::reactor r{o};
        auto p = evio::test::connected_pair(r);
        recv_calls = 0;
        send_calls = 0;
        evio::sync_wait(r, [&]() -> evio::task<void> {
            std::array<std::byte, 64> out{}, in{};
            for (int i = 0; i < 1000; ++i) {
                out[0] = static_cast<std::byte>(i);
                co_await p.client.write_all(out);
                co_await p.server.read_exact(in);
                co_await p.server.write_all(in);
                co_await p.client.read_exact(in);
            }
        }());
        CHECK(send_calls == 2000);
        if (kind == evio::backend_kind::epoll)
            CHECK(recv_calls >= 2000); // the seam sees epoll's recv and epoll_wait: the count is real
        else
            CHECK(recv_calls == 0);
    }
    evio::detail::set_fault_hook(nullptr);
}

namespace {

std::atomic<int> send_calls{0};

/// Counts send(2) calls (through the fault seam) while it lives; injects nothing.
struct count_sends {
    count_sends() {
        send_calls = 0;
        evio::detail::set_fault_hook([](evio::detail::sys call, int*) {
            if (call == evio::detail::sys::send) ++send_calls;
            return false;
        });
    }
    ~count_sends() { evio::detail::set_fault_hook(nullptr); }
    count_sends(const count_sends&) = delete;
    count_sends& operator=(const count_sends&) = delete;
};

} // namespace

TEST_CASE("io_uring: a send that fills the socket leaves the rest to the ring until a send completes") {
    evio::reactor r{uring()};
    auto p = evio::test::connected_pair(r);
    std::vector<std::byte> big(32u << 20, std::byte{0xAB}); // more than the socket buffers take
    count_sends counter;
    bool timed_out = false, second_started = false, second_done = false;
    int inline_calls = 0;
    evio::spawn(r, [&]() -> evio::task<void> {
        // Nobody reads: what fits goes out at once, EAGAIN, the rest waits in the ring until
        // the timeout cancels it.
        auto w = co_await evio::with_timeout(r, std::chrono::milliseconds(30), p.client.write_all(big));
        timed_out = !w && w.error() == evio::errc::timed_out;
        inline_calls = send_calls;
        second_started = true;
        // The socket is still full and no send completed since: this one goes to the ring.
        std::array<std::byte, 64> small{};
        auto w2 = co_await p.client.write_all(small);
        CHECK(w2);
        second_done = true;
        (void)p.client.shutdown_send();
    });
    REQUIRE(evio::test::run_until(r, [&] { return second_started; }));
    for (int i = 0; i < 3; ++i) r.run_once(std::chrono::milliseconds(5));
    CHECK(timed_out);
    CHECK_FALSE(second_done);
    INFO("send(2) calls of the first write: " << inline_calls);
    CHECK(inline_calls >= 2);            // what fitted, then EAGAIN
    CHECK(send_calls == inline_calls);   // none for the second write: the socket was full
    // The stream: part of the first write (0xAB bytes), then the second write's 64 zero bytes.
    std::vector<std::byte> got;
    evio::sync_wait(r, [&]() -> evio::task<void> {
        std::vector<std::byte> buf(1u << 20);
        for (;;) {
            auto n = co_await p.server.read_some(buf);
            if (!n || *n == 0) break;
            got.insert(got.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(*n));
        }
    }());
    CHECK(second_done);
    REQUIRE(got.size() > 64);
    const auto tail = got.end() - 64;
    CHECK(std::all_of(got.begin(), tail, [](std::byte b) { return b == std::byte{0xAB}; }));
    CHECK(std::all_of(tail, got.end(), [](std::byte b) { return b == std::byte{0}; }));
    CHECK(send_calls == inline_calls); // the second write went through the ring: no send(2)
}

TEST_CASE("io_uring: after a send completes in the ring, the next send goes out at once") {
    evio::reactor r{uring()};
    auto p = evio::test::connected_pair(r);
    std::vector<std::byte> big(32u << 20); // more than the socket buffers take
    count_sends counter;
    for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<std::byte>(i * 7);
    bool wrote = false;
    evio::spawn(r, [&]() -> evio::task<void> {
        auto w = co_await p.client.write_all(big);
        CHECK(w);
        wrote = true;
    });
    for (int i = 0; i < 5; ++i) r.run_once(std::chrono::milliseconds(10)); // nobody reads yet
    const int inline_calls = send_calls;
    CHECK_FALSE(wrote);
    CHECK(inline_calls >= 2); // what fitted, then EAGAIN
    std::vector<std::byte> got(big.size());
    evio::sync_wait(r, [&]() -> evio::task<void> {
        auto n = co_await p.server.read_exact(got);
        CHECK(n);
    }());
    REQUIRE(evio::test::run_until(r, [&] { return wrote; }));
    const bool same = got == big; // not CHECK(got == big): Catch would print 32 MiB
    CHECK(same);
    CHECK(send_calls == inline_calls); // the rest went through the ring: no send(2)
    // The ring's send CQE said the socket had room again: the next write goes out at once.
    evio::sync_wait(r, [&]() -> evio::task<void> {
        std::array<std::byte, 64> small{};
        auto w = co_await p.client.write_all(small);
        CHECK(w);
    }());
    CHECK(send_calls == inline_calls + 1);
}

TEST_CASE("a streaming read on io_uring reads inline; an empty socket's read goes to the ring") {
    // Room note: a recv whose last completion said data was left (IORING_CQE_F_SOCK_NONEMPTY)
    // or whose last recv filled its buffer tries recv(2) at once; otherwise it is an SQE.
    static std::atomic<int> recv_calls{0};
    evio::detail::set_fault_hook([](evio::detail::sys call, int*) {
        if (call == evio::detail::sys::recv) ++recv_calls;
        return false;
    });
    evio::reactor r{uring()};
    auto p = evio::test::connected_pair(r);
    constexpr std::size_t total = 64 * 1024, piece = 1024;
    std::size_t got = 0, inline_done = 0;
    evio::sync_wait(r, [&]() -> evio::task<void> {
        std::vector<std::byte> out(total, std::byte{7});
        co_await p.client.write_all(out); // queued in the server's receive buffer (loopback)
        std::array<std::byte, piece> in{};
        recv_calls = 0;
        while (got < total) {
            const auto turn = r.core().turn;
            auto n = co_await p.server.read_some(in);
            if (!n || *n == 0) break;
            if (r.core().turn == turn) ++inline_done; // finished without a loop turn
            got += *n;
        }
    }());
    evio::detail::set_fault_hook(nullptr);
    CHECK(got == total);
    // The first read is an SQE (a new socket: nothing known); most others find data queued
    // (the turn budget sends every 16th to the ring).
    CHECK(recv_calls >= static_cast<int>(total / piece / 2));
    CHECK(inline_done >= total / piece / 2);

    // An empty socket: the read is an SQE (POLL_FIRST), not a recv(2) that would fail. (The
    // last streaming read filled its buffer, so the first read below may try once.)
    recv_calls = 0;
    evio::detail::set_fault_hook([](evio::detail::sys call, int*) {
        if (call == evio::detail::sys::recv) ++recv_calls;
        return false;
    });
    evio::sync_wait(r, [&]() -> evio::task<void> {
        std::array<std::byte, piece> in{};
        std::array<std::byte, 16> small{};
        for (int i = 0; i < 50; ++i) {
            co_await p.client.write_all(small);
            auto n = co_await p.server.read_some(in); // short: the socket is empty after it
            if (!n || *n != small.size()) break;
        }
    }());
    evio::detail::set_fault_hook(nullptr);
    CHECK(recv_calls <= 1);
}

TEST_CASE("io_uring: a bulk stream reads inline beside other ops, and on a poll once drained") {
    // Room note: a stream whose last read filled a buffer of 8 KiB or more reads as on epoll: recv(2) at once
    // even with other ops in the ring, and once drained it waits on a poll and reads on its
    // completion, instead of a recv SQE run in the kernel's task work.
    static std::atomic<int> ring_recvs{0}, recv_calls{0};
    evio::detail::set_fault_hook([](evio::detail::sys call, int*) {
        if (call == evio::detail::sys::ring_recv) ++ring_recvs; // a read submitted to the ring
        if (call == evio::detail::sys::recv) ++recv_calls;
        return false;
    });
    evio::reactor r{uring()};
    auto p = evio::test::connected_pair(r);
    auto other = evio::test::connected_pair(r);
    constexpr std::size_t piece = 16 * 1024, total = 4 * piece;
    std::vector<std::byte> out(total + piece);
    for (std::size_t i = 0; i < out.size(); ++i) out[i] = static_cast<std::byte>(i * 13 + 1);
    bool other_done = false;
    evio::spawn(r, [&]() -> evio::task<void> { // keeps a read in the ring the whole time
        std::array<std::byte, 16> in{};
        auto n = co_await other.server.read_some(in);
        CHECK(n);
        other_done = true;
    });
    std::vector<std::byte> got;
    int data_recvs = 0;
    evio::sync_wait(r, [&]() -> evio::task<void> {
        co_await p.client.write_all(std::span(out).first(total)); // queued at the server
        std::array<std::byte, piece> in{};
        recv_calls = 0;
        while (got.size() < total) {
            auto n = co_await p.server.read_some(in);
            if (!n || *n == 0) break;
            got.insert(got.end(), in.begin(), in.begin() + static_cast<std::ptrdiff_t>(*n));
        }
        data_recvs = recv_calls;
    }());
    REQUIRE(got.size() == total);
    // The first read goes to the ring (nothing known about the socket, another read in
    // flight); each full one after it makes the next read a recv(2) at once.
    INFO("recv(2) calls for the 4 reads: " << data_recvs);
    CHECK(data_recvs >= 3);

    // Drained now: the next read finds nothing (one recv(2) that fails), waits on a poll (one
    // submission), and the poll's completion reads what the peer sends (one recv(2)).
    recv_calls = 0;
    ring_recvs = 0;
    bool read_done = false;
    evio::spawn(r, [&]() -> evio::task<void> {
        std::array<std::byte, piece> in{};
        auto n = co_await p.server.read_some(in);
        REQUIRE(n);
        got.insert(got.end(), in.begin(), in.begin() + static_cast<std::ptrdiff_t>(*n));
        read_done = true;
    });
    for (int i = 0; i < 3; ++i) r.run_once(std::chrono::milliseconds(5));
    CHECK_FALSE(read_done);
    CHECK(recv_calls <= 1);
    CHECK(ring_recvs == 1);
    const int before = recv_calls;
    evio::sync_wait(r, [&]() -> evio::task<void> {
        co_await p.client.write_all(std::span(out).subspan(total, piece));
    }());
    REQUIRE(evio::test::run_until(r, [&] { return read_done; }));
    CHECK(recv_calls == before + 1); // read inline on the poll's completion, not in the ring
    CHECK(ring_recvs == 1);
    const bool same = got == out; // every byte, in order
    CHECK(same);

    // A bulk stream's poll is cancelled like any read: the timeout ends it, nothing is lost.
    bool timed_out = false;
    evio::sync_wait(r, [&]() -> evio::task<void> {
        std::array<std::byte, piece> in{};
        auto n = co_await evio::with_timeout(r, 20ms, p.server.read_some(in));
        timed_out = !n && n.error() == evio::errc::timed_out;
        std::array<std::byte, 5> hello{std::byte{1}, std::byte{2}, std::byte{3}, std::byte{4}, std::byte{5}};
        co_await p.client.write_all(hello);
        auto m = co_await p.server.read_some(in);
        REQUIRE(m);
        CHECK(*m == hello.size());
        CHECK(std::equal(hello.begin(), hello.end(), in.begin()));
    }());
    CHECK(timed_out);
    evio::detail::set_fault_hook(nullptr);
    CHECK_FALSE(other_done); // the other stream's read was never touched
}

TEST_CASE("receive on io_uring: one multishot recv serves a stream's receives, no recv per read") {
    // Room note: receive() arms one multishot recv per stream into the provided-buffer ring;
    // it stays armed across receives, so an echo loop submits no recv SQE per message.
    static std::atomic<int> ring_recvs{0}, recv_calls{0};
    evio::detail::set_fault_hook([](evio::detail::sys call, int*) {
        if (call == evio::detail::sys::ring_recv) ++ring_recvs; // an SQE read: arm or submit
        if (call == evio::detail::sys::recv) ++recv_calls;
        return false;
    });
    evio::reactor r{uring()};
    auto p = evio::test::connected_pair(r);
    REQUIRE(r.provides_buffers());
    ring_recvs = 0;
    recv_calls = 0;
    int rounds = 0;
    evio::sync_wait(r, [&]() -> evio::task<void> {
        std::array<std::byte, 64> out{};
        for (int i = 0; i < 500; ++i) {
            out[0] = static_cast<std::byte>(i);
            co_await p.client.write_all(out);
            std::size_t got = 0;
            while (got < out.size()) {
                auto l = co_await p.server.receive();
                if (!l || l->empty()) co_return;
                if (got == 0 && l->data()[0] != out[0]) co_return;
                got += l->size();
                co_await p.server.write_all(l->data());
            }
            std::size_t back = 0; // the client receives too: its own multishot
            while (back < out.size()) {
                auto l = co_await p.client.receive();
                if (!l || l->empty()) co_return;
                back += l->size();
            }
            ++rounds;
        }
    }());
    evio::detail::set_fault_hook(nullptr);
    CHECK(rounds == 500);
    CHECK(ring_recvs <= 4); // once per stream (again only if the kernel ended one)
    CHECK(recv_calls == 0);
    CHECK(r.receive_buffers().leased == 0);
}

TEST_CASE("receive on io_uring: a bulk stream leaves the multishot for plain reads, and comes back") {
    // Room note: two multishot CQEs in a row that fill buffers of 8 KiB or more mark a bulk
    // stream: its multishot is cancelled and its receive()s read into pool buffers as read_some
    // does (at once, or on a poll); a short read returns the stream to the multishot.
    static std::atomic<int> ring_recvs{0}, recv_calls{0};
    evio::detail::set_fault_hook([](evio::detail::sys call, int*) {
        if (call == evio::detail::sys::ring_recv) ++ring_recvs;
        if (call == evio::detail::sys::recv) ++recv_calls;
        return false;
    });
    evio::reactor r{uring()};
    auto p = evio::test::connected_pair(r);
    REQUIRE(r.provides_buffers());
    const std::size_t size = r.receive_buffers().buffer_size;
    REQUIRE(size >= 8 * 1024);
    std::vector<std::byte> out(64 * size);
    for (std::size_t i = 0; i < out.size(); ++i) out[i] = static_cast<std::byte>(i * 29 + 3);
    std::vector<std::byte> got;
    int bulk_recvs = 0;
    evio::sync_wait(r, [&]() -> evio::task<void> {
        recv_calls = 0;
        evio::spawn(r, [&]() -> evio::task<void> { co_await p.client.write_all(out); });
        while (got.size() < out.size()) {
            auto l = co_await p.server.receive();
            if (!l || l->empty()) break;
            got.insert(got.end(), l->data().begin(), l->data().end());
        }
        bulk_recvs = recv_calls;
    }());
    const bool same = got == out; // every byte, in order, across the switch
    CHECK(same);
    INFO("recv(2) calls for " << out.size() << " bytes: " << bulk_recvs);
    CHECK(bulk_recvs >= 16); // most of the stream came through plain reads
    CHECK(r.receive_buffers().leased == 0);
    CHECK(r.receive_buffers().stashed == 0);

    // Small messages: the first short read ends the bulk mode; the multishot is armed again
    // and serves the rest without a recv(2) or a submission per message.
    int small_rounds = 0;
    evio::sync_wait(r, [&]() -> evio::task<void> {
        std::array<std::byte, 64> msg{};
        for (int i = 0; i < 100; ++i) {
            msg[0] = static_cast<std::byte>(i);
            co_await p.client.write_all(msg);
            std::size_t n = 0;
            while (n < msg.size()) {
                auto l = co_await p.server.receive();
                if (!l || l->empty()) co_return;
                if (n == 0 && l->data()[0] != msg[0]) co_return;
                n += l->size();
            }
            if (i == 9) { // settled: count from here
                recv_calls = 0;
                ring_recvs = 0;
            }
            ++small_rounds;
        }
    }());
    evio::detail::set_fault_hook(nullptr);
    CHECK(small_rounds == 100);
    CHECK(recv_calls == 0);
    CHECK(ring_recvs == 0);
    CHECK(r.receive_buffers().leased == 0);
}

TEST_CASE("receive on io_uring: a bulk stream's receive() that waits on its poll holds no buffer") {
    // Room note: a receive() turned into a plain read gives its pool buffer back when its poll
    // is prepared and takes one when the poll completes (buffer_after_poll): waiting streams
    // hold no buffers, and the one read into is the last one released.
    static std::atomic<int> recv_calls{0};
    evio::detail::set_fault_hook([](evio::detail::sys call, int*) {
        if (call == evio::detail::sys::recv) ++recv_calls;
        return false;
    });
    auto o = uring();
    o.receive_buffer_size = 8 * 1024; // the smallest buffer that marks a bulk stream
    evio::reactor r{o};
    auto p = evio::test::connected_pair(r);
    REQUIRE(r.provides_buffers());
    std::vector<std::byte> out(8 * o.receive_buffer_size);
    for (std::size_t i = 0; i < out.size(); ++i) out[i] = static_cast<std::byte>(i * 7 + 1);
    std::vector<std::byte> got;
    std::size_t leased_while_waiting = 99;
    int plain_reads = -1;
    evio::sync_wait(r, [&]() -> evio::task<void> {
        co_await p.client.write_all(out); // all queued before the first read: full buffers
        co_await evio::sleep_for(r, 10ms);
        while (got.size() < out.size()) {
            auto l = co_await p.server.receive();
            if (!l || l->empty()) co_return;
            got.insert(got.end(), l->data().begin(), l->data().end());
        }
        // The stream is bulk and drained now: its next receive() waits on a poll.
        bool late_done = false;
        evio::spawn(r, [&]() -> evio::task<void> {
            auto l = co_await evio::with_timeout(r, 5s, p.server.receive());
            if (l && !l->empty()) got.insert(got.end(), l->data().begin(), l->data().end());
            late_done = true;
        });
        co_await evio::sleep_for(r, 20ms);
        leased_while_waiting = r.receive_buffers().leased;
        recv_calls = 0;
        const auto tail = evio::test::bytes("after the poll");
        co_await p.client.write_all(tail);
        for (int k = 0; k < 500 && !late_done; ++k) co_await evio::sleep_for(r, 1ms);
        plain_reads = recv_calls;
    }());
    evio::detail::set_fault_hook(nullptr);
    CHECK(leased_while_waiting == 0);
    CHECK(plain_reads == 1); // the poll completed, one recv(2) into a pool buffer
    REQUIRE(got.size() == out.size() + 14);
    CHECK(std::equal(out.begin(), out.end(), got.begin()));
    CHECK(evio::test::text(std::span(got).subspan(out.size())) == "after the poll");
    CHECK(r.receive_buffers().leased == 0);
}

namespace {
/// Makes `p`'s server side a bulk stream whose next receive() waits on a poll: eight full
/// buffers queued before the first read, all read (the plain reads grow the pool's free list).
evio::task<void> make_bulk_and_drained(evio::reactor& r, evio::test::stream_pair& p) {
    const std::vector<std::byte> out(8 * r.receive_buffers().buffer_size, std::byte{5});
    co_await p.client.write_all(out);
    co_await evio::sleep_for(r, 10ms);
    for (std::size_t n = 0; n < out.size();) {
        auto l = co_await p.server.receive();
        REQUIRE(l);
        REQUIRE_FALSE(l->empty());
        n += l->size();
    }
}
} // namespace

TEST_CASE("receive on io_uring: a bulk stream's poll that finds no free pool buffer reads from the ring") {
    // Room note: the poll completes, to_plain finds the free list empty (others took its
    // buffers meanwhile): the receive() goes back to the multishot and the ring serves it.
    auto o = uring();
    o.receive_buffer_size = 8 * 1024;
    evio::reactor r{o};
    auto a = evio::test::connected_pair(r);
    REQUIRE(r.provides_buffers());
    std::string got;
    std::vector<std::int32_t> taken;
    evio::sync_wait(r, [&]() -> evio::task<void> {
        co_await make_bulk_and_drained(r, a);
        bool done = false;
        evio::spawn(r, [&]() -> evio::task<void> {
            auto l = co_await evio::with_timeout(r, 5s, a.server.receive());
            if (l) got = evio::test::text(l->data());
            done = true;
        });
        co_await evio::sleep_for(r, 10ms);
        for (std::int32_t id; (id = r.acquire_buffer()) >= 0;) taken.push_back(id); // empty the free list
        co_await a.client.write_all(evio::test::bytes("for a"));
        for (int k = 0; k < 500 && !done; ++k) co_await evio::sleep_for(r, 1ms);
    }());
    CHECK_FALSE(taken.empty());
    CHECK(got == "for a");
    for (const std::int32_t id : taken) r.release_buffer(static_cast<std::uint32_t>(id));
    CHECK(r.receive_buffers().leased == 0);
}

TEST_CASE("receive on io_uring: the ring takes the free list's buffers before no_buffer_space") {
    // Room note: at the pool's limit a starved ring takes the buffers bulk streams' plain reads
    // gave back to the free list (grow_ring): no_buffer_space only when every buffer is held.
    auto o = uring();
    o.receive_buffer_size = 8 * 1024;
    o.receive_buffers_max = 128; // 64 grown into the ring, 64 onto the free list (plain reads)
    evio::reactor r{o};
    auto a = evio::test::connected_pair(r);
    auto b = evio::test::connected_pair(r);
    REQUIRE(r.provides_buffers());
    std::vector<evio::buffer_lease> held;
    std::error_code failed;
    std::size_t allocated = 0, most = 0;
    evio::sync_wait(r, [&]() -> evio::task<void> {
        co_await make_bulk_and_drained(r, a);
        evio::spawn(r, [&]() -> evio::task<void> { // waits on its poll; the plain read grew
            (void)co_await a.server.receive();     // the pool: a free list to take from
        });
        co_await evio::sleep_for(r, 10ms);
        allocated = r.receive_buffers().allocated;
        const std::vector<std::byte> flood(2 * 1024 * 1024, std::byte{9});
        evio::spawn(r, [&]() -> evio::task<void> { co_await b.client.write_all(flood); });
        for (;;) { // b takes every buffer it can get, and keeps them
            auto l = co_await evio::with_timeout(r, 5s, b.server.receive());
            if (!l) {
                failed = l.error();
                break;
            }
            held.push_back(std::move(*l));
        }
        most = held.size();
        held.clear();
        b.server.close();
        a.server.close(); // the waiting receive() resumes with operation_canceled
        co_await evio::sleep_for(r, 0ms);
    }());
    CHECK(allocated == 128);
    CHECK(most == 128); // b's leases: the ring's 64 and the 64 it took from the free list
    CHECK(failed == evio::errc::no_buffer_space);
    CHECK(r.receive_buffers().leased == 0);
}

TEST_CASE("receive on io_uring: one full buffer then a short one keeps the multishot armed") {
    // Room note: a single full buffer is not a bulk stream. Writes of 12,000 bytes into 8 KiB
    // buffers come as one full CQE and one short one; cancelling the multishot on the full one
    // would cost a cancel and a re-arm per write and never switch.
    static std::atomic<int> ring_recvs{0}, recv_calls{0};
    evio::detail::set_fault_hook([](evio::detail::sys call, int*) {
        if (call == evio::detail::sys::ring_recv) ++ring_recvs;
        if (call == evio::detail::sys::recv) ++recv_calls;
        return false;
    });
    auto o = uring();
    o.receive_buffer_size = 8192;
    evio::reactor r{o};
    auto p = evio::test::connected_pair(r);
    REQUIRE(r.provides_buffers());
    int rounds = 0;
    evio::sync_wait(r, [&]() -> evio::task<void> {
        std::vector<std::byte> msg(12000);
        for (int i = 0; i < 50; ++i) {
            msg[0] = static_cast<std::byte>(i);
            co_await p.client.write_all(msg); // all queued before the server reads
            std::size_t n = 0;
            while (n < msg.size()) {
                auto l = co_await p.server.receive();
                if (!l || l->empty()) co_return;
                if (n == 0 && l->data()[0] != msg[0]) co_return;
                n += l->size();
            }
            if (n != msg.size()) co_return;
            if (i == 0) { // the first receive armed the multishot: count from here
                recv_calls = 0;
                ring_recvs = 0;
            }
            ++rounds;
        }
    }());
    evio::detail::set_fault_hook(nullptr);
    CHECK(rounds == 50);
    CHECK(ring_recvs == 0); // never cancelled and re-armed
    CHECK(recv_calls == 0); // never switched to plain reads
    CHECK(r.receive_buffers().leased == 0);
}

TEST_CASE("receive on io_uring without a provided-buffer ring falls back to pool buffers") {
    evio::reactor r{uring()};
    {
        // The buffer ring is registered on the first receive(); make that registration fail.
        injected_failure refuse(evio::detail::sys::uring_probe, EINVAL);
        CHECK_FALSE(r.provides_buffers());
    }
    auto p = evio::test::connected_pair(r);
    std::string got;
    evio::sync_wait(r, [&]() -> evio::task<void> {
        auto out = evio::test::bytes("pool buffers");
        co_await p.client.write_all(out);
        while (got.size() < out.size()) {
            auto l = co_await p.server.receive();
            if (!l || l->empty()) break;
            got += evio::test::text(l->data());
            CHECK(r.receive_buffers().leased == 1);
        }
    }());
    CHECK(got == "pool buffers");
    CHECK(r.receive_buffers().leased == 0);
    CHECK(r.receive_buffers().stashed == 0);
}

TEST_CASE("receive on io_uring: a stream nobody reads stops taking buffers at the stash cap") {
    // Room note: a stash of stash_cap (8) buffers cancels the stream's multishot; what arrives
    // later stays in the socket (TCP flow control) instead of taking more buffers.
    auto o = uring();
    o.receive_buffer_size = 1024;
    evio::reactor r{o};
    auto p = evio::test::connected_pair(r);
    std::size_t stashed_first = 0, stashed_later = 0;
    evio::sync_wait(r, [&]() -> evio::task<void> {
        co_await p.client.write_all(evio::test::bytes("x"));
        auto first = co_await p.server.receive(); // arms the stream's multishot
        REQUIRE(first);
        first->release();
        std::vector<std::byte> some(20 * 1024, std::byte{1}); // 20 buffers: the ring keeps some
        co_await p.client.write_all(some);
        co_await evio::sleep_for(r, 50ms);
        stashed_first = r.receive_buffers().stashed;
        co_await p.client.write_all(some); // nobody reads: none of this is taken
        co_await evio::sleep_for(r, 50ms);
        stashed_later = r.receive_buffers().stashed;
        std::size_t total = 0; // and nothing is lost
        while (total < 2 * some.size()) {
            auto l = co_await evio::with_timeout(r, 5s, p.server.receive());
            if (!l || l->empty()) break;
            total += l->size();
        }
        CHECK(total == 2 * some.size());
    }());
    CHECK(stashed_first >= 8);
    CHECK(stashed_later == stashed_first);
}
