// SPDX-License-Identifier: MIT
// detail::token_table: per-token interest state, op FIFOs and the deregistration protocol.
#pragma once

#include <evio/detail/contract.hpp>
#include <evio/detail/operation.hpp>
#include <evio/detail/platform.hpp>
#include <evio/token.hpp>

#include <cstdint>
#include <vector>

namespace evio::detail {

/// Lifecycle of a slot: free -> registered -> deregistering -> free (generation bumped).
enum class slot_state : std::uint8_t { free, registered, deregistering };

/// One registration. Only operations on its own token change it (DESIGN.md §1).
struct slot {
    native_handle handle = invalid_handle;
    std::uint32_t generation = 1;
    slot_state state = slot_state::free;
    std::uint8_t interest = interest_none; ///< directions with operations waiting
    bool accept_backoff = false;           ///< accept hit EMFILE: wait before trying again
    bool listener = false;
    bool multishot = false; ///< io_uring: a multishot accept (listener) or recv (stream) is armed
    std::uint8_t retry_queued = interest_none; ///< directions with an entry in core.retries
    /// Directions known to have nothing to do: the last try met EAGAIN, or a read came back
    /// short, and no readiness edge since. epoll: the next op waits for the edge instead of a
    /// system call that would fail; io_uring: the next recv asks the kernel to poll first.
    std::uint8_t drained = interest_none;
    bool read_final = false; ///< epoll: RDHUP/HUP/ERR seen: a short read may precede the EOF
    /// io_uring: received data (or the end of the stream) waits in the room's stash for this
    /// token: its reads are served from there, in order, before anything new.
    bool buffered = false;
    /// The last read filled a buffer of 8 KiB or more: a bulk stream (kept by transfer_now and
    /// the io_uring room, which reads a bulk stream as epoll does: inline, and on a poll once
    /// drained; epoll itself does not need it).
    bool bulk_read = false;
    std::uint16_t budget_used = 0;         ///< inline completions in turn `budget_turn`
    std::uint32_t in_flight = 0;           ///< ops the kernel still holds (uring/iocp)
    std::uint32_t next_free = ~std::uint32_t{0};
    std::uint32_t budget_turn = 0;         ///< low 32 bits of the turn (keeps a slot at 64 bytes)
    op_queue queue[2];                     ///< per direction FIFO; head is the active op

    op_queue& q(direction d) noexcept { return queue[static_cast<int>(d)]; }
};
// The reactor's state per connection on Linux (docs/benchmarks.md): one cache line. (On Windows
// a SOCKET is 8 bytes, so the slot is 72.)
static_assert(sizeof(void*) != 8 || sizeof(native_handle) != 4 || sizeof(slot) <= 64,
              "a slot is the reactor's state per connection: keep it within one cache line");

/// What the audit level compares around a deregistration: everything observable of a slot.
struct slot_snapshot {
    native_handle handle;
    std::uint32_t generation;
    slot_state state;
    std::uint8_t interest;
    std::uint32_t in_flight;
    const operation* heads[2];
    friend bool operator==(const slot_snapshot&, const slot_snapshot&) = default;
};

/// The reactor's table of registrations. Tokens are {index, generation, owner}; a slot is
/// reused (LIFO, so reuse is immediate and tested) only after finish_deregister.
class token_table {
public:
    explicit token_table(std::uint32_t owner) : owner_(owner) {}

    std::uint32_t owner() const noexcept { return owner_; }
    std::size_t capacity() const noexcept { return slots_.size(); }
    std::size_t live() const noexcept { return live_; }

    /// Claims a free slot for `h`. May grow the table: slot references taken before are invalid.
    token allocate(native_handle h) {
        std::uint32_t i;
        if (free_head_ != npos) {
            i = free_head_;
            free_head_ = slots_[i].next_free;
        } else {
            i = static_cast<std::uint32_t>(slots_.size());
            slots_.emplace_back();
        }
        slot& s = slots_[i];
        // Contract: a slot handed out must be idle, else a late completion could hit the new owner.
        EVIO_CONTRACT(1, "slot.reuse_busy", s.state == slot_state::free && s.in_flight == 0 &&
                                                s.queue[0].empty() && s.queue[1].empty());
        s.state = slot_state::registered;
        s.handle = h;
        s.interest = interest_none;
        s.accept_backoff = false;
        s.listener = false;
        s.multishot = false;
        s.retry_queued = interest_none;
        s.drained = interest_none;
        s.read_final = false;
        s.bulk_read = false;
        s.buffered = false;
        s.budget_used = 0;
        s.next_free = npos;
        ++live_;
        return token{i, s.generation, owner_};
    }

    /// The slot of a live (registered) token, or null when stale/unknown.
    slot* find(token t) noexcept {
        if (t.index >= slots_.size()) return nullptr;
        slot& s = slots_[t.index];
        return (s.generation == t.generation && s.state == slot_state::registered) ? &s : nullptr;
    }

    /// The slot for a token that may be deregistering (completions still arriving), or null.
    slot* find_any(std::uint32_t index, std::uint32_t generation) noexcept {
        if (index >= slots_.size()) return nullptr;
        slot& s = slots_[index];
        return (s.generation == generation && s.state != slot_state::free) ? &s : nullptr;
    }

    slot& at(std::uint32_t index) noexcept { return slots_[index]; }

    /// The slot an operation may start on. Contracts: the token is ours and live.
    slot& checked(token t) {
        // Contract: a token from another reactor would index a foreign table.
        EVIO_CONTRACT(1, "token.foreign", t.owner == owner_);
        // Contract: an op on a closed token would wait on a slot that someone else may own.
        EVIO_CONTRACT(1, "op.stale_token", find(t) != nullptr);
        return slots_[t.index];
    }

    /// Step 1 of deregistration: checks the token is live and owned here; marks it deregistering.
    slot& begin_deregister(token t) {
        // Contract: deregistering through another reactor would free a slot it does not own.
        EVIO_CONTRACT(1, "deregister.foreign", t.owner == owner_);
        EVIO_CONTRACT(1, "deregister.stale", t.index < slots_.size());
        slot& s = slots_[t.index];
        // Contract: the second deregistration of one token would free its slot twice.
        EVIO_CONTRACT(1, "deregister.twice",
                      !(s.generation == t.generation && s.state == slot_state::deregistering) &&
                          !(s.generation == t.generation + 1 && s.state == slot_state::free));
        // Contract: a stale token names a slot that may belong to another registration now.
        EVIO_CONTRACT(1, "deregister.stale",
                      s.generation == t.generation && s.state == slot_state::registered);
        s.state = slot_state::deregistering;
        return s;
    }

    /// Step 4: frees the slot once nothing is in flight; bumps the generation.
    void finish_deregister(std::uint32_t index) {
        slot& s = slots_[index];
        // Contract: freeing a slot the kernel still writes into is a use-after-free.
        EVIO_CONTRACT(1, "deregister.in_flight",
                      s.in_flight == 0 && s.queue[0].empty() && s.queue[1].empty());
        s.state = slot_state::free;
        s.handle = invalid_handle;
        s.interest = interest_none;
        s.accept_backoff = false;
        ++s.generation;
        if (s.generation == 0) s.generation = 1;
        s.next_free = free_head_;
        free_head_ = index;
        --live_;
    }

    slot_snapshot snapshot(std::uint32_t i) const noexcept {
        const slot& s = slots_[i];
        return {s.handle, s.generation, s.state, s.interest, s.in_flight,
                {s.queue[0].head, s.queue[1].head}};
    }

    /// Audit level: every slot but `except`, for comparison after a deregistration.
    void snapshot_all(std::vector<slot_snapshot>& out) const {
        out.clear();
        out.reserve(slots_.size());
        for (std::uint32_t i = 0; i < slots_.size(); ++i) out.push_back(snapshot(i));
    }

    /// Audit level: true when no slot but `except` differs from `before` (new slots allowed).
    bool neighbours_unchanged(const std::vector<slot_snapshot>& before,
                              std::uint32_t except) const noexcept {
        for (std::uint32_t i = 0; i < before.size() && i < slots_.size(); ++i)
            if (i != except && !(snapshot(i) == before[i])) return false;
        return true;
    }

    template <class F>
    void for_each_live(F&& f) {
        for (std::uint32_t i = 0; i < slots_.size(); ++i)
            if (slots_[i].state != slot_state::free) f(i, slots_[i]);
    }

private:
    static constexpr std::uint32_t npos = ~std::uint32_t{0};
    std::vector<slot> slots_;
    std::uint32_t free_head_ = npos;
    std::uint32_t owner_;
    std::size_t live_ = 0;
};

} // namespace evio::detail
