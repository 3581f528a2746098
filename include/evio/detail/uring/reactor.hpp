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
// - Close is IORING_OP_CLOSE, submitted at once (the fd number is free on return, like close(2)).
// - Quirks: -EAGAIN/-EINTR in a CQE are resubmitted; a full SQ is flushed, and what still does
//   not fit waits in a backlog for the next turn (io_uring_get_sqe(3) may return NULL).
#pragma once

#include <evio/detail/platform.hpp>

#if EVIO_HAS_URING

#include <evio/detail/operation.hpp>
#include <evio/detail/posix/socket.hpp>
#include <evio/detail/reactor_core.hpp>
#include <evio/detail/room.hpp>
#include <evio/detail/syscall.hpp>

#include <cerrno>
#include <cstring>
#include <liburing.h>
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
    }

    /// Sockets need no registration with the ring: the token is all a CQE needs. A new socket
    /// starts "drained" (nothing known to be queued): its first recv is an SQE, not a recv(2).
    std::error_code add(token t, native_handle) noexcept {
        if (slot* s = core_.table.find(t)) s->drained |= interest_read;
        return {};
    }

    bool start(operation& op, slot& s) {
        if (op.kind == op_kind::accept && multishot_ok_) return start_accept(op, s);
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
        q.push(&op);
        s.interest |= interest_of(d);
        ++core_.pending_ops;
        if (idle && !(op.kind == op_kind::accept && s.accept_backoff)) submit(op, s);
        return true;
    }

    /// The inline recv of start(), when nothing else is in or bound for the ring and the token
    /// is within its turn budget. True when the op finished (data, end of stream or error);
    /// false when it did not run, the socket had nothing (it is marked drained: the SQE will
    /// poll first) or read_exact still needs more. Out of line so that start() stays small
    /// enough to be inlined into reactor::start (callgrind: about +29 instructions per op
    /// otherwise, on every op, not only on the recvs that come here).
#if defined(__GNUC__)
    __attribute__((noinline))
#endif
    bool recv_now(operation& op, slot& s) noexcept {
        if (in_kernel_ != 0 || io_uring_sq_ready(&ring_) != 0 || !backlog_.empty() ||
            !core_.within_budget(s))
            return false;
        for (;;) {
            std::size_t want = op.len - op.done; // the fault seam may lower it (a short read)
            bool injected = false;
            const ssize_t n = EVIO_SYSCALL_IO(recv, -1, want, injected,
                                              ::recv(s.handle, op.buf + op.done, want, MSG_DONTWAIT));
            if (n > 0) {
                op.done += static_cast<std::size_t>(n);
                if (static_cast<std::size_t>(n) < want) s.drained |= interest_read;
                return !(op.all && op.done < op.len);
            }
            if (n == 0) {
                if (op.all && op.done < op.len) op.error = error_eof;
                return true;
            }
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                if (!injected) s.drained |= interest_read;
                return false;
            }
            op.error = errno;
            return true;
        }
    }

    /// Deregistration steps 2-3 for this token only: cancel what the kernel holds by user_data,
    /// resume the never-submitted ops with ECANCELED now.
    void cancel_all(slot& s) {
        if (s.multishot) {
            push_cancel(encode_ms(s.generation, index_of(s)));
            // The armed multishot accept holds the listening socket until its final CQE: count
            // it as pending so run() does not return while the port still accepts connections.
            ++core_.pending_ops;
        }
        close_stash(index_of(s));
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
                operation* op = q.pop();
                if (q.empty()) s->interest &= static_cast<std::uint8_t>(~interest_read);
                --core_.pending_ops;
                op->accepted = take_stashed(t.index);
                op->waiter.resume();
            }
            if (!s->multishot && !s->accept_backoff && !s->q(d).empty()) arm_multishot(*s, t);
            return;
        }
        operation* head = s->q(d).head;
        if (head && !head->in_kernel && !(head->kind == op_kind::accept && s->accept_backoff))
            submit(*head, *s);
    }

    /// Submits what is queued and waits up to `timeout_ms` (-1: forever) for completions, then
    /// dispatches the batch, resuming waiters inline.
    void wait(int timeout_ms) {
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
        reap();
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
                push_cancel(encode_ms(s.generation, i));
                ++held;
            }
            close_stash(i);
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

    static std::uint64_t encode_ms(std::uint32_t generation, std::uint32_t index) noexcept {
        return static_cast<std::uint64_t>(index) |
               (static_cast<std::uint64_t>(generation & 0xffffffu) << 32) | (tag_accept_ms << tag_shift);
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

    /// A CQE of a listener's multishot accept.
    void dispatch_accept(std::uint32_t index, std::uint32_t gen24, int res, unsigned flags) {
        slot* sp = index < core_.table.capacity() ? &core_.table.at(index) : nullptr;
        // Contract: a CQE for a slot that was freed means a buffer was released too early.
        EVIO_CONTRACT(1, "completion.after_free",
                      sp && sp->state != slot_state::free && (sp->generation & 0xffffffu) == gen24 &&
                          sp->multishot && sp->in_flight > 0);
        slot& s = *sp;
        const bool more = (flags & IORING_CQE_F_MORE) != 0;
        if (!more) {
            s.multishot = false;
            --s.in_flight;
            --in_kernel_;
        }
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
        q.pop();
        if (q.empty()) s.interest &= static_cast<std::uint8_t>(~interest_read);
        --core_.pending_ops;
        if (!s.multishot && !q.empty() && !s.accept_backoff) arm_multishot(s, q.head->tok);
        op->waiter.resume(); // `s` may be dangling from here on
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
        prep(sqe, op, s.handle, len);
        // The last read came back short (the receive queue was empty): let the kernel arm its
        // poll first instead of trying a recv that would fail (kernel >= 5.19; see dispatch).
        if (op.kind == op_kind::recv && (s.drained & interest_read) && poll_first_ok_)
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
        if (tag == tag_accept_ms) {
            if (s.multishot && going) push_cancel(target);
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

    void reap() {
        for (;;) {
            io_uring_cqe* cqes[64];
            const unsigned n = io_uring_peek_batch_cqe(&ring_, cqes, 64);
            if (n == 0) return;
            struct done_cqe {
                std::uint64_t user_data;
                int res;
                unsigned flags;
            } batch[64];
            for (unsigned i = 0; i < n; ++i)
                batch[i] = {cqes[i]->user_data, cqes[i]->res, cqes[i]->flags};
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
        if (op.kind == op_kind::accept && (op.error == EMFILE || op.error == ENFILE))
            core_.note_accept_exhausted(s, op.tok);
        q.pop();
        if (q.empty()) s.interest &= static_cast<std::uint8_t>(~interest_of(d));
        --core_.pending_ops;
        if (operation* next = q.head; next && !(next->kind == op_kind::accept && s.accept_backoff))
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

public:
    /// False once the kernel rejected multishot accept (then accept is one-shot).
    bool multishot_accept() const noexcept { return multishot_ok_; }
};

static_assert(room<uring_reactor>);

} // namespace evio::detail

#endif // EVIO_HAS_URING
