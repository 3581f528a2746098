// SPDX-License-Identifier: MIT
// Violates reactor.reentrant_run: run() called from a coroutine the reactor is running.
// expect: evio contract violation \[reactor\.reentrant_run\]
#include "common.hpp"

int main() {
    evio::reactor r;
    evio::spawn(r, [&]() -> evio::task<void> {
        r.run();
        co_return;
    });
    r.run();
    return contract_program::not_caught("reactor.reentrant_run");
}
