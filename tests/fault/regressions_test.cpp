// SPDX-License-Identifier: MIT
// Regressions found by fault injection (tests/fault/fault_echo), one case per bug, per backend.
#include "support/fixture.hpp"

#include <evio/fault.hpp>

#include <atomic>

#if !EVIO_PLATFORM_WINDOWS
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#endif

namespace {

using evio::test::options;

/// Makes the first `n` seam calls named `target` fail with `error`.
struct fail_first {
    static inline std::atomic<int> left{0};
    static inline evio::detail::sys target{};
    static inline int error = 0;
    fail_first(evio::detail::sys s, int n, int e) {
        target = s;
        error = e;
        left = n;
        evio::detail::set_fault_hook([](evio::detail::sys call, int* err) {
            if (call != target || left.load() <= 0) return false;
            --left;
            *err = error;
            return true;
        });
    }
    ~fail_first() { evio::detail::set_fault_hook(nullptr); }
};

} // namespace

#if !EVIO_PLATFORM_WINDOWS
// io_uring: closing a stream prepares IORING_OP_CLOSE and submits it at once. When that submit
// failed, the room closed the descriptor with close(2) but left the SQE in the ring: the next
// submit closed whatever socket had reused the number by then (another connection, a listener).
TEST_CASE("a close whose ring submit failed never closes a later socket with the same number") {
    evio::reactor r{options()};
    auto p = evio::test::connected_pair(r);
    const int number = p.server.native_handle();
    int reused = -1;
    std::vector<int> fillers; // lower free numbers, taken first so `reused` gets `number`
    {
        fail_first f(evio::detail::sys::close, 1, EBUSY); // the IORING_OP_CLOSE submit (or close)
        p.server.close();
        for (int i = 0; i < 64 && reused != number; ++i) {
            if (reused >= 0) fillers.push_back(reused);
            reused = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        }
    }
    for (int fd : fillers) ::close(fd);
    REQUIRE(reused == number); // the number just closed
    struct stat before {};
    REQUIRE(::fstat(reused, &before) == 0);
    // Turns that submit the ring; the stale SQE (if any) would go to the kernel now.
    for (int i = 0; i < 5; ++i) r.poll();
    struct stat after {};
    CHECK(::fstat(reused, &after) == 0); // still open ...
    CHECK(after.st_ino == before.st_ino); // ... and still the same socket
    ::close(reused);
}
#endif

// The seam: a hook that lowers a transfer length makes the call move fewer bytes, never lose any.
TEST_CASE("a shortened transfer moves fewer bytes and loses none") {
    evio::reactor r{options()};
    auto p = evio::test::connected_pair(r);
    evio::fault_injector f{42};
    evio::fault_rates shorten;
    shorten.short_transfer = 1.0;
    f.set(evio::fault_site::recv, shorten).set(evio::fault_site::send, shorten);
    REQUIRE(f.install());
    std::vector<std::byte> out(20000), in(20000);
    for (std::size_t i = 0; i < out.size(); ++i) out[i] = static_cast<std::byte>(i * 13 + i / 251);
    const bool ok = evio::sync_wait(r, [&]() -> evio::task<bool> {
        auto w = [&]() -> evio::task<bool> { co_return static_cast<bool>(co_await p.client.write_all(out)); };
        auto rd = [&]() -> evio::task<bool> { co_return static_cast<bool>(co_await p.server.read_exact(in)); };
        auto [a, b] = co_await evio::when_all(w(), rd());
        co_return a && b;
    }());
    f.uninstall();
    CHECK(ok);
    CHECK(in == out);
    CHECK(f.injected(evio::fault_kind::short_transfer) > 0);
}

// The same seed gives the same faults to the same sequence of calls.
TEST_CASE("a fault_injector is reproducible from its seed") {
    auto sequence = [](std::uint64_t seed) {
        evio::fault_injector f{seed};
        evio::fault_rates r;
        r.fail = 0.2;
        r.again = 0.2;
        r.short_transfer = 0.3;
        f.set(evio::fault_site::recv, r);
        REQUIRE(f.install());
        std::vector<int> v;
        for (int i = 0; i < 200; ++i) {
            int err = 0;
            std::size_t len = 1000;
            const bool failed = evio::detail::fault_injected(evio::detail::sys::recv, &err, &len);
            v.push_back(failed ? -err : static_cast<int>(len));
        }
        f.uninstall();
        return v;
    };
    CHECK(sequence(7) == sequence(7));
    CHECK(sequence(7) != sequence(8));
    // Not installed: the seam is a null hook again.
    int err = 0;
    CHECK(!evio::detail::fault_injected(evio::detail::sys::recv, &err));
}

// epoll: an injected EAGAIN is not followed by an edge (the data is already there), so the op
// must not wait for one; io_uring: the -EAGAIN completion is resubmitted; iocp: not injected.
TEST_CASE("an injected EAGAIN on a socket that already has data does not park the read forever") {
    using namespace std::chrono_literals;
    evio::reactor r{options()};
    auto p = evio::test::connected_pair(r);
    const auto msg = evio::test::bytes("already there before the read starts");
    std::vector<std::byte> in(msg.size());
    evio::result<void> got = evio::errc::closed;
    evio::sync_wait(r, [&]() -> evio::task<void> {
        const auto sent = co_await p.client.write_all(msg);
        REQUIRE(sent);
        co_await evio::sleep_for(r, 20ms); // the data arrives; its edge finds nothing parked
    }());
    evio::fault_injector f{1};
    evio::fault_rates again;
    again.again = 0.7; // most tries report EAGAIN, some get through
    f.set(evio::fault_site::recv, again);
    REQUIRE(f.install());
    got = evio::sync_wait(r, [&]() -> evio::task<evio::result<void>> {
        co_return co_await evio::with_timeout(r, 5s, p.server.read_exact(in));
    }());
    f.uninstall();
    CHECK(got);
    CHECK(in == msg);
#if !EVIO_PLATFORM_WINDOWS
    CHECK(f.injected(evio::fault_kind::again) > 0);
#endif
}
