// SPDX-License-Identifier: MIT
// Asio C++20 coroutine echo server, shaped like Asio's own example
// (asio/src/examples/cpp20/coroutines/echo_server.cpp): a listener coroutine that co_spawns one
// echo coroutine per connection, async_read_some + async_write with use_awaitable, one
// io_context with concurrency hint 1. Differences from the example, for a fair comparison: the
// port and --max-reads come from the command line, the read buffer is 16 KiB like every server
// here (the example's is 1 KiB), TCP_NODELAY is set, and end of stream is not printed.
//
// Built twice: asio_echo_server_epoll (Asio's default reactor) and asio_echo_server_uring
// (ASIO_HAS_IO_URING + ASIO_DISABLE_EPOLL: sockets go through io_uring, linked with liburing).
//
//   asio_echo_server_* [--port N] [--max-reads N]
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/signal_set.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <unistd.h>

using asio::awaitable;
using asio::co_spawn;
using asio::detached;
using asio::use_awaitable;
using asio::ip::tcp;
namespace this_coro = asio::this_coro;

namespace {

long long reads_left = 0; // counts down when --max-reads is given
asio::io_context* context = nullptr;

awaitable<void> echo(tcp::socket socket) {
    try {
        socket.set_option(tcp::no_delay(true));
        char data[16384];
        for (;;) {
            std::size_t n = co_await socket.async_read_some(asio::buffer(data), use_awaitable);
            if (reads_left > 0 && --reads_left == 0) context->stop();
            co_await async_write(socket, asio::buffer(data, n), use_awaitable);
        }
    } catch (std::exception&) {
        // end of stream or reset: the connection is done
    }
}

awaitable<void> listener(tcp::acceptor acceptor) {
    auto executor = co_await this_coro::executor;
    for (;;) {
        tcp::socket socket = co_await acceptor.async_accept(use_awaitable);
        co_spawn(executor, echo(std::move(socket)), detached);
    }
}

} // namespace

int main(int argc, char** argv) {
    unsigned short port = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string_view a = argv[i];
        if (a == "--port") port = static_cast<unsigned short>(std::atoi(argv[i + 1]));
        else if (a == "--max-reads") reads_left = std::atoll(argv[i + 1]);
        else {
            std::fprintf(stderr, "usage: %s [--port N] [--max-reads N]\n", argv[0]);
            return 2;
        }
    }
    try {
        asio::io_context io_context(1);
        context = &io_context;
        asio::signal_set signals(io_context, SIGINT, SIGTERM);
        signals.async_wait([&](auto, auto) { io_context.stop(); });
        tcp::acceptor acceptor(io_context, {asio::ip::make_address("127.0.0.1"), port});
        std::printf("port %u pid %d backend %s\n", acceptor.local_endpoint().port(),
                    static_cast<int>(::getpid()),
#if defined(ASIO_HAS_IO_URING_AS_DEFAULT)
                    "io_uring"
#else
                    "epoll"
#endif
        );
        std::fflush(stdout);
        co_spawn(io_context, listener(std::move(acceptor)), detached);
        io_context.run();
    } catch (std::exception& e) {
        std::fprintf(stderr, "Exception: %s\n", e.what());
        return 1;
    }
}
