// SPDX-License-Identifier: MIT
// evio::buffer_lease: bytes tcp_stream::receive() delivered, in a buffer the reactor owns.
#pragma once

#include <evio/reactor.hpp>

#include <cstddef>
#include <cstdint>
#include <span>
#include <utility>

namespace evio {

/// A received chunk of a stream, in one of the reactor's receive buffers. Move-only; the buffer
/// goes back to the reactor when the lease is destroyed or released (on io_uring, straight back
/// into the kernel's provided-buffer ring). An empty lease is the end of the stream.
/// Preconditions: released before its reactor is destroyed (contract `reactor.outlived_by_lease`).
class buffer_lease {
public:
    buffer_lease() noexcept = default;
    buffer_lease(reactor& r, std::uint32_t id, std::byte* p, std::size_t n) noexcept
        : r_(&r), p_(p), n_(n), id_(id) {}
    buffer_lease(buffer_lease&& o) noexcept
        : r_(std::exchange(o.r_, nullptr)), p_(std::exchange(o.p_, nullptr)),
          n_(std::exchange(o.n_, 0)), id_(o.id_) {}
    buffer_lease& operator=(buffer_lease&& o) noexcept {
        if (this != &o) {
            release();
            r_ = std::exchange(o.r_, nullptr);
            p_ = std::exchange(o.p_, nullptr);
            n_ = std::exchange(o.n_, 0);
            id_ = o.id_;
        }
        return *this;
    }
    buffer_lease(const buffer_lease&) = delete;
    buffer_lease& operator=(const buffer_lease&) = delete;
    ~buffer_lease() { release(); }

    /// The received bytes (writable: the lease owns them until it is released).
    std::span<std::byte> data() const noexcept { return {p_, n_}; }
    std::size_t size() const noexcept { return n_; }
    /// True at the end of the stream (and for a released or moved-from lease).
    bool empty() const noexcept { return n_ == 0; }

    /// Gives the buffer back now; the lease becomes empty.
    void release() noexcept {
        if (r_) std::exchange(r_, nullptr)->release_buffer(id_);
        p_ = nullptr;
        n_ = 0;
    }

private:
    reactor* r_ = nullptr;
    std::byte* p_ = nullptr;
    std::size_t n_ = 0;
    std::uint32_t id_ = 0;
};

} // namespace evio
