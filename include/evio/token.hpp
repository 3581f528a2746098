// SPDX-License-Identifier: MIT
// evio::token: a registered handle's name inside one reactor ({index, generation, owner}).
#pragma once

#include <cstdint>

namespace evio {

/// Names one registration in one reactor's token table. A slot's generation is bumped when its
/// registration ends, so a token that outlived its registration is detected as stale.
struct token {
    std::uint32_t index = ~std::uint32_t{0};
    std::uint32_t generation = 0;
    std::uint32_t owner = 0; ///< id of the reactor that issued it (0: none)

    /// True when this token was issued by a reactor (it may since have gone stale).
    constexpr bool valid() const noexcept { return index != ~std::uint32_t{0}; }
    friend constexpr bool operator==(const token&, const token&) = default;
};

} // namespace evio
