// SPDX-License-Identifier: MIT
// detail::registered_handle: what tcp_stream and tcp_listener share: an OS socket registered
// with one reactor, owned (move-only; close() or the destructor deregisters and closes it).
#pragma once

#include <evio/detail/platform.hpp>
#include <evio/reactor.hpp>
#include <evio/token.hpp>

#include <utility>

namespace evio::detail {

class registered_handle {
public:
    registered_handle() noexcept = default;
    /// Adopts a registered socket. Preconditions: `t` names `h` in `r`.
    registered_handle(reactor& r, ::evio::detail::native_handle h, token t) noexcept
        : r_(&r), h_(h), t_(t) {}
    registered_handle(registered_handle&& o) noexcept
        : r_(std::exchange(o.r_, nullptr)), h_(std::exchange(o.h_, invalid_handle)),
          t_(std::exchange(o.t_, token{})) {}
    registered_handle& operator=(registered_handle&& o) noexcept {
        if (this != &o) {
            close();
            r_ = std::exchange(o.r_, nullptr);
            h_ = std::exchange(o.h_, invalid_handle);
            t_ = std::exchange(o.t_, token{});
        }
        return *this;
    }
    registered_handle(const registered_handle&) = delete;
    registered_handle& operator=(const registered_handle&) = delete;
    ~registered_handle() { close(); }

    /// Deregisters and closes the socket; pending operations resume with operation_canceled.
    /// Idempotent.
    void close() noexcept {
        if (r_ && t_.valid()) r_->deregister(t_);
        r_ = nullptr;
        h_ = invalid_handle;
        t_ = token{};
    }
    /// True until close() or a move-from.
    bool is_open() const noexcept { return r_ != nullptr && t_.valid(); }

    /// The OS socket (fd or SOCKET); owned by this object.
    ::evio::detail::native_handle native_handle() const noexcept { return h_; }
    /// The registration in the reactor.
    token native_token() const noexcept { return t_; }
    reactor* owner() const noexcept { return r_; }

protected:
    reactor* r_ = nullptr;
    ::evio::detail::native_handle h_ = invalid_handle;
    token t_{};
};

} // namespace evio::detail
