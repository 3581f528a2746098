// SPDX-License-Identifier: MIT
// evio::result<T> and evio::errc: values, errors, comparisons, move-only payloads.
#include "support/catch.hpp"

#include <evio/error.hpp>
#include <evio/result.hpp>

#include <cerrno>
#include <memory>
#include <string>
#include <system_error>

TEST_CASE("result holds a value") {
    evio::result<int> r = 42;
    CHECK(r.has_value());
    CHECK(static_cast<bool>(r));
    CHECK(*r == 42);
    CHECK(r.value() == 42);
    CHECK_FALSE(r.error());
    CHECK(r.value_or(7) == 42);
}

TEST_CASE("result holds an error") {
    evio::result<int> r = evio::errc::connection_refused;
    CHECK_FALSE(r);
    CHECK(r.error() == evio::errc::connection_refused);
    CHECK(r.error() == std::errc::connection_refused); // portable comparison with std::errc
    CHECK(r.value_or(7) == 7);
    CHECK_THROWS_AS(r.value(), std::system_error);
    CHECK(r.error().category().name() == std::string("evio"));
    CHECK(r.error().message() == "connection refused");
}

TEST_CASE("result of a move-only type") {
    evio::result<std::unique_ptr<int>> r = std::make_unique<int>(5);
    REQUIRE(r);
    auto p = std::move(*r);
    CHECK(*p == 5);
    evio::result<std::unique_ptr<int>> moved = std::move(r);
    CHECK(moved.has_value());
    evio::result<std::unique_ptr<int>> e = evio::errc::closed;
    moved = std::move(e);
    CHECK(moved.error() == evio::errc::closed);
}

TEST_CASE("result<std::string> copy and assignment") {
    evio::result<std::string> a = std::string("hello");
    evio::result<std::string> b = a;
    CHECK(*b == "hello");
    CHECK(b->size() == 5);
    b = evio::result<std::string>(evio::errc::eof);
    CHECK(b.error() == evio::errc::eof);
    b = a;
    CHECK(*b == "hello");
}

TEST_CASE("result<void>") {
    evio::result<void> ok;
    CHECK(ok);
    CHECK_NOTHROW(ok.value());
    evio::result<void> bad = evio::errc::broken_pipe;
    CHECK_FALSE(bad);
    CHECK(bad.error() == evio::errc::broken_pipe);
    CHECK_THROWS_AS(bad.value(), std::system_error);
    // The error keeps its category and value (stored without a std::error_code member).
    CHECK(ok.error() == std::error_code{});
    const std::error_code reset(ECONNRESET, std::system_category());
    evio::result<void> partial{reset, 7};
    CHECK_FALSE(partial);
    CHECK(partial.error() == reset);
    CHECK(&partial.error().category() == &std::system_category());
    CHECK(partial.transferred() == 7);
    CHECK(evio::result<void>{std::error_code(0, std::generic_category())}); // value 0: success
}

TEST_CASE("every errc has a message and is an error_code enum") {
    STATIC_REQUIRE(std::is_error_code_enum<evio::errc>::value);
    for (int i = 1; i <= static_cast<int>(evio::errc::closed); ++i) {
        const std::error_code ec = static_cast<evio::errc>(i);
        CHECK(ec);
        CHECK(ec.message() != "unknown evio error");
    }
}
