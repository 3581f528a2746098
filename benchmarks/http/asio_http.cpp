// SPDX-License-Identifier: MIT
// The same HTTP/1.1 keep-alive plaintext responder on Asio (Debian's libasio-dev), written the
// way Asio's C++20 examples write it (src/examples/cpp20/coroutines/echo_server.cpp):
// awaitable + use_awaitable, co_spawn(detached) per connection, io_context(1), one thread.
//
//   asio_http [--port N]
//
// Prints "listening on PORT backend asio" as its first line (port 0 picks a free port).
#include "http_common.hpp"

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/signal_set.hpp>
#include <asio/write.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

using asio::awaitable;
using asio::co_spawn;
using asio::detached;
using asio::use_awaitable;
using asio::ip::tcp;
namespace this_coro = asio::this_coro;

awaitable<void> session(tcp::socket socket) {
    try {
        socket.set_option(tcp::no_delay(true));
        char in[8192];
        std::size_t have = 0, scan_from = 0;
        std::string out;
        out.reserve(4096);
        for (;;) {
            std::size_t n = co_await socket.async_read_some(asio::buffer(in + have, sizeof in - have),
                                                            use_awaitable);
            have += n;
            out.clear();
            const auto p = http_bench::parse(std::string_view(in, have), out, scan_from);
            if (p.consumed == 0 && have == sizeof in && !p.close) { // a head larger than the buffer
                out.append(http_bench::bad_request);
                co_await async_write(socket, asio::buffer(out), use_awaitable);
                co_return;
            }
            if (!out.empty()) co_await async_write(socket, asio::buffer(out), use_awaitable);
            if (p.close) co_return;
            have -= p.consumed;
            if (have != 0 && p.consumed != 0) std::memmove(in, in + p.consumed, have);
        }
    } catch (std::exception&) {
        // end of stream or reset: the socket closes with this frame
    }
}

awaitable<void> listener(tcp::acceptor acceptor) {
    auto executor = co_await this_coro::executor;
    for (;;) {
        tcp::socket socket = co_await acceptor.async_accept(use_awaitable);
        co_spawn(executor, session(std::move(socket)), detached);
    }
}

int main(int argc, char** argv) {
    try {
        unsigned short port = 0;
        for (int i = 1; i + 1 < argc; i += 2)
            if (std::string_view(argv[i]) == "--port") port = static_cast<unsigned short>(std::atoi(argv[i + 1]));
        asio::io_context io_context(1);
        asio::signal_set signals(io_context, SIGINT, SIGTERM);
        signals.async_wait([&](auto, auto) { io_context.stop(); });
        tcp::acceptor acceptor(io_context, {asio::ip::make_address("127.0.0.1"), port});
        std::printf("listening on %u backend asio\n", acceptor.local_endpoint().port());
        std::fflush(stdout);
        co_spawn(io_context, listener(std::move(acceptor)), detached);
        io_context.run();
    } catch (std::exception& e) {
        std::fprintf(stderr, "asio_http: %s\n", e.what());
        return 1;
    }
}
