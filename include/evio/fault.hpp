// SPDX-License-Identifier: MIT
// evio::fault_injector: seeded, reproducible faults in the calls every backend makes (tests).
//
// It drives the syscall seam (detail/syscall.hpp). Each site keeps its own call counter and the
// n-th call at a site draws its fault from hash(seed, site, n): the same seed gives the same
// faults to the same sequence of calls, whatever the other sites did. Not included by
// <evio/evio.hpp>: include <evio/fault.hpp> in tests.
#pragma once

#include <evio/detail/platform.hpp>
#include <evio/detail/syscall.hpp>

#if EVIO_HAS_IOCP
#include <evio/detail/iocp/winsock.hpp>
#endif

#include <array>
#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>

namespace evio {

/// Where a fault is injected: the call a backend makes for one kind of work.
enum class fault_site : std::uint8_t {
    accept,   ///< accept4 (epoll), AcceptEx (iocp); io_uring's multishot accept is not covered
    connect,  ///< connect (epoll), the connect SQE (io_uring), ConnectEx (iocp)
    recv,     ///< recv (epoll), the recv SQE (io_uring), WSARecv (iocp)
    send,     ///< send (epoll), the send SQE (io_uring), WSASend (iocp)
    close,    ///< close (epoll), the IORING_OP_CLOSE submit (io_uring), closesocket (iocp)
    poll_ctl, ///< epoll_ctl (register, deregister), CreateIoCompletionPort (associate)
    submit,   ///< io_uring_submit of a loop turn
    cancel,   ///< CancelIoEx (iocp)
    wait,     ///< epoll_wait, GetQueuedCompletionStatusEx
    count_
};

/// What is injected.
enum class fault_kind : std::uint8_t {
    fail,           ///< the call fails with fault_rates::error (or the site's default error)
    short_transfer, ///< recv/send run with a shorter request length (never 0 bytes)
    again,          ///< EAGAIN (POSIX backends; an io_uring SQE completes with -EAGAIN)
    interrupt,      ///< EINTR (POSIX backends; an io_uring SQE completes with -EINTR)
    reset,          ///< recv/send fail with ECONNRESET (WSAECONNRESET)
    count_
};

/// Per-call probabilities (0..1, summed at most 1) of each fault at one site.
struct fault_rates {
    double fail = 0;
    double short_transfer = 0;
    double again = 0;
    double interrupt = 0;
    double reset = 0;
    int error = 0; ///< the native error `fail` reports; 0: the site's default (see docs/api.md)
};

/// A seeded fault injector. Install one at a time; it stays installed until uninstall() or its
/// destruction. Thread-safe: counters are atomic, decisions depend only on (seed, site, n).
class fault_injector {
public:
    explicit fault_injector(std::uint64_t seed) noexcept : seed_(seed) {}
    fault_injector(const fault_injector&) = delete;
    fault_injector& operator=(const fault_injector&) = delete;
    ~fault_injector() { uninstall(); }

    /// Sets the rates of one site (before install(), or while installed from the reactor's
    /// thread only).
    fault_injector& set(fault_site site, const fault_rates& r) noexcept {
        rates_[static_cast<std::size_t>(site)] = r;
        return *this;
    }
    const fault_rates& rates(fault_site site) const noexcept {
        return rates_[static_cast<std::size_t>(site)];
    }

    /// Makes this injector the seam's hook. False when a hook (another injector, or a test's
    /// detail hook) is already installed: nothing changes then.
    bool install() noexcept {
        fault_injector* none = nullptr;
        if (!active().compare_exchange_strong(none, this)) return false;
        detail::io_fault_hook expected = nullptr;
        if (!detail::fault_hook_slot().compare_exchange_strong(expected, &hook)) {
            active().store(nullptr);
            return false;
        }
        return true;
    }
    /// Removes the hook if this injector installed it. Idempotent.
    void uninstall() noexcept {
        fault_injector* self = this;
        if (!active().compare_exchange_strong(self, nullptr)) return;
        detail::io_fault_hook mine = &hook;
        detail::fault_hook_slot().compare_exchange_strong(mine, nullptr);
    }
    bool installed() const noexcept { return active().load() == this; }

    /// Pauses (false) or resumes (true) injection without uninstalling; calls are not counted
    /// while paused, so the fault sequence resumes where it stopped.
    void enable(bool on) noexcept { enabled_.store(on, std::memory_order_relaxed); }
    bool enabled() const noexcept { return enabled_.load(std::memory_order_relaxed); }

    std::uint64_t seed() const noexcept { return seed_; }
    /// Calls seen at `site` while enabled.
    std::uint64_t calls(fault_site site) const noexcept {
        return calls_[static_cast<std::size_t>(site)].load(std::memory_order_relaxed);
    }
    /// Faults of `kind` injected at `site`.
    std::uint64_t injected(fault_site site, fault_kind kind) const noexcept {
        return injected_[index(site, kind)].load(std::memory_order_relaxed);
    }
    /// Faults of `kind` injected at every site.
    std::uint64_t injected(fault_kind kind) const noexcept {
        std::uint64_t n = 0;
        for (std::size_t s = 0; s < site_count; ++s)
            n += injected(static_cast<fault_site>(s), kind);
        return n;
    }
    /// Every fault injected.
    std::uint64_t injected_total() const noexcept {
        std::uint64_t n = 0;
        for (std::size_t k = 0; k < kind_count; ++k) n += injected(static_cast<fault_kind>(k));
        return n;
    }

    /// The default native error of `fail` at `site` (errno, or Win32/Winsock on Windows).
    static int default_error(fault_site site) noexcept {
        switch (site) {
        case fault_site::accept: return native(ENOBUFS);
        case fault_site::connect: return native(ECONNREFUSED);
        case fault_site::recv:
        case fault_site::send: return native(ETIMEDOUT);
        case fault_site::close: return native(EIO);
        case fault_site::poll_ctl: return native(ENOMEM);
        case fault_site::submit: return native(EBUSY);
        case fault_site::cancel: return native(ENOENT);
        case fault_site::wait: return native(EINTR);
        case fault_site::count_: break;
        }
        return native(EIO);
    }

private:
    static constexpr std::size_t site_count = static_cast<std::size_t>(fault_site::count_);
    static constexpr std::size_t kind_count = static_cast<std::size_t>(fault_kind::count_);
    static constexpr std::size_t no_site = site_count;

    static std::atomic<fault_injector*>& active() noexcept {
        static std::atomic<fault_injector*> a{nullptr};
        return a;
    }
    static std::size_t index(fault_site s, fault_kind k) noexcept {
        return static_cast<std::size_t>(s) * kind_count + static_cast<std::size_t>(k);
    }

    /// The site of a seam call, or no_site for calls the injector leaves alone.
    static std::size_t site_of(detail::sys call) noexcept {
        using detail::sys;
        switch (call) {
        case sys::accept: return static_cast<std::size_t>(fault_site::accept);
        case sys::connect:
        case sys::ring_connect: return static_cast<std::size_t>(fault_site::connect);
        case sys::recv:
        case sys::ring_recv: return static_cast<std::size_t>(fault_site::recv);
        case sys::send:
        case sys::ring_send: return static_cast<std::size_t>(fault_site::send);
        case sys::close: return static_cast<std::size_t>(fault_site::close);
        case sys::epoll_ctl:
        case sys::iocp_associate: return static_cast<std::size_t>(fault_site::poll_ctl);
        case sys::uring_submit: return static_cast<std::size_t>(fault_site::submit);
        case sys::iocp_cancel: return static_cast<std::size_t>(fault_site::cancel);
        case sys::epoll_wait:
        case sys::iocp_wait: return static_cast<std::size_t>(fault_site::wait);
        default: return no_site;
        }
    }

    /// POSIX errno -> the platform's native error for the same condition.
    static int native(int e) noexcept {
#if EVIO_HAS_IOCP
        switch (e) {
        case ENOBUFS: return WSAENOBUFS;
        case ECONNREFUSED: return WSAECONNREFUSED;
        case ETIMEDOUT: return WSAETIMEDOUT;
        case ECONNRESET: return WSAECONNRESET;
        case ENOMEM: return ERROR_NOT_ENOUGH_MEMORY;
        case EBUSY: return ERROR_BUSY;
        case ENOENT: return ERROR_NOT_FOUND;
        case EINTR: return WAIT_TIMEOUT; // a wait that returned nothing
        case EAGAIN: return WSAEWOULDBLOCK;
        default: return WSAENETDOWN;
        }
#else
        return e;
#endif
    }

    static std::uint64_t mix(std::uint64_t x) noexcept { // splitmix64's finaliser
        x += 0x9e3779b97f4a7c15ULL;
        x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
        x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
        return x ^ (x >> 31);
    }

    static bool hook(detail::sys call, int* err, std::size_t* len) noexcept {
        fault_injector* self = active().load(std::memory_order_acquire);
        return self != nullptr && self->decide(call, err, len);
    }

    bool decide(detail::sys call, int* err, std::size_t* len) noexcept {
        using detail::sys;
        const std::size_t site = site_of(call);
        if (site == no_site || !enabled()) return false;
        const std::uint64_t n = calls_[site].fetch_add(1, std::memory_order_relaxed);
        const std::uint64_t h = mix(seed_ ^ mix((static_cast<std::uint64_t>(site) << 56) ^ n));
        const double u = static_cast<double>(h >> 11) * 0x1.0p-53;
        const fault_rates& r = rates_[site];
        const bool transfer = call == sys::recv || call == sys::send || call == sys::ring_recv ||
                              call == sys::ring_send;
        // EAGAIN/EINTR exist where the backend has a path for them: POSIX calls that a room
        // retries, and io_uring SQEs (resubmitted). Overlapped calls never report them.
        const bool retryable = !EVIO_HAS_IOCP && (transfer || call == sys::accept ||
                                                  call == sys::ring_connect);
        double edge = r.fail;
        if (u < edge) return inject(site, fault_kind::fail, err, r.error ? r.error : default_error(static_cast<fault_site>(site)));
        edge += r.reset;
        if (u < edge) return transfer && inject(site, fault_kind::reset, err, native(ECONNRESET));
        edge += r.again;
        if (u < edge) return retryable && inject(site, fault_kind::again, err, native(EAGAIN));
        edge += r.interrupt;
        if (u < edge) return retryable && inject(site, fault_kind::interrupt, err, native(EINTR));
        edge += r.short_transfer;
        if (u < edge && transfer && len && *len > 1) {
            *len = 1 + static_cast<std::size_t>(mix(h) % (*len - 1)); // 1 .. len-1
            injected_[index(static_cast<fault_site>(site), fault_kind::short_transfer)].fetch_add(
                1, std::memory_order_relaxed);
        }
        return false;
    }

    bool inject(std::size_t site, fault_kind k, int* err, int e) noexcept {
        *err = e;
        injected_[index(static_cast<fault_site>(site), k)].fetch_add(1, std::memory_order_relaxed);
        return true;
    }

    std::uint64_t seed_;
    std::atomic<bool> enabled_{true};
    std::array<fault_rates, site_count> rates_{};
    std::array<std::atomic<std::uint64_t>, site_count> calls_{};
    std::array<std::atomic<std::uint64_t>, site_count * kind_count> injected_{};
};

} // namespace evio
