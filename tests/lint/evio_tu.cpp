// SPDX-License-Identifier: MIT
// clang-tidy target (scripts/test.sh stage "lint"): includes <evio/evio.hpp> and instantiates the
// public templates, so that the checks see the code of every public header. Compiled by no
// build; it only has to be valid C++20.
#include <evio/evio.hpp>

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <span>
#include <string>
#include <system_error>
#include <utility>

namespace {

evio::task<int> answer() { co_return 42; }

evio::task<std::string> text(evio::reactor& r) {
    co_await evio::sleep_for(r, std::chrono::milliseconds(1));
    co_await evio::sleep_until(r, std::chrono::steady_clock::now());
    co_return std::string("evio");
}

evio::task<void> echo(evio::tcp_stream s) {
    std::array<std::byte, 256> buf{};
    for (;;) {
        auto n = co_await s.read_some(buf);
        if (!n || *n == 0) co_return;
        if (!co_await s.write_all(std::span(buf).first(*n))) co_return;
    }
}

evio::task<void> client(evio::reactor& r, evio::endpoint ep) {
    auto s = co_await evio::tcp_stream::connect(r, ep);
    if (!s) co_return;
    (void)s->set_nodelay(true);
    const std::array<std::byte, 4> out{std::byte{1}, std::byte{2}, std::byte{3}, std::byte{4}};
    if (!co_await s->write_all(out)) co_return;
    (void)co_await s->write_some(out);
    std::array<std::byte, 4> in{};
    (void)co_await s->read_exact(in);
    (void)s->shutdown_send();
    (void)s->remote_endpoint();
    (void)s->local_endpoint();
}

evio::task<void> serve(evio::reactor& r, evio::tcp_listener lis) {
    auto s = co_await lis.accept();
    if (s) evio::spawn(r, echo(std::move(*s)));
}

} // namespace

int main() {
    evio::result<int> a = 1;
    evio::result<int> b = evio::errc::invalid_argument;
    evio::result<void> c;
    const std::error_code ec = evio::errc::connection_reset;
    std::printf("%d %d %d %s %s\n", a.value_or(0), b.value_or(0), c ? 1 : 0,
                ec.message().c_str(), evio::error_category().name());

    const auto ep = evio::endpoint::parse("[::1]:80");
    if (ep) std::printf("%s\n", ep->to_string().c_str());

    std::string why;
    (void)evio::reactor::is_available(evio::backend_kind::io_uring, &why);
    evio::reactor r{evio::reactor_options{}};
    std::printf("%s %s\n", evio::to_string(r.backend()), r.fallback_reason().c_str());
    std::printf("%d\n", evio::sync_wait(r, answer()));
    std::printf("%s\n", evio::sync_wait(r, text(r)).c_str());

    auto lis = evio::tcp_listener::bind(r, evio::endpoint::loopback_v4(0));
    if (!lis) return 1;
    const auto local = lis->local_endpoint();
    if (!local) return 1;
    evio::spawn(r, serve(r, std::move(*lis)));
    evio::spawn(r, [&r, at = *local]() { return client(r, at); });
    r.post([&r] { r.stop(); });
    r.run();
    r.poll();
    r.run_once(std::chrono::milliseconds(0));
    return r.stopped() ? 1 : 0;
}
