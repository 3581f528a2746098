// SPDX-License-Identifier: MIT
// The counting operator new/delete declared in counting_new.hpp.
#include "support/counting_new.hpp"

#include <evio/detail/platform.hpp>

#include <cstdlib>
#include <new>

#if EVIO_PLATFORM_WINDOWS
#include <malloc.h>
#endif

namespace evio::test::heap {
std::atomic<bool> counting{false};
std::atomic<long> allocations{0};
std::atomic<long> deallocations{0};
} // namespace evio::test::heap

namespace {
using evio::test::heap::allocations;
using evio::test::heap::counting;
using evio::test::heap::deallocations;

void note_alloc(bool ok) noexcept {
    if (ok && counting.load(std::memory_order_relaxed)) allocations.fetch_add(1, std::memory_order_relaxed);
}
void note_free(bool ok) noexcept {
    if (ok && counting.load(std::memory_order_relaxed)) deallocations.fetch_add(1, std::memory_order_relaxed);
}
void* counted_alloc(std::size_t n) noexcept {
    void* p = std::malloc(n ? n : 1);
    note_alloc(p != nullptr);
    return p;
}
void counted_free(void* p) noexcept {
    note_free(p != nullptr);
    std::free(p);
}
void* counted_aligned_alloc(std::size_t n, std::align_val_t a) noexcept {
    const std::size_t al = static_cast<std::size_t>(a);
#if EVIO_PLATFORM_WINDOWS
    // No aligned_alloc in the Windows CRT; its aligned blocks go back through _aligned_free.
    void* p = ::_aligned_malloc(n ? n : 1, al);
#else
    void* p = std::aligned_alloc(al, (n + al - 1) / al * al);
#endif
    note_alloc(p != nullptr);
    return p;
}
void counted_aligned_free(void* p) noexcept {
    note_free(p != nullptr);
#if EVIO_PLATFORM_WINDOWS
    ::_aligned_free(p);
#else
    std::free(p);
#endif
}
} // namespace

void* operator new(std::size_t n) {
    if (void* p = counted_alloc(n)) return p;
    throw std::bad_alloc();
}
void* operator new[](std::size_t n) {
    if (void* p = counted_alloc(n)) return p;
    throw std::bad_alloc();
}
void* operator new(std::size_t n, const std::nothrow_t&) noexcept { return counted_alloc(n); }
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept { return counted_alloc(n); }
void* operator new(std::size_t n, std::align_val_t a) {
    if (void* p = counted_aligned_alloc(n, a)) return p;
    throw std::bad_alloc();
}
void* operator new[](std::size_t n, std::align_val_t a) {
    if (void* p = counted_aligned_alloc(n, a)) return p;
    throw std::bad_alloc();
}
void* operator new(std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
    return counted_aligned_alloc(n, a);
}
void* operator new[](std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
    return counted_aligned_alloc(n, a);
}
void operator delete(void* p) noexcept { counted_free(p); }
void operator delete[](void* p) noexcept { counted_free(p); }
void operator delete(void* p, std::size_t) noexcept { counted_free(p); }
void operator delete[](void* p, std::size_t) noexcept { counted_free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { counted_free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { counted_free(p); }
void operator delete(void* p, std::align_val_t) noexcept { counted_aligned_free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { counted_aligned_free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { counted_aligned_free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { counted_aligned_free(p); }
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { counted_aligned_free(p); }
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept { counted_aligned_free(p); }
