// SPDX-License-Identifier: MIT
// The reactor state-machine fuzz driver, shared by the libFuzzer target (fuzz_reactor.cpp) and the
// corpus replay test (replay_main.cpp, built with g++ and clang).
//
// The input bytes decode to a sequence of legal API calls on one reactor (epoll or io_uring, from
// the first byte): open/close handles (loopback TCP pairs registered as tcp_streams), start
// operations (read_some, read_exact, receive, write_some, write_all, accept, connect, sleep) bare or inside
// a scope (with_cancellation on their own or a shared stop_source, with_timeout, when_any against
// a sleep), cancel one operation or a whole scope, act as the peer (write, drain, shut down,
// close: this is how the input decides when an operation completes and with what), post, and run
// turns. Because every call is legal, any contract abort, sanitizer report or failed check below
// is a bug. Checked after each step and at the end:
//   - every operation resumes at most once (exactly once when the input ends by draining);
//   - bytes read arrive in order and match what the peer sent (nothing lost, duplicated or
//     reordered); bytes written are all read by the peer (per operation tag) when it stayed open;
//   - each result is one the operation may produce (no EBADF, EINVAL, ... from the rooms);
//   - posted functions run in the next turn; pending_ops never exceeds the started operations;
//   - live tokens >= open handles; at the end pending_ops, live tokens and spawned tasks are 0;
//   - the input may end by destroying the reactor with operations pending: every coroutine frame
//     is destroyed exactly once (LeakSanitizer/valgrind see the rest).
#pragma once

#include <evio/evio.hpp>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <stop_token>
#include <vector>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace evio::fuzz {

using namespace std::chrono_literals;

#define EVIO_FUZZ_CHECK(cond)                                                                      \
    do {                                                                                           \
        if (!(cond)) ::evio::fuzz::check_failed(#cond, __LINE__);                                  \
    } while (0)

[[noreturn]] inline void check_failed(const char* what, int line) {
    std::fprintf(stderr, "evio fuzz: check failed at reactor_driver.hpp:%d: %s\n", line, what);
    std::fflush(stderr);
    std::abort();
}

/// Reads the input; past its end every read yields 0.
class input {
public:
    input(const std::uint8_t* d, std::size_t n) noexcept : d_(d), n_(n) {}
    bool more() const noexcept { return i_ < n_; }
    std::uint8_t byte() noexcept { return i_ < n_ ? d_[i_++] : 0; }
    unsigned pick(unsigned n) noexcept { return byte() % n; }

private:
    const std::uint8_t* d_;
    std::size_t n_;
    std::size_t i_ = 0;
};

/// The byte the peer sends at stream offset `off` of one pair (reads check it).
inline std::byte pattern(std::uint64_t off, unsigned salt) noexcept {
    return static_cast<std::byte>((off * 7 + salt) ^ (off >> 8));
}

/// One connection incarnation: our end is a tcp_stream, the peer end a raw non-blocking fd.
struct pair_state {
    unsigned salt = 0;
    int peer = -1;
    bool peer_shut = false;   ///< peer sent FIN (shutdown or close)
    bool peer_closed = false; ///< peer fd closed: bytes we wrote may be dropped
    bool reset = false;       ///< a reset (ours or seen by the peer): bytes we wrote may be dropped
    bool ours_closed = false; ///< our end was closed
    std::uint64_t peer_sent = 0;
    std::uint64_t received = 0; ///< bytes our reads reported, in completion order
    std::array<std::uint64_t, 256> written{}; ///< bytes our writes reported, per tag
    std::array<std::uint64_t, 256> drained{}; ///< bytes the peer read, per tag
    std::array<std::uint64_t, 256> attempted{}; ///< bytes our writes offered, per tag
    std::array<bool, 256> failed{}; ///< a write with this tag failed (its bytes may still arrive)
};

struct handle {
    tcp_stream s;
    std::shared_ptr<pair_state> st;
    bool receiving = false; ///< a receive() was started on this stream (io_uring: a multishot recv)
};

enum class op_type : std::uint8_t {
    read_some, read_exact, write_some, write_all, accept, connect, sleep, receive
};
enum class wrap : std::uint8_t { none, own_cancel, scope_cancel, timeout, any_sleep };

struct record {
    op_type type{};
    wrap w{};
    std::uint8_t tag = 0; ///< write payload byte (per-op, so the peer can count bytes per op)
    int resumes = 0;
    bool done = false;
    int frames = 0; ///< guards destroyed (the capture lives as long as the spawned frame)
    std::stop_source own;
};

/// Marks its record when the frame holding it dies (moved-from guards do not count).
struct frame_guard {
    record* rec;
    explicit frame_guard(record* r) noexcept : rec(r) {}
    frame_guard(frame_guard&& o) noexcept : rec(std::exchange(o.rec, nullptr)) {}
    frame_guard(const frame_guard&) = delete;
    frame_guard& operator=(const frame_guard&) = delete;
    frame_guard& operator=(frame_guard&&) = delete;
    ~frame_guard() {
        if (rec) ++rec->frames;
    }
};

inline bool is(const std::error_code& ec, errc e) { return ec == make_error_code(e); }

class driver {
public:
    static constexpr unsigned handles = 24;
    static constexpr unsigned scopes = 4;
    static constexpr std::size_t max_ops = 192;

    explicit driver(backend_kind k) : r_(opt_.emplace(reactor_options{k, 256, false})) {}

    ~driver() {
        const linger lg{1, 0}; // reset, no TIME_WAIT
        for (int fd : raw_clients_) {
            (void)::setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
            ::close(fd);
        }
        for (auto& h : h_) close_peer(h.st.get());
        for (auto& st : retired_) close_peer(st.get());
        if (raw_listener_ >= 0) ::close(raw_listener_);
    }

    /// Runs the whole input; aborts on the first broken invariant.
    void run(input& in) {
        const bool destroy_pending = in.byte() & 1;
        while (in.more()) {
            step(in);
            check_invariants();
        }
        if (destroy_pending)
            finish_destroying();
        else
            finish_draining();
    }

private:
    /// Closes the peer end with a reset (SO_LINGER 0): no TIME_WAIT piles up over millions of
    /// runs, and the data it did not read is dropped (accounted as such).
    static void close_peer(pair_state* st) {
        if (st && st->peer >= 0) {
            const linger lg{1, 0};
            (void)::setsockopt(st->peer, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
            ::close(st->peer);
            st->peer = -1;
            st->peer_closed = st->peer_shut = true;
        }
    }

    // ---- commands ----
    void step(input& in) {
        // Step bytes 252..255 start a receive() (added after the corpus was collected: the
        // other 252 values decode as before, byte % 18).
        const std::uint8_t b = in.byte();
        if (b >= 252) {
            if (trace_) std::fprintf(stderr, "step receive\n");
            start(in, op_type::receive);
            return;
        }
        const unsigned c = b % 18u;
        if (trace_) std::fprintf(stderr, "step %u\n", c);
        switch (c) {
        case 0: open(in.pick(handles)); break;
        case 1: close_ours(h_[in.pick(handles)]); break;
        case 2: start(in, op_type::read_some); break;
        case 3: start(in, op_type::read_exact); break;
        case 4: start(in, op_type::write_some); break;
        case 5: start(in, op_type::write_all); break;
        case 6: start(in, op_type::accept); break;
        case 7: start(in, op_type::connect); break;
        case 8: start(in, op_type::sleep); break;
        case 9: {
            if (recs_.empty()) break;
            recs_[in.byte() % recs_.size()]->own.request_stop();
            break;
        }
        case 10: {
            const unsigned j = in.pick(scopes);
            scope_[j].request_stop();
            scope_[j] = std::stop_source{};
            break;
        }
        case 11: peer_write(in.pick(handles), 1 + in.byte() * 16); break;
        case 12: peer_drain(in.pick(handles), 1 + in.byte() * 64); break;
        case 13: peer_end(in.pick(handles), in.byte() & 1); break;
        case 14:
            ++posts_issued_;
            r_.post([this] { ++posts_run_; });
            break;
        case 15: turn(in.pick(3)); break;
        case 16: listener_cmd(in.byte()); break;
        case 17: open(in.pick(handles)); turn(0); break;
        }
    }

    void open(unsigned k) {
        handle& h = h_[k];
        if (h.s.is_open()) return;
        int ours = -1, peer = -1;
        if (!loopback_pair(ours, peer)) return;
        auto t = r_.register_handle(ours);
        EVIO_FUZZ_CHECK(t.has_value());
        close_peer(h.st.get());
        if (h.st) retired_.push_back(h.st);
        h.st = std::make_shared<pair_state>();
        h.st->salt = ++salt_;
        h.st->peer = peer;
        h.s = tcp_stream(r_, ours, *t);
        h.receiving = false;
    }

    /// A connected TCP pair on loopback with 4 KiB buffers (writes block after a few KiB):
    /// `ours` (non-blocking, for evio) and `peer` (non-blocking, driven by the input).
    /// TCP rather than socketpair(2): evio's streams are TCP, and on io_uring an AF_UNIX send
    /// blocked in an io-wq worker after the peer's shutdown(SHUT_WR) cannot be cancelled
    /// (IORING_OP_ASYNC_CANCEL returns ENOENT; docs/reliability.md, "Fuzzing").
    bool loopback_pair(int& ours, int& peer) {
        if (raw_listener_ < 0) {
            raw_listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
            const int small = 4096;
            (void)::setsockopt(raw_listener_, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
            (void)::setsockopt(raw_listener_, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
            sockaddr_in sa{};
            sa.sin_family = AF_INET;
            sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            socklen_t len = sizeof sa;
            if (::bind(raw_listener_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 ||
                ::listen(raw_listener_, 64) != 0 ||
                ::getsockname(raw_listener_, reinterpret_cast<sockaddr*>(&sa), &len) != 0)
                return false;
            raw_addr_ = sa;
        }
        ours = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (ours < 0) return false;
        const int small = 4096;
        (void)::setsockopt(ours, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
        (void)::setsockopt(ours, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
        if (::connect(ours, reinterpret_cast<const sockaddr*>(&raw_addr_), sizeof raw_addr_) != 0) {
            ::close(ours);
            return false;
        }
        // The accept queue can hold a stranger: a connect op aimed at a closed evio listener
        // whose port this raw listener got later reaches here. Pair `ours` with its own peer
        // (the stranger is closed: its connect simply succeeded, then sees end of stream).
        sockaddr_in mine{};
        socklen_t mine_len = sizeof mine;
        (void)::getsockname(ours, reinterpret_cast<sockaddr*>(&mine), &mine_len);
        for (;;) {
            sockaddr_in from{};
            socklen_t from_len = sizeof from;
            peer = ::accept4(raw_listener_, reinterpret_cast<sockaddr*>(&from), &from_len,
                             SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (peer < 0) {
                ::close(ours);
                return false;
            }
            if (from.sin_port == mine.sin_port && from.sin_addr.s_addr == mine.sin_addr.s_addr) break;
            ::close(peer);
        }
        (void)::fcntl(ours, F_SETFL, ::fcntl(ours, F_GETFL) | O_NONBLOCK);
        return true;
    }

    /// Closes our end. TCP resets instead of closing gracefully when data we did not read is
    /// pending (or arrives later): our unsent bytes are then dropped, which the final byte count
    /// must allow.
    void close_ours(handle& h) {
        if (h.s.is_open() && h.receiving) ++multishots_closed_; // its multishot recv may be armed
        h.receiving = false;
        if (h.s.is_open() && h.st) {
            h.st->ours_closed = true;
            if (h.st->peer_sent > h.st->received) h.st->reset = true;
        }
        h.s.close();
    }

    void peer_write(unsigned k, std::size_t n) {
        pair_state* st = h_[k].st.get();
        if (!st || st->peer < 0 || st->peer_shut) return;
        if (st->ours_closed) st->reset = true; // our closed end answers with a reset
        std::byte buf[4096];
        n = n > sizeof buf ? sizeof buf : n;
        for (std::size_t i = 0; i < n; ++i) buf[i] = pattern(st->peer_sent + i, st->salt);
        const ssize_t w = ::send(st->peer, buf, n, MSG_NOSIGNAL);
        if (w > 0) st->peer_sent += static_cast<std::uint64_t>(w);
    }

    /// The peer reads up to `n` bytes; `to_end`: until end of stream (our side is closed), by
    /// `until` at the latest. Rarely (about once per 50,000 executions, io_uring inputs) the end
    /// of a stream evio closed takes over 10 s to arrive while the reactor is already idle; it
    /// always arrives within the deadline (docs/reliability.md, "Fuzzing", open question).
    static void drain_into(pair_state& st, std::size_t n, bool to_end = false,
                           std::chrono::steady_clock::time_point until = {}) {
        std::uint8_t buf[4096];
        bool said = false;
        while (n > 0 && st.peer >= 0) {
            const ssize_t got = ::recv(st.peer, buf, n > sizeof buf ? sizeof buf : n, 0);
            if (got < 0 && errno == EAGAIN && to_end && std::chrono::steady_clock::now() < until) {
                pollfd pfd{st.peer, POLLIN, 0};
                if (::poll(&pfd, 1, 1000) != 1 && !said) {
                    said = true;
                    std::fprintf(stderr, "evio fuzz: the peer's final drain waits for data\n");
                    if (std::getenv("EVIO_FUZZ_SS")) {
                        sockaddr_in a{};
                        socklen_t l = sizeof a;
                        (void)::getpeername(st.peer, reinterpret_cast<sockaddr*>(&a), &l);
                        char cmd[256];
                        std::snprintf(cmd, sizeof cmd, "ss -tinoea '( sport = :%d or dport = :%d )' >&2",
                                      ntohs(a.sin_port), ntohs(a.sin_port));
                        [[maybe_unused]] int rc = std::system(cmd);
                    }
                }
                continue;
            }
            if (got < 0 && errno != EAGAIN) st.reset = true; // our close reset: data may be lost
            if (got <= 0) return;
            for (ssize_t i = 0; i < got; ++i) ++st.drained[buf[i]];
            n -= static_cast<std::size_t>(got);
        }
    }

    void peer_drain(unsigned k, std::size_t n) {
        if (h_[k].st) drain_into(*h_[k].st, n);
    }

    void peer_end(unsigned k, bool close) {
        pair_state* st = h_[k].st.get();
        if (!st || st->peer < 0) return;
        if (close) {
            close_peer(st);
        } else {
            (void)::shutdown(st->peer, SHUT_WR);
        }
        st->peer_shut = true;
    }

    void listener_cmd(std::uint8_t b) {
        switch (b % 3) {
        case 0:
            if (!listener_.is_open()) {
                auto l = tcp_listener::bind(r_, endpoint::loopback_v4(0));
                EVIO_FUZZ_CHECK(l.has_value());
                listener_ = std::move(*l);
                auto ep = listener_.local_endpoint();
                EVIO_FUZZ_CHECK(ep.has_value());
                listen_ep_ = *ep;
            }
            break;
        case 1:
            multishots_closed_ += listener_.is_open();
            listener_.close();
            break;
        case 2: { // a raw client connects: completes a pending accept
            if (!listener_.is_open() || raw_clients_.size() >= 32) break;
            const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
            if (fd < 0) break;
            sockaddr_in sa{};
            sa.sin_family = AF_INET;
            sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            sa.sin_port = htons(listen_ep_->port());
            (void)::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
            raw_clients_.push_back(fd);
            break;
        }
        }
    }

    void turn(unsigned how) {
        const std::size_t issued = posts_issued_;
        if (how == 0)
            r_.poll();
        else
            r_.run_once(std::chrono::milliseconds(how - 1));
        // Posts made before a turn run in that turn.
        EVIO_FUZZ_CHECK(posts_run_ >= issued);
    }

    // ---- operations ----
    void start(input& in, op_type type) {
        if (recs_.size() >= max_ops) return;
        const unsigned k = in.pick(handles);
        const wrap w = static_cast<wrap>(in.pick(5));
        const unsigned scope = in.pick(scopes);
        const std::uint8_t arg = in.byte();
        if (trace_)
            std::fprintf(stderr, "  start op %d on handle %u wrap %d scope %u arg %u -> record %zu\n",
                         static_cast<int>(type), k, static_cast<int>(w), scope, arg, recs_.size());
        auto rec = std::make_unique<record>();
        rec->type = type;
        rec->w = w;
        rec->tag = static_cast<std::uint8_t>(recs_.size() + 1);
        record* p = rec.get();
        recs_.push_back(std::move(rec));
        std::stop_token st = w == wrap::scope_cancel ? scope_[scope].get_token() : p->own.get_token();
        const bool cancellable = w == wrap::own_cancel || w == wrap::scope_cancel;
        spawn(r_, [this, p, k, w, st, arg, cancellable, g = frame_guard(p)]() -> task<void> {
            co_await body(p, k, w, st, arg, cancellable);
        });
    }

    /// Runs `a` as the wrapper says; `on` records the operation's result.
    template <class A, class F>
    task<void> wrapped(record* p, wrap w, std::stop_token st, std::uint8_t arg, A a, F on) {
        const auto small = std::chrono::milliseconds(arg % 3);
        switch (w) {
        case wrap::none: on(co_await std::move(a)); break;
        case wrap::own_cancel:
        case wrap::scope_cancel: on(co_await with_cancellation(st, std::move(a))); break;
        case wrap::timeout: on(co_await with_timeout(r_, small, std::move(a))); break;
        case wrap::any_sleep: {
            auto inner = [](A op, F f) -> task<void> { f(co_await std::move(op)); };
            auto sleeper = [](reactor& r, std::chrono::milliseconds d) -> task<void> {
                (void)co_await sleep_for(r, d);
            };
            (void)co_await when_any(inner(std::move(a), on), sleeper(r_, small));
            break;
        }
        }
        (void)p;
    }

    task<void> body(record* p, unsigned k, wrap w, std::stop_token st, std::uint8_t arg,
                    bool cancellable) {
        handle& h = h_[k];
        std::shared_ptr<pair_state> ps = h.st; // the incarnation this op runs on
        const bool timed = w == wrap::timeout || w == wrap::any_sleep;
        auto resumed = [p] {
            EVIO_FUZZ_CHECK(!p->done); // resumed twice
            p->done = true;
            ++p->resumes;
        };
        switch (p->type) {
        case op_type::read_some: {
            std::vector<std::byte> buf(1 + arg % 64);
            co_await wrapped(p, w, st, arg, h.s.read_some(buf), [&](result<std::size_t> res) {
                resumed();
                if (res) {
                    EVIO_FUZZ_CHECK(ps != nullptr);
                    if (*res == 0) {
                        EVIO_FUZZ_CHECK(ps->peer_shut); // end of stream only after the peer's FIN
                    } else {
                        check_read(*ps, buf.data(), *res);
                    }
                } else {
                    check_error(res.error(), timed, true);
                }
            });
            break;
        }
        case op_type::receive: {
            // The body runs a turn after start(): the handle may have been reopened meanwhile.
            if (h.s.is_open()) h.receiving = true;
            co_await wrapped(p, w, st, arg, h.s.receive(), [&](result<buffer_lease> res) {
                resumed();
                if (res) {
                    EVIO_FUZZ_CHECK(ps != nullptr);
                    if (res->empty()) {
                        EVIO_FUZZ_CHECK(ps->peer_shut); // end of stream only after the peer's FIN
                    } else {
                        check_read(*ps, res->data().data(), res->size());
                    }
                } else {
                    check_error(res.error(), timed, true);
                }
            });
            break;
        }
        case op_type::read_exact: {
            std::vector<std::byte> buf(1 + arg);
            co_await wrapped(p, w, st, arg, h.s.read_exact(buf), [&](result<void> res) {
                resumed();
                const std::size_t n = res ? buf.size() : res.transferred();
                if (n > 0) check_read(*ps, buf.data(), n);
                if (!res) {
                    if (is(res.error(), errc::eof)) EVIO_FUZZ_CHECK(ps && ps->peer_shut);
                    else check_error(res.error(), timed, true);
                }
            });
            break;
        }
        case op_type::write_some:
        case op_type::write_all: {
            std::vector<std::byte> buf(1 + static_cast<std::size_t>(arg) * 64,
                                       static_cast<std::byte>(p->tag));
            if (ps) ps->attempted[p->tag] += buf.size();
            if (p->type == op_type::write_some) {
                co_await wrapped(p, w, st, arg, h.s.write_some(buf), [&](result<std::size_t> res) {
                    resumed();
                    if (res) {
                        EVIO_FUZZ_CHECK(*res > 0 && *res <= buf.size());
                        ps->written[p->tag] += *res;
                    } else {
                        if (ps) ps->failed[p->tag] = true;
                        check_error(res.error(), timed, false);
                    }
                });
            } else {
                co_await wrapped(p, w, st, arg, h.s.write_all(buf), [&](result<void> res) {
                    resumed();
                    const std::size_t n = res ? buf.size() : res.transferred();
                    EVIO_FUZZ_CHECK(n <= buf.size());
                    if (ps) ps->written[p->tag] += n;
                    if (!res) {
                        if (ps) ps->failed[p->tag] = true;
                        check_error(res.error(), timed, false);
                    }
                });
            }
            break;
        }
        case op_type::accept:
            co_await wrapped(p, w, st, arg, listener_.accept(), [&](result<tcp_stream> res) {
                resumed();
                if (!res) check_error(res.error(), timed, false);
            });
            break;
        case op_type::connect: {
            // To the listener (open or closed: refused), never off the machine.
            const endpoint ep = listen_ep_ ? *listen_ep_ : endpoint::loopback_v4(1);
            co_await wrapped(p, w, st, arg, tcp_stream::connect(r_, ep), [&](result<tcp_stream> res) {
                resumed();
                if (!res) {
                    if (!is(res.error(), errc::connection_refused))
                        check_error(res.error(), timed, false);
                }
            });
            break;
        }
        case op_type::sleep: {
            // Long sleeps only where something can cancel them (the input's end does).
            const auto d = cancellable && (arg & 1) ? std::chrono::milliseconds(10'000)
                                                    : std::chrono::milliseconds(arg % 3);
            co_await wrapped(p, w, st, arg, sleep_for(r_, d), [&](result<void> res) {
                resumed();
                if (!res) {
                    EVIO_FUZZ_CHECK(is(res.error(), errc::operation_canceled) ||
                                    (timed && is(res.error(), errc::timed_out)));
                }
            });
            break;
        }
        }
        if (!p->done) {
            // when_any: the sleep won and the operation was cancelled before it started: its
            // inner task never ran. Nothing else may leave an operation unresumed.
            EVIO_FUZZ_CHECK(w == wrap::any_sleep);
            p->done = true;
            ++p->resumes;
        }
    }

    /// Bytes a read reported: next in the peer's stream, never beyond what it sent.
    static void check_read(pair_state& ps, const std::byte* data, std::size_t n) {
        EVIO_FUZZ_CHECK(ps.received + n <= ps.peer_sent);
        for (std::size_t i = 0; i < n; ++i)
            EVIO_FUZZ_CHECK(data[i] == pattern(ps.received + i, ps.salt));
        ps.received += n;
    }

    /// Errors a legal operation may see here: cancelled (close, stop, when_any), timed out,
    /// closed (started on a closed stream), and the peer's doing (reset, broken pipe).
    static void check_error(const std::error_code& ec, bool timed, bool read) {
        const bool ok = is(ec, errc::operation_canceled) || is(ec, errc::closed) ||
                        (timed && is(ec, errc::timed_out)) || is(ec, errc::connection_reset) ||
                        (!read && is(ec, errc::broken_pipe));
        if (!ok) {
            std::fprintf(stderr, "evio fuzz: unexpected error %s (%d)\n", ec.message().c_str(),
                         ec.value());
            check_failed("check_error", __LINE__);
        }
    }

    // ---- invariants ----
    void check_invariants() {
        std::size_t open = 0, started = 0;
        for (auto& h : h_) open += h.s.is_open();
        open += listener_.is_open();
        for (auto& p : recs_) {
            EVIO_FUZZ_CHECK(p->resumes <= 1);
            EVIO_FUZZ_CHECK(p->frames <= 1);
            started += !p->done;
        }
        auto& core = r_.core();
        EVIO_FUZZ_CHECK(core.table.live() >= open);
        // Every pending op belongs to an unfinished record (when_any holds at most one op), or
        // is the multishot of a closed listener (accept) or stream (receive's recv) on io_uring,
        // whose final completion is due.
        EVIO_FUZZ_CHECK(core.pending_ops <= started + multishots_closed_);
    }

    void finish_draining() {
        for (auto& p : recs_) p->own.request_stop();
        for (auto& s : scope_) s.request_stop();
        for (auto& h : h_) close_ours(h);
        listener_.close();
        // Bounded: everything left is cancelled or expires within a few milliseconds.
        const auto drain_start = std::chrono::steady_clock::now();
        bool reported = false;
        for (int i = 0; i < 5000 && has_work(); ++i) {
            r_.run_once(10ms);
            // Everything left should finish within milliseconds: say what is still waiting
            // after 2 s (a slow input is then explained in the fuzzer's log, not only timed).
            if (!reported && std::chrono::steady_clock::now() - drain_start > 2s && has_work()) {
                reported = true;
                report_waiting("drain slower than 2 s");
            }
        }
        EVIO_FUZZ_CHECK(!has_work());
        auto& core = r_.core();
        EVIO_FUZZ_CHECK(core.pending_ops == 0);
        EVIO_FUZZ_CHECK(core.spawned == 0);
        if (core.table.live() != 0) report_waiting("slots still live at the end");
        EVIO_FUZZ_CHECK(core.table.live() == 0);
        EVIO_FUZZ_CHECK(posts_run_ == posts_issued_);
        for (auto& p : recs_) {
            EVIO_FUZZ_CHECK(p->done && p->resumes == 1);
            EVIO_FUZZ_CHECK(p->frames == 1);
        }
        // Every byte a write acknowledged reached the peer, in the amount acknowledged: exactly,
        // per operation tag, for writes that succeeded. A write that failed (cancelled, closed,
        // timed out) may have handed bytes to the kernel that it could not report (write_some
        // has no count on error): at least what it reported, at most what it offered. The peer
        // drains what is left (our side is closed, so it ends with end of stream).
        for (auto& h : h_)
            if (h.st) retired_.push_back(h.st);
        // Up to 20 s for all the peers' final drains together (TCP persist, see drain_into).
        const auto final_drain_until = std::chrono::steady_clock::now() + 20s;
        for (auto& st : retired_) {
            if (!st) continue;
            drain_into(*st, ~std::size_t{0}, true, final_drain_until);
            for (unsigned t = 0; t < 256; ++t) {
                bool ok;
                if (st->peer_closed || st->reset)
                    ok = st->drained[t] <= st->attempted[t];
                else if (st->failed[t])
                    ok = st->written[t] <= st->drained[t] && st->drained[t] <= st->attempted[t];
                else
                    ok = st->drained[t] == st->written[t];
                if (!ok) {
                    std::fprintf(stderr,
                                 "evio fuzz: tag %u: peer read %llu bytes, writes reported %llu of "
                                 "%llu offered%s\n", t,
                                 static_cast<unsigned long long>(st->drained[t]),
                                 static_cast<unsigned long long>(st->written[t]),
                                 static_cast<unsigned long long>(st->attempted[t]),
                                 st->failed[t] ? " (failed)" : "");
                    check_failed("bytes acknowledged == bytes read", __LINE__);
                }
            }
        }
    }

    void report_waiting(const char* why) {
        auto& core = r_.core();
        std::fprintf(stderr, "evio fuzz: %s: pending_ops %zu spawned %zu ready %zu timers %zu\n", why,
                     static_cast<std::size_t>(core.pending_ops), static_cast<std::size_t>(core.spawned),
                     core.ready.size(), core.timers.size());
        core.table.for_each_live([](std::uint32_t i, detail::slot& sl) {
            std::fprintf(stderr, "  slot %u live: handle %d state %d listener %d in_flight %u\n", i,
                         static_cast<int>(sl.handle), static_cast<int>(sl.state), sl.listener,
                         sl.in_flight);
            for (int d = 0; d < 2; ++d) {
                for (const detail::operation* op = sl.queue[d].head; op; op = op->next)
                    std::fprintf(stderr, "  slot %u (state %d) dir %d: op kind %d in_kernel %d "
                                 "cancel_requested %d done %zu of %zu\n", i,
                                 static_cast<int>(sl.state), d, static_cast<int>(op->kind),
                                 op->in_kernel, op->cancel_requested, op->done, op->len);
            }
        });
    }

    bool has_work() {
        auto& core = r_.core();
        return core.spawned != 0 || core.pending_ops != 0 || !core.ready.empty() ||
               !core.timers.empty() || core.has_posted.load();
    }

    void finish_destroying() {
        // Handles must not outlive the reactor (contract reactor.outlived_by_handle): close them,
        // then destroy the reactor with operations, timers and tasks still pending.
        for (auto& h : h_) h.s.close();
        listener_.close();
        opt_.reset();
        for (auto& p : recs_) {
            EVIO_FUZZ_CHECK(p->resumes <= 1);
            EVIO_FUZZ_CHECK(p->frames == 1); // every frame destroyed, once
        }
    }

    std::optional<reactor> opt_;
    reactor& r_;
    std::array<handle, handles> h_{};
    std::vector<std::shared_ptr<pair_state>> retired_;
    tcp_listener listener_;
    std::optional<endpoint> listen_ep_;
    std::vector<int> raw_clients_;
    int raw_listener_ = -1;
    sockaddr_in raw_addr_{};
    std::array<std::stop_source, scopes> scope_{};
    std::vector<std::unique_ptr<record>> recs_;
    /// Closed listeners, and closed streams that had a receive() (see check_invariants).
    std::size_t multishots_closed_ = 0;
    std::size_t posts_issued_ = 0;
    std::size_t posts_run_ = 0;
    unsigned salt_ = 0;
    bool trace_ = std::getenv("EVIO_FUZZ_TRACE") != nullptr;
};

/// Runs one input. The first byte picks the backend (io_uring falls back to epoll when the
/// kernel refuses it, so a corpus replays anywhere).
inline void run_one(const std::uint8_t* data, std::size_t size) {
    input in(data, size);
    backend_kind k = in.byte() & 1 ? backend_kind::io_uring : backend_kind::epoll;
    if (k == backend_kind::io_uring && !reactor::is_available(k)) k = backend_kind::epoll;
    driver d(k);
    d.run(in);
}

} // namespace evio::fuzz
