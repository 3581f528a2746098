// SPDX-License-Identifier: MIT
// Contract checks with stable ids and a replaceable violation handler (DESIGN.md §3).
#pragma once

#include <evio/config.hpp>

#include <atomic>
#include <cstdio>
#include <cstdlib>

namespace evio {

/// What a failed contract check reports: a stable id (see docs/contracts.md), where, and what.
struct contract_violation {
    const char* id;
    const char* file;
    int line;
    const char* expression;
};

/// A contract violation handler. It may throw (tests do, to observe a violation in-process) or
/// terminate; if it returns, evio aborts.
using contract_handler = void (*)(const contract_violation&);

namespace detail {

[[noreturn]] inline void default_contract_handler_impl(const contract_violation& v) noexcept {
    std::fprintf(stderr, "evio contract violation [%s] %s:%d: %s\n", v.id, v.file, v.line,
                 v.expression);
    std::fflush(stderr);
    std::abort();
}

inline void default_contract_handler(const contract_violation& v) {
    default_contract_handler_impl(v);
}

inline std::atomic<contract_handler>& contract_handler_slot() noexcept {
    static std::atomic<contract_handler> handler{&default_contract_handler};
    return handler;
}

inline void contract_failed(const char* id, const char* file, int line, const char* expr) {
    const contract_violation v{id, file, line, expr};
    contract_handler_slot().load(std::memory_order_acquire)(v);
    default_contract_handler_impl(v); // a handler that returns does not resume the broken path
}

} // namespace detail

/// Installs `h` as the contract violation handler and returns the previous one.
/// Preconditions: `h` is not null.
inline contract_handler set_contract_handler(contract_handler h) noexcept {
    return detail::contract_handler_slot().exchange(h ? h : &detail::default_contract_handler);
}

} // namespace evio

/// Checks `expr` when EVIO_CONTRACTS >= level; on failure calls the handler with `id`.
#define EVIO_CONTRACT(level, id, expr)                                                             \
    do {                                                                                           \
        if constexpr (EVIO_CONTRACTS >= (level)) {                                                 \
            if (!(expr)) [[unlikely]]                                                              \
                ::evio::detail::contract_failed(id, __FILE__, __LINE__, #expr);                    \
        }                                                                                          \
    } while (0)
