// SPDX-License-Identifier: MIT
// detail::room: the C++20 concept every backend ("room") satisfies; checked at each room's end.
#pragma once

#include <evio/detail/operation.hpp>
#include <evio/detail/platform.hpp>
#include <evio/detail/reactor_core.hpp>
#include <evio/detail/token_table.hpp>

#include <concepts>
#include <cstddef>
#include <system_error>

namespace evio::detail {

/// What the public reactor asks of a room. The data flow of one operation:
/// awaiter::await_suspend -> reactor::start -> room.start (syscall / SQE / overlapped call)
/// -> kernel -> room.wait (epoll_wait / CQE / GetQueuedCompletionStatusEx) -> waiter.resume().
template <class R>
concept room = requires(R& r, operation& op, slot& s, token t, native_handle h, direction d,
                        int timeout_ms) {
    { R::name } -> std::convertible_to<const char*>;
    { r.add(t, h) } -> std::same_as<std::error_code>;    // register a handle, once
    { r.start(op, s) } -> std::same_as<bool>;            // true: the waiter stays suspended
    { r.cancel_all(s) };                                  // deregistration steps 2-3, this token only
    { r.retry(t, d) };                                    // retry parked head ops (back-off release)
    { r.wait(timeout_ms) } -> std::same_as<std::size_t>; // one batch, resumed inline; its size
    { r.wake() } noexcept;                                // from any thread
    { r.drain_for_destroy() };                            // kernel releases every buffer
};

} // namespace evio::detail
