// SPDX-License-Identifier: MIT
// detail::buffer_pool: the reactor's receive buffers, which tcp_stream::receive() leases.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>
#include <vector>

namespace evio::detail {

/// Fixed-size buffers, allocated a chunk at a time on demand up to `max` (never shrunk before
/// the reactor goes). A buffer is in exactly one place: free (the free list here, or on
/// io_uring the kernel's provided-buffer ring), stashed (io_uring: received data no receive()
/// has taken yet), or leased (a buffer_lease the user holds).
class buffer_pool {
public:
    static constexpr std::uint32_t chunk = 64;        ///< buffers added per growth
    static constexpr std::uint32_t max_limit = 32768; ///< the kernel's buffer ring size limit

    buffer_pool() = default;
    buffer_pool(const buffer_pool&) = delete;
    buffer_pool& operator=(const buffer_pool&) = delete;
    ~buffer_pool() {
        for (std::byte* c : chunks_) ::operator delete(c, std::align_val_t{4096});
    }

    /// Sets the buffer size and count limit (before the first buffer exists).
    void configure(std::size_t size, std::uint32_t max) noexcept {
        size_ = size;
        max_ = max;
    }

    std::size_t buffer_size() const noexcept { return size_; }
    std::uint32_t max() const noexcept { return max_; }
    std::uint32_t allocated() const noexcept { return count_; }

    std::byte* data(std::uint32_t id) const noexcept {
        return chunks_[id / chunk] + static_cast<std::size_t>(id % chunk) * size_;
    }

    /// Allocates up to `chunk` more buffers. Returns how many (0 at the limit or when memory is
    /// short); their ids are allocated() - n .. allocated() - 1. The pages are touched now: a
    /// kernel write into an unmapped page cannot complete inline (io_uring punts it to a worker).
    std::uint32_t grow() noexcept {
        const std::uint32_t n = max_ - count_ < chunk ? max_ - count_ : chunk;
        if (n == 0) return 0;
        const std::size_t bytes = static_cast<std::size_t>(n) * size_; // the last chunk may be short
        auto* p = static_cast<std::byte*>(::operator new(bytes, std::align_val_t{4096}, std::nothrow));
        if (p == nullptr) return 0;
        std::memset(p, 0, bytes);
        chunks_.push_back(p);
        count_ += n;
        return n;
    }

    /// Free-list rooms (epoll, IOCP, io_uring without a buffer ring): a free buffer, or -1 when
    /// all `max` are leased.
    std::int32_t acquire() noexcept {
        if (free_.empty() && !refill()) return -1;
        const std::uint32_t id = free_.back();
        free_.pop_back();
        return static_cast<std::int32_t>(id);
    }
    /// A buffer from the free list as it is (never grows the pool), or -1 when it is empty.
    std::int32_t pop_free() noexcept {
        if (free_.empty()) return -1;
        const std::uint32_t id = free_.back();
        free_.pop_back();
        return static_cast<std::int32_t>(id);
    }
    /// Never allocates: the free list has room for every buffer (reserved by refill).
    void put(std::uint32_t id) noexcept { free_.push_back(id); }

    std::size_t leased = 0;  ///< buffers held by buffer_lease objects (and pending fallback reads)
    std::size_t stashed = 0; ///< io_uring: received, waiting for a receive()

private:
    /// The free list ran empty: one more chunk. Out of line: acquire() stays a pop.
#if defined(__GNUC__)
    __attribute__((noinline))
#endif
    bool refill() noexcept {
        try {
            free_.reserve(count_ + chunk); // put() then never allocates (lease destructors)
        } catch (...) {
            return false; // out of memory: no buffer, as at the limit
        }
        const std::uint32_t n = grow();
        for (std::uint32_t i = 0; i < n; ++i) free_.push_back(count_ - 1 - i);
        return n > 0;
    }

    std::size_t size_ = 16384;
    std::uint32_t max_ = 4096;
    std::uint32_t count_ = 0;
    std::vector<std::byte*> chunks_;
    std::vector<std::uint32_t> free_;
};

} // namespace evio::detail
