// SPDX-License-Identifier: MIT
// detail::reactor_core: what every room shares: token table, ready queue, timers, posted work.
#pragma once

#include <evio/config.hpp>
#include <evio/detail/buffer_pool.hpp>
#include <evio/detail/cancel.hpp>
#include <evio/detail/contract.hpp>
#include <evio/detail/operation.hpp>
#include <evio/detail/token_table.hpp>

#include <atomic>
#include <chrono>
#include <coroutine>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <utility>
#include <vector>

namespace evio::detail {

using clock = std::chrono::steady_clock;

/// A pending timer; lives in its awaiter. Kept in a binary min-heap: O(log n) start and cancel.
struct timer_node {
    clock::time_point deadline{};
    std::coroutine_handle<> waiter{};
    /// When set, called on expiry instead of resuming `waiter` (timeouts fire a cancellation).
    void (*fire)(timer_node*) = nullptr;
    void* ctx = nullptr;
    std::size_t heap_index = ~std::size_t{0};
    std::uint64_t seq = 0; ///< tie-break: equal deadlines fire in start order

    bool armed() const noexcept { return heap_index != ~std::size_t{0}; }
};

class timer_heap {
public:
    bool empty() const noexcept { return heap_.empty(); }
    std::size_t size() const noexcept { return heap_.size(); }
    timer_node* top() const noexcept { return heap_.empty() ? nullptr : heap_.front(); }

    void push(timer_node* t) {
        t->seq = ++seq_;
        t->heap_index = heap_.size();
        heap_.push_back(t);
        up(t->heap_index);
    }
    void remove(timer_node* t) noexcept {
        const std::size_t i = t->heap_index;
        if (i == ~std::size_t{0}) return;
        const std::size_t last = heap_.size() - 1;
        if (i != last) {
            heap_[i] = heap_[last];
            heap_[i]->heap_index = i;
        }
        heap_.pop_back();
        t->heap_index = ~std::size_t{0};
        if (i < heap_.size()) {
            down(i);
            up(i);
        }
    }

private:
    static bool less(const timer_node* a, const timer_node* b) noexcept {
        return a->deadline < b->deadline || (a->deadline == b->deadline && a->seq < b->seq);
    }
    void swap_at(std::size_t a, std::size_t b) noexcept {
        std::swap(heap_[a], heap_[b]);
        heap_[a]->heap_index = a;
        heap_[b]->heap_index = b;
    }
    void up(std::size_t i) noexcept {
        while (i > 0) {
            const std::size_t p = (i - 1) / 2;
            if (!less(heap_[i], heap_[p])) break;
            swap_at(i, p);
            i = p;
        }
    }
    void down(std::size_t i) noexcept {
        for (;;) {
            const std::size_t l = 2 * i + 1, r = l + 1;
            std::size_t m = i;
            if (l < heap_.size() && less(heap_[l], heap_[m])) m = l;
            if (r < heap_.size() && less(heap_[r], heap_[m])) m = r;
            if (m == i) break;
            swap_at(i, m);
            i = m;
        }
    }
    std::vector<timer_node*> heap_;
    std::uint64_t seq_ = 0;

public:
    /// Reactor destruction: forget every node without resuming it.
    void disarm_all() noexcept {
        for (timer_node* t : heap_) t->heap_index = ~std::size_t{0};
        heap_.clear();
    }
};

/// Spawned tasks form an intrusive circular list so the reactor can destroy them with itself.
struct spawn_list_node {
    spawn_list_node* prev = this;
    spawn_list_node* next = this;
    std::coroutine_handle<> frame{};

    void link_after(spawn_list_node& head) noexcept {
        next = head.next;
        prev = &head;
        head.next->prev = this;
        head.next = this;
    }
    void unlink() noexcept {
        prev->next = next;
        next->prev = prev;
        prev = next = this;
    }
};

inline std::uint32_t next_reactor_id() noexcept {
    static std::atomic<std::uint32_t> ids{0};
    std::uint32_t id = ids.fetch_add(1, std::memory_order_relaxed) + 1;
    return id == 0 ? ids.fetch_add(1, std::memory_order_relaxed) + 1 : id;
}

/// A cancellation requested from another thread (std::stop_token callbacks): queued under the
/// core's mutex and delivered on the reactor's thread in its next turn.
struct remote_cancel {
    cancel_slot* scope = nullptr;
    bool queued = false; ///< guarded by reactor_core::post_mutex
};

/// The state every room works on. The public reactor owns one, plus one room.
struct reactor_core {
    reactor_core() : table(next_reactor_id()) {}
    reactor_core(const reactor_core&) = delete;
    reactor_core& operator=(const reactor_core&) = delete;

    token_table table;
    buffer_pool pool; ///< receive()'s buffers

    /// A free pool buffer, counted as leased, or -1 when every buffer is in use.
    std::int32_t lease_id() noexcept {
        const std::int32_t id = pool.acquire();
        if (id >= 0) ++pool.leased;
        return id;
    }
    /// receive(): `op` takes a free pool buffer to read into (counted as leased; the lease gives
    /// it back, or the room, when the read finds nothing). False when every buffer is in use.
    bool lease_buffer(operation& op) noexcept {
        const std::int32_t id = lease_id();
        if (id < 0) return false;
        op.buffer = id;
        op.buf = pool.data(static_cast<std::uint32_t>(id));
        op.len = pool.buffer_size();
        return true;
    }
    std::uint64_t turn = 1;
    std::size_t pending_ops = 0;  ///< ops parked or held by the kernel
    std::size_t spawned = 0;      ///< live detached tasks
    spawn_list_node spawned_list; ///< sentinel of the spawned tasks' list
    bool running = false;
    bool destroying = false;
    std::atomic<bool> stop_requested{false};
    std::exception_ptr spawned_exception{};

    /// Coroutines to resume in this turn after the I/O batch (cancellations, yields, spawns).
    std::vector<std::coroutine_handle<>> ready;
    std::vector<std::coroutine_handle<>> draining;

    timer_heap timers;

    /// Listeners whose accept hit EMFILE/ENFILE; released when the reactor frees a descriptor
    /// or at `backoff_deadline`, whichever comes first.
    std::vector<token> backoff_listeners;
    clock::time_point backoff_deadline{};
    bool backoff_release = false;

    std::mutex post_mutex;
    std::vector<std::function<void()>> posted;
    std::vector<std::function<void()>> posted_running;
    std::atomic<bool> has_posted{false};
    std::vector<remote_cancel*> remote_cancels; ///< guarded by post_mutex; flagged by has_posted

    std::vector<slot_snapshot> audit_before; ///< contract level 2 scratch

    /// An op finished outside its waiter's await_suspend: resume it later in this turn.
    void complete_later(operation& op) { ready.push_back(op.waiter); }

    /// Parked head ops of `t` in direction `d` to retry at the end of this turn; at most one
    /// entry per token and direction (slot::retry_queued), so a token that stays busy does not
    /// pile up entries turn after turn. `retries_running` is the batch being retried: the two
    /// vectors swap, so neither reallocates in steady state.
    std::vector<std::pair<token, direction>> retries;
    std::vector<std::pair<token, direction>> retries_running;
    void retry_later(token t, direction d) {
        slot* s = table.find(t);
        if (s == nullptr) return; // closing or gone: its teardown resumes the ops
        const std::uint8_t bit = interest_of(d);
        if (s->retry_queued & bit) return;
        s->retry_queued |= bit;
        retries.emplace_back(t, d);
    }
    /// Takes the entry of (t, d) off the books just before it is retried.
    void retry_taken(token t, direction d) noexcept {
        if (slot* s = table.find(t)) s->retry_queued &= static_cast<std::uint8_t>(~interest_of(d));
    }

    /// accept failed for lack of descriptors: park the listener's next accept instead of
    /// letting a naive accept loop spin on EMFILE.
    void note_accept_exhausted(slot& s, token t) {
        if (!s.accept_backoff) {
            s.accept_backoff = true;
            backoff_listeners.push_back(t);
        }
        backoff_deadline = clock::now() + std::chrono::milliseconds(EVIO_ACCEPT_BACKOFF_MS);
    }

    /// The head op of `d` on `s` is finished: takes it off its FIFO (the direction's interest
    /// bit goes when the FIFO empties) and off the pending count. Every room calls this before
    /// it resumes a finished head op.
    operation* pop_head(slot& s, direction d) noexcept {
        op_queue& q = s.q(d);
        operation* op = q.pop();
        if (q.empty()) s.interest &= static_cast<std::uint8_t>(~interest_of(d));
        --pending_ops;
        return op;
    }

    /// Cancels an op that is still in its FIFO and that the kernel does not hold (every room's
    /// cancel() for a queued op): unlinks it and resumes it later in this turn with `error`.
    /// When it was the head, the next op of its direction is retried at the end of the turn (it
    /// may be able to run now). Returns false when the op is not queued (it already finished).
    bool cancel_queued(operation& op, slot& s, int error) {
        const direction d = direction_of(op.kind);
        op_queue& q = s.q(d);
        const bool was_head = q.head == &op;
        if (!q.remove(&op)) return false;
        if (q.empty()) s.interest &= static_cast<std::uint8_t>(~interest_of(d));
        --pending_ops;
        op.error = error;
        complete_later(op);
        if (was_head && !q.empty()) retry_later(op.tok, d);
        return true;
    }

    static_assert(EVIO_TURN_BUDGET > 0 && EVIO_TURN_BUDGET < 65536, "slot::budget_used is 16 bits");
    /// Fairness: may this token complete one more op inline in this turn?
    bool within_budget(slot& s) noexcept {
        if (s.budget_turn != static_cast<std::uint32_t>(turn)) {
            s.budget_turn = static_cast<std::uint32_t>(turn);
            s.budget_used = 0;
        }
        if (s.budget_used >= EVIO_TURN_BUDGET) return false;
        ++s.budget_used;
        return true;
    }
};

} // namespace evio::detail
