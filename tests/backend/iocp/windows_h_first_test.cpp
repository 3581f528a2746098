// SPDX-License-Identifier: MIT
// Room iocp: a user who included <windows.h> first, without WIN32_LEAN_AND_MEAN or NOMINMAX (so
// the old <winsock.h> and, on MSVC, the min/max macros are in), can still include and use evio.
#if defined(WIN32_LEAN_AND_MEAN) || defined(NOMINMAX)
#error "this test needs <windows.h> in its default, fat configuration"
#endif
#if defined(__GNUC__)
// mingw-w64's <winsock2.h> after <winsock.h> says "#warning Please include winsock2.h before
// windows.h"; evio must not trigger it (users building with -Werror). GCC 13+ honours this
// pragma for #warning in C++ (GCC PR 53431); for GCC 12, tests/CMakeLists.txt compiles this
// file with -Werror=cpp, so a regression fails the build either way.
#pragma GCC diagnostic error "-Wcpp"
#endif
#include <windows.h>

#if !defined(_WINSOCKAPI_) || defined(_WINSOCK2API_)
#error "<windows.h> was expected to bring in the old <winsock.h> here"
#endif
#if defined(_MSC_VER) && (!defined(min) || !defined(max))
#error "<windows.h> was expected to define the min/max macros here"
#endif

#include "support/fixture.hpp"

#include <evio/evio.hpp>

#include <array>
#include <chrono>

using namespace std::chrono_literals;
namespace test = evio::test;

namespace {

evio::task<int> echo_once(evio::reactor& r, evio::tcp_listener& lis) {
    auto accepted = lis.accept();
    auto c = co_await evio::tcp_stream::connect(r, lis.local_endpoint().value());
    if (!c) co_return -1;
    auto s = co_await accepted;
    if (!s) co_return -2;
    const std::array<std::byte, 4> out{std::byte{1}, std::byte{2}, std::byte{3}, std::byte{4}};
    std::array<std::byte, 4> in{};
    if (!co_await c->write_all(out)) co_return -3;
    if (!co_await s->read_exact(in)) co_return -4;
    co_return in == out ? 1 : -5;
}

} // namespace

TEST_CASE("iocp: <windows.h> first, fat and with min/max macros: evio compiles and runs") {
#if defined(min) && defined(max)
    // MSVC: the user's macros are still there (evio neither undefined them nor needed them
    // gone). mingw-w64 defines them for C only.
    CHECK(min(2, 3) == 2);
    CHECK(max(2, 3) == 3);
#endif
    evio::reactor r{test::options()};
    CHECK(r.backend() == evio::backend_kind::iocp);
    auto lis = test::listen_any(r);
    CHECK(evio::sync_wait(r, echo_once(r, lis)) == 1);
}
