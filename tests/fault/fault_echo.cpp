// SPDX-License-Identifier: MIT
// The fault property test: an evio echo server and evio clients under seeded injected faults.
//
//   fault_echo                      EVIO_FAULT_SEEDS runs (default 3000), seeds 1..N
//   EVIO_FAULT_SEEDS=100000 fault_echo          the long run (docs/reliability.md)
//   EVIO_FAULT_SEED=1234 fault_echo             replays one seed, printing what each end saw
//   EVIO_FAULT_FIRST_SEED=5000 fault_echo       starts the seeds elsewhere
// The backend comes from EVIO_TEST_BACKEND (epoll | io_uring | iocp; automatic when unset).
//
// Each run: a reactor, a listener, a fault_injector seeded with the run's seed, two clients that
// each write a seeded number of pattern bytes in seeded chunks while reading the echo back. Odd
// seeds read with receive(); seeds with bit 1 set run the reactor with busy_poll (bit 2 set too:
// the fixed poll, else the adaptive one); seeds with bit 3 set use 8 KiB receive buffers;
// seeds with bit 4 set have one receive buffer for both server sessions (no_buffer_space).
// Property, per connection:
//   - integrity: what either end reads is a prefix of the pattern (no byte lost, repeated or
//     reordered);
//   - a client that ends without error read back every byte it wrote, and the server read them
//     all; when a client failed, the server's side of that connection failed with an error too,
//     or it read exactly the bytes the client's writes acknowledged and then a clean end;
//   - nothing hangs: a run not finished after a deadline is a failure;
//   - no contract fires (the handler prints the seed, then aborts).
// A failure prints the seed and the command that replays it, and the exit status is 1.
#include <evio/evio.hpp>
#include <evio/fault.hpp>

#include "support/backend.hpp"
#include "support/fixture.hpp"

#include <array>
#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#if EVIO_PLATFORM_WINDOWS
#include <evio/detail/iocp/winsock.hpp>
#else
#include <sys/socket.h>
#endif

namespace {

using namespace std::chrono_literals;

std::uint64_t g_seed = 0;
const char* g_program = "fault_echo";

std::uint64_t mix(std::uint64_t x) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/// Byte `i` of the stream (the same for every connection of a run).
std::byte pattern(std::uint64_t seed, std::size_t i) {
    return static_cast<std::byte>(mix(seed * 0x100000001b3ULL + i) >> 56);
}

const char* backend_name() {
    const char* b = std::getenv("EVIO_TEST_BACKEND");
    return b ? b : "automatic";
}

void print_replay(const char* why) {
    std::fprintf(stderr, "FAIL seed %" PRIu64 " (%s, backend %s)\n  replay: EVIO_TEST_BACKEND=%s "
                         "EVIO_FAULT_SEED=%" PRIu64 " %s\n",
                 g_seed, why, backend_name(), backend_name(), g_seed, g_program);
    std::fflush(stderr);
}

void on_contract(const evio::contract_violation& v) {
    std::fprintf(stderr, "evio contract violation [%s] %s:%d: %s\n", v.id, v.file, v.line,
                 v.expression);
    print_replay("contract fired");
    std::abort();
}

/// What one end of one connection saw.
struct end_state {
    std::size_t read = 0;         ///< bytes read and found in order
    std::size_t written = 0;      ///< bytes acknowledged as written
    std::error_code error{};      ///< the first error (eof before the end counts for a client)
    bool corrupt = false;         ///< a byte out of pattern
    bool done = false;            ///< the end finished (with or without error)
};

struct client_state {
    std::size_t total = 0; ///< bytes the client means to write
    std::uint16_t port = 0; ///< its local port: matches the server's side
    bool connected = false;
    std::size_t timeouts = 0; ///< reads and writes cut short by their deadline
    end_state end;
};

struct server_conn {
    std::uint16_t peer_port = 0;
    end_state end;
};

struct run_state {
    std::uint64_t seed = 0;
    std::array<client_state, 2> clients{};
    std::vector<server_conn> server;
    int clients_done = 0;
    bool hung = false;
};

/// Aborts the connection: RST, so the peer sees an error, never a clean end of stream.
void abort_stream(evio::tcp_stream& s) {
    if (!s.is_open()) return;
    linger l{};
    l.l_onoff = 1;
    l.l_linger = 0;
#if EVIO_PLATFORM_WINDOWS
    (void)::setsockopt(static_cast<SOCKET>(s.native_handle()), SOL_SOCKET, SO_LINGER,
                       reinterpret_cast<const char*>(&l), sizeof l);
#else
    (void)::setsockopt(s.native_handle(), SOL_SOCKET, SO_LINGER, &l, sizeof l);
#endif
    s.close();
}

bool check_prefix(std::uint64_t seed, std::span<const std::byte> got, end_state& e) {
    for (std::size_t i = 0; i < got.size(); ++i) {
        if (got[i] != pattern(seed, e.read + i)) {
            e.corrupt = true;
            e.read += i;
            return false;
        }
    }
    e.read += got.size();
    return true;
}

/// Odd seeds read with receive() (buffer leases; io_uring: the multishot recv), even seeds
/// with read_some into the frame.
evio::task<void> server_session(evio::reactor& r, run_state& st, std::size_t slot, evio::tcp_stream s) {
    std::array<std::byte, 8192> buf;
    const bool leases = (st.seed & 1) != 0;
    for (;;) {
        std::span<std::byte> got;
        evio::buffer_lease lease;
        end_state& e = st.server[slot].end;
        if (leases) {
            auto l = co_await s.receive();
            if (!l && l.error() == evio::errc::no_buffer_space) {
                // The other session holds the one buffer (bit 4): its data stays queued.
                co_await evio::sleep_for(r, std::chrono::milliseconds(1));
                continue;
            }
            if (!l) {
                e.error = l.error();
                break;
            }
            lease = std::move(*l);
            got = lease.data();
        } else {
            auto n = co_await s.read_some(buf);
            if (!n) {
                e.error = n.error();
                break;
            }
            got = std::span(buf).first(*n);
        }
        if (got.empty()) break; // end of stream: clean
        if (!check_prefix(st.seed, got, e)) break;
        auto w = co_await s.write_all(got);
        st.server[slot].end.written += w ? got.size() : w.transferred();
        if (!w) {
            st.server[slot].end.error = w.error();
            break;
        }
    }
    st.server[slot].end.done = true;
}

evio::task<void> serve(evio::reactor& r, run_state& st, evio::tcp_listener& lis) {
    for (;;) {
        auto s = co_await lis.accept();
        if (!s) {
            if (s.error() == evio::errc::operation_canceled) co_return;
            continue; // an injected accept or registration failure: keep serving
        }
        (void)s->set_nodelay(true); // no Nagle/delayed-ACK stalls between small echoes
        server_conn c;
        if (auto ep = s->remote_endpoint()) c.peer_port = ep->port();
        st.server.push_back(c);
        evio::spawn(r, server_session(r, st, st.server.size() - 1, std::move(*s)));
    }
}

evio::task<void> client_writer(evio::reactor& r, run_state& st, client_state& c,
                               evio::tcp_stream& s, std::uint64_t rnd, bool& failed) {
    std::vector<std::byte> out(c.total);
    for (std::size_t i = 0; i < out.size(); ++i) out[i] = pattern(st.seed, i);
    std::size_t off = 0;
    while (off < c.total && !failed) {
        rnd = mix(rnd);
        const std::size_t chunk = std::min<std::size_t>(c.total - off, 1 + rnd % 12000);
        auto span = std::span<const std::byte>(out).subspan(off, chunk);
        if ((rnd >> 40) % 4 == 0) { // sometimes write_some: a short write is legal there
            auto w = co_await s.write_some(span);
            if (!w) {
                if (!c.end.error) c.end.error = w.error();
                failed = true;
                break;
            }
            off += *w;
        } else if ((rnd >> 40) % 4 == 1) {
            // A deadline that often fires mid-write: transferred() must count exactly what was
            // sent, so the rest is written from there (a wrong count shows as a corrupt byte).
            auto w = co_await evio::with_timeout(r, std::chrono::microseconds((rnd >> 8) % 1500),
                                                 s.write_all(span));
            off += w ? chunk : w.transferred();
            if (!w && w.error() == evio::errc::timed_out) ++c.timeouts;
            if (!w && w.error() != evio::errc::timed_out) {
                if (!c.end.error) c.end.error = w.error();
                failed = true;
                break;
            }
        } else {
            auto w = co_await s.write_all(span);
            off += w ? chunk : w.transferred();
            if (!w) {
                if (!c.end.error) c.end.error = w.error();
                failed = true;
                break;
            }
        }
        c.end.written = off;
    }
    c.end.written = off;
    if (failed) abort_stream(s); // the reader resumes (operation_canceled), the server sees RST
}

evio::task<void> client_reader(evio::reactor& r, run_state& st, client_state& c,
                               evio::tcp_stream& s, std::uint64_t rnd, bool& failed) {
    std::array<std::byte, 4096> buf;
    while (c.end.read < c.total && !failed) {
        rnd = mix(rnd);
        evio::result<std::size_t> n = evio::errc::timed_out;
        if (rnd % 4 == 0) {
            // A read cancelled by its deadline must lose no byte: a read that completed in the
            // same moment returns its data instead of timed_out.
            n = co_await evio::with_timeout(r, std::chrono::microseconds((rnd >> 8) % 1500),
                                            s.read_some(buf));
            if (!n && n.error() == evio::errc::timed_out) {
                ++c.timeouts;
                continue;
            }
        } else {
            n = co_await s.read_some(buf);
        }
        if (!n || *n == 0) {
            if (!c.end.error) c.end.error = n ? make_error_code(evio::errc::eof) : n.error();
            failed = true;
            break;
        }
        if (!check_prefix(st.seed, std::span(buf).first(*n), c.end)) {
            failed = true;
            break;
        }
    }
    if (failed) abort_stream(s); // the writer resumes (operation_canceled), the server sees RST
}

evio::task<void> client(evio::reactor& r, run_state& st, client_state& c, evio::endpoint ep,
                        std::uint64_t rnd) {
    auto s = co_await evio::tcp_stream::connect(r, ep);
    if (!s) {
        c.end.error = s.error();
    } else {
        c.connected = true;
        (void)s->set_nodelay(true);
        if (auto le = s->local_endpoint()) c.port = le->port();
        bool failed = false;
        // The reader runs while the writer writes; whichever fails first aborts the stream so
        // the other resumes (operation_canceled) and the server sees a reset.
        co_await evio::when_all(client_reader(r, st, c, *s, mix(rnd ^ 0x5eed), failed),
                                client_writer(r, st, c, *s, rnd, failed));
        if (failed) abort_stream(*s);
        else s->close(); // clean: the server reads the end of stream
    }
    c.end.done = true;
    if (++st.clients_done == static_cast<int>(st.clients.size())) {
        // Give the server's sessions a bounded moment to see the end of their streams.
        for (int i = 0; i < 2000; ++i) {
            bool all = true;
            for (const auto& sc : st.server) all = all && sc.end.done;
            if (all) break;
            co_await evio::sleep_for(r, 1ms);
        }
        r.stop();
    }
}

/// Checks the property for one run; returns an empty string when it holds.
std::string verdict(const run_state& st) {
    if (st.hung) return "hang: the run passed its deadline";
    for (std::size_t i = 0; i < st.clients.size(); ++i) {
        const client_state& c = st.clients[i];
        const std::string who = "client " + std::to_string(i) + ": ";
        if (c.end.corrupt) return who + "read a byte out of order at " + std::to_string(c.end.read);
        const server_conn* sc = nullptr;
        for (const auto& s : st.server)
            if (c.connected && s.peer_port == c.port) sc = &s;
        if (sc && sc->end.corrupt)
            return who + "server read a byte out of order at " + std::to_string(sc->end.read);
        if (!c.end.error) {
            if (c.end.read != c.total || c.end.written != c.total)
                return who + "ended without error but moved " + std::to_string(c.end.written) +
                       "/" + std::to_string(c.end.read) + " of " + std::to_string(c.total);
            if (!sc) return who + "succeeded but the server never saw it";
            if (sc->end.read != c.total)
                return who + "succeeded but the server read " + std::to_string(sc->end.read);
            continue;
        }
        if (!c.connected) continue; // connect failed: no connection, nothing to check
        if (sc && !sc->end.done) return who + "failed, the server's side never finished";
        // A server that saw a clean end (not an error) must have read every byte the client's
        // writes acknowledged, and no more (Wine reports an abortive close of a connection that
        // carried no byte as a plain end of stream).
        if (sc && !sc->end.error && sc->end.read != c.end.written)
            return who + "failed (" + c.end.error.message() + ") after writing " +
                   std::to_string(c.end.written) + " bytes but the server saw a clean end after " +
                   std::to_string(sc->end.read);
        if (c.end.read > c.end.written) return who + "read back more than it wrote";
    }
    for (const auto& s : st.server)
        if (s.end.read > 0 && s.end.written > s.end.read) return "server echoed more than it read";
    return {};
}

struct totals {
    std::uint64_t runs = 0, clean = 0, failed_conns = 0, ok_conns = 0, bytes = 0, timeouts = 0;
    std::uint64_t no_connection = 0; ///< connect failed: nothing to check beyond the error
    std::uint64_t server_clean = 0;  ///< client failed, server read all acknowledged bytes, clean end
    std::array<std::uint64_t, static_cast<std::size_t>(evio::fault_kind::count_)> kinds{};
    std::array<std::uint64_t, static_cast<std::size_t>(evio::fault_site::count_)> calls{};
};

void configure(evio::fault_injector& f) {
    using evio::fault_rates;
    using evio::fault_site;
    fault_rates io;
    io.short_transfer = 0.30;
    io.again = 0.05;
    io.interrupt = 0.05;
    io.reset = 0.0015;
    io.fail = 0.0015;
    f.set(fault_site::recv, io).set(fault_site::send, io);
    fault_rates accept;
    accept.fail = 0.03;
    accept.again = 0.05;
    accept.interrupt = 0.05;
    f.set(fault_site::accept, accept);
    fault_rates connect;
    connect.fail = 0.03;
    connect.again = 0.05;
    connect.interrupt = 0.05;
    f.set(fault_site::connect, connect);
    fault_rates other;
    other.fail = 0.03;
    f.set(fault_site::poll_ctl, other).set(fault_site::close, other);
    fault_rates cancel; // CancelIoEx (iocp): a cancel that fails leaves the op to finish
    cancel.fail = 0.1;
    f.set(fault_site::cancel, cancel);
    fault_rates turn;
    turn.fail = 0.05;
    f.set(fault_site::submit, turn).set(fault_site::wait, turn);
}

/// One seeded run. Returns false (after printing the replay command) when the property fails.
bool run_one(std::uint64_t seed, totals& t, bool verbose) {
    g_seed = seed;
    run_state st;
    st.seed = seed;
    st.server.reserve(8);
    std::uint64_t rnd = mix(seed);
    for (auto& c : st.clients) {
        rnd = mix(rnd);
        c.total = 1 + static_cast<std::size_t>(rnd % 48000);
    }
    {
        auto opts = evio::test::options();
        // Seeds with bit 1 set poll before blocking (reactor_options::busy_poll): the turn's
        // waits that return at once meet the injected wait failures too. Bit 2: a fixed 50 us
        // poll on every blocking turn; clear: the adaptive poll, up to 200 us.
        if ((seed & 2) != 0) {
            opts.busy_poll_adaptive = (seed & 4) == 0;
            opts.busy_poll = std::chrono::microseconds(opts.busy_poll_adaptive ? 200 : 50);
        }
        // Bit 3: 8 KiB receive buffers, which the clients' writes (up to 12,000 bytes) often fill:
        // on io_uring such a stream turns bulk and its receive()s leave the multishot recv for
        // plain reads, and come back after a short one, under the same faults.
        if ((seed & 8) != 0) opts.receive_buffer_size = 8192;
        // Bit 4: one receive buffer for both sessions, held while its bytes are echoed: the
        // other session's receive() finds none, waits without one or fails with
        // no_buffer_space when its data comes (and retries), under the same faults.
        if ((seed & 16) != 0) opts.receive_buffers_max = 1;
        evio::reactor r{opts};
        auto lis = evio::tcp_listener::bind(r, evio::endpoint::loopback_v4(0)).value();
        const auto ep = lis.local_endpoint().value();
        evio::fault_injector f{seed};
        configure(f);
        if (!f.install()) {
            std::fprintf(stderr, "fault_echo: another fault hook is installed\n");
            return false;
        }
        evio::spawn(r, serve(r, st, lis));
        for (std::size_t i = 0; i < st.clients.size(); ++i)
            evio::spawn(r, client(r, st, st.clients[i], ep, mix(rnd + i)));
        evio::spawn(r, [&]() -> evio::task<void> {
            co_await evio::sleep_for(r, 10s);
            st.hung = true;
            r.stop();
        });
        r.run();
        f.enable(false); // teardown without faults: the run is over
        for (std::size_t k = 0; k < t.kinds.size(); ++k)
            t.kinds[k] += f.injected(static_cast<evio::fault_kind>(k));
        for (std::size_t s = 0; s < t.calls.size(); ++s)
            t.calls[s] += f.calls(static_cast<evio::fault_site>(s));
        lis.close();
        f.uninstall();
    }
    ++t.runs;
    bool all_ok = true;
    for (const auto& c : st.clients) {
        t.bytes += c.end.read;
        t.timeouts += c.timeouts;
        if (c.end.error) {
            ++t.failed_conns;
            all_ok = false;
            if (!c.connected) ++t.no_connection;
            for (const auto& s : st.server)
                if (c.connected && s.peer_port == c.port && !s.end.error) ++t.server_clean;
        } else {
            ++t.ok_conns;
        }
        if (verbose)
            std::printf("client port %u: total %zu written %zu read %zu error %s\n", c.port, c.total,
                        c.end.written, c.end.read,
                        c.end.error ? c.end.error.message().c_str() : "none");
    }
    if (verbose)
        for (const auto& s : st.server)
            std::printf("server side of port %u: read %zu written %zu error %s done %d\n",
                        s.peer_port, s.end.read, s.end.written,
                        s.end.error ? s.end.error.message().c_str() : "none", s.end.done);
    if (all_ok) ++t.clean;
    const std::string v = verdict(st);
    if (!v.empty()) {
        print_replay(v.c_str());
        return false;
    }
    return true;
}

std::uint64_t env_u64(const char* name, std::uint64_t fallback) {
    const char* v = std::getenv(name);
    return v && *v ? std::strtoull(v, nullptr, 10) : fallback;
}

} // namespace

int main(int argc, char** argv) {
    if (argc > 0) g_program = argv[0];
    if (const int rc = evio_test_precheck(); rc != 0) return rc;
    evio::set_contract_handler(&on_contract);
    totals t;
    const char* one = std::getenv("EVIO_FAULT_SEED");
    const auto start = std::chrono::steady_clock::now();
    int failures = 0;
    if (one && *one) {
        failures += run_one(std::strtoull(one, nullptr, 10), t, true) ? 0 : 1;
    } else {
        const std::uint64_t n = env_u64("EVIO_FAULT_SEEDS", 3000);
        const std::uint64_t first = env_u64("EVIO_FAULT_FIRST_SEED", 1);
        for (std::uint64_t s = first; s < first + n; ++s) {
            if (!run_one(s, t, false) && ++failures >= 10) break;
        }
    }
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("fault_echo backend %s: %" PRIu64 " runs, %" PRIu64 " connections completed, %" PRIu64
                " failed (%" PRIu64 " at connect, %" PRIu64 " where the server read every "
                "acknowledged byte then a clean end, the rest with an error on both ends), %" PRIu64
                " bytes verified, %" PRIu64 " reads/writes timed out, %.1f s\n",
                backend_name(), t.runs, t.ok_conns, t.failed_conns, t.no_connection,
                t.server_clean, t.bytes, t.timeouts, secs);
    static const char* kind_names[] = {"fail", "short", "again", "interrupt", "reset"};
    std::printf("faults injected:");
    std::uint64_t all = 0;
    for (std::size_t k = 0; k < t.kinds.size(); ++k) {
        std::printf(" %s %" PRIu64, kind_names[k], t.kinds[k]);
        all += t.kinds[k];
    }
    std::printf(" (total %" PRIu64 ")\n", all);
    static const char* site_names[] = {"accept", "connect", "recv",   "send", "close",
                                       "poll_ctl", "submit", "cancel", "wait"};
    std::printf("calls seen:");
    for (std::size_t s = 0; s < t.calls.size(); ++s)
        std::printf(" %s %" PRIu64, site_names[s], t.calls[s]);
    std::printf("\n%s\n", failures ? "FAILED" : "property held on every run");
    return failures ? 1 : 0;
}
