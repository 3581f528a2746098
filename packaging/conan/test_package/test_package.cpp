// SPDX-License-Identifier: MIT
// Conan test_package: one co_await echo round trip on 127.0.0.1 through the packaged evio.
#include <evio/evio.hpp>

#include <array>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <span>
#include <string_view>
#include <utility>

namespace {

constexpr std::string_view message = "hello from evio's test_package";

evio::task<void> echo_one(evio::tcp_listener lis) {
    auto s = co_await lis.accept();
    if (!s) co_return;
    std::array<std::byte, message.size()> buf{};
    if (co_await s->read_exact(buf)) (void)co_await s->write_all(buf);
}

evio::task<bool> round_trip(evio::reactor& r, evio::endpoint ep) {
    auto s = co_await evio::tcp_stream::connect(r, ep);
    if (!s) co_return false;
    if (!co_await s->write_all(std::as_bytes(std::span(message)))) co_return false;
    std::array<std::byte, message.size()> in{};
    if (!co_await s->read_exact(in)) co_return false;
    co_return std::memcmp(in.data(), message.data(), message.size()) == 0;
}

} // namespace

int main() {
    evio::reactor r;
    auto lis = evio::tcp_listener::bind(r, evio::endpoint::loopback_v4(0)).value();
    const auto ep = lis.local_endpoint().value();
    evio::spawn(r, echo_one(std::move(lis)));
    const bool ok = evio::sync_wait(r, round_trip(r, ep));
    r.run();
    std::printf("evio %s on %s: echo round trip %s\n", evio::version_string,
                evio::to_string(r.backend()), ok ? "ok" : "FAILED");
    return ok ? 0 : 1;
}
