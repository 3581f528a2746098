// SPDX-License-Identifier: MIT
// Violates result.empty_error: an error result built from a success error_code.
// expect: evio contract violation \[result\.empty_error\]
#include "common.hpp"

int main() {
    evio::result<int> r{std::error_code{}};
    (void)r;
    return contract_program::not_caught("result.empty_error");
}
