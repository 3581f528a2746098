// SPDX-License-Identifier: MIT
// Picks the socket helpers of this platform (posix/ or iocp/): one set of names for both.
#pragma once

#include <evio/detail/platform.hpp>

#if EVIO_HAS_POSIX
#include <evio/detail/posix/socket.hpp>
#endif
#if EVIO_HAS_IOCP
#include <evio/detail/iocp/socket.hpp>
#endif
