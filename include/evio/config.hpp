// SPDX-License-Identifier: MIT
// Compile-time configuration knobs (contract level, limits) with their defaults.
#pragma once

/// Contract checking level: 0 = compiled out, 1 = O(1) checks (default, also in release),
/// 2 = audit (neighbour snapshots around every deregistration, full scan at reactor destruction).
#ifndef EVIO_CONTRACTS
#define EVIO_CONTRACTS 1
#endif

/// Operations one token may complete without suspending in one reactor turn before it yields
/// (fairness: a peer whose data is always ready cannot starve the others). Each yield costs a
/// turn with a non-blocking wait (one syscall): 64 keeps that under 2 % of a streaming read
/// (16 cost 6 %: docs/benchmarks.md) and bounds a flood to 64 reads per turn (tokio: 128).
#ifndef EVIO_TURN_BUDGET
#define EVIO_TURN_BUDGET 64
#endif

/// How long an accept that failed with EMFILE/ENFILE waits before trying again, unless the
/// reactor releases a descriptor earlier (milliseconds).
#ifndef EVIO_ACCEPT_BACKOFF_MS
#define EVIO_ACCEPT_BACKOFF_MS 50
#endif
