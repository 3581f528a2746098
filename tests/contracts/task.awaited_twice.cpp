// SPDX-License-Identifier: MIT
// Violates task.awaited_twice: a finished task awaited again.
// expect: evio contract violation \[task\.awaited_twice\]
#include "common.hpp"

int main() {
    evio::reactor r;
    evio::sync_wait(r, []() -> evio::task<void> {
        auto child = []() -> evio::task<int> { co_return 1; }();
        (void)co_await child;
        (void)co_await child;
    }());
    return contract_program::not_caught("task.awaited_twice");
}
