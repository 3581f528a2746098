// SPDX-License-Identifier: MIT
// Room io_uring: the completion backend on Linux, through liburing.
//
// Room notes
// - What the OS gives: completions. recv/send/accept/connect go to the kernel as SQEs
//   (io_uring_prep_recv(3) ...); one io_uring_submit_and_wait_timeout(3) per loop turn.
// - One readiness-style shortcut: a recv on a socket known to hold data (the last CQE carried
//   IORING_CQE_F_SOCK_NONEMPTY, or the last inline recv filled its buffer), with nothing else in
//   or bound for the ring, tries recv(MSG_DONTWAIT) inline within the turn budget (recv_now);
//   otherwise it is an SQE, with IORING_RECVSEND_POLL_FIRST when the socket is known empty.
// - A bulk stream (slot::bulk_read: its last read filled a buffer of 8 KiB or more) is read as
//   on epoll: recv at once even beside other ops, and once drained a POLL_ADD whose completion
//   runs the recv inline (dispatch), so each stream's reads sit next to its sends instead of
//   every ready socket's recv running in one task-work batch (docs/backends.md).
// - A send with no other send of its token queued is send(MSG_DONTWAIT) at once (send_now),
//   unless the token's last send found the socket full; what does not fit is an SQE (the kernel
//   polls for room), and the next send tries at once again after a send CQE.
// - user_data = {index:32, generation:24, tag:8}; tag is the direction (one op per token and
//   direction is in the kernel at a time: sends on a socket never reorder), or cancel/wake.
// - Setup: SINGLE_ISSUER|DEFER_TASKRUN|SUBMIT_ALL when the kernel has them (6.1+), else
//   COOP_TASKRUN, else none (DEFER_TASKRUN and io-wq cancellation: docs/reliability.md); the ring starts R_DISABLED and is enabled by the thread that first
//   runs it (io_uring_register(2) IORING_REGISTER_ENABLE_RINGS), so the issuer is the runner.
// - Deregistration: IORING_OP_ASYNC_CANCEL by this token's user_data, never by fd (a dup'ed fd
//   under another token is untouched); each cancelled op resumes after its own CQE; the slot is
//   freed when its in-flight count reaches zero. A CQE for a freed slot is a contract violation.
// - accept is multishot (5.19+): one SQE per listener yields a CQE per connection while waiters
//   queue; connections accepted with no waiter are stashed for the next accept(). When the kernel
//   ends a multishot (no IORING_CQE_F_MORE: EMFILE, ...) it is re-armed while waiters remain.
//   A kernel that rejects multishot (-EINVAL) makes the ring fall back to one-shot accept.
// - receive() (buffer leases): one multishot recv per stream (6.0+; one-shot before) with
//   IOSQE_BUFFER_SELECT from a provided-buffer ring (io_uring_register_buf_ring, 5.19+) that
//   buffer_pool fills a chunk at a time. A CQE with no waiting read goes to the stream's stash
//   (slot::buffered); a stash of stash_cap buffers cancels the multishot (the rest stays in the
//   socket: TCP flow control). While a multishot is armed or a stash holds data, every read of
//   the stream (read_some too) is served from them, so bytes never reorder. Two CQEs in a row
//   that fill buffers of 8 KiB or more (a bulk stream) cancel the multishot: once it is over
//   and the stash is empty, receive() reads into a buffer from the pool's free list like
//   read_some (to_plain), until a short read ends the bulk mode. An empty ring answers
//   -ENOBUFS whether or not the socket has data: the room peeks (MSG_PEEK) and, with nothing
//   there, the receive() waits on a poll holding no buffer.
// - Close is IORING_OP_CLOSE, submitted at once (the fd number is free on return, like close(2)).
// - Quirks: -EAGAIN/-EINTR in a CQE are resubmitted; a full SQ is flushed, and what still does
//   not fit waits in a backlog for the next turn (io_uring_get_sqe(3) may return NULL).
#pragma once

#include <evio/detail/platform.hpp>

#if EVIO_HAS_URING

#include <evio/detail/operation.hpp>
#include <evio/detail/posix/socket.hpp>
#include <evio/detail/posix/transfer.hpp>
#include <evio/detail/reactor_core.hpp>
#include <evio/detail/room.hpp>
#include <evio/detail/syscall.hpp>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <liburing.h>
#include <new>
#include <poll.h>
#include <string>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <system_error>
#include <unistd.h>
#include <vector>

namespace evio::detail {

class uring_reactor {
public:
    static constexpr const char* name = "io_uring";

    /// Sets up the ring and probes every opcode evio uses.
    /// Errors: throws std::system_error naming the failed step (e.g. "io_uring_setup: Operation
    /// not permitted (blocked by seccomp?)").
    uring_reactor(reactor_core& core, unsigned entries) : core_(core) {
        if (entries < 8) entries = 8;
        int err = 0;
        if (fault_injected(sys::uring_setup, &err)) fail("io_uring_setup", err);
        const unsigned flag_sets[] = {
            IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_SUBMIT_ALL |
                IORING_SETUP_R_DISABLED,
            IORING_SETUP_COOP_TASKRUN | IORING_SETUP_SUBMIT_ALL, 0u};
        int rc = -EINVAL;
        for (const unsigned flags : flag_sets) {
            io_uring_params p{};
            p.flags = flags | IORING_SETUP_CQSIZE;
            p.cq_entries = entries * 4; // headroom: completions of a turn rarely overflow
            rc = io_uring_queue_init_params(entries, &ring_, &p);
            if (rc == 0) {
                flags_ = flags;
                features_ = p.features;
                break;
            }
            if (rc != -EINVAL) break; // EPERM/ENOSYS/ENOMEM: no flag set will help
        }
        if (rc != 0) fail("io_uring_setup", -rc);
        if (!(features_ & IORING_FEAT_NODROP)) {
            io_uring_queue_exit(&ring_);
            fail("io_uring feature NODROP (kernel >= 5.5)", ENOSYS);
        }
        probe_opcodes();
        if (!(flags_ & IORING_SETUP_R_DISABLED)) enabled_ = true;
        evfd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (evfd_ < 0) {
            const int e = errno;
            io_uring_queue_exit(&ring_);
            fail("eventfd", e);
        }
    }
    uring_reactor(const uring_reactor&) = delete;
    uring_reactor& operator=(const uring_reactor&) = delete;
    ~uring_reactor() {
        io_uring_queue_exit(&ring_);
        ::close(evfd_);
        if (br_) ::operator delete(static_cast<void*>(br_), std::align_val_t{4096});
    }

    /// Sockets need no registration with the ring: the token is all a CQE needs. A new socket
    /// starts "drained" (nothing known to be queued): its first recv is an SQE, not a recv(2).
    std::error_code add(token t, native_handle) noexcept {
        if (slot* s = core_.table.find(t)) s->drained |= interest_read;
        return {};
    }

    /// receive(): true when the kernel fills the buffers (a provided-buffer ring is registered;
    /// set up on the first call). False when the kernel refuses it (< 5.19): receive() then
    /// leases a pool buffer and reads into it, as on epoll.
    bool provides_buffers() {
        if (buffers_ == 0) buffers_ = setup_buffer_ring() ? 1 : -1;
        return buffers_ > 0;
    }

    /// A buffer comes back from a lease (or a stash): into the kernel's ring at once, or to the
    /// pool's free list when it came from there (a bulk stream's plain read, to_plain).
    void give_back(std::uint32_t id) noexcept {
        if (br_ == nullptr || (id & from_free_list) != 0) {
            core_.pool.put(id & ~from_free_list);
            return;
        }
        io_uring_buf_ring_add(br_, core_.pool.data(id), static_cast<unsigned>(core_.pool.buffer_size()),
                              static_cast<unsigned short>(id), br_mask_, 0);
        io_uring_buf_ring_advance(br_, 1);
    }

    /// Starts `op`. Returns false when it finished inline (the caller resumes at once). Inlined
    /// into reactor::start (pinned: GCC stopped doing it as the function grew, which cost 30
    /// user-space instructions per echoed message and 14 per read_some; callgrind).
    EVIO_ALWAYS_INLINE bool start(operation& op, slot& s) {
        if (op.kind == op_kind::accept && multishot_ok_) return start_accept(op, s);
        // A receive() on a bulk stream with nothing armed or stashed reads like read_some into a
        // pool buffer, so it takes the bulk path below (docs/backends.md).
        if (op.provided && s.bulk_read && !s.multishot && !s.buffered) [[unlikely]]
            (void)to_plain(op);
        if (op.kind == op_kind::recv && (op.provided || s.multishot || s.buffered)) [[unlikely]]
            return start_stream(op, s);
        const direction d = direction_of(op.kind);
        op_queue& q = s.q(d);
        const bool idle = q.empty();
        // Data is known to be queued (the kernel said so, or the last recv filled its buffer)
        // and nothing else is in or on its way to the ring: this SQE would cost a whole
        // io_uring_enter of its own, a recv(2) is cheaper (read_some on a streaming socket
        // 1.34x -> about 1.05x a raw recv). With other ops in flight the SQE rides along in the
        // turn's one enter, which wins: inline recvs there cost 18 % of the 64 KiB echo cells.
        if (idle && op.kind == op_kind::recv && !(s.drained & interest_read) && recv_now(op, s))
            return false;
        // A send goes out at once, as on epoll, unless the last one found the socket full: on
        // this machine a turn's sends batched into its one io_uring_enter go out in a burst, the
        // peer drains it and sleeps, and every burst pays the peer's wake-up (16 x 64 KiB echo:
        // 41,800 -> 46,700-58,700 msgs/s; small messages within noise; docs/backends.md).
        if (idle && op.kind == op_kind::send && !(s.drained & interest_write) && send_now(op, s))
            return false;
        q.push(&op);
        s.interest |= interest_of(d);
        ++core_.pending_ops;
        if (idle && !(op.kind == op_kind::accept && s.accept_backoff)) submit(op, s);
        return true;
    }

    /// The inline recv of start(), within the token's turn budget, when nothing else is in or
    /// bound for the ring or the stream is bulk (its last read filled the buffer: the next
    /// bytes are most likely queued already, and reading them now keeps each message's recv
    /// next to its send, as epoll does). True when the op finished (data, end of stream or error);
    /// false when it did not run, the socket had nothing (it is marked drained: the SQE will
    /// poll first) or read_exact still needs more. Inlined with its transfer step, as on epoll:
    /// a ready read_some makes one call (reactor::start) instead of three (-21 user-space
    /// instructions per read_some, -15 per echoed message; callgrind, docs/benchmarks.md).
    EVIO_ALWAYS_INLINE bool recv_now(operation& op, slot& s) noexcept {
        if ((!s.bulk_read && (in_kernel_ != 0 || io_uring_sq_ready(&ring_) != 0)) ||
            !backlog_.empty() || !core_.within_budget(s))
            return false;
        return transfer_now<op_kind::recv>(op, s) == transfer_step::done;
    }

    /// The inline send of start(), within the token's turn budget and behind no backlog. True
    /// when the op finished (all sent, write_some's partial count, or an error); false when it
    /// did not run or the socket filled up (marked: the SQE for the rest polls, and the next
    /// send is an SQE until one completes). Inlined, like recv_now (-20 per write_all).
    EVIO_ALWAYS_INLINE bool send_now(operation& op, slot& s) noexcept {
        if (!backlog_.empty() || !core_.within_budget(s)) return false;
        return transfer_now<op_kind::send>(op, s) == transfer_step::done;
    }

    /// Deregistration steps 2-3 for this token only: cancel what the kernel holds by user_data,
    /// resume the never-submitted ops with ECANCELED now.
    void cancel_all(slot& s) {
        if (s.multishot) {
            push_cancel(multishot_target(s, index_of(s)));
            // An armed multishot (accept, or a stream's recv) holds the socket until its final
            // CQE: count it as pending so run() does not return while a listener still accepts
            // connections or the kernel still holds a stream's buffers.
            ++core_.pending_ops;
        }
        close_stash(index_of(s));
        close_stream(s, index_of(s));
        for (int di = 0; di < 2; ++di) {
            op_queue& q = s.queue[di];
            operation* head = q.head;
            operation* kept = nullptr;
            if (head && head->in_kernel) {
                kept = q.pop();
                push_cancel(encode(kept->tok, static_cast<direction>(di)));
            }
            while (operation* op = q.pop()) {
                op->error = ECANCELED;
                --core_.pending_ops;
                core_.complete_later(*op);
            }
            if (kept) q.push(kept);
        }
        s.interest = interest_none;
    }

    /// Cancels one op: in the kernel -> IORING_OP_ASYNC_CANCEL by its user_data, and it resumes
    /// after its own CQE (ECANCELED, or its real result if it won the race); queued behind the
    /// head -> unlinked and resumed later in this turn with ECANCELED.
    void cancel(operation& op, slot& s) {
        if (op.in_kernel) {
            // Safe by order: the next op of this direction is prepared only after this op's CQE,
            // so after this cancel SQE; user_data never names a later op.
            op.cancel_requested = true;
            push_cancel(encode(op.tok, direction_of(op.kind)));
            return;
        }
        (void)core_.cancel_queued(op, s, ECANCELED);
    }

    /// Closes a deregistered socket through the ring (IORING_OP_CLOSE), submitted at once so the
    /// descriptor number is free when this returns, as with close(2). Its in-flight ops were
    /// cancelled by user_data before; the kernel keeps the file alive until they retire.
    void close_handle(native_handle fd) {
        io_uring_sqe* sqe = backlog_.empty() ? get_sqe() : nullptr;
        if (!sqe) {
            close_native(fd);
            return;
        }
        io_uring_prep_close(sqe, fd);
        io_uring_sqe_set_data64(sqe, tag_close << tag_shift);
        // No CQE on success (5.17+): a close must not satisfy the next turn's wait for one
        // completion while the real ones still sit in deferred task work.
        if (features_ & IORING_FEAT_CQE_SKIP) io_uring_sqe_set_flags(sqe, IOSQE_CQE_SKIP_SUCCESS);
        enable();
        if (EVIO_SYSCALL(close, -EIO, io_uring_submit(&ring_)) < 0) {
            // Not submitted: the SQE stays in the ring and would go out with the next submit,
            // closing whatever socket reuses this number by then. Make it a no-op first.
            io_uring_prep_nop(sqe);
            io_uring_sqe_set_data64(sqe, tag_close << tag_shift);
            if (features_ & IORING_FEAT_CQE_SKIP) io_uring_sqe_set_flags(sqe, IOSQE_CQE_SKIP_SUCCESS);
            close_native(fd);
        }
    }

    void retry(token t, direction d) {
        slot* s = core_.table.find(t);
        if (!s) return;
        if (s->listener && multishot_ok_ && d == direction::read) {
            // Hand stashed connections to waiters, then make sure the multishot is armed.
            for (;;) {
                s = core_.table.find(t);
                if (!s) return;
                op_queue& q = s->q(d);
                if (q.empty() || t.index >= stash_.size() || stash_[t.index].empty()) break;
                if (!core_.within_budget(*s)) {
                    core_.retry_later(t, d);
                    return;
                }
                operation* op = core_.pop_head(*s, d);
                op->accepted = take_stashed(t.index);
                op->waiter.resume();
            }
            if (!s->multishot && !s->accept_backoff && !s->q(d).empty()) arm_multishot(*s, t);
            return;
        }
        if (d == direction::read && !s->listener) {
            feed(t);
            return;
        }
        operation* head = s->q(d).head;
        if (head && !head->in_kernel && !(head->kind == op_kind::accept && s->accept_backoff))
            submit(*head, *s);
    }

    /// Submits what is queued and waits up to `timeout_ms` (-1: forever) for completions, then
    /// dispatches the batch, resuming waiters inline. Returns the number of CQEs (wake-ups
    /// included).
    std::size_t wait(int timeout_ms) {
        enable();
        flush_backlog();
        arm_wake();
        io_uring_cqe* cqe = nullptr;
        int rc;
        if (timeout_ms == 0) {
            // GETEVENTS matters: with DEFER_TASKRUN completions are posted only when the issuer
            // asks for events; a plain submit would let a busy reactor never see its I/O.
            rc = EVIO_SYSCALL(uring_submit, -EAGAIN, io_uring_submit_and_get_events(&ring_));
        } else if (timeout_ms < 0) {
            rc = EVIO_SYSCALL(uring_submit, -EAGAIN,
                              io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, nullptr, nullptr));
        } else {
            __kernel_timespec ts{};
            ts.tv_sec = timeout_ms / 1000;
            ts.tv_nsec = static_cast<long long>(timeout_ms % 1000) * 1'000'000;
            rc = EVIO_SYSCALL(uring_submit, -EAGAIN,
                              io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &ts, nullptr));
        }
        (void)rc; // -ETIME, -EINTR, -EBUSY, -EAGAIN: reap what is there, resubmit next turn
        return reap();
    }

    void wake() noexcept {
        if (woken_.exchange(true, std::memory_order_acq_rel)) return;
        const std::uint64_t one = 1;
        [[maybe_unused]] auto r = ::write(evfd_, &one, sizeof one);
    }

    /// Reactor destruction: cancel everything the kernel holds and wait for every CQE, so no
    /// buffer in a coroutine frame is written after the frame is destroyed.
    void drain_for_destroy() noexcept {
        enable();
        core_.destroying = true;
        std::size_t held = 0;
        core_.table.for_each_live([&](std::uint32_t i, slot& s) {
            if (s.multishot) {
                push_cancel(multishot_target(s, i));
                ++held;
            }
            close_stash(i);
            close_stream(s, i);
            for (int di = 0; di < 2; ++di) {
                operation* head = s.queue[di].head;
                if (head && head->in_kernel) {
                    push_cancel(encode(head->tok, static_cast<direction>(di)));
                    ++held;
                }
            }
        });
        if (wake_armed_) {
            push_cancel(wake_tag);
            ++held;
        }
        flush_backlog();
        while (in_kernel_ > 0 || wake_armed_) {
            io_uring_cqe* cqe = nullptr;
            if (injected_.empty())
                io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, nullptr, nullptr);
            else
                dispatch_injected();
            reap();
            flush_backlog();
        }
        (void)held;
    }

    unsigned setup_flags() const noexcept { return flags_; }

private:
    static constexpr std::uint64_t tag_shift = 56;
    /// A cancel's user_data is its target's with this bit set in the tag, so its CQE says which
    /// op it was for (see cancel_done).
    static constexpr std::uint64_t tag_cancel_bit = 0x80;
    static constexpr std::uint64_t tag_wake = 3;
    static constexpr std::uint64_t tag_accept_ms = 4; ///< a listener's multishot accept
    static constexpr std::uint64_t tag_close = 5;     ///< IORING_OP_CLOSE of a deregistered socket
    static constexpr std::uint64_t tag_recv_ms = 6;   ///< a stream's multishot recv (receive())
    static constexpr int buffer_group = 0;            ///< the provided-buffer ring's group id
    /// Marks the id of a buffer taken from the pool's free list (to_plain): the lease hands the
    /// id back to give_back, which returns that buffer to the free list, not to the ring.
    static constexpr std::uint32_t from_free_list = 1u << 30;
    /// operation::buffer of a receive() whose poll waits for data: it gave its pool buffer back
    /// when the poll was prepared and takes one (to_plain) when the poll completes, so waiting
    /// streams hold no buffers and the one read into is the last one released, still in cache
    /// (as on epoll: 1000 x 64 KiB, one 16 KiB buffer per waiting stream made every copy miss).
    static constexpr std::int32_t buffer_after_poll = -2;
    /// Buffers a stream's stash may hold before its multishot recv is cancelled.
    static constexpr std::size_t stash_cap = 8;
    static constexpr std::uint64_t wake_tag = tag_wake << tag_shift;

    [[noreturn]] static void fail(const char* what, int err) {
        std::string msg = what;
        if (err == EPERM || err == EACCES)
            msg += " (blocked by seccomp or kernel.io_uring_disabled? see docs/backends.md)";
        throw std::system_error(std::error_code(err, std::system_category()), msg);
    }

    void probe_opcodes() {
        int err = 0;
        if (fault_injected(sys::uring_probe, &err)) {
            io_uring_queue_exit(&ring_);
            fail("io_uring probe", err);
        }
        io_uring_probe* probe = io_uring_get_probe_ring(&ring_);
        if (!probe) {
            io_uring_queue_exit(&ring_);
            fail("io_uring probe (IORING_REGISTER_PROBE, kernel >= 5.6)", ENOSYS);
        }
        const struct {
            int op;
            const char* name;
        } needed[] = {{IORING_OP_ACCEPT, "IORING_OP_ACCEPT"},
                      {IORING_OP_CONNECT, "IORING_OP_CONNECT"},
                      {IORING_OP_RECV, "IORING_OP_RECV"},
                      {IORING_OP_SEND, "IORING_OP_SEND"},
                      {IORING_OP_ASYNC_CANCEL, "IORING_OP_ASYNC_CANCEL"},
                      {IORING_OP_CLOSE, "IORING_OP_CLOSE"},
                      {IORING_OP_READ, "IORING_OP_READ"}};
        for (const auto& n : needed) {
            if (!io_uring_opcode_supported(probe, n.op)) {
                io_uring_free_probe(probe);
                io_uring_queue_exit(&ring_);
                fail((std::string("io_uring probe: opcode ") + n.name + " unsupported").c_str(),
                     ENOSYS);
            }
        }
        io_uring_free_probe(probe);
    }

    void enable() noexcept {
        if (enabled_) return;
        enabled_ = true;
        // liburing 2.3 declares io_uring_enable_rings but does not export it: call the register op.
        (void)::syscall(__NR_io_uring_register, ring_.ring_fd, IORING_REGISTER_ENABLE_RINGS,
                        nullptr, 0);
    }

    static std::uint64_t encode(token t, direction d) noexcept {
        return static_cast<std::uint64_t>(t.index) |
               (static_cast<std::uint64_t>(t.generation & 0xffffffu) << 32) |
               (static_cast<std::uint64_t>(d) << tag_shift);
    }

    static std::uint64_t encode_ms(std::uint32_t generation, std::uint32_t index,
                                   std::uint64_t tag = tag_accept_ms) noexcept {
        return static_cast<std::uint64_t>(index) |
               (static_cast<std::uint64_t>(generation & 0xffffffu) << 32) | (tag << tag_shift);
    }
    /// The user_data of the multishot armed on `s`: accept on a listener, recv on a stream.
    static std::uint64_t multishot_target(const slot& s, std::uint32_t index) noexcept {
        return encode_ms(s.generation, index, s.listener ? tag_accept_ms : tag_recv_ms);
    }

    std::uint32_t index_of(const slot& s) noexcept {
        return static_cast<std::uint32_t>(&s - &core_.table.at(0));
    }

    /// accept with multishot: take a stashed connection, or wait for the armed multishot.
    bool start_accept(operation& op, slot& s) {
        op_queue& q = s.q(direction::read);
        const std::uint32_t index = op.tok.index;
        const bool stashed = index < stash_.size() && !stash_[index].empty();
        if (q.empty() && stashed && core_.within_budget(s)) {
            op.accepted = take_stashed(index);
            return false;
        }
        q.push(&op);
        s.interest |= interest_read;
        ++core_.pending_ops;
        if (stashed)
            core_.retry_later(op.tok, direction::read); // over budget: hand it out next in line
        else if (!s.multishot && !s.accept_backoff)
            arm_multishot(s, op.tok);
        return true;
    }

    void arm_multishot(slot& s, token t) {
        io_uring_sqe* sqe = get_sqe();
        if (!sqe) {
            backlog_.push_back({encode_ms(t.generation, t.index), false});
            return;
        }
        io_uring_prep_multishot_accept(sqe, s.handle, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        io_uring_sqe_set_data64(sqe, encode_ms(t.generation, t.index));
        s.multishot = true;
        ++s.in_flight;
        ++in_kernel_;
    }

    int take_stashed(std::uint32_t index) noexcept {
        auto& v = stash_[index];
        const int fd = v.front();
        v.erase(v.begin());
        return fd;
    }

    void close_stash(std::uint32_t index) noexcept {
        if (index >= stash_.size()) return;
        for (int fd : stash_[index]) ::close(fd);
        stash_[index].clear();
    }

    /// The slot a multishot CQE (accept or recv) is for; its last CQE (no IORING_CQE_F_MORE)
    /// disarms it and takes it off the in-flight counts.
    slot& multishot_slot(std::uint32_t index, std::uint32_t gen24, unsigned flags) noexcept {
        slot* sp = index < core_.table.capacity() ? &core_.table.at(index) : nullptr;
        // Contract: a CQE for a slot that was freed means a buffer was released too early.
        EVIO_CONTRACT(1, "completion.after_free",
                      sp && sp->state != slot_state::free && (sp->generation & 0xffffffu) == gen24 &&
                          sp->multishot && sp->in_flight > 0);
        if (!(flags & IORING_CQE_F_MORE)) {
            sp->multishot = false;
            --sp->in_flight;
            --in_kernel_;
        }
        return *sp;
    }

    /// A CQE of a listener's multishot accept.
    void dispatch_accept(std::uint32_t index, std::uint32_t gen24, int res, unsigned flags) {
        slot& s = multishot_slot(index, gen24, flags);
        const bool more = (flags & IORING_CQE_F_MORE) != 0;
        if (core_.destroying || s.state == slot_state::deregistering) {
            if (res >= 0) ::close(res);
            if (!more && !core_.destroying) --core_.pending_ops; // counted by cancel_all
            if (!core_.destroying && s.in_flight == 0) core_.table.finish_deregister(index);
            return;
        }
        op_queue& q = s.q(direction::read);
        if (res == -EINVAL && !more && multishot_ok_) {
            multishot_ok_ = false; // kernel < 5.19: one-shot accept from now on
            if (operation* head = q.head) submit(*head, s);
            return;
        }
        operation* op = q.head;
        if (res >= 0 && !op) { // nobody waits: keep it for the next accept()
            if (stash_.size() <= index) stash_.resize(index + 1);
            stash_[index].push_back(res);
            return;
        }
        if (!op) return; // an error with no waiter: re-armed by the next accept()
        if (res >= 0) {
            op->accepted = res;
        } else if (res == -EAGAIN || res == -EINTR || res == -ECONNABORTED) {
            if (!s.multishot) arm_multishot(s, op->tok);
            return;
        } else {
            op->error = -res;
            if (op->error == EMFILE || op->error == ENFILE) core_.note_accept_exhausted(s, op->tok);
        }
        core_.pop_head(s, direction::read);
        if (!s.multishot && !q.empty() && !s.accept_backoff) arm_multishot(s, q.head->tok);
        op->waiter.resume(); // `s` may be dangling from here on
    }

    // ---- receive(): provided buffers, multishot recv, the per-stream stash ----

    struct received { ///< one buffer of received data, `off` bytes of it already read
        std::uint32_t id;
        std::uint32_t len;
        std::uint32_t off;
    };
    struct stream_stash {
        std::vector<received> q; ///< oldest first, from `head`
        std::size_t head = 0;
        int end = 1;             ///< after the data: 0 end of stream, -errno an error, 1 nothing
        bool cancelling = false; ///< the multishot is being cancelled because the stash is full
        std::size_t size() const noexcept { return q.size() - head; }
    };

    stream_stash& stream_of(std::uint32_t index) {
        if (streams_.size() <= index) streams_.resize(index + 1);
        return streams_[index];
    }

    /// Registers the provided-buffer ring (one entry per buffer the pool may ever hold) and puts
    /// the pool's first chunk in it. False when the kernel refuses (< 5.19) or memory is short.
    bool setup_buffer_ring() noexcept {
        unsigned entries = 1;
        while (entries < core_.pool.max()) entries <<= 1;
        std::size_t bytes = entries * sizeof(io_uring_buf);
        if (bytes < 4096) bytes = 4096;
        void* mem = ::operator new(bytes, std::align_val_t{4096}, std::nothrow);
        if (mem == nullptr) return false;
        std::memset(mem, 0, bytes);
        auto* br = static_cast<io_uring_buf_ring*>(mem);
        io_uring_buf_ring_init(br);
        io_uring_buf_reg reg{};
        reg.ring_addr = reinterpret_cast<std::uint64_t>(mem);
        reg.ring_entries = entries;
        reg.bgid = buffer_group;
        int err = 0;
        if (fault_injected(sys::uring_probe, &err) || io_uring_register_buf_ring(&ring_, &reg, 0) < 0) {
            ::operator delete(mem, std::align_val_t{4096});
            return false;
        }
        br_ = br;
        br_mask_ = static_cast<unsigned>(io_uring_buf_ring_mask(entries));
        (void)grow_ring();
        return true;
    }

    /// One more chunk of the pool into the ring; at the pool's limit, the buffers the free list
    /// holds (plain reads of bulk streams put theirs there). False when there are none: every
    /// buffer is leased or stashed.
    bool grow_ring() noexcept {
        const std::uint32_t n = core_.pool.grow();
        const std::uint32_t first = core_.pool.allocated() - n;
        for (std::uint32_t i = 0; i < n; ++i)
            io_uring_buf_ring_add(br_, core_.pool.data(first + i),
                                  static_cast<unsigned>(core_.pool.buffer_size()),
                                  static_cast<unsigned short>(first + i), br_mask_, static_cast<int>(i));
        io_uring_buf_ring_advance(br_, static_cast<int>(n));
        if (n > 0) return true;
        int moved = 0;
        for (std::int32_t id; moved < static_cast<int>(buffer_pool::chunk) && (id = core_.pool.pop_free()) >= 0; ++moved)
            io_uring_buf_ring_add(br_, core_.pool.data(static_cast<std::uint32_t>(id)),
                                  static_cast<unsigned>(core_.pool.buffer_size()),
                                  static_cast<unsigned short>(id), br_mask_, moved);
        io_uring_buf_ring_advance(br_, moved);
        return moved > 0;
    }

    /// Deregistration or destruction: the stash's buffers go back to the ring.
    void close_stream(slot& s, std::uint32_t index) noexcept {
        s.buffered = false;
        if (index >= streams_.size()) return;
        stream_stash& st = streams_[index];
        for (std::size_t i = st.head; i < st.q.size(); ++i) {
            --core_.pool.stashed;
            give_back(st.q[i].id);
        }
        st.q.clear();
        st.head = 0;
        st.end = 1;
        st.cancelling = false;
    }

    /// start() of a read on a stream with stream state (a receive(), or a read while a multishot
    /// is armed or data is stashed): from the stash at once when it is next in line and within
    /// budget, else queued behind the others.
    bool start_stream(operation& op, slot& s) {
        op_queue& q = s.q(direction::read);
        if (q.empty() && s.buffered && core_.within_budget(s) && take(op, s, op.tok.index))
            return false;
        q.push(&op);
        s.interest |= interest_read;
        ++core_.pending_ops;
        // The armed multishot will deliver; else kick_stream, or an SQE for a plain read.
        if (q.head == &op && !s.multishot) submit(op, s);
        return true;
    }

    /// The head read of a stream needs data: stashed data is handed out at the end of the turn;
    /// an armed multishot will deliver it; else a receive() arms one (a plain read goes on as
    /// an ordinary recv SQE: submit routes here only while stream state exists).
    void kick_stream(operation& op, slot& s) {
        if (s.buffered)
            core_.retry_later(op.tok, direction::read);
        else if (!s.multishot && op.provided && s.bulk_read && to_plain(op))
            submit(op, s); // a plain read now: the bulk path
        else if (!s.multishot)
            arm_receive(s, op.tok);
    }

    /// Turns a receive() into a plain read into a pool buffer from the free list (it goes
    /// back there, not to the kernel's ring: give_back), as receive() reads on epoll. For a
    /// bulk stream, whose multishot was cancelled (dispatch_receive), and again when its poll
    /// completes (buffer_after_poll). False when the pool has no buffer to spare: the
    /// receive() stays on the ring (start, kick_stream) or fails with ENOBUFS (the poll).
#if defined(__GNUC__)
    __attribute__((noinline))
#endif
    bool to_plain(operation& op) {
        if (!core_.lease_buffer(op)) return false;
        op.provided = false;
        op.buffer = static_cast<std::int32_t>(static_cast<std::uint32_t>(op.buffer) | from_free_list);
        op.done = 0;
        return true;
    }

    /// Hands stashed data to the waiting reads of `t`, oldest first, within the turn budget; then
    /// makes sure the head has something coming.
    void feed(token t) {
        for (;;) {
            slot* s = core_.table.find(t);
            if (!s) return;
            op_queue& q = s->q(direction::read);
            operation* op = q.head;
            if (!op || op->in_kernel) return; // a plain recv SQE in flight: its CQE goes on
            if (!s->buffered) {
                submit(*op, *s);
                return;
            }
            if (!core_.within_budget(*s)) {
                core_.retry_later(t, direction::read);
                return;
            }
            if (!take(*op, *s, t.index)) continue; // read_exact emptied the stash: wait for more
            core_.pop_head(*s, direction::read);
            op->waiter.resume(); // `s` may be dangling from here on
        }
    }

    /// Serves `op` from the stash. True when it finished: a receive() got the oldest buffer
    /// (the lease takes it over), a plain read got a copy (read_exact: the whole length), or the
    /// stash's end (end of stream, an error) was reached.
    bool take(operation& op, slot& s, std::uint32_t index) noexcept {
        stream_stash& st = streams_[index];
        bool finished = false;
        while (!finished && st.head < st.q.size()) {
            received& e = st.q[st.head];
            const std::uint32_t id = e.id;
            if (op.provided) {
                op.buffer = static_cast<std::int32_t>(id);
                op.buf = core_.pool.data(id) + e.off;
                op.done = e.len - e.off;
                pop_received(st);
                --core_.pool.stashed;
                ++core_.pool.leased;
                finished = true;
                break;
            }
            const std::size_t n = std::min<std::size_t>(e.len - e.off, op.len - op.done);
            std::memcpy(op.buf + op.done, core_.pool.data(id) + e.off, n);
            op.done += n;
            e.off += static_cast<std::uint32_t>(n);
            if (e.off == e.len) {
                pop_received(st);
                --core_.pool.stashed;
                give_back(id);
            }
            finished = !op.all || op.done == op.len;
        }
        if (!finished && st.end <= 0) { // all data served: the end of the stream, or an error
            if (st.end < 0) {
                op.error = -st.end;
                st.end = 1; // an error is reported once; the end of the stream stays
            } else if (op.all && op.done < op.len) {
                op.error = error_eof;
            }
            finished = true;
        }
        s.buffered = st.size() != 0 || st.end <= 0;
        return finished;
    }

    static void pop_received(stream_stash& st) noexcept {
        if (++st.head == st.q.size()) {
            st.q.clear();
            st.head = 0;
        }
    }

    /// Arms the stream's multishot recv (one-shot on kernels < 6.0) into the provided buffers.
    void arm_receive(slot& s, token t) {
        const std::uint64_t ud = encode_ms(t.generation, t.index, tag_recv_ms);
        if (fault_hook_slot().load(std::memory_order_relaxed) != nullptr) [[unlikely]] {
            std::size_t n = core_.pool.buffer_size();
            if (const int err = fault_error_io(sys::ring_recv, n)) { // completes as a final CQE
                injected_.push_back({ud, -err});
                s.multishot = true;
                ++s.in_flight;
                ++in_kernel_;
                wake();
                return;
            }
        }
        io_uring_sqe* sqe = backlog_.empty() ? get_sqe() : nullptr;
        if (!sqe) {
            backlog_.push_back({ud, false});
            return;
        }
        if (recv_ms_ok_)
            io_uring_prep_recv_multishot(sqe, s.handle, nullptr, 0, 0);
        else
            io_uring_prep_recv(sqe, s.handle, nullptr, static_cast<unsigned>(core_.pool.buffer_size()), 0);
        sqe->flags |= IOSQE_BUFFER_SELECT;
        sqe->buf_group = buffer_group;
        io_uring_sqe_set_data64(sqe, ud);
        s.multishot = true;
        ++s.in_flight;
        ++in_kernel_;
    }

    /// A CQE of a stream's multishot recv: data into the stash, then to the waiting reads.
    void dispatch_receive(std::uint32_t index, std::uint32_t gen24, int res, unsigned flags) {
        slot& s = multishot_slot(index, gen24, flags);
        const bool more = (flags & IORING_CQE_F_MORE) != 0;
        const bool has_buffer = (flags & IORING_CQE_F_BUFFER) != 0;
        const auto id = static_cast<std::uint32_t>(flags >> IORING_CQE_BUFFER_SHIFT);
        if (core_.destroying || s.state == slot_state::deregistering) {
            if (has_buffer) give_back(id);
            if (!more && !core_.destroying) --core_.pending_ops; // counted by cancel_all
            if (!core_.destroying && s.in_flight == 0) core_.table.finish_deregister(index);
            return;
        }
        // Two full buffers in a row: a bulk stream. Its multishot is cancelled and its reads go
        // plain once it is over (kick_stream); the cancelled multishot's last CQEs do not
        // change that decision (a short one would make the cancel a waste).
        bool bulk = false;
        if (res > 0) {
            const bool full = is_bulk(static_cast<std::size_t>(res), core_.pool.buffer_size());
            if ((full || s.bulk_read) && !stream_of(index).cancelling) {
                bulk = full && s.bulk_read && more;
                s.bulk_read = full;
            }
        }
        if (!more) stream_of(index).cancelling = false; // this multishot is over
        op_queue& q = s.q(direction::read);
        if (res > 0 && has_buffer && !s.buffered && q.head && q.head->provided) {
            // The common case: a receive() waits and nothing is stashed before this buffer.
            operation& op = *q.head;
            op.buffer = static_cast<std::int32_t>(id);
            op.buf = core_.pool.data(id);
            op.done = static_cast<std::size_t>(res);
            ++core_.pool.leased;
            core_.pop_head(s, direction::read);
            if (operation* next = q.head; next && !s.multishot) submit(*next, s);
            if (bulk) stop_multishot(s, index);
            op.waiter.resume(); // `s` may be dangling from here on
            return;
        }
        stream_stash& st = stream_of(index);
        bool starved = false;
        if (res > 0 && has_buffer) {
            st.q.push_back({id, static_cast<std::uint32_t>(res), 0});
            ++core_.pool.stashed;
            s.buffered = true;
        } else if (has_buffer) {
            give_back(id);
        }
        if (res == -ENOBUFS) {
            // The ring ran dry. Grow the pool only for a receive() that waits with nothing
            // stashed: a stream nobody reads never makes it grow.
            const operation* head = s.q(direction::read).head;
            if (head && head->provided && !s.buffered) starved = !grow_ring();
        } else if (res == -EINVAL && recv_ms_ok_) {
            recv_ms_ok_ = false; // kernel < 6.0: one-shot recvs with a selected buffer from now on
        } else if (res == 0 && !more) {
            st.end = 0;
            s.buffered = true;
        } else if (res < 0 && res != -EAGAIN && res != -EINTR && res != -ECANCELED) {
            st.end = res;
            s.buffered = true;
        }
        const token t{index, s.generation, core_.table.owner()};
        operation* head = s.q(direction::read).head;
        if (starved && head && head->provided && !s.buffered && !s.multishot) {
            // Every buffer is leased or stashed. The kernel selects a buffer when it issues the
            // recv, data or not, so look first: data there, this receive() fails and the data
            // stays queued; nothing there, it waits on a poll holding no buffer, and reads from
            // the ring (or fails) when the poll completes, as on epoll and IOCP.
            int err = 0;
            switch (peek_now(s, err)) {
            case peek_step::data: {
                op_queue& q = s.q(direction::read);
                core_.pop_head(s, direction::read);
                head->error = ENOBUFS;
                if (!q.empty()) core_.retry_later(t, direction::read);
                head->waiter.resume();
                return;
            }
            case peek_step::empty:
            case peek_step::injected: // the poll finds the socket ready at once if it is
                head->provided = false;
                head->buffer = buffer_after_poll; // submit() prepares the poll
                submit(*head, s);
                return;
            case peek_step::end: st.end = 0; s.buffered = true; break;
            case peek_step::error: st.end = -err; s.buffered = true; break;
            }
        }
        feed(t); // resumes readers: `s` and `st` may be dangling after it
        slot* now = core_.table.find(t);
        stream_stash& left = streams_[index];
        // Nobody reads this stream fast enough: stop taking buffers for it. Or it is a bulk
        // stream: its reads go plain (kick_stream) once the multishot is over.
        if (now && (left.size() >= stash_cap || bulk)) stop_multishot(*now, index);
    }

    /// Cancels the stream's armed multishot recv (once); what it delivers until its last CQE
    /// is stashed or handed out as usual.
    void stop_multishot(slot& s, std::uint32_t index) {
        stream_stash& st = stream_of(index);
        if (!s.multishot || st.cancelling) return;
        st.cancelling = true;
        push_cancel(encode_ms(s.generation, index, tag_recv_ms));
    }

    io_uring_sqe* get_sqe() noexcept {
        io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
        if (!sqe) {
            enable();
            (void)io_uring_submit(&ring_);
            sqe = io_uring_get_sqe(&ring_);
        }
        return sqe;
    }

    /// Hands the head op of its direction to the kernel (or to the backlog if the SQ is full).
    void submit(operation& op, slot& s) {
        if (op.kind == op_kind::recv && (op.provided || s.multishot || s.buffered)) [[unlikely]] {
            kick_stream(op, s);
            return;
        }
        std::size_t len = op.len - op.done;
        if (fault_hook_slot().load(std::memory_order_relaxed) != nullptr) [[unlikely]] {
            len = fault_at_submit(op, s, len);
            if (len == injected_len) return; // completes through the completion path
        }
        // Behind a backlog, wait in line: a queued cancel must reach the kernel before any op
        // prepared after it (cancel() relies on that order).
        io_uring_sqe* sqe = backlog_.empty() ? get_sqe() : nullptr;
        if (!sqe) {
            backlog_.push_back({encode(op.tok, direction_of(op.kind)), false});
            return;
        }
        if (op.kind == op_kind::recv &&
            (((s.drained & interest_read) && s.bulk_read) || op.buffer == buffer_after_poll)) {
            // A bulk stream waits for readiness and reads on its completion (dispatch), as on
            // epoll: a recv SQE would run in the kernel's task work with every other ready
            // socket's before any of their sends (16 x 64 KiB echo: 60,000 -> 67,000 msgs/s).
            // A receive() gives its pool buffer back while it waits (see buffer_after_poll).
            if (op.buffer >= 0) {
                give_back(static_cast<std::uint32_t>(op.buffer));
                --core_.pool.leased;
                op.buffer = buffer_after_poll;
            }
            io_uring_prep_poll_add(sqe, s.handle, POLLIN);
            io_uring_sqe_set_data64(sqe, encode(op.tok, direction::read));
            op.polled = true;
        } else {
            prep(sqe, op, s.handle, len);
        }
        // The last read came back short (the receive queue was empty): let the kernel arm its
        // poll first instead of trying a recv that would fail (kernel >= 5.19; see dispatch).
        if (op.kind == op_kind::recv && (s.drained & interest_read) && poll_first_ok_ && !op.polled)
            sqe->ioprio |= IORING_RECVSEND_POLL_FIRST;
        op.in_kernel = true;
        ++s.in_flight;
        ++in_kernel_;
    }

    static constexpr std::size_t injected_len = ~std::size_t{0};

    /// The fault seam at submission (a hook is installed; out of line, off the hot path): an
    /// injected error completes the op through the completion path, as if the kernel had
    /// returned it (never submitted); a lowered length caps the SQE. Returns the length to
    /// prepare, or injected_len when the op was completed by the seam.
#if defined(__GNUC__)
    __attribute__((noinline, cold))
#endif
    std::size_t fault_at_submit(operation& op, slot& s, std::size_t len) {
        if (op.kind == op_kind::accept) return len;
        std::size_t n = op.kind == op_kind::connect ? 0 : len;
        const int err = fault_error_io(op.kind == op_kind::recv   ? sys::ring_recv
                                       : op.kind == op_kind::send ? sys::ring_send
                                                                  : sys::ring_connect,
                                       n);
        if (err == 0) return op.kind == op_kind::connect ? len : n;
        injected_.push_back({encode(op.tok, direction_of(op.kind)), -err});
        op.in_kernel = true;
        ++s.in_flight;
        ++in_kernel_;
        wake(); // its CQE dispatches the injected completions: no per-turn check
        return injected_len;
    }

    static void prep(io_uring_sqe* sqe, operation& op, int fd, std::size_t len) noexcept {
        switch (op.kind) {
        case op_kind::recv: io_uring_prep_recv(sqe, fd, op.buf + op.done, len, 0); break;
        case op_kind::send: io_uring_prep_send(sqe, fd, op.buf + op.done, len, MSG_NOSIGNAL); break;
        case op_kind::accept:
            io_uring_prep_accept(sqe, fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
            break;
        case op_kind::connect:
            io_uring_prep_connect(sqe, fd, reinterpret_cast<const sockaddr*>(op.addr), op.addr_len);
            break;
        }
        io_uring_sqe_set_data64(sqe, encode(op.tok, direction_of(op.kind)));
    }

    void push_cancel(std::uint64_t target) {
        io_uring_sqe* sqe = backlog_.empty() ? get_sqe() : nullptr;
        if (!sqe) {
            backlog_.push_back({target, true});
            return;
        }
        io_uring_prep_cancel64(sqe, target, 0);
        io_uring_sqe_set_data64(sqe, target | (tag_cancel_bit << tag_shift));
    }

    /// The CQE of an IORING_OP_ASYNC_CANCEL. -ENOENT while its target is still in the kernel and
    /// still meant to be cancelled means the kernel held the request where a cancel cannot find
    /// it: between a poll wake-up and the retry it queued as task work (with DEFER_TASKRUN that
    /// lasts until the issuer next waits). The retry can then go to an io-wq worker, where a send
    /// on a full socket blocks (io_uring ignores O_NONBLOCK on sockets): nothing but another
    /// cancel ends it. So the cancel is sent again; once the request sits in io-wq the cancel
    /// signals the worker and the op completes (-EINTR or a partial count, ended as ECANCELED).
    /// Same user_data, same op: the next op of a direction is prepared only after this op's CQE,
    /// and a head that was not meant to be cancelled (cancel_requested false on a registered
    /// token) is never re-cancelled.
    void cancel_done(std::uint64_t target, int res) {
        if (res != -ENOENT) return; // 0: cancelled; -EALREADY: the io-wq worker was signalled
        const auto tag = target >> tag_shift;
        if (tag == tag_wake) {
            if (core_.destroying && wake_armed_) push_cancel(target);
            return;
        }
        const auto index = static_cast<std::uint32_t>(target);
        const auto gen24 = static_cast<std::uint32_t>(target >> 32) & 0xffffffu;
        if (index >= core_.table.capacity()) return;
        slot& s = core_.table.at(index);
        if (s.state == slot_state::free || (s.generation & 0xffffffu) != gen24) return;
        const bool going = core_.destroying || s.state == slot_state::deregistering;
        if (tag == tag_accept_ms || tag == tag_recv_ms) {
            if (s.multishot && (going || (tag == tag_recv_ms && stream_of(index).cancelling)))
                push_cancel(target);
            return;
        }
        const operation* head = s.q(static_cast<direction>(tag)).head;
        if (head && head->in_kernel && (going || head->cancel_requested)) push_cancel(target);
    }

    void flush_backlog() {
        if (backlog_.empty()) return;
        auto pending = std::move(backlog_);
        backlog_.clear();
        for (const auto& b : pending) {
            if (b.cancel) {
                push_cancel(b.user_data);
                continue;
            }
            // Reactor destruction: nothing new goes to the kernel, since no cancel would follow it
            // and drain_for_destroy would wait for its completion forever.
            if (core_.destroying) continue;
            const auto index = static_cast<std::uint32_t>(b.user_data);
            if ((b.user_data >> tag_shift) == tag_accept_ms) {
                slot& s = core_.table.at(index);
                if (s.state == slot_state::registered && !s.multishot && !s.q(direction::read).empty())
                    arm_multishot(s, s.q(direction::read).head->tok);
                continue;
            }
            if ((b.user_data >> tag_shift) == tag_recv_ms) {
                slot& s = core_.table.at(index);
                operation* head = s.q(direction::read).head;
                if (s.state == slot_state::registered && head && !head->in_kernel && !s.multishot)
                    submit(*head, s);
                continue;
            }
            const auto d = static_cast<direction>(b.user_data >> tag_shift);
            slot& s = core_.table.at(index);
            operation* head = s.q(d).head;
            if (s.state == slot_state::registered && head && !head->in_kernel) submit(*head, s);
        }
    }

    void arm_wake() {
        if (wake_armed_ || core_.destroying) return;
        io_uring_sqe* sqe = get_sqe();
        if (!sqe) return; // next turn
        io_uring_prep_read(sqe, evfd_, &wake_buf_, sizeof wake_buf_, 0);
        io_uring_sqe_set_data64(sqe, wake_tag);
        wake_armed_ = true;
    }

    /// Dispatches the CQEs in the ring, batch by batch; returns how many. The ring is read with
    /// the inline io_uring_for_each_cqe, not io_uring_peek_batch_cqe (an out-of-line call of
    /// about 50 instructions, made twice per turn: callgrind). Like that function, an empty ring
    /// whose kernel side overflowed is flushed once (IORING_SQ_CQ_OVERFLOW: io_uring_get_events).
    std::size_t reap() {
        std::size_t total = 0;
        bool flushed = false;
        for (;;) {
            struct done_cqe {
                std::uint64_t user_data;
                int res;
                unsigned flags;
            } batch[64];
            unsigned n = 0;
            unsigned head;
            io_uring_cqe* cqe;
            io_uring_for_each_cqe(&ring_, head, cqe) {
                batch[n++] = {cqe->user_data, cqe->res, cqe->flags};
                if (n == 64) break;
            }
            if (n == 0) {
                if (flushed || !(IO_URING_READ_ONCE(*ring_.sq.kflags) & IORING_SQ_CQ_OVERFLOW))
                    return total;
                flushed = true;
                (void)io_uring_get_events(&ring_);
                continue;
            }
            total += n;
            io_uring_cq_advance(&ring_, n); // copy first: handlers may submit and reap again
            for (unsigned i = 0; i < n; ++i)
                dispatch(batch[i].user_data, batch[i].res, batch[i].flags);
        }
    }

    /// Completions made by the fault seam (fault_at_submit), oldest first; ones injected while
    /// these run wait for the next wake-up.
    void dispatch_injected() {
        injected_spare_.swap(injected_);
        for (const auto& c : injected_spare_) dispatch(c.user_data, c.res, 0);
        injected_spare_.clear();
    }

    void dispatch(std::uint64_t ud, int res, unsigned flags) {
        const auto tag = ud >> tag_shift;
        if (tag & tag_cancel_bit) {
            cancel_done(ud & ~(tag_cancel_bit << tag_shift), res);
            return;
        }
        if (tag == tag_close) return;
        if (tag == tag_accept_ms) {
            dispatch_accept(static_cast<std::uint32_t>(ud),
                            static_cast<std::uint32_t>(ud >> 32) & 0xffffffu, res, flags);
            return;
        }
        if (tag == tag_recv_ms) {
            dispatch_receive(static_cast<std::uint32_t>(ud),
                             static_cast<std::uint32_t>(ud >> 32) & 0xffffffu, res, flags);
            return;
        }
        if (tag == tag_wake) {
            wake_armed_ = false;
            woken_.store(false, std::memory_order_release);
            if (!injected_.empty()) dispatch_injected();
            return;
        }
        const auto index = static_cast<std::uint32_t>(ud);
        const auto gen24 = static_cast<std::uint32_t>(ud >> 32) & 0xffffffu;
        const direction d = static_cast<direction>(tag);
        slot* sp = index < core_.table.capacity() ? &core_.table.at(index) : nullptr;
        // Contract: a CQE for a slot that was freed means a buffer was released too early.
        EVIO_CONTRACT(1, "completion.after_free",
                      sp && sp->state != slot_state::free && (sp->generation & 0xffffffu) == gen24 &&
                          sp->in_flight > 0 && sp->q(d).head && sp->q(d).head->in_kernel);
        slot& s = *sp;
        op_queue& q = s.q(d);
        operation& op = *q.head;
        op.in_kernel = false;
        --s.in_flight;
        --in_kernel_;

        if (core_.destroying) { // reactor destruction: account, release, never resume
            if (op.kind == op_kind::accept && res >= 0) ::close(res);
            q.pop();
            return;
        }

        if (s.state == slot_state::deregistering) {
            // Step 3: the token is going away; its op resumes once, with operation_canceled
            // even if the kernel finished it meanwhile (conformance case 21: a completion of a
            // closed token is dropped). Bytes a send already handed to the kernel still count.
            if (op.kind == op_kind::accept && res >= 0) ::close(res);
            if (op.kind == op_kind::send && res > 0) op.done += static_cast<std::size_t>(res);
            op.error = ECANCELED;
            q.pop();
            --core_.pending_ops;
            if (s.in_flight == 0) core_.table.finish_deregister(index);
            op.waiter.resume();
            return;
        }

        if (op.polled) { // a bulk stream's poll: the socket is readable (or failed): read now
            op.polled = false;
            if (res >= 0 && op.cancel_requested) res = -ECANCELED;
            if (res >= 0) {
                s.drained &= static_cast<std::uint8_t>(~interest_read);
                if (op.buffer == buffer_after_poll && !to_plain(op)) {
                    if (br_ == nullptr) { // every buffer in use: the data stays queued
                        op.error = ENOBUFS;
                        finish(op, s, d);
                        return;
                    }
                    // The free list is empty: back to the ring's multishot, which grows the
                    // pool, or fails with ENOBUFS once every buffer is leased or stashed.
                    op.provided = true;
                    op.buffer = -1;
                    s.bulk_read = false;
                    submit(op, s);
                    return;
                }
                if (transfer_now<op_kind::recv>(op, s) != transfer_step::done) {
                    submit(op, s); // nothing after all, read_exact short, or an injected EAGAIN
                    return;
                }
                finish(op, s, d);
                return;
            }
        }
        if (res == -EAGAIN || res == -EINTR) {
            // A cancelled send that blocked in an io-wq worker ends with -EINTR: resubmitting
            // it would block again, and the cancel (with_timeout) would never take effect.
            if (op.cancel_requested) {
                res = -ECANCELED;
            } else { // resubmit: the kernel will poll for us
                // A file the kernel cannot poll (a handle replaced behind evio's back) answers
                // POLL_FIRST with -EAGAIN forever: the next try issues the recv first.
                if (op.kind == op_kind::recv) s.drained &= static_cast<std::uint8_t>(~interest_read);
                submit(op, s);
                return;
            }
        }
        if (res == -EINVAL && op.kind == op_kind::recv && poll_first_ok_ &&
            (s.drained & interest_read)) { // a kernel < 5.19 refuses POLL_FIRST: stop using it
            poll_first_ok_ = false;
            submit(op, s);
            return;
        }
        if (res < 0) {
            op.error = -res;
        } else {
            switch (op.kind) {
            case op_kind::recv:
                if (res == 0) {
                    if (op.all && op.done < op.len) op.error = error_eof;
                    break;
                }
                // The kernel says whether data is left (IORING_CQE_F_SOCK_NONEMPTY, 5.19+): if
                // so the next recv tries inline (start), else its SQE polls first. Older
                // kernels never say so: their recvs stay SQEs.
                if (flags & IORING_CQE_F_SOCK_NONEMPTY)
                    s.drained &= static_cast<std::uint8_t>(~interest_read);
                else
                    s.drained |= interest_read;
                s.bulk_read = is_bulk(static_cast<std::size_t>(res), op.len - op.done);
                op.done += static_cast<std::size_t>(res);
                if (op.all && op.done < op.len) {
                    if (op.cancel_requested) { // cancelled meanwhile: stop, keep what moved
                        op.error = ECANCELED;
                        break;
                    }
                    submit(op, s);
                    return;
                }
                break;
            case op_kind::send:
                s.drained &= static_cast<std::uint8_t>(~interest_write); // room again: send at once
                op.done += static_cast<std::size_t>(res);
                if (op.all && op.done < op.len) {
                    if (op.cancel_requested) { // cancelled meanwhile: stop, keep what moved
                        op.error = ECANCELED;
                        break;
                    }
                    submit(op, s);
                    return;
                }
                break;
            case op_kind::accept: op.accepted = res; break;
            case op_kind::connect: break;
            }
        }
        finish(op, s, d);
    }

    /// The end of dispatch: `op` (the head of its direction) is finished; the next op of that
    /// direction goes to the kernel, then `op` resumes.
    void finish(operation& op, slot& s, direction d) {
        if (op.kind == op_kind::accept && (op.error == EMFILE || op.error == ENFILE))
            core_.note_accept_exhausted(s, op.tok);
        core_.pop_head(s, d);
        if (operation* next = s.q(d).head; next && !(next->kind == op_kind::accept && s.accept_backoff))
            submit(*next, s);
        op.waiter.resume(); // `s` may be dangling from here on
    }

    struct backlog_entry {
        std::uint64_t user_data;
        bool cancel;
    };
    struct injected_cqe { ///< a completion made by the fault seam instead of the kernel
        std::uint64_t user_data;
        int res;
    };

    reactor_core& core_;
    io_uring ring_{};
    unsigned flags_ = 0;
    unsigned features_ = 0;
    bool enabled_ = false;
    int evfd_ = -1;
    bool wake_armed_ = false;
    std::uint64_t wake_buf_ = 0;
    std::atomic<bool> woken_{false};
    std::size_t in_kernel_ = 0;
    std::vector<backlog_entry> backlog_;
    std::vector<injected_cqe> injected_;       ///< fault seam only: dispatched on the wake CQE
    std::vector<injected_cqe> injected_spare_; ///< swapped with injected_ (keeps the capacity)
    bool multishot_ok_ = true;
    bool poll_first_ok_ = true; ///< IORING_RECVSEND_POLL_FIRST accepted (kernel >= 5.19)
    std::vector<std::vector<int>> stash_; ///< per listener slot: accepted, not yet handed out
    std::vector<stream_stash> streams_;   ///< per stream slot: received, not yet read
    io_uring_buf_ring* br_ = nullptr;     ///< the provided-buffer ring (receive())
    unsigned br_mask_ = 0;
    int buffers_ = 0;          ///< provided buffers: 0 not tried yet, 1 registered, -1 refused
    bool recv_ms_ok_ = true;   ///< multishot recv accepted (kernel >= 6.0), else one-shot

public:
    /// False once the kernel rejected multishot accept (then accept is one-shot).
    bool multishot_accept() const noexcept { return multishot_ok_; }
};

static_assert(room<uring_reactor>);

} // namespace evio::detail

#endif // EVIO_HAS_URING
