// SPDX-License-Identifier: MIT
// detail::io_awaiter: the awaiter base every socket operation shares (co_await -> reactor).
#pragma once

#include <evio/detail/operation.hpp>
#include <evio/detail/socket.hpp>
#include <evio/error.hpp>
#include <evio/reactor.hpp>

#include <coroutine>
#include <system_error>

namespace evio::detail {

/// The portable error for an operation's error field.
inline std::error_code op_error(int e) noexcept {
    if (e == error_eof) return errc::eof;
    if (e == error_closed) return errc::closed;
    return error_from_native(e);
}

/// Holds the operation in the coroutine frame and hands it to the reactor on suspension.
class io_awaiter {
public:
    io_awaiter(reactor* r, token t, op_kind k) noexcept : r_(r) {
        op_.tok = t;
        op_.kind = k;
    }
    io_awaiter(const io_awaiter&) = delete;
    io_awaiter& operator=(const io_awaiter&) = delete;

    bool await_ready() const noexcept { return false; }

    /// Starts the op: false resumes the caller at once (finished inline), true keeps it
    /// suspended until the reactor resumes it with the result.
    bool await_suspend(std::coroutine_handle<> h) {
        op_.waiter = h;
        if (r_ == nullptr || !op_.tok.valid()) {
            op_.error = error_closed;
            return false;
        }
        return r_->start(op_);
    }

    /// Bytes moved so far (also meaningful after an error or a cancellation).
    std::size_t transferred() const noexcept { return op_.done; }

protected:
    std::error_code error() const noexcept { return op_error(op_.error); }

    reactor* r_;
    operation op_{};
};

} // namespace evio::detail
