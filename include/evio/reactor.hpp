// SPDX-License-Identifier: MIT
// evio::reactor: owns the token table and one backend room; runs coroutines to completion.
#pragma once

#include <evio/config.hpp>
#include <evio/detail/backend.hpp>
#include <evio/detail/contract.hpp>
#include <evio/detail/operation.hpp>
#include <evio/detail/platform.hpp>
#include <evio/detail/reactor_core.hpp>
#include <evio/error.hpp>
#include <evio/result.hpp>
#include <evio/token.hpp>

#include <chrono>
#include <cstdlib>
#include <functional>
#include <optional>
#include <vector>
#include <mutex>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

namespace evio {

/// How to build a reactor.
struct reactor_options {
    /// The backend; `automatic` probes io_uring and falls back to epoll (Linux), IOCP (Windows).
    backend_kind backend = backend_kind::automatic;
    /// io_uring submission queue entries (rounded up to a power of two by the kernel).
    unsigned uring_entries = 1024;
    /// When true, EVIO_BACKEND=epoll|io_uring|iocp in the environment overrides `automatic`.
    bool honor_environment = true;
    /// Bytes per receive() buffer (tcp_stream::receive leases them): 64 .. 1 MiB.
    std::size_t receive_buffer_size = 16384;
    /// At most this many receive() buffers exist (1 .. 32768); they are allocated 64 at a time,
    /// when needed. receive() fails with errc::no_buffer_space when all are in use.
    std::uint32_t receive_buffers_max = 4096;
    /// Before a turn blocks in the kernel, poll without blocking for up to this long (bounded by
    /// the next timer). 0 (the default): block at once. Polling spends CPU while idle; it saves
    /// the wake-up a blocked reactor costs, paid by whoever wakes it (the peer thread that sends
    /// the data, on the same machine) and by the latency of the turn. 0 .. 1 s.
    std::chrono::microseconds busy_poll{0};
    /// With busy_poll set: true (the default) adapts the poll to the load, as KVM's halt polling
    /// does. The poll starts at 0; a turn whose wait (poll and block together) ended within
    /// busy_poll doubles it (from 10 us, up to busy_poll): a longer poll would have caught that
    /// event; a wait longer than busy_poll sets it back to 0: the reactor is idle and blocks at
    /// once, spending no CPU on polls. false: every blocking turn polls for the whole busy_poll.
    bool busy_poll_adaptive = true;
};

/// What receive()'s buffer pool holds (reactor::receive_buffers).
struct buffer_stats {
    std::size_t buffer_size = 0; ///< bytes per buffer
    std::size_t allocated = 0;   ///< buffers that exist (free or in use)
    std::size_t leased = 0;      ///< held by buffer_lease objects (and reads in progress)
    std::size_t stashed = 0;     ///< io_uring: received data no receive() has taken yet
};

/// The event loop. Owns every registration (token) and the coroutines handed to `spawn`.
/// Not thread-safe, except `post`, `stop` and `stopped`, which any thread may call.
class reactor {
    /// Calls `f` with the room this reactor runs on.
    template <class F>
    decltype(auto) with_room(F&& f) {
#if EVIO_HAS_URING
        if (kind_ == backend_kind::io_uring) return f(*uring_);
#endif
#if EVIO_HAS_EPOLL
        return f(*epoll_);
#endif
#if EVIO_HAS_IOCP
        return f(*iocp_);
#endif
    }



public:
    /// Builds a reactor on the requested backend.
    /// Errors: throws std::system_error when the backend cannot be set up; an explicit
    /// `backend_kind::io_uring` that the kernel refuses fails here with a message naming the
    /// cause (never a silent fallback).
    explicit reactor(reactor_options opts = {}) {
        backend_kind want = opts.backend;
        if (want == backend_kind::automatic && opts.honor_environment) {
            if (const char* env = std::getenv("EVIO_BACKEND"); env && *env) {
                const std::string_view v{env};
                if (v == "epoll") want = backend_kind::epoll;
                else if (v == "io_uring" || v == "uring") want = backend_kind::io_uring;
                else if (v == "iocp") want = backend_kind::iocp;
                else if (v != "automatic" && v != "auto")
                    throw std::system_error(make_error_code(errc::invalid_argument),
                                            "EVIO_BACKEND must be epoll, io_uring, iocp or automatic");
            }
        }
        // Bad options are the caller's input, not a broken contract: an error that names them.
        if (opts.receive_buffer_size < 64 || opts.receive_buffer_size > (std::size_t{1} << 20) ||
            opts.receive_buffers_max < 1 || opts.receive_buffers_max > detail::buffer_pool::max_limit)
            throw std::system_error(make_error_code(errc::invalid_argument),
                                    "reactor_options: receive_buffer_size must be 64 .. 1048576 and "
                                    "receive_buffers_max 1 .. 32768");
        if (opts.busy_poll < std::chrono::microseconds::zero() || opts.busy_poll > std::chrono::seconds(1))
            throw std::system_error(make_error_code(errc::invalid_argument),
                                    "reactor_options: busy_poll must be 0 .. 1 s");
        busy_poll_ = opts.busy_poll;
        busy_poll_adaptive_ = opts.busy_poll_adaptive;
        poll_window_ = busy_poll_adaptive_ ? std::chrono::microseconds::zero() : busy_poll_;
        core_.pool.configure(opts.receive_buffer_size, opts.receive_buffers_max);
        open(want, opts);
    }

    reactor(const reactor&) = delete;
    reactor& operator=(const reactor&) = delete;

    /// Cancels every pending operation, waits until the kernel released its buffers, then
    /// destroys the coroutines still owned through `spawn` without resuming them (their
    /// destructors run, closing their sockets). See docs/architecture.md, "Destruction".
    /// Preconditions: no socket or listener of this reactor outlives it
    /// (contract `reactor.outlived_by_handle`).
    ~reactor() { destroy(); }

    /// The backend this reactor runs on (never `automatic`).
    backend_kind backend() const noexcept { return kind_; }
    /// Why `automatic` did not pick io_uring (empty when it did or was not asked to).
    const std::string& fallback_reason() const noexcept { return fallback_reason_; }

    /// True when `kind` can run here; `why` receives the reason when it cannot.
    static bool is_available(backend_kind kind, std::string* why = nullptr) {
        try {
            reactor r{reactor_options{kind, 64, false}};
            return true;
        } catch (const std::exception& e) {
            if (why) *why = e.what();
            return false;
        }
    }

    /// Runs until no spawned task, pending operation, timer or posted function remains, or until
    /// `stop()`. Rethrows the first exception that escaped a spawned task.
    /// Preconditions: not called from inside this reactor's run (contract `reactor.reentrant_run`).
    void run() {
        enter();
        while (!core_.stop_requested.load(std::memory_order_acquire) && has_work()) turn(-1);
        leave();
        core_.stop_requested.store(false, std::memory_order_release);
        rethrow_spawned();
    }

    /// One turn: waits (up to `timeout`, or until something completes) and runs what is ready.
    void run_once(std::chrono::milliseconds timeout = std::chrono::milliseconds(-1)) {
        enter();
        turn(static_cast<int>(timeout.count() < 0 ? -1 : timeout.count()));
        leave();
        rethrow_spawned();
    }

    /// A zero-timeout turn: runs whatever is ready now, never blocks.
    void poll() { run_once(std::chrono::milliseconds(0)); }

    /// Makes `run()` return promptly; safe from any thread and from inside the loop. Suspended
    /// tasks stay suspended; a later `run()` continues them.
    void stop() noexcept {
        core_.stop_requested.store(true, std::memory_order_release);
        wake();
    }
    /// True between `stop()` and the return of `run()`.
    bool stopped() const noexcept { return core_.stop_requested.load(std::memory_order_acquire); }

    /// Queues `fn` to run on the reactor's thread in its next turn; safe from any thread; wakes
    /// a blocked reactor.
    void post(std::function<void()> fn) {
        {
            std::lock_guard lock(core_.post_mutex);
            core_.posted.push_back(std::move(fn));
            core_.has_posted.store(true, std::memory_order_release);
        }
        wake();
    }

    /// Identifies this reactor in tokens (owner id).
    std::uint32_t id() const noexcept { return core_.table.owner(); }

    // ---- below: the interface the awaitables use; stable but not for application code ----

    /// Registers `h` (a socket) and returns its token. Errors: the backend's registration error.
    result<token> register_handle(detail::native_handle h) {
        const token t = core_.table.allocate(h);
        const std::error_code ec = with_room([&](auto& r) { return r.add(t, h); });
        if (ec) {
            release(t);
            return ec;
        }
        return t;
    }

    /// Deregisters `t` (DESIGN.md §2, four steps) and, when `close` is true, closes its handle.
    /// Every operation still waiting on `t` resumes once, later, with `operation_canceled`.
    /// Preconditions: `t` is live and registered here (contracts `deregister.twice`,
    /// `deregister.stale`, `deregister.foreign`).
    void deregister(token t, bool close = true) {
        detail::slot& s = core_.table.begin_deregister(t);
        if constexpr (EVIO_CONTRACTS >= 2) core_.table.snapshot_all(core_.audit_before);
        const detail::native_handle h = s.handle;
        with_room([&](auto& r) { r.cancel_all(s); });
        if (core_.table.at(t.index).in_flight == 0) core_.table.finish_deregister(t.index);
        // Contract: deregistering one token must not change what any other token waits for.
        EVIO_CONTRACT(2, "isolation.neighbour_changed",
                      core_.table.neighbours_unchanged(core_.audit_before, t.index));
        if (close) {
            with_room([&](auto& r) {
                if constexpr (requires { r.close_handle(h); })
                    r.close_handle(h); // io_uring: IORING_OP_CLOSE
                else
                    detail::close_native(h);
            });
        }
        if (!core_.backoff_listeners.empty()) core_.backoff_release = true; // an fd came free
    }

    /// Starts `op` on its token. True: the waiter stays suspended and is resumed later.
    EVIO_NOINLINE bool start(detail::operation& op) {
        detail::slot& s = core_.table.checked(op.tok);
        return with_room([&](auto& r) { return r.start(op, s); });
    }

    /// receive(): true when the room picks the buffers itself, once the socket has data
    /// (io_uring's provided-buffer ring; epoll just before its recv; IOCP after a zero-byte
    /// WSARecv); false when the awaitable leases a pool buffer when it starts and reads into it
    /// (io_uring on a kernel that refuses a buffer ring).
    bool provides_buffers() {
        return with_room([](auto& r) {
            if constexpr (requires { r.provides_buffers(); }) return r.provides_buffers();
            else return false;
        });
    }
    /// A free pool buffer (counted as leased; release_buffer gives it back), or -1 when all
    /// are in use. receive() leases through the same count (reactor_core::lease_buffer).
    std::int32_t acquire_buffer() noexcept { return core_.lease_id(); }
    /// A leased buffer comes back (buffer_lease's destructor): to the free list, or on io_uring
    /// to the kernel's buffer ring.
    void release_buffer(std::uint32_t id) noexcept {
        --core_.pool.leased;
        with_room([id, this](auto& r) {
            if constexpr (requires { r.give_back(id); }) r.give_back(id);
            else core_.pool.put(id);
        });
    }
    /// The receive() buffer pool's counts.
    buffer_stats receive_buffers() const noexcept {
        return {core_.pool.buffer_size(), core_.pool.allocated(), core_.pool.leased,
                core_.pool.stashed};
    }

    /// Asks the room to cancel `op`: it resumes once with operation_canceled, or with its own
    /// result if it finished first. No effect when it already finished or its token is closing.
    void cancel(detail::operation& op) {
        detail::slot* s = core_.table.find(op.tok);
        if (!s) return; // deregistering or gone: the teardown cancels it
        with_room([&](auto& r) {
            if constexpr (requires { r.cancel(op, *s); }) r.cancel(op, *s);
        });
    }

    /// From any thread: delivers `rc.scope->request()` on the reactor's thread in its next turn.
    void request_remote_cancel(detail::remote_cancel& rc) {
        {
            std::lock_guard lock(core_.post_mutex);
            if (!rc.queued) {
                rc.queued = true;
                core_.remote_cancels.push_back(&rc);
            }
            core_.has_posted.store(true, std::memory_order_release);
        }
        wake();
    }
    /// Reactor thread: `rc` is going away; drop a request still queued for it.
    void forget_remote_cancel(detail::remote_cancel& rc) {
        std::lock_guard lock(core_.post_mutex);
        if (!rc.queued) return;
        rc.queued = false;
        std::erase(core_.remote_cancels, &rc);
    }

    /// The reactor running on this thread (inside run/run_once/poll/sync_wait), else null.
    static reactor* current() noexcept { return current_slot(); }

    /// Arms a timer node; its waiter resumes once the deadline passed.
    void add_timer(detail::timer_node& t) { core_.timers.push(&t); }
    /// Disarms a timer node (no effect when it already fired).
    void cancel_timer(detail::timer_node& t) noexcept { core_.timers.remove(&t); }

    /// Queues a coroutine to resume in this turn (spawn, yields).
    void schedule(std::coroutine_handle<> h) { core_.ready.push_back(h); }

    detail::reactor_core& core() noexcept { return core_; }

private:
    void open(backend_kind want, const reactor_options& opts) {
#if EVIO_PLATFORM_WINDOWS
        if (want == backend_kind::automatic) want = backend_kind::iocp;
        if (want != backend_kind::iocp)
            throw std::system_error(make_error_code(errc::backend_unavailable),
                                    std::string("backend ") + to_string(want) +
                                        " is not available on Windows");
        iocp_.emplace(core_);
        kind_ = backend_kind::iocp;
#else
        if (want == backend_kind::iocp)
            throw std::system_error(make_error_code(errc::backend_unavailable),
                                    "backend iocp is only available on Windows");
        if (want == backend_kind::io_uring || want == backend_kind::automatic) {
#if EVIO_HAS_URING
            try {
                uring_.emplace(core_, opts.uring_entries);
                kind_ = backend_kind::io_uring;
                return;
            } catch (const std::system_error& e) {
                if (want == backend_kind::io_uring) throw;
                fallback_reason_ = e.what();
            }
#else
            if (want == backend_kind::io_uring)
                throw std::system_error(make_error_code(errc::backend_unavailable),
                                        "io_uring: evio was built without liburing (EVIO_NO_URING)");
            fallback_reason_ = "built without liburing";
#endif
        }
        epoll_.emplace(core_);
        kind_ = backend_kind::epoll;
#endif
        (void)opts;
    }

    void wake() noexcept {
        with_room([](auto& r) { r.wake(); });
    }

    void release(token t) {
        core_.table.begin_deregister(t);
        core_.table.finish_deregister(t.index);
    }

    static reactor*& current_slot() noexcept {
        static thread_local reactor* current = nullptr;
        return current;
    }

    void enter() {
        // Contract: a nested run would resume coroutines that are already running.
        EVIO_CONTRACT(1, "reactor.reentrant_run", !core_.running);
        core_.running = true;
        outer_ = std::exchange(current_slot(), this);
    }
    void leave() noexcept {
        core_.running = false;
        current_slot() = outer_;
    }

    void rethrow_spawned() {
        if (core_.spawned_exception) std::rethrow_exception(std::exchange(core_.spawned_exception, {}));
    }

    bool has_work() const noexcept {
        return core_.spawned != 0 || core_.pending_ops != 0 || !core_.ready.empty() ||
               !core_.timers.empty() || core_.has_posted.load(std::memory_order_acquire);
    }

    /// Milliseconds until `tp`, rounded up so a wait never ends before a deadline.
    static int ms_until(detail::clock::time_point tp, detail::clock::time_point now) noexcept {
        if (tp <= now) return 0;
        const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(tp - now).count();
        const auto ms = (ns + 999'999) / 1'000'000;
        return ms > 3'600'000 ? 3'600'000 : static_cast<int>(ms);
    }

    /// One loop turn: wait for completions (resumed inline), timers, back-off, posts, then the
    /// coroutines queued for this turn.
    void turn(int timeout_ms) {
        ++core_.turn;
        if (!core_.ready.empty() || core_.has_posted.load(std::memory_order_acquire) ||
            core_.backoff_release || !core_.retries.empty() || core_.stop_requested.load(std::memory_order_relaxed))
            timeout_ms = 0;
        if (timeout_ms != 0 && (!core_.timers.empty() || !core_.backoff_listeners.empty())) {
            const auto now = detail::clock::now();
            if (const detail::timer_node* t = core_.timers.top()) {
                const int ms = ms_until(t->deadline, now);
                if (timeout_ms < 0 || ms < timeout_ms) timeout_ms = ms;
            }
            if (!core_.backoff_listeners.empty()) {
                const int ms = ms_until(core_.backoff_deadline, now);
                if (timeout_ms < 0 || ms < timeout_ms) timeout_ms = ms;
            }
        }
        wait_for_work(timeout_ms);
        fire_timers();
        release_backoff();
        run_posted();
        drain_ready();
    }

    /// The turn's wait. With busy_poll, non-blocking waits first, until one dispatches something
    /// (a completion, an event, a wake-up) or the poll window (at most the timeout) is over; then
    /// the blocking wait for what is left of the timeout. The adaptive poll measures the whole
    /// wait afterwards (two clock reads, only on turns that block).
    void wait_for_work(int timeout_ms) {
        if (timeout_ms == 0 || busy_poll_.count() == 0) {
            with_room([&](auto& r) { r.wait(timeout_ms); });
            return;
        }
        const auto start = detail::clock::now();
        if (poll_window_.count() > 0) {
            const auto deadline = start + std::chrono::milliseconds(timeout_ms);
            auto until = start + poll_window_;
            if (timeout_ms > 0 && deadline < until) until = deadline;
            do {
                // Caught something: the window stays as it is.
                if (with_room([](auto& r) { return r.wait(0); }) != 0) return;
            } while (detail::clock::now() < until);
            if (timeout_ms > 0) timeout_ms = ms_until(deadline, detail::clock::now());
        }
        with_room([&](auto& r) { r.wait(timeout_ms); });
        if (busy_poll_adaptive_) adapt_poll(detail::clock::now() - start);
    }

    /// KVM's halt-polling rule: a wait that ended within busy_poll would have been caught by a
    /// longer poll (grow: 10 us, then doubling, up to busy_poll); one that lasted longer means
    /// the reactor is idle (back to 0: it blocks at once until waits get short again).
    void adapt_poll(detail::clock::duration waited) noexcept {
        constexpr std::chrono::microseconds grow_start{10};
        if (waited > busy_poll_) {
            poll_window_ = std::chrono::microseconds::zero();
        } else if (poll_window_ < busy_poll_) {
            const auto next = poll_window_.count() == 0 ? grow_start : 2 * poll_window_;
            poll_window_ = next < busy_poll_ ? next : busy_poll_;
        }
    }

    void fire_timers() {
        if (core_.timers.empty()) return;
        const auto now = detail::clock::now();
        while (detail::timer_node* t = core_.timers.top()) {
            if (t->deadline > now) break;
            core_.timers.remove(t);
            if (t->fire)
                t->fire(t);
            else
                t->waiter.resume();
        }
    }

    void release_backoff() {
        if (!core_.retries.empty()) {
            core_.retries_running.swap(core_.retries); // both keep their capacity
            for (const auto& td : core_.retries_running) {
                // Not a structured binding: clang 14 cannot capture those in a lambda.
                const token t = td.first;
                const detail::direction d = td.second;
                core_.retry_taken(t, d);
                with_room([&](auto& r) { r.retry(t, d); });
            }
            core_.retries_running.clear();
        }
        if (core_.backoff_listeners.empty()) return;
        if (!core_.backoff_release && detail::clock::now() < core_.backoff_deadline) return;
        core_.backoff_release = false;
        auto listeners = std::move(core_.backoff_listeners);
        core_.backoff_listeners.clear();
        for (const token t : listeners) {
            if (detail::slot* s = core_.table.find(t)) {
                s->accept_backoff = false;
                with_room([&](auto& r) { r.retry(t, detail::direction::read); });
            }
        }
    }

    void run_posted() {
        if (!core_.has_posted.load(std::memory_order_acquire)) return;
        {
            std::lock_guard lock(core_.post_mutex);
            core_.posted_running.swap(core_.posted);
            core_.has_posted.store(false, std::memory_order_release);
        }
        for (auto& fn : core_.posted_running) fn();
        core_.posted_running.clear();
        // Cancellations requested from other threads, one at a time: a request may destroy
        // other scopes (their frames finish), which then unlink themselves under the mutex.
        for (;;) {
            detail::remote_cancel* rc = nullptr;
            {
                std::lock_guard lock(core_.post_mutex);
                if (core_.remote_cancels.empty()) break;
                rc = core_.remote_cancels.back();
                core_.remote_cancels.pop_back();
                rc->queued = false;
            }
            rc->scope->request();
        }
    }

    void drain_ready() {
        if (core_.ready.empty()) return;
        core_.draining.swap(core_.ready);
        for (std::size_t i = 0; i < core_.draining.size(); ++i) core_.draining[i].resume();
        core_.draining.clear();
    }

    void destroy() noexcept;

    detail::reactor_core core_;
    backend_kind kind_ = backend_kind::automatic;
    std::string fallback_reason_;
    std::chrono::microseconds busy_poll_{0};   ///< reactor_options::busy_poll (0: never poll)
    std::chrono::microseconds poll_window_{0}; ///< this turn's poll: busy_poll_, or adapted
    bool busy_poll_adaptive_ = true;
    reactor* outer_ = nullptr;
#if EVIO_HAS_URING
    std::optional<detail::uring_reactor> uring_;
#endif
#if EVIO_HAS_EPOLL
    std::optional<detail::epoll_reactor> epoll_;
#endif
#if EVIO_HAS_IOCP
    std::optional<detail::iocp_reactor> iocp_;
#endif
};

inline void reactor::destroy() noexcept {
    core_.destroying = true;
    core_.running = true;
    // 1. The kernel gives back every buffer (uring/iocp cancel and wait; epoll holds none).
    with_room([](auto& r) { r.drain_for_destroy(); });
    // 2. No waiter will be resumed: detach parked ops, timers and queued resumptions.
    core_.table.for_each_live([](std::uint32_t, detail::slot& s) {
        s.queue[0] = {};
        s.queue[1] = {};
        s.in_flight = 0;
        s.interest = detail::interest_none;
    });
    core_.pending_ops = 0;
    core_.timers.disarm_all();
    core_.ready.clear();
    // 3. Destroy the spawned coroutines; their sockets deregister and close as frames unwind.
    while (core_.spawned_list.next != &core_.spawned_list) core_.spawned_list.next->frame.destroy();
    core_.ready.clear();
    core_.table.for_each_live([this](std::uint32_t i, detail::slot& s) {
        if (s.state == detail::slot_state::deregistering) core_.table.finish_deregister(i);
    });
    // Contract: a socket that outlives its reactor would later deregister from freed memory.
    EVIO_CONTRACT(1, "reactor.outlived_by_handle", core_.table.live() == 0);
    // Contract: a buffer_lease that outlives its reactor would point into freed memory.
    EVIO_CONTRACT(1, "reactor.outlived_by_lease", core_.pool.leased == 0);
    core_.running = false;
}

} // namespace evio
