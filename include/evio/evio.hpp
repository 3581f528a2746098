// SPDX-License-Identifier: MIT
// Umbrella header: everything a user of evio needs.
#pragma once

#include <evio/buffer_lease.hpp>
#include <evio/cancellation.hpp>
#include <evio/config.hpp>
#include <evio/endpoint.hpp>
#include <evio/error.hpp>
#include <evio/reactor.hpp>
#include <evio/result.hpp>
#include <evio/spawn.hpp>
#include <evio/task.hpp>
#include <evio/tcp_listener.hpp>
#include <evio/tcp_stream.hpp>
#include <evio/timeout.hpp>
#include <evio/timer.hpp>
#include <evio/token.hpp>
#include <evio/version.hpp>
#include <evio/when.hpp>
