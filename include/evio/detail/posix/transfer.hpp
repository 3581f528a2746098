// SPDX-License-Identifier: MIT
// One non-blocking transfer step of a read or write: the epoll room runs every read and write
// through it, the io_uring room its inline recv and send (before it falls back to an SQE).
#pragma once

#include <evio/detail/platform.hpp>

#if EVIO_HAS_POSIX

#include <evio/detail/operation.hpp>
#include <evio/detail/syscall.hpp>
#include <evio/detail/token_table.hpp>

#include <cerrno>
#include <cstddef>
#include <sys/socket.h>

namespace evio::detail {

/// A read that fills a buffer of at least 8 KiB marks a bulk stream (slot::bulk_read): more
/// is most likely queued behind it. A small buffer filled says nothing (read_exact of a
/// 64-byte header fills it every time, and its next read usually finds the socket empty).
inline constexpr std::size_t bulk_min = 8 * 1024;
constexpr bool is_bulk(std::size_t got, std::size_t asked) noexcept {
    return got == asked && asked >= bulk_min;
}

/// What transfer_now() did.
enum class transfer_step : std::uint8_t {
    done,     ///< the op finished: its bytes, the end of the stream, or an error in op.error
    blocked,  ///< the kernel has nothing to read / no room to write: the direction is drained
    injected, ///< the fault seam failed the call with EAGAIN: no readiness follows, retry later
};

/// recv(2) or send(2) (Kind: the op's kind) with MSG_DONTWAIT, until it finishes or the socket
/// would block; EINTR is retried, every other error ends the op. A read that comes back short
/// emptied the receive queue: the read side is marked drained (new data brings an edge on
/// epoll, a poll on io_uring), and a read_exact still short of its length stops there instead
/// of paying a recv that would fail; not once RDHUP/HUP/ERR was seen (`read_final`, epoll):
/// the EOF or error behind the data must still be read. A kernel EAGAIN marks the direction
/// drained; an injected one does not (the socket may be ready).
///
/// Always inlined: it is on the path of every ready read and write of both rooms, whose
/// start() is inlined into reactor::start, so a ready read_some makes one call instead of two
/// or three (15-21 user-space instructions per op, callgrind, docs/benchmarks.md).
template <op_kind Kind>
EVIO_ALWAYS_INLINE inline transfer_step transfer_now(operation& op, slot& s) noexcept {
    static_assert(Kind == op_kind::recv || Kind == op_kind::send);
    for (;;) {
        std::size_t want = op.len - op.done; // the fault seam may lower it (a short transfer)
        bool injected = false;
        ssize_t n;
        if constexpr (Kind == op_kind::recv) {
            n = EVIO_SYSCALL_IO(recv, -1, want, injected,
                                ::recv(s.handle, op.buf + op.done, want, MSG_DONTWAIT));
            if (n == 0) {
                if (op.all && op.done < op.len) op.error = error_eof; // the peer closed first
                return transfer_step::done;
            }
            if (n > 0) {
                op.done += static_cast<std::size_t>(n);
                s.bulk_read = is_bulk(static_cast<std::size_t>(n), want);
                const bool emptied = static_cast<std::size_t>(n) < want && !s.read_final;
                if (emptied) s.drained |= interest_read;
                if (!op.all || op.done == op.len) return transfer_step::done;
                if (emptied) return transfer_step::blocked;
                continue;
            }
        } else {
            n = EVIO_SYSCALL_IO(
                send, -1, want, injected,
                ::send(s.handle, op.buf + op.done, want, MSG_DONTWAIT | MSG_NOSIGNAL));
            if (n >= 0) {
                op.done += static_cast<std::size_t>(n);
                if (!op.all || op.done == op.len) return transfer_step::done;
                continue;
            }
        }
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            if (injected) return transfer_step::injected;
            s.drained |= Kind == op_kind::recv ? interest_read : interest_write;
            return transfer_step::blocked;
        }
        op.error = errno;
        return transfer_step::done;
    }
}

/// What a one-byte MSG_PEEK found on a socket (peek_now).
enum class peek_step : std::uint8_t {
    data,     ///< bytes are queued (they stay there)
    end,      ///< the end of the stream
    empty,    ///< nothing to read: the read side is marked drained
    injected, ///< the fault seam failed the call with EAGAIN: the socket may be ready
    error,    ///< the socket failed: the errno value is in `err`
};

/// Looks whether the socket has data without taking any: a receive() that finds every pool
/// buffer in use fails with no_buffer_space only when there is something to receive (epoll's
/// receive step, io_uring's empty buffer ring); with nothing queued it waits for readiness.
inline peek_step peek_now(slot& s, int& err) noexcept {
    for (;;) {
        std::byte probe{};
        std::size_t one = 1;
        bool injected = false;
        const ssize_t n = EVIO_SYSCALL_IO(recv, -1, one, injected,
                                          ::recv(s.handle, &probe, one, MSG_PEEK | MSG_DONTWAIT));
        if (n > 0) return peek_step::data;
        if (n == 0) return peek_step::end;
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            if (injected) return peek_step::injected;
            s.drained |= interest_read;
            return peek_step::empty;
        }
        err = errno;
        return peek_step::error;
    }
}

} // namespace evio::detail

#endif // EVIO_HAS_POSIX
