// SPDX-License-Identifier: MIT
// detail::operation: the state of one I/O operation, stored in the awaiter (coroutine frame).
#pragma once

#include <evio/detail/platform.hpp>
#include <evio/token.hpp>

#include <coroutine>
#include <cstddef>
#include <cstdint>

namespace evio::detail {

/// What an operation does. The direction an op waits on follows from its kind.
enum class op_kind : std::uint8_t { accept, connect, recv, send };

/// The two directions a token can wait on; each has its own FIFO of operations.
enum class direction : std::uint8_t { read = 0, write = 1 };

constexpr direction direction_of(op_kind k) noexcept {
    return (k == op_kind::accept || k == op_kind::recv) ? direction::read : direction::write;
}

/// Interest bits: which directions of a token have operations waiting.
enum interest_bits : std::uint8_t { interest_none = 0, interest_read = 1, interest_write = 2 };

constexpr std::uint8_t interest_of(direction d) noexcept {
    return d == direction::read ? interest_read : interest_write;
}

/// operation::error value meaning "the stream ended before the buffer was full" (errc::eof).
inline constexpr int error_eof = -1;
/// operation::error value meaning "the socket was closed or never opened" (errc::closed).
inline constexpr int error_closed = -2;

/// One operation. Lives inside its awaiter, inside the coroutine frame: no heap allocation.
/// The reactor links it into its token's per-direction FIFO while it waits, and never touches
/// it again after resuming `waiter`.
struct operation {
    /// Bytes an address buffer needs (connect's sockaddr_storage, AcceptEx's two addresses).
    static constexpr std::size_t addr_capacity = 128;
    std::coroutine_handle<> waiter{};
    operation* next = nullptr; ///< link in the token's FIFO for this direction
    token tok{};
    op_kind kind = op_kind::recv;
    bool all = false;      ///< read_exact/write_all: complete only when `len` bytes moved
    std::uint8_t family = 4; ///< accept/connect: address family of the socket (4 or 6)
    bool started = false;  ///< connect: the connect call was issued; uring/iocp: submitted
    bool in_kernel = false; ///< uring/iocp: the kernel holds this op (a completion will come)
    /// uring/iocp: a cancel was sent for this op while the kernel held it; its completion then
    /// ends it with ECANCELED instead of issuing it again (uring: a cancelled io-wq send reports
    /// -EINTR; both: a partial read_exact/write_all or an accept retry is not continued).
    bool cancel_requested = false;
    /// receive(): the reactor supplies the buffer once the socket has data (io_uring's
    /// provided-buffer ring; a pool buffer on epoll and IOCP) and sets `buf`, `done` and
    /// `buffer`; false for reads into the caller's buffer.
    bool provided = false;
    /// uring: the kernel holds a readiness poll for this recv (a bulk stream); its completion
    /// runs the recv inline. iocp: the kernel holds receive()'s zero-byte WSARecv; its
    /// completion takes a pool buffer and issues the read.
    bool polled = false;
    /// receive(): the pool buffer this op holds (buffer_pool id), -1 when none.
    std::int32_t buffer = -1;
    std::byte* buf = nullptr;
    std::size_t len = 0;
    std::size_t done = 0;   ///< bytes transferred so far
    int error = 0;          ///< 0, a positive native error (errno / Win32), or error_eof
    native_handle accepted = invalid_handle; ///< accept: the new connection
    /// connect: the remote address as a native sockaddr; accept (IOCP): AcceptEx's buffer.
    /// Points into the awaiter (set when it starts, so a moved awaiter never dangles): the
    /// storage is paid only by the operations that need it, not zeroed on every read and write.
    unsigned char* addr = nullptr;
    std::uint32_t addr_len = 0;
#if EVIO_HAS_IOCP
    /// IOCP: the OVERLAPPED for this op (room iocp casts it; static_assert there checks size).
    alignas(8) unsigned char overlapped[64]{};
#endif
};

/// An intrusive FIFO of operations (one per token and direction).
struct op_queue {
    operation* head = nullptr;
    operation* tail = nullptr;

    bool empty() const noexcept { return head == nullptr; }
    void push(operation* op) noexcept {
        op->next = nullptr;
        if (tail)
            tail->next = op;
        else
            head = op;
        tail = op;
    }
    /// Unlinks `op` wherever it is; false when it is not in this queue.
    bool remove(operation* op) noexcept {
        operation* prev = nullptr;
        for (operation* cur = head; cur; prev = cur, cur = cur->next) {
            if (cur != op) continue;
            (prev ? prev->next : head) = cur->next;
            if (tail == cur) tail = prev;
            cur->next = nullptr;
            return true;
        }
        return false;
    }
    operation* pop() noexcept {
        operation* op = head;
        if (op) {
            head = op->next;
            if (!head) tail = nullptr;
            op->next = nullptr;
        }
        return op;
    }
};

} // namespace evio::detail
