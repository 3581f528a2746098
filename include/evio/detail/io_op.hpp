// SPDX-License-Identifier: MIT
// detail::io_awaiter: the awaiter base every socket operation shares (co_await -> reactor).
#pragma once

#include <evio/detail/cancel.hpp>
#include <evio/detail/operation.hpp>
#include <evio/detail/platform.hpp>
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
/// Movable until awaited (so wrappers like with_timeout can hold it), never after.
class io_awaiter {
public:
    io_awaiter(reactor* r, token t, op_kind k) noexcept : r_(r) {
        op_.tok = t;
        op_.kind = k;
    }
    io_awaiter(io_awaiter&& o) noexcept : r_(o.r_), op_(o.op_) {}
    io_awaiter(const io_awaiter&) = delete;
    io_awaiter& operator=(const io_awaiter&) = delete;
    io_awaiter& operator=(io_awaiter&&) = delete;

    bool await_ready() const noexcept { return false; }

    /// Starts the op: false resumes the caller at once (finished inline), true keeps it
    /// suspended until the reactor resumes it with the result. Inside a cancellation scope
    /// (with_timeout, with_cancellation, when_any) the op attaches its cancel function to the
    /// scope; a scope cancelled before the op starts makes it finish at once, unstarted.
    template <class P>
    EVIO_ALWAYS_INLINE bool await_suspend(std::coroutine_handle<P> h) {
        op_.waiter = h;
        if (r_ == nullptr || !op_.tok.valid()) {
            op_.error = error_closed;
            return false;
        }
        if constexpr (has_cancel_slot<P>) {
            if (cancel_slot* c = h.promise().cancel) {
                if (c->requested) {
                    op_.error = native_cancel_error;
                    return false;
                }
                if (!r_->start(op_)) return false;
                c->attach(&cancel_this, this);
                scope_ = c;
                return true;
            }
        }
        return r_->start(op_);
    }

    /// Bytes moved so far (also meaningful after an error or a cancellation).
    std::size_t transferred() const noexcept { return op_.done; }

protected:
    std::error_code error() const noexcept { return op_error(op_.error); }

    /// Called first by every await_resume: the op is finished, leave the scope.
    void settle() noexcept {
        if (scope_) {
            scope_->detach(this);
            scope_ = nullptr;
        }
    }

    reactor* r_;
    operation op_{};
    cancel_slot* scope_ = nullptr;

private:
    static void cancel_this(void* self) {
        auto* a = static_cast<io_awaiter*>(self);
        a->r_->cancel(a->op_);
    }
};

} // namespace evio::detail
