// SPDX-License-Identifier: MIT
// Violates result.no_value: dereferencing a result that holds an error.
// expect: evio contract violation \[result\.no_value\]
#include "common.hpp"

int main() {
    evio::result<int> r = evio::errc::timed_out;
    std::printf("%d\n", *r);
    return contract_program::not_caught("result.no_value");
}
