// SPDX-License-Identifier: MIT
// Violates spawn.invalid: spawning a task that owns no coroutine.
// expect: evio contract violation \[spawn\.invalid\]
#include "common.hpp"

int main() {
    evio::reactor r;
    evio::spawn(r, evio::task<void>{});
    return contract_program::not_caught("spawn.invalid");
}
