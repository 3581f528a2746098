// SPDX-License-Identifier: MIT
// The one Catch2 include for every test: Catch2 v3 where installed, else Debian 12's Catch2 2.13.
#pragma once

#if __has_include(<catch2/catch_all.hpp>)
#include <catch2/catch_all.hpp>
#else
#include <catch2/catch.hpp>
#endif
