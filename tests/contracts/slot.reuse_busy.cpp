// SPDX-License-Identifier: MIT
// Violates slot.reuse_busy: a free slot that still has an operation queued is handed out again.
// expect: evio contract violation \[slot\.reuse_busy\]
#include "common.hpp"

int main() {
    evio::detail::token_table table{1};
    const evio::token t = table.allocate(3);
    table.begin_deregister(t);
    table.finish_deregister(t.index);
    evio::detail::operation ghost{};
    table.at(t.index).queue[0].push(&ghost); // a room that left an op behind
    (void)table.allocate(4);
    return contract_program::not_caught("slot.reuse_busy");
}
