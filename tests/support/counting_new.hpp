// SPDX-License-Identifier: MIT
// A counting global operator new/delete for the tests that assert on heap use (alloc,
// destroy_leak, fault.hostile). The replacement lives in counting_new.cpp, linked into just those
// executables (tests/CMakeLists.txt): every form of new and delete is replaced, so no block
// crosses between it and the library's own (ASan checks the pairing).
#pragma once

#include <atomic>
#include <new>

namespace evio::test::heap {

/// Allocations and deallocations are counted only while `counting` is true.
extern std::atomic<bool> counting;
extern std::atomic<long> allocations;
extern std::atomic<long> deallocations;

/// Starts a fresh count.
inline void start() noexcept {
    allocations = 0;
    deallocations = 0;
    counting = true;
}

} // namespace evio::test::heap

namespace evio::test::heap {
/// A control for the tests: true when one ::operator new/delete pair is counted (the counting
/// replacement is linked in), so a count of zero elsewhere means something.
inline bool counter_works() {
    start();
    void* p = ::operator new(16); // a direct call: never elided, unlike a new-expression
    ::operator delete(p);
    counting = false;
    return allocations.load() == 1 && deallocations.load() == 1;
}
} // namespace evio::test::heap
