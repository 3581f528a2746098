// SPDX-License-Identifier: MIT
// Room iocp: deregistration cancels only this token's ops (CancelIoEx by OVERLAPPED); each waiter
// resumes once, after its packet; the slot is freed only when every packet retired.
#include "support/fixture.hpp"

#include <evio/detail/iocp/winsock.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstring>
#include <new>
#include <stop_token>
#include <system_error>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
namespace test = evio::test;
using evio::errc;
using evio::detail::slot_state;

namespace {

/// What one awaited operation produced.
struct record {
    int resumed = 0;
    std::error_code ec{};
    std::size_t n = 0;
};

evio::task<void> read_into(evio::tcp_stream& s, record& rec, std::size_t max = 256) {
    std::vector<std::byte> buf(max);
    auto res = co_await s.read_some(buf);
    ++rec.resumed;
    if (res) rec.n = *res;
    else rec.ec = res.error();
}

/// write_all of `len` bytes; the peer never reads, so most of it stays in the kernel.
evio::task<void> write_big(evio::tcp_stream& s, record& rec, std::size_t len) {
    std::vector<std::byte> buf(len, std::byte{'x'});
    auto res = co_await s.write_all(buf);
    ++rec.resumed;
    if (!res) rec.ec = res.error();
}

evio::detail::slot& slot_of(evio::reactor& r, evio::token t) {
    return r.core().table.at(t.index);
}

/// Holds a value whose destructor must not run (a stream whose token the test deregistered
/// by hand: its own close() would deregister twice).
template <class T>
struct no_destroy {
    union {
        T value;
    };
    explicit no_destroy(T&& v) { ::new (static_cast<void*>(&value)) T(std::move(v)); }
    ~no_destroy() {}
    T& operator*() noexcept { return value; }
};

std::atomic<int> cancel_calls{0};
bool fail_cancel(evio::detail::sys call, int* err) {
    if (call != evio::detail::sys::iocp_cancel) return false;
    ++cancel_calls;
    *err = ERROR_INVALID_HANDLE;
    return true;
}

struct hook_guard {
    explicit hook_guard(evio::detail::fault_hook h) { evio::detail::set_fault_hook(h); }
    ~hook_guard() { evio::detail::set_fault_hook(nullptr); }
};

} // namespace

TEST_CASE("iocp cancel: a read in the kernel resumes once, after its packet; then the slot is "
          "freed") {
    evio::reactor r{test::options()};
    auto p = test::connected_pair(r);
    auto other = test::connected_pair(r);
    record rd, neighbour;
    evio::spawn(r, read_into(p.server, rd));
    evio::spawn(r, read_into(other.server, neighbour));
    r.poll();
    const evio::token t = p.server.native_token();
    REQUIRE(slot_of(r, t).in_flight == 1);
    REQUIRE(rd.resumed == 0);

    p.server.close();
    // Deregistering, not free: the kernel still holds the read's buffer until its packet.
    CHECK(slot_of(r, t).state == slot_state::deregistering);
    CHECK(slot_of(r, t).generation == t.generation);
    CHECK(slot_of(r, t).in_flight == 1);
    CHECK(rd.resumed == 0);

    REQUIRE(test::run_until(
        r, [&] { return rd.resumed == 1; }, 5s));
    CHECK(rd.ec == errc::operation_canceled);
    CHECK(slot_of(r, t).state == slot_state::free);
    CHECK(slot_of(r, t).generation == t.generation + 1);
    CHECK(slot_of(r, t).in_flight == 0);

    // Only this token's op was cancelled: the neighbour's read is still in the kernel.
    for (int i = 0; i < 10; ++i)
        r.poll();
    CHECK(rd.resumed == 1);
    CHECK(neighbour.resumed == 0);
    CHECK(slot_of(r, other.server.native_token()).in_flight == 1);
    const std::array<std::byte, 3> hi{std::byte{'h'}, std::byte{'i'}, std::byte{'!'}};
    REQUIRE(::send(static_cast<SOCKET>(other.client.native_handle()),
                   reinterpret_cast<const char*>(hi.data()), 3, 0) == 3);
    REQUIRE(test::run_until(
        r, [&] { return neighbour.resumed == 1; }, 5s));
    CHECK(neighbour.n == 3);
}

TEST_CASE("iocp cancel: ops queued behind the head resume at once, the head after its packet") {
    evio::reactor r{test::options()};
    auto p = test::connected_pair(r);
    record first, second, third;
    evio::spawn(r, read_into(p.server, first));
    evio::spawn(r, read_into(p.server, second));
    evio::spawn(r, read_into(p.server, third));
    r.poll();
    const evio::token t = p.server.native_token();
    REQUIRE(slot_of(r, t).in_flight == 1); // one op per direction in the kernel

    p.server.close();
    REQUIRE(test::run_until(
        r, [&] { return first.resumed && second.resumed && third.resumed; }, 5s));
    for (int i = 0; i < 5; ++i)
        r.poll();
    for (const record* rec : {&first, &second, &third}) {
        CHECK(rec->resumed == 1);
        CHECK(rec->ec == errc::operation_canceled);
    }
    CHECK(slot_of(r, t).state == slot_state::free);
    CHECK(r.core().pending_ops == 0);
}

TEST_CASE("iocp cancel: a read and a write in the kernel: the slot waits for both packets") {
    evio::reactor r{test::options()};
    auto p = test::connected_pair(r);
    record rd, wr;
    evio::spawn(r, read_into(p.client, rd));
    evio::spawn(r, write_big(p.client, wr, std::size_t{32} << 20)); // the peer never reads
    REQUIRE(test::run_until(
        r, [&] { return slot_of(r, p.client.native_token()).in_flight == 2; }, 5s));
    const evio::token t = p.client.native_token();

    p.client.close();
    CHECK(slot_of(r, t).state == slot_state::deregistering);
    CHECK(slot_of(r, t).in_flight == 2);
    REQUIRE(test::run_until(
        r, [&] { return rd.resumed == 1 && wr.resumed == 1; }, 5s));
    CHECK(rd.ec == errc::operation_canceled);
    CHECK(wr.ec == errc::operation_canceled);
    CHECK(slot_of(r, t).state == slot_state::free);
    CHECK(slot_of(r, t).in_flight == 0);
    for (int i = 0; i < 5; ++i)
        r.poll();
    CHECK(rd.resumed == 1);
    CHECK(wr.resumed == 1);
}

TEST_CASE("iocp cancel: CancelIoEx failing still resumes the read once (closesocket cancels)") {
    evio::reactor r{test::options()};
    auto p = test::connected_pair(r);
    record rd;
    evio::spawn(r, read_into(p.server, rd));
    r.poll();
    {
        hook_guard hook(&fail_cancel);
        cancel_calls = 0;
        p.server.close();
        CHECK(cancel_calls == 1);
    }
    REQUIRE(test::run_until(
        r, [&] { return rd.resumed == 1; }, 5s));
    CHECK(rd.ec == errc::operation_canceled);
    for (int i = 0; i < 5; ++i)
        r.poll();
    CHECK(rd.resumed == 1);
    CHECK(r.core().table.live() == 1); // only p.client
}

TEST_CASE("iocp cancel: deregistering without closing cancels by OVERLAPPED only; the handle "
          "can be registered again") {
    evio::reactor r{test::options()};
    auto p = test::connected_pair(r);
    record rd;
    evio::spawn(r, read_into(p.server, rd));
    r.poll();
    const evio::token t = p.server.native_token();
    const auto h = p.server.native_handle();
    no_destroy<evio::tcp_stream> keep(std::move(p.server)); // its token is ours to end now
    r.deregister(t, false);
    REQUIRE(test::run_until(
        r, [&] { return rd.resumed == 1; }, 5s));
    CHECK(rd.ec == errc::operation_canceled);
    CHECK(slot_of(r, t).state == slot_state::free);

    // The socket is still open and still associated with this port under its first key: a new
    // registration of it gets a new token and its packets are routed there.
    for (int round = 0; round < 3; ++round) {
        auto again = r.register_handle(h);
        REQUIRE(again.has_value());
        CHECK(*again != t);
        evio::tcp_stream s(r, h, *again);
        record rd2;
        evio::spawn(r, read_into(s, rd2));
        r.poll();
        CHECK(rd2.resumed == 0);
        const char msg[] = "again";
        REQUIRE(::send(static_cast<SOCKET>(p.client.native_handle()), msg, 5, 0) == 5);
        REQUIRE(test::run_until(
            r, [&] { return rd2.resumed == 1; }, 5s));
        CHECK(rd2.n == 5);
        const evio::token now = s.native_token();
        evio::tcp_stream moved = std::move(s);
        no_destroy<evio::tcp_stream> keep2(std::move(moved));
        r.deregister(now, false);
    }
    // A registration of a live handle is refused.
    auto live = r.register_handle(h);
    REQUIRE(live.has_value());
    auto twice = r.register_handle(h);
    REQUIRE_FALSE(twice.has_value());
    CHECK(twice.error() == errc::invalid_argument);
    r.deregister(*live);
}

TEST_CASE("iocp cancel: a duplicated socket (WSADuplicateSocket) cannot be registered twice") {
    evio::reactor r{test::options()};
    auto p = test::connected_pair(r);
    WSAPROTOCOL_INFOW info{};
    REQUIRE(::WSADuplicateSocketW(static_cast<SOCKET>(p.server.native_handle()),
                                  ::GetCurrentProcessId(), &info) == 0);
    const SOCKET dup = ::WSASocketW(FROM_PROTOCOL_INFO, FROM_PROTOCOL_INFO, FROM_PROTOCOL_INFO,
                                    &info, 0, WSA_FLAG_OVERLAPPED);
    REQUIRE(dup != INVALID_SOCKET);
    // One kernel object, one completion port association: the duplicate is rejected.
    auto t = r.register_handle(static_cast<evio::detail::native_handle>(dup));
    REQUIRE_FALSE(t.has_value());
    CHECK(t.error() == errc::invalid_argument);
    ::closesocket(dup);

    // The original is untouched.
    record rd;
    evio::spawn(r, read_into(p.server, rd));
    r.poll();
    REQUIRE(::send(static_cast<SOCKET>(p.client.native_handle()), "ok", 2, 0) == 2);
    REQUIRE(test::run_until(
        r, [&] { return rd.resumed == 1; }, 5s));
    CHECK(rd.n == 2);
}

namespace {

evio::task<void> read_then_close(evio::tcp_stream& s, evio::tcp_stream& victim, record& rec) {
    std::array<std::byte, 64> buf{};
    auto res = co_await s.read_some(buf);
    ++rec.resumed;
    if (res) rec.n = *res;
    victim.close();
}

} // namespace

namespace {

/// True once the read the kernel holds for `t` has completed (its packet is queued), read from
/// the op's OVERLAPPED (observation only).
bool read_completed(evio::reactor& r, evio::token t) {
    const evio::detail::operation* op = slot_of(r, t).queue[0].head;
    if (!op || !op->in_kernel) return false;
    OVERLAPPED ov;
    std::memcpy(&ov, op->overlapped, sizeof ov);
    return ov.Internal != STATUS_PENDING;
}

bool wait_completed(evio::reactor& r, evio::token t) {
    const auto end = std::chrono::steady_clock::now() + 5s;
    while (!read_completed(r, t)) {
        if (std::chrono::steady_clock::now() > end) return false;
        std::this_thread::yield();
    }
    return true;
}

} // namespace

TEST_CASE("iocp cancel: closing B while B's packet is already queued: B resumes once, "
          "cancelled") {
    evio::reactor r{test::options()};
    for (int round = 0; round < 20; ++round) {
        auto a = test::connected_pair(r);
        auto b = test::connected_pair(r);
        record ra, rb;
        evio::spawn(r, read_then_close(a.server, b.server, ra));
        evio::spawn(r, read_into(b.server, rb));
        r.poll();
        const evio::token ta = a.server.native_token();
        const evio::token tb = b.server.native_token();
        // A's packet, then B's, both queued before the next turn: one batch, A first. A's
        // handler closes B; B's CancelIoEx finds nothing to cancel (ERROR_NOT_FOUND).
        REQUIRE(::send(static_cast<SOCKET>(a.client.native_handle()), "a", 1, 0) == 1);
        REQUIRE(wait_completed(r, ta));
        REQUIRE(::send(static_cast<SOCKET>(b.client.native_handle()), "b", 1, 0) == 1);
        REQUIRE(wait_completed(r, tb));
        r.run_once(1s);
        REQUIRE(test::run_until(
            r, [&] { return ra.resumed == 1 && rb.resumed == 1; }, 5s));
        for (int i = 0; i < 3; ++i)
            r.poll();
        CHECK(ra.resumed == 1);
        CHECK(ra.n == 1);
        CHECK(rb.resumed == 1);
        // Cancelled, although its packet (with the byte) was already queued: dropped.
        CHECK(rb.ec == errc::operation_canceled);
        CHECK(rb.n == 0);
        CHECK(slot_of(r, tb).generation != tb.generation);
        CHECK(r.core().pending_ops == 0);
    }
}

namespace {

struct frame_probe {
    bool* destroyed;
    ~frame_probe() { *destroyed = true; }
};

evio::task<void> hold_read(evio::tcp_stream s, bool& destroyed, record& rec) {
    frame_probe probe{&destroyed};
    std::array<std::byte, 64> buf{};
    auto res = co_await s.read_some(buf);
    ++rec.resumed;
}

evio::task<void> hold_accept(evio::tcp_listener l, bool& destroyed, record& rec) {
    frame_probe probe{&destroyed};
    auto res = co_await l.accept();
    ++rec.resumed;
}

} // namespace

TEST_CASE("iocp cancel: reactor destruction waits for every packet, then destroys the frames") {
    bool read_frame = false, accept_frame = false;
    record rd, acc;
    evio::tcp_stream client;
    {
        evio::reactor r{test::options()};
        auto p = test::connected_pair(r);
        evio::spawn(r, hold_read(std::move(p.server), read_frame, rd));
        evio::spawn(r, hold_accept(test::listen_any(r), accept_frame, acc));
        r.poll();
        r.poll();
        p.client.close();
        CHECK_FALSE(read_frame);
        CHECK_FALSE(accept_frame);
    }
    CHECK(read_frame);
    CHECK(accept_frame);
    CHECK(rd.resumed == 0); // destroyed, never resumed
    CHECK(acc.resumed == 0);
}

namespace {

std::atomic<int> closes{0};
bool count_closes(evio::detail::sys call, int*) {
    if (call == evio::detail::sys::close) ++closes;
    return false;
}

evio::task<void> exact_with_timeout(evio::reactor& r, evio::tcp_stream& s, std::error_code& ec,
                                    std::size_t& moved, bool& done) {
    std::array<std::byte, 100> buf{};
    auto res = co_await evio::with_timeout(r, 200ms, s.read_exact(buf));
    ec = res.error();
    moved = res.transferred();
    done = true;
}

evio::task<void> accept_with_timeout(evio::reactor& r, evio::tcp_listener& l, std::error_code& ec,
                                     bool& done) {
    auto res = co_await evio::with_timeout(r, 50ms, l.accept());
    ec = res ? std::error_code{} : res.error();
    done = true;
}

evio::task<void> cancellable_read(std::stop_token st, evio::tcp_stream& s, record& rec) {
    std::array<std::byte, 16> buf{};
    auto res = co_await evio::with_cancellation(st, s.read_some(buf));
    ++rec.resumed;
    if (res) rec.n = *res;
    else rec.ec = res.error();
}

} // namespace

TEST_CASE("iocp cancel(op): a timed-out read_exact keeps its partial count and is not re-issued") {
    evio::reactor r{test::options()};
    auto p = test::connected_pair(r);
    std::error_code ec;
    std::size_t moved = 0;
    bool done = false;
    evio::spawn(r, exact_with_timeout(r, p.server, ec, moved, done));
    r.poll();
    REQUIRE(::send(static_cast<SOCKET>(p.client.native_handle()), "0123456789", 10, 0) == 10);
    REQUIRE(test::run_until(
        r, [&] { return done; }, 5s));
    CHECK(ec == errc::timed_out);
    CHECK(moved == 10);
    // Nothing of this token is left in the kernel; the next read gets the next bytes.
    CHECK(slot_of(r, p.server.native_token()).in_flight == 0);
    record next;
    evio::spawn(r, read_into(p.server, next));
    r.poll();
    REQUIRE(::send(static_cast<SOCKET>(p.client.native_handle()), "xy", 2, 0) == 2);
    REQUIRE(test::run_until(
        r, [&] { return next.resumed == 1; }, 5s));
    CHECK(next.n == 2);
}

TEST_CASE("iocp cancel(op): a timed-out accept closes its AcceptEx socket; the listener works") {
    evio::reactor r{test::options()};
    auto lis = test::listen_any(r);
    for (int round = 0; round < 5; ++round) {
        std::error_code ec;
        bool done = false;
        {
            hook_guard hook(&count_closes);
            closes = 0;
            evio::spawn(r, accept_with_timeout(r, lis, ec, done));
            REQUIRE(test::run_until(
                r, [&] { return done; }, 5s));
            CHECK(closes == 1); // the pre-created socket of the cancelled AcceptEx
        }
        CHECK(ec == errc::timed_out);
        CHECK(slot_of(r, lis.native_token()).in_flight == 0);
    }
    auto pair = test::make_pair_task(r, lis);
    auto p = evio::sync_wait(r, std::move(pair));
    CHECK(p.server.is_open());
}

TEST_CASE("iocp cancel(op): an op queued behind the head leaves at once; the head is untouched") {
    evio::reactor r{test::options()};
    auto p = test::connected_pair(r);
    std::stop_source first_stop, second_stop;
    record first, second;
    evio::spawn(r, cancellable_read(first_stop.get_token(), p.server, first));
    evio::spawn(r, cancellable_read(second_stop.get_token(), p.server, second));
    r.poll();
    const evio::token t = p.server.native_token();
    REQUIRE(slot_of(r, t).in_flight == 1);
    second_stop.request_stop(); // queued behind the head: no packet to wait for
    REQUIRE(test::run_until(
        r, [&] { return second.resumed == 1; }, 5s));
    CHECK(second.ec == errc::operation_canceled);
    CHECK(first.resumed == 0);
    CHECK(slot_of(r, t).in_flight == 1);
    REQUIRE(::send(static_cast<SOCKET>(p.client.native_handle()), "hd", 2, 0) == 2);
    REQUIRE(test::run_until(
        r, [&] { return first.resumed == 1; }, 5s));
    CHECK(first.n == 2);
    CHECK(r.core().pending_ops == 0);
}
