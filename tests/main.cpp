// SPDX-License-Identifier: MIT
// Shared Catch2 runner, compiled once (object library evio_test_main) and linked into every test.
#define CATCH_CONFIG_RUNNER // Catch2 v2: provide our own main; v3 ignores it
#include "support/backend.hpp"
#include "support/catch.hpp"

int main(int argc, char* argv[]) {
    // Exit 77 (CTest: skipped) when the backend requested via EVIO_TEST_BACKEND cannot run here.
    if (const int rc = evio_test_precheck(); rc != 0) {
        return rc;
    }
    return Catch::Session().run(argc, argv);
}
