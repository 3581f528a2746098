// SPDX-License-Identifier: MIT
// Test-side backend selection: EVIO_TEST_BACKEND (epoll | io_uring | iocp) read before Catch runs.
#pragma once

/// Checks that the backend named by the environment variable EVIO_TEST_BACKEND can run here.
/// Returns: 77 (CTest's SKIP_RETURN_CODE) when it cannot, 0 otherwise (also when it is unset).
int evio_test_precheck();
