// SPDX-License-Identifier: MIT
// evio::tcp_stream: a connected TCP socket with awaitable reads and writes.
#pragma once

#include <evio/buffer_lease.hpp>
#include <evio/detail/io_op.hpp>
#include <evio/detail/registered_handle.hpp>
#include <evio/detail/socket.hpp>
#include <evio/endpoint.hpp>
#include <evio/reactor.hpp>
#include <evio/result.hpp>

#include <cstddef>
#include <span>
#include <utility>

namespace evio {

class tcp_stream;

/// Awaitable of `tcp_stream::read_some`: result<size_t>, 0 at end of stream.
class read_some_op : public detail::io_awaiter {
public:
    read_some_op(reactor* r, token t, std::span<std::byte> buf) noexcept
        : io_awaiter(r, t, detail::op_kind::recv) {
        op_.buf = buf.data();
        op_.len = buf.size();
    }
    result<std::size_t> await_resume() noexcept {
        settle();
        if (op_.error) return error();
        return op_.done;
    }
};

/// Awaitable of `tcp_stream::receive`: result<buffer_lease>, an empty lease at end of stream.
/// On io_uring the kernel picks the buffer (multishot recv into the provided-buffer ring; data
/// that arrives before the next receive() waits in the reactor, a few buffers per stream at
/// most), except on a bulk stream, which reads into a pool buffer like read_some. On epoll the
/// room takes a pool buffer only when the socket has data, on IOCP once a zero-byte WSARecv
/// completes: a receive() that waits holds no buffer.
class receive_op : public detail::io_awaiter {
public:
    receive_op(reactor* r, token t) noexcept : io_awaiter(r, t, detail::op_kind::recv) {
        op_.provided = true;
    }
    receive_op(receive_op&& o) noexcept : io_awaiter(std::move(o)), no_buffer_(o.no_buffer_) {}
    ~receive_op() {
        if (op_.buffer >= 0) r_->release_buffer(static_cast<std::uint32_t>(op_.buffer));
    }

    template <class P>
    bool await_suspend(std::coroutine_handle<P> h) {
        if (r_ != nullptr && op_.tok.valid() && !r_->provides_buffers()) {
            op_.provided = false;
            if (!r_->core().lease_buffer(op_)) {
                no_buffer_ = true;
                return false;
            }
        }
        return io_awaiter::await_suspend(h);
    }

    result<buffer_lease> await_resume() noexcept {
        settle();
        if (no_buffer_) return errc::no_buffer_space;
        if (op_.error || op_.done == 0) { // an error, or the end of the stream: no bytes to hold
            if (op_.buffer >= 0)
                r_->release_buffer(static_cast<std::uint32_t>(std::exchange(op_.buffer, -1)));
            if (op_.error) return error();
            return buffer_lease{};
        }
        const auto id = static_cast<std::uint32_t>(std::exchange(op_.buffer, -1));
        return buffer_lease(*r_, id, op_.buf, op_.done);
    }

private:
    bool no_buffer_ = false; ///< every pool buffer was in use: failed before it started
};

/// Awaitable of `tcp_stream::write_some`: result<size_t>.
class write_some_op : public detail::io_awaiter {
public:
    write_some_op(reactor* r, token t, std::span<const std::byte> buf) noexcept
        : io_awaiter(r, t, detail::op_kind::send) {
        op_.buf = const_cast<std::byte*>(buf.data()); // never written through for sends
        op_.len = buf.size();
    }
    result<std::size_t> await_resume() noexcept {
        settle();
        if (op_.error) return error();
        return op_.done;
    }
};

/// Awaitable of `tcp_stream::read_exact`: fills the whole buffer or fails; `transferred()` tells
/// how much arrived before a failure.
class read_exact_op : public detail::io_awaiter {
public:
    read_exact_op(reactor* r, token t, std::span<std::byte> buf) noexcept
        : io_awaiter(r, t, detail::op_kind::recv) {
        op_.buf = buf.data();
        op_.len = buf.size();
        op_.all = true;
    }
    bool await_ready() const noexcept { return op_.len == 0; }
    result<void> await_resume() noexcept {
        settle();
        if (op_.error) return {error(), op_.done};
        return {};
    }
};

/// Awaitable of `tcp_stream::write_all`: writes the whole buffer or fails; bytes of concurrent
/// write_all calls on one stream never interleave. `transferred()` tells how much was sent.
class write_all_op : public detail::io_awaiter {
public:
    write_all_op(reactor* r, token t, std::span<const std::byte> buf) noexcept
        : io_awaiter(r, t, detail::op_kind::send) {
        op_.buf = const_cast<std::byte*>(buf.data()); // never written through for sends
        op_.len = buf.size();
        op_.all = true;
    }
    bool await_ready() const noexcept { return op_.len == 0; }
    result<void> await_resume() noexcept {
        settle();
        if (op_.error) return {error(), op_.done};
        return {};
    }
};

/// Awaitable of `tcp_stream::connect`: result<tcp_stream>.
class connect_op : public detail::io_awaiter {
public:
    connect_op(reactor& r, const endpoint& ep) noexcept
        : io_awaiter(&r, token{}, detail::op_kind::connect), ep_(ep) {}
    ~connect_op() {
        if (owned_) r_->deregister(op_.tok); // the frame died before the result was taken
    }

    connect_op(connect_op&& o) noexcept : io_awaiter(std::move(o)), ep_(o.ep_) {}

    template <class P>
    bool await_suspend(std::coroutine_handle<P> h) {
        op_.waiter = h;
        auto fd = detail::open_tcp_socket(ep_);
        if (!fd) {
            early_ = fd.error();
            return false;
        }
        auto t = r_->register_handle(*fd);
        if (!t) {
            detail::close_native(*fd);
            early_ = t.error();
            return false;
        }
        fd_ = *fd;
        owned_ = true;
        op_.tok = *t;
        op_.family = ep_.is_v4() ? 4 : 6;
        op_.addr = addr_;
        op_.addr_len = static_cast<std::uint32_t>(detail::to_sockaddr(ep_, addr_));
        return io_awaiter::await_suspend(h);
    }

    inline result<tcp_stream> await_resume();

private:
    endpoint ep_;
    alignas(8) unsigned char addr_[detail::operation::addr_capacity]; ///< the native sockaddr
    std::error_code early_{};
    detail::native_handle fd_ = detail::invalid_handle;
    bool owned_ = false;
};

/// A connected TCP socket registered with one reactor. Move-only; closing (or destroying) it
/// deregisters it: operations still pending on it resume with `errc::operation_canceled`.
class tcp_stream : public detail::registered_handle {
public:
    /// A closed stream; every operation on it fails with `errc::closed`.
    tcp_stream() noexcept = default;
    /// Adopts a registered socket. Preconditions: `t` names `h` in `r`.
    tcp_stream(reactor& r, detail::native_handle h, token t) noexcept
        : registered_handle(r, h, t) {}

    /// Connects to `ep`. Returns: the connected stream.
    /// Errors: connection_refused, timed_out, network_unreachable, too_many_open_files, ...
    [[nodiscard]] static connect_op connect(reactor& r, const endpoint& ep) noexcept {
        return connect_op(r, ep);
    }

    /// Reads what is available, at most `buf.size()` bytes. Returns: the byte count; 0 means the
    /// peer closed its side (or `buf` is empty). Errors: connection_reset, operation_canceled
    /// (closed meanwhile), closed.
    [[nodiscard]] read_some_op read_some(std::span<std::byte> buf) noexcept {
        return {r_, t_, buf};
    }
    /// Reads what is available into a buffer the reactor owns (receive_buffer_size bytes at
    /// most). Returns: a lease on the bytes; an empty lease means the peer closed its side.
    /// Reads and receives on one stream may be mixed: bytes come out in stream order.
    /// Errors: no_buffer_space when data is there and every receive buffer is in use (nothing
    /// is lost: the data stays queued; with nothing to read it waits), and those of read_some.
    [[nodiscard]] receive_op receive() noexcept { return {r_, t_}; }
    /// Writes at most `buf.size()` bytes. Returns: the byte count written.
    /// Errors: broken_pipe (never SIGPIPE), connection_reset, operation_canceled, closed.
    [[nodiscard]] write_some_op write_some(std::span<const std::byte> buf) noexcept {
        return {r_, t_, buf};
    }
    /// Reads exactly `buf.size()` bytes. Errors: eof when the peer closes first, and those of
    /// read_some.
    [[nodiscard]] read_exact_op read_exact(std::span<std::byte> buf) noexcept {
        return {r_, t_, buf};
    }
    /// Writes all of `buf`. Errors: those of write_some.
    [[nodiscard]] write_all_op write_all(std::span<const std::byte> buf) noexcept {
        return {r_, t_, buf};
    }

    /// Sends FIN: the peer reads end of stream; this side can still read.
    result<void> shutdown_send() noexcept {
        if (!is_open()) return errc::closed;
        return detail::shutdown_send(h_);
    }
    result<endpoint> local_endpoint() const noexcept {
        if (!is_open()) return errc::closed;
        return detail::local_endpoint_of(h_);
    }
    result<endpoint> remote_endpoint() const noexcept {
        if (!is_open()) return errc::closed;
        return detail::remote_endpoint_of(h_);
    }
    /// Enables or disables Nagle's algorithm (TCP_NODELAY).
    result<void> set_nodelay(bool on) noexcept {
        if (!is_open()) return errc::closed;
        return detail::set_nodelay(h_, on);
    }

};

inline result<tcp_stream> connect_op::await_resume() {
    settle();
    if (early_) return early_;
    if (op_.error) {
        const auto ec = error();
        owned_ = false;
        r_->deregister(op_.tok);
        return ec;
    }
    owned_ = false;
    return tcp_stream(*r_, fd_, op_.tok);
}

} // namespace evio
