// SPDX-License-Identifier: MIT
// Room epoll: the readiness backend, adapted to evio's completion-shaped operations.
//
// Room notes
// - What the OS gives: readiness, not completion. Each fd is added once (EPOLLIN|EPOLLOUT|
//   EPOLLRDHUP|EPOLLET, epoll_ctl(2)); data.u64 carries the token's {index, generation}.
// - An op first tries its syscall (speculative); on EAGAIN it parks in its token's FIFO for its
//   direction, and a readiness edge retries the head. No epoll_ctl per operation.
// - Edge-triggered: an edge with nothing parked is dropped; the next op tries its syscall first,
//   so no wake-up is lost (epoll(7) "possible pitfalls").
// - Deregistration: EPOLL_CTL_DEL before close (a dup'ed fd would keep an item alive, epoll(7)
//   Q6), parked ops resume later in the turn with ECANCELED, the slot is freed at once (nothing
//   is held by the kernel); events of the old generation still in this batch are dropped.
// - Quirk: a fresh socket reports EPOLLOUT|EPOLLHUP before connect(2) finished, so connect
//   completion checks SO_ERROR and then getpeername(2) (ENOTCONN: keep waiting), as tokio does.
#pragma once

#include <evio/detail/platform.hpp>

#if EVIO_HAS_EPOLL

#include <evio/detail/operation.hpp>
#include <evio/detail/posix/socket.hpp>
#include <evio/detail/posix/transfer.hpp>
#include <evio/detail/reactor_core.hpp>
#include <evio/detail/room.hpp>
#include <evio/detail/syscall.hpp>

#include <cerrno>
#include <cstddef>
#include <memory>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <system_error>
#include <unistd.h>
#include <utility>

namespace evio::detail {

class epoll_reactor {
public:
    static constexpr const char* name = "epoll";

    explicit epoll_reactor(reactor_core& core) : core_(core) {
        epfd_ = EVIO_SYSCALL(epoll_create, -1, ::epoll_create1(EPOLL_CLOEXEC));
        if (epfd_ < 0) throw std::system_error(last_error(), "epoll_create1");
        evfd_ = EVIO_SYSCALL(eventfd, -1, ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
        if (evfd_ < 0) {
            const auto ec = last_error();
            ::close(epfd_);
            throw std::system_error(ec, "eventfd");
        }
        epoll_event ev{};
        ev.events = EPOLLIN | EPOLLET;
        ev.data.u64 = wake_tag;
        if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, evfd_, &ev) != 0) {
            const auto ec = last_error();
            ::close(evfd_);
            ::close(epfd_);
            throw std::system_error(ec, "epoll_ctl(eventfd)");
        }
    }
    epoll_reactor(const epoll_reactor&) = delete;
    epoll_reactor& operator=(const epoll_reactor&) = delete;
    ~epoll_reactor() {
        ::close(evfd_);
        ::close(epfd_);
    }

    /// receive(): the room takes the op's pool buffer when it reads (attempt_receive).
    static constexpr bool provides_buffers() noexcept { return true; }

    /// Registers the token's fd, once, for both directions.
    std::error_code add(token t, native_handle fd) noexcept {
        epoll_event ev{};
        ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
        ev.data.u64 = pack(t);
        if (EVIO_SYSCALL(epoll_ctl, -1, ::epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev)) != 0)
            return last_error();
        return {};
    }

    /// Starts `op`. Returns false when it finished inline (the caller resumes at once), true when
    /// the waiter stays suspended (parked, or finished but yielding its turn).
    EVIO_ALWAYS_INLINE bool start(operation& op, slot& s) {
        const direction d = direction_of(op.kind);
        op_queue& q = s.q(d);
        if (q.empty() && !(op.kind == op_kind::accept && s.accept_backoff)) {
            if (s.drained & interest_of(d)) {
                // Nothing to read (or no room to write) since the last try: the next edge
                // retries it; a speculative call would only fail with EAGAIN. (Checked before
                // the budget: an op that makes no call uses none of it.)
            } else if (!core_.within_budget(s)) {
                // Over this turn's budget: yield before the syscall. The op waits in its FIFO
                // (so a close or a cancel still finds it) and is retried at the end of the turn.
                core_.retry_later(op.tok, d);
            } else if (const step st = attempt(op, s); st == step::done) {
                if (op.kind == op_kind::accept && op.error != 0 && is_fd_exhaustion(op.error))
                    core_.note_accept_exhausted(s, op.tok);
                return false;
            } else if (st == step::retry) [[unlikely]] {
                retry_injected(op.tok, d);
            }
        }
        q.push(&op);
        s.interest |= interest_of(d);
        ++core_.pending_ops;
        return true;
    }

    /// Steps 2 and 3 of deregistration for this token only: forget the fd, cancel its parked ops.
    void cancel_all(slot& s) {
        epoll_event ev{};
        (void)EVIO_SYSCALL(epoll_ctl, -1, ::epoll_ctl(epfd_, EPOLL_CTL_DEL, s.handle, &ev));
        for (op_queue& q : s.queue) {
            while (operation* op = q.pop()) {
                op->error = ECANCELED;
                --core_.pending_ops;
                core_.complete_later(*op);
            }
        }
        s.interest = interest_none;
    }

    /// Cancels one parked op (with_timeout, with_cancellation, when_any): it leaves its FIFO and
    /// resumes later in this turn with ECANCELED. An op that already finished is not affected.
    void cancel(operation& op, slot& s) { (void)core_.cancel_queued(op, s, ECANCELED); }

    /// Retries the parked head ops of `t` in direction `d` (back-off release, end-of-turn retry).
    void retry(token t, direction d) {
        if (slot* s = core_.table.find(t)) retry(t, d, *s);
    }

    /// retry() with the token's slot already looked up (wait(), for an event's token).
    void retry(token t, direction d, slot& looked_up) {
        for (slot* s = &looked_up;; s = core_.table.find(t)) {
            if (!s) return; // closed by a coroutine resumed below
            op_queue& q = s->q(d);
            operation* op = q.head;
            if (!op) return;
            if (op->kind == op_kind::accept && s->accept_backoff) return;
            if (s->drained & interest_of(d)) return; // parked after a try found nothing: next edge
            if (!core_.within_budget(*s)) { // a resumed coroutine keeps queueing ops: yield
                core_.retry_later(t, d);
                return;
            }
            if (const step st = attempt(*op, *s); st != step::done) {
                if (st == step::retry) [[unlikely]] core_.retry_later(t, d);
                return;
            }
            core_.pop_head(*s, d);
            if (op->kind == op_kind::accept && op->error != 0 && is_fd_exhaustion(op->error))
                core_.note_accept_exhausted(*s, t);
            op->waiter.resume(); // `s` may be dangling now: looked up again for the next round
        }
    }

    /// One wait: up to `timeout_ms` (-1: forever), then dispatch the batch. Returns the number
    /// of events (wake-ups included).
    std::size_t wait(int timeout_ms) {
        const int n = EVIO_SYSCALL(epoll_wait, -1, ::epoll_wait(epfd_, events_.get(), max_events, timeout_ms));
        if (n < 0) return 0; // EINTR (or an injected fault): the loop simply turns again
        for (int i = 0; i < n; ++i) {
            const std::uint64_t data = events_[i].data.u64;
            if (data == wake_tag) {
                std::uint64_t v;
                while (::read(evfd_, &v, sizeof v) > 0) {
                }
                woken_.store(false, std::memory_order_release);
                continue;
            }
            const token t = unpack(data);
            slot* s = core_.table.find(t);
            if (!s) {
                // Dropped: the token was deregistered earlier in this batch (or before). Legal
                // only for an older generation of a slot, never a newer one.
                EVIO_CONTRACT(2, "completion.future_generation",
                              core_.table.capacity() > t.index &&
                                  static_cast<std::int32_t>(core_.table.at(t.index).generation -
                                                            t.generation) >= 0);
                continue;
            }
            const std::uint32_t e = events_[i].events;
            if (e & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) s->read_final = true;
            if (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) s->drained &= static_cast<std::uint8_t>(~interest_read);
            if (e & (EPOLLOUT | EPOLLHUP | EPOLLERR)) s->drained &= static_cast<std::uint8_t>(~interest_write);
            // A write op parked from here on (by a coroutine the read side resumes) found the
            // socket full (drained) or waits in core_.retries: the write side needs a retry
            // only if it had an op before (saves a call and a slot lookup per event).
            const bool writer = (e & (EPOLLOUT | EPOLLHUP | EPOLLERR)) && s->q(direction::write).head;
            if (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
                retry(t, direction::read, *s); // `s` may be dangling after this: not used again
                if (writer) retry(t, direction::write);
            } else if (writer) {
                retry(t, direction::write, *s);
            }
        }
        return static_cast<std::size_t>(n);
    }

    /// Wakes a thread blocked in wait(); safe from any thread.
    void wake() noexcept {
        if (woken_.exchange(true, std::memory_order_acq_rel)) return;
        const std::uint64_t one = 1;
        [[maybe_unused]] auto r = ::write(evfd_, &one, sizeof one);
    }

    /// Reactor destruction: nothing is held by the kernel here; parked ops are dropped by the
    /// caller when it destroys their frames.
    void drain_for_destroy() noexcept {}

    std::uint32_t owner_tag() const noexcept { return core_.table.owner(); }

private:
    static constexpr std::uint64_t wake_tag = ~std::uint64_t{0};
    /// Events per epoll_wait: enough for a server's whole ready set, as libuv and mio take
    /// (1024). With 256, 1000 x 64 KiB echo ran at 0.91x raw epoll (which takes 512) and its
    /// client slept 0.37 times per message against 0.19-0.25; with 1024, 1.01x, and no change
    /// where fewer sockets are ready at once (docs/benchmarks.md, findings item 16).
    static constexpr int max_events = 1024;

    std::uint64_t pack(token t) const noexcept {
        return (static_cast<std::uint64_t>(t.generation) << 32) | t.index;
    }
    token unpack(std::uint64_t v) const noexcept {
        return token{static_cast<std::uint32_t>(v), static_cast<std::uint32_t>(v >> 32),
                     core_.table.owner()};
    }
    static bool is_fd_exhaustion(int e) noexcept { return e == EMFILE || e == ENFILE; }

    /// An injected EAGAIN: no edge follows it (the socket may be ready), retry at turn's end.
    void retry_injected(token t, direction d) { core_.retry_later(t, d); }

    /// What attempt() did: finished the op, or must wait for readiness (an edge), or must retry
    /// at the end of the turn (an injected EAGAIN: no edge follows it, the socket may be ready).
    enum class step : std::uint8_t { done, wait, retry };

    /// Runs the op's syscall: reads and writes inline (transfer_now: on the path of every
    /// read_some and write_all), accept and connect out of line.
    EVIO_ALWAYS_INLINE step attempt(operation& op, slot& s) noexcept {
        if (op.kind == op_kind::recv || op.kind == op_kind::send) [[likely]] {
            if (op.provided) return attempt_receive(op, s);
            const transfer_step t = op.kind == op_kind::recv ? transfer_now<op_kind::recv>(op, s)
                                                             : transfer_now<op_kind::send>(op, s);
            return t == transfer_step::done      ? step::done
                   : t == transfer_step::blocked ? step::wait
                                                 : step::retry;
        }
        return attempt_connection(op, s);
    }

    /// attempt() for a receive(): the op takes a pool buffer only now, with the socket ready,
    /// and gives it back at once when the recv finds nothing. A receive() that waits holds no
    /// buffer, so the buffer read into is the one the last lease released (LIFO: still in
    /// cache), however many streams wait (1000 x 64 KiB echo: 16 MiB of buffers, one per
    /// waiting stream, made every copy miss the cache). No buffer free: see no_buffer. Out of
    /// line, so that attempt() stays small enough to be inlined into start() and retry().
    EVIO_NOINLINE step attempt_receive(operation& op, slot& s) noexcept {
        if (!core_.lease_buffer(op)) return no_buffer(op, s);
        const transfer_step t = transfer_now<op_kind::recv>(op, s);
        if (t == transfer_step::done) return step::done;
        --core_.pool.leased;
        core_.pool.put(static_cast<std::uint32_t>(std::exchange(op.buffer, -1)));
        return t == transfer_step::blocked ? step::wait : step::retry;
    }

    /// attempt_receive() with every pool buffer leased: a one-byte MSG_PEEK tells whether the
    /// socket has data. It has: ENOBUFS (no_buffer_space), the data stays queued. It has
    /// none: the op waits for the edge like any read, holding nothing (a receive() fails
    /// only when there is something to receive, as on io_uring and IOCP). The end of the
    /// stream or an error: the op finishes with it.
    step no_buffer(operation& op, slot& s) noexcept {
        switch (peek_now(s, op.error)) {
        case peek_step::data: op.error = ENOBUFS; return step::done;
        case peek_step::empty: return step::wait;
        case peek_step::injected: return step::retry; // no edge follows an injected EAGAIN
        case peek_step::end:                             // an empty lease
        case peek_step::error: return step::done;        // op.error holds it
        }
        return step::done;
    }

    /// attempt() for accept and connect.
    EVIO_NOINLINE step attempt_connection(operation& op, slot& s) noexcept {
        const int fd = s.handle;
        for (;;) {
            bool injected = false;  // the fault seam made this call fail (not the kernel)
            std::size_t none = 0;   // accept moves no bytes
            switch (op.kind) {
            case op_kind::accept: {
                const int c = EVIO_SYSCALL_IO(accept, -1, none, injected,
                                              ::accept4(fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
                if (c >= 0) {
                    op.accepted = c;
                    return step::done;
                }
                if (errno == ECONNABORTED) continue; // the peer gave up before accept: next one
                break;
            }
            case op_kind::connect: {
                if (!op.started) {
                    op.started = true;
                    const int r = EVIO_SYSCALL(
                        connect, -1,
                        ::connect(fd, reinterpret_cast<const sockaddr*>(op.addr), op.addr_len));
                    if (r == 0) return step::done;
                    if (errno == EINPROGRESS) return step::wait;
                    break;
                }
                if (const int err = socket_error(fd); err != 0) {
                    op.error = err;
                    return step::done;
                }
                sockaddr_storage ss{};
                socklen_t len = sizeof ss;
                if (::getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) == 0) return step::done;
                if (errno == ENOTCONN) return step::wait; // an early EPOLLOUT|EPOLLHUP: still connecting
                break;
            }
            case op_kind::recv:
            case op_kind::send: return step::done; // never here: attempt() runs them
            }
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                // The kernel's EAGAIN is followed by an edge when the socket becomes ready; an
                // injected one is not (the socket may be ready already): retry at turn's end.
                return injected ? step::retry : step::wait;
            }
            op.error = errno;
            return step::done;
        }
    }

    reactor_core& core_;
    int epfd_ = -1;
    int evfd_ = -1;
    std::atomic<bool> woken_{false};
    std::unique_ptr<epoll_event[]> events_ = std::make_unique<epoll_event[]>(max_events); // 12 KiB, off the stack
};

static_assert(room<epoll_reactor>);

} // namespace evio::detail

#endif // EVIO_HAS_EPOLL
