// SPDX-License-Identifier: MIT
// evio::tcp_listener: a listening TCP socket; each co_await accept() yields one connection.
#pragma once

#include <evio/detail/io_op.hpp>
#include <evio/detail/socket.hpp>
#include <evio/endpoint.hpp>
#include <evio/reactor.hpp>
#include <evio/result.hpp>
#include <evio/tcp_stream.hpp>

#include <utility>

namespace evio {

/// Awaitable of `tcp_listener::accept`: result<tcp_stream>.
class accept_op : public detail::io_awaiter {
public:
    accept_op(reactor* r, token t, std::uint8_t family) noexcept
        : io_awaiter(r, t, detail::op_kind::accept) {
        op_.family = family;
    }
    ~accept_op() {
        // A connection accepted but never handed out (the frame died first) is closed.
        if (op_.accepted != detail::invalid_handle) detail::close_native(op_.accepted);
    }
    accept_op(accept_op&& o) noexcept : io_awaiter(std::move(o)) {}
#if EVIO_HAS_IOCP
    /// IOCP: AcceptEx writes both addresses into a buffer that must live as long as the op.
    template <class P>
    bool await_suspend(std::coroutine_handle<P> h) {
        op_.addr = addr_;
        return io_awaiter::await_suspend(h);
    }
#endif
    result<tcp_stream> await_resume() {
        settle();
        if (op_.error) return error();
        const detail::native_handle h = std::exchange(op_.accepted, detail::invalid_handle);
        auto t = r_->register_handle(h);
        if (!t) {
            detail::close_native(h);
            return t.error();
        }
        return tcp_stream(*r_, h, *t);
    }
#if EVIO_HAS_IOCP
private:
    alignas(8) unsigned char addr_[detail::operation::addr_capacity];
#endif
};

/// A listening socket registered with one reactor. Move-only; closing it cancels pending accepts.
class tcp_listener : public detail::registered_handle {
public:
    tcp_listener() noexcept = default;

    /// Binds and listens on `ep` (port 0 picks a free port; see local_endpoint()).
    /// Errors: address_in_use, address_not_available, permission_denied, too_many_open_files.
    static result<tcp_listener> bind(reactor& r, const endpoint& ep, int backlog = 1024) {
        auto fd = detail::open_listener(ep, backlog);
        if (!fd) return fd.error();
        auto t = r.register_handle(*fd);
        if (!t) {
            detail::close_native(*fd);
            return t.error();
        }
        r.core().table.at(t->index).listener = true;
        tcp_listener l(r, *fd, *t);
        l.family_ = ep.is_v4() ? 4 : 6;
        return l;
    }

    /// Waits for one connection. Errors: too_many_open_files (the next accept then waits until
    /// a descriptor is free or a short back-off passed, so a retry loop does not spin),
    /// operation_canceled (closed meanwhile), closed.
    [[nodiscard]] accept_op accept() noexcept { return {r_, t_, family_}; }

    /// The bound address (with the real port when bound to port 0).
    result<endpoint> local_endpoint() const noexcept {
        if (!is_open()) return errc::closed;
        return detail::local_endpoint_of(h_);
    }

private:
    tcp_listener(reactor& r, detail::native_handle h, token t) noexcept
        : registered_handle(r, h, t) {}

    std::uint8_t family_ = 4;
};

} // namespace evio
