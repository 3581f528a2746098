// SPDX-License-Identifier: MIT
// Room iocp: the completion backend on Windows, through an I/O completion port.
//
// Room notes
// - What the OS gives: completions. One port per reactor; each socket is associated once with
//   completion key {index:32, generation:32}; AcceptEx/ConnectEx/WSARecv/WSASend run overlapped,
//   one op per token and direction in the kernel at a time (FIFO behind it); one
//   GetQueuedCompletionStatusEx batch per turn; wake() posts a packet with key `wake_key`.
// - FILE_SKIP_COMPLETION_PORT_ON_SUCCESS when the provider is IFS (XP1_IFS_HANDLES, SIO_BASE_HANDLE
//   is the socket itself): an immediate success queues no packet, so it completes inline.
// - Deregistration: CancelIoEx(handle, &op) per op this token has in the kernel (never by handle
//   alone); each op resumes once after its own packet (ERROR_OPERATION_ABORTED ->
//   operation_canceled); the slot is freed when its in-flight count reaches zero.
// - Quirks: a handle keeps its first port and key until closed (ERROR_INVALID_PARAMETER on a
//   second association), so a handle re-registered after deregister(t, false) is routed through
//   `aliases_`; Winsock reports a write after the peer's FIN as a reset (mapped to broken_pipe
//   once a read saw the FIN). Wine 8: see docs/backends.md, "Windows (IOCP)".
#pragma once

#include <evio/detail/platform.hpp>

#if EVIO_HAS_IOCP

#include <evio/detail/contract.hpp>
#include <evio/detail/iocp/errors.hpp>
#include <evio/detail/iocp/socket.hpp>
#include <evio/detail/iocp/winsock.hpp>
#include <evio/detail/operation.hpp>
#include <evio/detail/reactor_core.hpp>
#include <evio/detail/room.hpp>
#include <evio/detail/syscall.hpp>
#include <evio/detail/token_table.hpp>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <new>
#include <system_error>
#include <unordered_map>
#include <utility>
#include <vector>

namespace evio::detail {

static_assert(sizeof(OVERLAPPED) <= sizeof(operation::overlapped),
              "operation::overlapped must hold an OVERLAPPED");
static_assert(alignof(OVERLAPPED) <= 8, "operation::overlapped is aligned to 8");
static_assert(sizeof(ULONG_PTR) == 8, "the completion key packs {index, generation}: 64-bit only");
static_assert(2 * (sizeof(sockaddr_in6) + 16) <= operation::addr_capacity,
              "AcceptEx's address buffer (accept_op's, via operation::addr) is too small");

class iocp_reactor {
public:
    static constexpr const char* name = "iocp";

    /// Starts Winsock, creates the completion port and loads AcceptEx/ConnectEx.
    /// Errors: throws std::system_error naming the failed step.
    explicit iocp_reactor(reactor_core& core) : core_(core) {
        WSADATA wsa{};
        int err = 0;
        if (fault_injected(sys::wsa_startup, &err)) fail("WSAStartup", err);
        if (const int rc = ::WSAStartup(MAKEWORD(2, 2), &wsa); rc != 0) fail("WSAStartup", rc);
        port_ = EVIO_WINCALL(iocp_create, nullptr,
                             ::CreateIoCompletionPort(INVALID_HANDLE_VALUE, nullptr, 0, 1));
        if (port_ == nullptr) {
            const int e = static_cast<int>(::GetLastError());
            ::WSACleanup();
            fail("CreateIoCompletionPort", e);
        }
        if (const int e = load_extensions(); e != 0) {
            ::CloseHandle(port_);
            ::WSACleanup();
            fail("WSAIoctl(SIO_GET_EXTENSION_FUNCTION_POINTER: AcceptEx, ConnectEx)", e);
        }
    }
    iocp_reactor(const iocp_reactor&) = delete;
    iocp_reactor& operator=(const iocp_reactor&) = delete;
    ~iocp_reactor() {
        ::CloseHandle(port_);
        ::WSACleanup();
    }

    /// Associates the socket with the port (key = the token) and turns on
    /// FILE_SKIP_COMPLETION_PORT_ON_SUCCESS where that is safe.
    /// A handle stays associated with its first port and key until it is closed (Windows 8.1's
    /// FileReplaceCompletionInformation could undo that, but Wine 8 does not implement it), so a
    /// handle registered here before and deregistered without closing keeps that first key:
    /// its packets are routed to the new token through `aliases_`.
    /// Errors: invalid_argument when the handle is associated with another port (another
    /// reactor, or a duplicate of a socket registered there) or is live here already.
    std::error_code add(token t, native_handle h) {
        if (flags_.size() <= t.index) flags_.resize(t.index + 1, 0);
        flags_[t.index] = 0;
        const ULONG_PTR key = key_of(t);
        if (EVIO_WINCALL(iocp_associate, nullptr,
                         ::CreateIoCompletionPort(to_handle(h), port_, key, 0)) == nullptr) {
            const int e = static_cast<int>(::GetLastError());
            const auto it = first_key_.find(h);
            if (e != ERROR_INVALID_PARAMETER || it == first_key_.end() || key_is_live(it->second))
                return error_from_win32(e);
            aliases_[it->second] = t; // ours, from a registration that kept the handle open
        } else if (const auto [it, fresh] = first_key_.try_emplace(h, key); !fresh) {
            // A new socket reuses the handle value: the old key belongs to a closed socket. Its
            // alias goes once no packet of it can come any more.
            if (const auto a = aliases_.find(it->second);
                a != aliases_.end() && !core_.table.find_any(a->second.index, a->second.generation))
                aliases_.erase(a);
            it->second = key;
        }
        if (enable_skip(h)) flags_[t.index] = flag_skip;
        return {};
    }

    /// receive(): the room takes the op's pool buffer once the socket has data (zero_byte_read).
    static constexpr bool provides_buffers() noexcept { return true; }

    /// Queues `op` behind its direction's head, or issues it when the direction is idle.
    /// Returns false when it finished without a packet (immediate success or failure) and the
    /// token is within its turn budget: the caller resumes at once.
    bool start(operation& op, slot& s) {
        const direction d = direction_of(op.kind);
        op_queue& q = s.q(d);
        const bool idle = q.empty();
        q.push(&op);
        s.interest |= interest_of(d);
        ++core_.pending_ops;
        if (!idle || (op.kind == op_kind::accept && s.accept_backoff)) return true;
        if (!core_.within_budget(s)) {
            // Over this turn's budget: yield before the call. The op waits in its FIFO (so a
            // close or a cancel still finds it) and is issued at the end of the turn.
            core_.retry_later(op.tok, d);
            return true;
        }
        if (issue(op, s)) return true; // the kernel holds it: a packet will come
        core_.pop_head(s, d);
        if (op.kind == op_kind::accept && is_fd_exhaustion(op.error))
            core_.note_accept_exhausted(s, op.tok);
        return false;
    }

    /// Deregistration steps 2-3 for this token only: CancelIoEx for each op it has in the kernel
    /// (by its own OVERLAPPED), resume the never-issued ops with ERROR_OPERATION_ABORTED now.
    /// When CancelIoEx fails (ERROR_NOT_FOUND: the packet is already queued), the packet still
    /// comes; the reactor closes the socket right after, which cancels what is left.
    void cancel_all(slot& s) {
        for (op_queue& q : s.queue) {
            operation* kept = nullptr;
            if (q.head && q.head->in_kernel) {
                kept = q.pop();
                (void)EVIO_WINCALL(iocp_cancel, FALSE,
                                   ::CancelIoEx(to_handle(s.handle), overlapped_of(*kept)));
            }
            while (operation* op = q.pop()) {
                op->error = native_cancel_error;
                --core_.pending_ops;
                core_.complete_later(*op);
            }
            if (kept) q.push(kept);
        }
        s.interest = interest_none;
    }

    /// Cancels one op (with_timeout, with_cancellation, when_any). In the kernel: CancelIoEx by
    /// its own OVERLAPPED; it resumes after its packet, with operation_canceled, or with its
    /// real result if it finished first (ERROR_NOT_FOUND), and a read_exact/write_all or an
    /// accept retry is not issued again. Queued behind the head (or held back by the accept
    /// back-off): unlinked and resumed later in this turn with operation_canceled.
    void cancel(operation& op, slot& s) {
        if (op.in_kernel) {
            op.cancel_requested = true;
            (void)EVIO_WINCALL(iocp_cancel, FALSE,
                               ::CancelIoEx(to_handle(s.handle), overlapped_of(op)));
            return;
        }
        (void)core_.cancel_queued(op, s, native_cancel_error);
    }

    /// Issues the parked head ops of `t` in direction `d` (accept back-off release).
    void retry(token t, direction d) { pump(t, d); }

    /// One GetQueuedCompletionStatusEx batch, up to `timeout_ms` (-1: forever); resumes waiters
    /// inline. Returns the number of packets (wake-ups included).
    std::size_t wait(int timeout_ms) {
        ULONG n = 0;
        const DWORD ms = timeout_ms < 0 ? INFINITE : static_cast<DWORD>(timeout_ms);
        if (!EVIO_WINCALL(
                iocp_wait, FALSE,
                ::GetQueuedCompletionStatusEx(port_, entries_, max_entries, &n, ms, FALSE)))
            return 0; // WAIT_TIMEOUT (or an injected fault): the loop simply turns again
        for (ULONG i = 0; i < n; ++i) {
            const OVERLAPPED_ENTRY& e = entries_[i];
            if (e.lpCompletionKey == wake_key) {
                // An exchange, not a store: it synchronizes with the waker's exchange, so what
                // the waker queued before wake() (post) is visible to this turn.
                (void)woken_.exchange(false, std::memory_order_acq_rel);
                continue;
            }
            dispatch(e.lpCompletionKey, e.lpOverlapped);
        }
        return n;
    }

    /// Wakes a thread blocked in wait(); safe from any thread.
    void wake() noexcept {
        if (woken_.exchange(true, std::memory_order_acq_rel)) return;
        if (!EVIO_WINCALL(iocp_post, FALSE,
                          ::PostQueuedCompletionStatus(port_, 0, wake_key, nullptr)))
            woken_.store(false, std::memory_order_release);
    }

    /// Reactor destruction: cancel every op the kernel holds and wait for each packet, so no
    /// buffer in a coroutine frame is written after the frame is destroyed. Raw calls, not the
    /// fault seam: this wait must not be cut short.
    void drain_for_destroy() noexcept {
        core_.destroying = true;
        core_.table.for_each_live([&](std::uint32_t, slot& s) {
            for (op_queue& q : s.queue)
                if (q.head && q.head->in_kernel)
                    (void)::CancelIoEx(to_handle(s.handle), overlapped_of(*q.head));
        });
        while (in_kernel_ > 0) {
            ULONG n = 0;
            if (!::GetQueuedCompletionStatusEx(port_, entries_, max_entries, &n, INFINITE, FALSE))
                break; // the port itself failed: nothing more will come
            for (ULONG i = 0; i < n; ++i)
                if (entries_[i].lpCompletionKey != wake_key)
                    dispatch(entries_[i].lpCompletionKey, entries_[i].lpOverlapped);
        }
    }

private:
    static constexpr ULONG_PTR wake_key = ~ULONG_PTR{0}; // index ~0 is never a slot
    static constexpr ULONG max_entries = 128;
    static constexpr DWORD accept_addr_len = sizeof(sockaddr_in6) + 16; // AcceptEx's minimum
    static constexpr int max_accept_retries = 64;
    static constexpr std::size_t all_chunk = std::size_t{256} << 10; ///< write_all: per WSASend
    static constexpr std::uint8_t flag_skip = 1;     ///< skip-on-success is on for the socket
    static constexpr std::uint8_t flag_peer_fin = 2; ///< a read saw the peer's FIN (returned 0)

    [[noreturn]] static void fail(const char* what, int err) {
        throw std::system_error(std::error_code(err, std::system_category()), what);
    }

    static ULONG_PTR key_of(token t) noexcept {
        return (static_cast<ULONG_PTR>(t.generation) << 32) | t.index;
    }

    /// The OVERLAPPED stored in the op (address only: for CancelIoEx and packet matching).
    static OVERLAPPED* overlapped_of(operation& op) noexcept {
        return std::launder(reinterpret_cast<OVERLAPPED*>(op.overlapped));
    }
    /// A fresh OVERLAPPED for the next overlapped call of `op`.
    static OVERLAPPED* fresh_overlapped(operation& op) noexcept {
        return ::new (static_cast<void*>(op.overlapped)) OVERLAPPED{};
    }

    static bool is_fd_exhaustion(int e) noexcept {
        return e == WSAEMFILE || e == ERROR_TOO_MANY_OPEN_FILES || e == WSAENOBUFS;
    }
    /// AcceptEx failures that concern one queued connection, not the listener: the client reset
    /// or gave up before we took it. The accept is retried with a new socket (like Asio, and
    /// like ECONNABORTED in the epoll room).
    static bool is_per_connection(int e) noexcept {
        return e == WSAECONNRESET || e == ERROR_NETNAME_DELETED || e == WSAECONNABORTED ||
               e == ERROR_CONNECTION_ABORTED;
    }
    static DWORD clamp_len(std::size_t n) noexcept {
        constexpr std::size_t cap = std::size_t{1} << 30;
        return static_cast<DWORD>(n < cap ? n : cap);
    }

    /// Loads AcceptEx and ConnectEx (per provider in theory; evio uses one TCP provider for
    /// both families) and whether the providers are IFS (skip-on-success safe). 0 or an error.
    int load_extensions() noexcept {
        SOCKET probe = open_overlapped_socket(4);
        if (probe == INVALID_SOCKET) probe = open_overlapped_socket(6);
        if (probe == INVALID_SOCKET) return ::WSAGetLastError();
        GUID accept_id = WSAID_ACCEPTEX;
        GUID connect_id = WSAID_CONNECTEX;
        DWORD bytes = 0;
        int rc = ::WSAIoctl(probe, SIO_GET_EXTENSION_FUNCTION_POINTER, &accept_id, sizeof accept_id,
                            &accept_ex_, sizeof accept_ex_, &bytes, nullptr, nullptr);
        if (rc == 0)
            rc = ::WSAIoctl(probe, SIO_GET_EXTENSION_FUNCTION_POINTER, &connect_id,
                            sizeof connect_id, &connect_ex_, sizeof connect_ex_, &bytes, nullptr,
                            nullptr);
        const int err = rc == 0 ? 0 : ::WSAGetLastError();
        ifs_providers_ = provider_is_ifs(probe);
        ::closesocket(probe);
        if (ifs_providers_) {
            const SOCKET v6 = open_overlapped_socket(6);
            if (v6 != INVALID_SOCKET) { // no IPv6 stack: nothing to check
                ifs_providers_ = provider_is_ifs(v6);
                ::closesocket(v6);
            }
        }
        return err;
    }

    /// libuv's check: a non-IFS provider (an old LSP) breaks skip-on-success (KB2568167).
    static bool provider_is_ifs(SOCKET s) noexcept {
        WSAPROTOCOL_INFOW info{};
        int len = sizeof info;
        const int rc =
            ::getsockopt(s, SOL_SOCKET, SO_PROTOCOL_INFOW, reinterpret_cast<char*>(&info), &len);
        return rc == 0 && (info.dwServiceFlags1 & XP1_IFS_HANDLES) != 0;
    }

    /// Turns on FILE_SKIP_COMPLETION_PORT_ON_SUCCESS when the providers are IFS and no layered
    /// provider sits on this socket (SIO_BASE_HANDLE returns the socket itself, as mio/wepoll
    /// check). True when on: then an immediate success queues no packet.
    bool enable_skip(native_handle h) const noexcept {
        if (!ifs_providers_) return false;
        SOCKET base = INVALID_SOCKET;
        DWORD bytes = 0;
        if (::WSAIoctl(to_socket(h), SIO_BASE_HANDLE, nullptr, 0, &base, sizeof base, &bytes,
                       nullptr, nullptr) != 0 ||
            base != to_socket(h))
            return false;
        return ::SetFileCompletionNotificationModes(to_handle(h),
                                                    FILE_SKIP_COMPLETION_PORT_ON_SUCCESS |
                                                        FILE_SKIP_SET_EVENT_ON_HANDLE) != FALSE;
    }

    /// receive(): a zero-byte WSARecv, which completes when the socket has data (or its end, or
    /// an error) and holds no buffer meanwhile (libuv's "zero read"); then the op takes a pool
    /// buffer (take_buffer) and reads into it. True: pending, the kernel holds it (op.polled).
    /// False with `err` 0: it completed at once, and the op holds a buffer (`ready`) or has
    /// finished without one (take_buffer); false with `err` set: the call failed.
    bool zero_byte_read(operation& op, SOCKET sock, OVERLAPPED* ov, bool skip, int& err,
                        bool& ready) noexcept {
        WSABUF b{0, nullptr};
        DWORD n = 0, flags = 0;
        if (EVIO_WINCALL(recv, SOCKET_ERROR, ::WSARecv(sock, &b, 1, &n, &flags, ov, nullptr)) == 0) {
            if (!skip) {
                op.polled = true;
                return true;
            }
            ready = take_buffer(op, sock);
            return false;
        }
        err = ::WSAGetLastError();
        if (err != WSA_IO_PENDING) return false;
        op.polled = true;
        return true;
    }

    /// receive(): the zero-byte read saw data, the end of the stream or an error; the op takes
    /// a pool buffer now and reads into it (true). With every buffer in use it finishes
    /// (false): WSAENOBUFS when data is queued (it stays in the socket); at the end of the
    /// stream, which needs no buffer, an empty lease (nothing queued after a zero-byte read
    /// completed without an error: FIN; the read itself would return 0), as on epoll and
    /// io_uring.
    bool take_buffer(operation& op, SOCKET sock) noexcept {
        op.polled = false;
        if (core_.lease_buffer(op)) return true;
        u_long queued = 1;
        if (::ioctlsocket(sock, FIONREAD, &queued) != 0 || queued > 0) op.error = WSAENOBUFS;
        return false;
    }

    bool hand_to_kernel(operation& op, slot& s) noexcept {
        op.in_kernel = true;
        ++s.in_flight;
        ++in_kernel_;
        return true;
    }

    /// recv/send moved `n` bytes: true when the op is finished (result in `op`), false when a
    /// read_exact/write_all needs another call.
    bool account(operation& op, DWORD n) noexcept {
        if (op.kind == op_kind::recv && n == 0) { // end of stream
            flags_[op.tok.index] |= flag_peer_fin;
            if (op.all && op.done < op.len) op.error = error_eof;
            return true;
        }
        op.done += n;
        return !(op.all && op.done < op.len);
    }

    /// accept succeeded: the new socket takes the listener's properties (getpeername, shutdown
    /// work on it only after SO_UPDATE_ACCEPT_CONTEXT). False: it failed; the socket is closed.
    static bool finish_accept(operation& op, slot& s) noexcept {
        const SOCKET listener = to_socket(s.handle);
        const int rc =
            EVIO_WINCALL(setsockopt, SOCKET_ERROR,
                         ::setsockopt(to_socket(op.accepted), SOL_SOCKET, SO_UPDATE_ACCEPT_CONTEXT,
                                      reinterpret_cast<const char*>(&listener), sizeof listener));
        if (rc == 0) return true;
        close_native(std::exchange(op.accepted, invalid_handle));
        return false;
    }

    /// connect succeeded: make getpeername/shutdown work on the socket (SO_UPDATE_CONNECT_CONTEXT).
    static void finish_connect(operation& op, slot& s) noexcept {
        if (EVIO_WINCALL(setsockopt, SOCKET_ERROR,
                         ::setsockopt(to_socket(s.handle), SOL_SOCKET, SO_UPDATE_CONNECT_CONTEXT,
                                      nullptr, 0)) != 0)
            op.error = ::WSAGetLastError();
    }

    /// The error a failed op reports. A send that fails because the connection was reset after
    /// a read saw the peer's FIN is broken_pipe, as on Linux (send(2) in CLOSE_WAIT after the
    /// peer's RST: EPIPE); Winsock reports WSAECONNRESET / ERROR_NETNAME_DELETED there.
    int failure(const operation& op, int err) const noexcept {
        if (op.kind == op_kind::send && (flags_[op.tok.index] & flag_peer_fin) &&
            (err == WSAECONNRESET || err == ERROR_NETNAME_DELETED || err == WSAECONNABORTED ||
             err == ERROR_CONNECTION_ABORTED))
            return ERROR_BROKEN_PIPE;
        return err;
    }

    /// Makes the overlapped call for `op`, the head of its direction. True: the kernel holds it
    /// and one packet will come. False: it finished without a packet (immediate success with
    /// skip-on-success, or an immediate failure, which never queues a packet); result in `op`.
    bool issue(operation& op, slot& s) {
        const bool skip = (flags_[op.tok.index] & flag_skip) != 0;
        const SOCKET sock = to_socket(s.handle);
        int accept_retries = 0;
        for (;;) {
            OVERLAPPED* ov = fresh_overlapped(op);
            int err = 0;
            switch (op.kind) {
            case op_kind::recv: {
                if (op.provided && op.buffer < 0) { // receive(): wait for data without a buffer
                    bool ready = false;
                    if (zero_byte_read(op, sock, ov, skip, err, ready)) return hand_to_kernel(op, s);
                    if (err == 0) {
                        if (!ready) return false; // no pool buffer: no_buffer_space, or the end
                        continue;                 // data is there: read it now
                    }
                    break;
                }
                // An empty read returns 0 at once, as recv(2) does; a zero-byte WSARecv would
                // instead wait for data (the "zero-byte read" idiom) and then look like EOF.
                if (op.done == op.len) return false;
                std::size_t want = op.len - op.done; // the fault seam may lower it
                WSABUF b{0, reinterpret_cast<char*>(op.buf + op.done)};
                DWORD n = 0, flags = 0;
                if (EVIO_WINCALL_IO(recv, SOCKET_ERROR, want,
                                    (b.len = clamp_len(want),
                                     ::WSARecv(sock, &b, 1, &n, &flags, ov, nullptr))) == 0) {
                    if (!skip) return hand_to_kernel(op, s);
                    if (account(op, n)) return false;
                    continue;
                }
                err = ::WSAGetLastError();
                break;
            }
            case op_kind::send: {
                if (op.done == op.len) return false;
                // write_all goes out in chunks (as Asio's transfer_all does), so a cancelled or
                // failed write_all knows how much left: a cancelled WSASend may report 0 bytes.
                const std::size_t left = op.len - op.done;
                std::size_t want = op.all && left > all_chunk ? all_chunk : left;
                WSABUF b{0, reinterpret_cast<char*>(op.buf + op.done)};
                DWORD n = 0;
                const int rc = EVIO_WINCALL_IO(send, SOCKET_ERROR, want,
                                               (b.len = clamp_len(want),
                                                ::WSASend(sock, &b, 1, &n, 0, ov, nullptr)));
                if (rc == 0) {
                    if (!skip) return hand_to_kernel(op, s);
                    if (account(op, n)) return false;
                    continue;
                }
                err = ::WSAGetLastError();
                break;
            }
            case op_kind::accept: {
                if (op.accepted == invalid_handle) {
                    const SOCKET a = open_overlapped_socket(op.family);
                    if (a == INVALID_SOCKET) {
                        op.error = ::WSAGetLastError();
                        return false;
                    }
                    op.accepted = static_cast<native_handle>(a);
                }
                DWORD n = 0;
                if (EVIO_WINCALL(accept, FALSE,
                                 accept_ex_(sock, to_socket(op.accepted), op.addr, 0,
                                            accept_addr_len, accept_addr_len, &n, ov))) {
                    if (!skip) return hand_to_kernel(op, s);
                    if (finish_accept(op, s)) return false;
                    if (++accept_retries < max_accept_retries) continue;
                    op.error = WSAECONNABORTED;
                    return false;
                }
                err = ::WSAGetLastError();
                if (err == ERROR_IO_PENDING) return hand_to_kernel(op, s);
                close_native(std::exchange(op.accepted, invalid_handle));
                if (is_per_connection(err) && ++accept_retries < max_accept_retries) continue;
                op.error = err;
                return false;
            }
            case op_kind::connect: {
                if (!op.started) { // ConnectEx needs a bound socket: the wildcard of its family
                    op.started = true;
                    sockaddr_storage any{};
                    const int len = to_sockaddr(
                        op.family == 6 ? endpoint::any_v6(0) : endpoint::any_v4(0), &any);
                    const auto* a = reinterpret_cast<const sockaddr*>(&any);
                    if (EVIO_WINCALL(bind, SOCKET_ERROR, ::bind(sock, a, len)) != 0) {
                        op.error = ::WSAGetLastError();
                        return false;
                    }
                }
                const auto* to = reinterpret_cast<const sockaddr*>(op.addr);
                const int to_len = static_cast<int>(op.addr_len);
                if (EVIO_WINCALL(connect, FALSE,
                                 connect_ex_(sock, to, to_len, nullptr, 0, nullptr, ov))) {
                    if (!skip) return hand_to_kernel(op, s);
                    finish_connect(op, s);
                    return false;
                }
                err = ::WSAGetLastError();
                break;
            }
            }
            if (err == WSA_IO_PENDING) return hand_to_kernel(op, s);
            op.error = failure(op, err);
            return false;
        }
    }

    /// Issues the heads of `t`'s direction `d` until one is held by the kernel; an op that
    /// finishes without a packet resumes here, inline (the slot is looked up again after each
    /// resumption: the coroutine may have closed the token). Over the turn's budget: the rest
    /// waits in the FIFO for the end of the turn.
    void pump(token t, direction d) {
        for (;;) {
            slot* s = core_.table.find(t);
            if (!s) return;
            op_queue& q = s->q(d);
            operation* next = q.head;
            if (!next || next->in_kernel) return;
            if (next->kind == op_kind::accept && s->accept_backoff) return;
            if (!core_.within_budget(*s)) {
                core_.retry_later(t, d);
                return;
            }
            if (issue(*next, *s)) return;
            core_.pop_head(*s, d);
            if (next->kind == op_kind::accept && is_fd_exhaustion(next->error))
                core_.note_accept_exhausted(*s, t);
            next->waiter.resume();
        }
    }

    /// The head op of slot `index` whose OVERLAPPED is `ov`, if that slot has generation
    /// `generation` and ops in the kernel. Generation first: only a live slot's head ops are
    /// looked at, and only by address (never an op of a freed slot).
    operation* match(std::uint32_t index, std::uint32_t generation, OVERLAPPED* ov,
                     int& di) noexcept {
        if (index >= core_.table.capacity()) return nullptr;
        slot& s = core_.table.at(index);
        if (s.state == slot_state::free || s.generation != generation || s.in_flight == 0)
            return nullptr;
        for (int i = 0; i < 2; ++i) {
            operation* head = s.queue[i].head;
            if (head && head->in_kernel && overlapped_of(*head) == ov) {
                di = i;
                return head;
            }
        }
        return nullptr;
    }

    /// True when the registration named by `key` (or the one its alias points to) is live.
    bool key_is_live(ULONG_PTR key) noexcept {
        const auto live = [&](std::uint32_t index, std::uint32_t generation) {
            token t{index, generation, core_.table.owner()};
            return core_.table.find(t) != nullptr;
        };
        if (live(static_cast<std::uint32_t>(key), static_cast<std::uint32_t>(key >> 32)))
            return true;
        const auto it = aliases_.find(key);
        return it != aliases_.end() && live(it->second.index, it->second.generation);
    }

    /// One packet: find its op without touching freed memory, then finish, re-issue or cancel it.
    void dispatch(ULONG_PTR key, OVERLAPPED* ov) {
        auto index = static_cast<std::uint32_t>(key);
        int di = 0;
        operation* found = match(index, static_cast<std::uint32_t>(key >> 32), ov, di);
        if (!found && !aliases_.empty()) { // a re-registered handle still carries its first key
            if (const auto it = aliases_.find(key); it != aliases_.end()) {
                index = it->second.index;
                found = match(index, it->second.generation, ov, di);
            }
        }
        // Contract: a packet for a freed slot (or one that is not the head op the kernel holds)
        // means a buffer was released, or a slot reused, before the kernel was done with it.
        EVIO_CONTRACT(1, "completion.after_free", found != nullptr);
        if (!found) return; // contracts off: drop it, never dereference
        slot& s = core_.table.at(index);
        operation& op = *found;
        const direction d = static_cast<direction>(di);
        op_queue& q = s.q(d);
        op.in_kernel = false;
        --s.in_flight;
        --in_kernel_;

        DWORD n = 0;
        int err = 0;
        if (!::GetOverlappedResult(to_handle(s.handle), ov, &n, FALSE))
            err = static_cast<int>(::GetLastError()); // the packet's NTSTATUS as a Win32 code

        if (core_.destroying) { // reactor destruction: account, release, never resume
            if (op.kind == op_kind::accept)
                close_native(std::exchange(op.accepted, invalid_handle));
            q.pop();
            return;
        }

        if (s.state == slot_state::deregistering) {
            // Step 3: the token is going away; its op resumes once, with operation_canceled,
            // even when its packet says it completed first (CancelIoEx: ERROR_NOT_FOUND). Such a
            // completion is dropped (CONFORMANCE.md case 21); transferred() still counts the
            // bytes the kernel moved, and a connection it accepted is closed.
            if (op.kind == op_kind::accept)
                close_native(std::exchange(op.accepted, invalid_handle));
            if ((op.kind == op_kind::recv || op.kind == op_kind::send) && err == 0) op.done += n;
            op.error = native_cancel_error;
            q.pop();
            --core_.pending_ops;
            if (s.in_flight == 0) core_.table.finish_deregister(index);
            op.waiter.resume();
            return;
        }

        // cancel(): a partial read_exact/write_all or an accept retry is not issued again.
        const bool canceled = op.cancel_requested;
        if (op.polled) { // receive()'s zero-byte read: data (or the end, or an error) is there
            op.polled = false;
            if (err != 0) {
                op.error = failure(op, err);
            } else if (canceled) {
                op.error = native_cancel_error;
            } else {
                // No buffer: no_buffer_space (the data stays in the socket), or the end.
                if (take_buffer(op, to_socket(s.handle)) && issue(op, s)) return; // the read is in the kernel
            }
        } else if (err == 0) {
            switch (op.kind) {
            case op_kind::recv:
            case op_kind::send:
                if (!account(op, n)) { // read_exact/write_all: more to move
                    if (canceled) op.error = native_cancel_error;
                    else if (issue(op, s)) return;
                }
                break;
            case op_kind::accept:
                if (!finish_accept(op, s)) { // retry with a new socket
                    if (canceled) op.error = native_cancel_error;
                    else if (issue(op, s)) return;
                }
                break;
            case op_kind::connect:
                finish_connect(op, s);
                break;
            }
        } else if (op.kind == op_kind::accept) {
            close_native(std::exchange(op.accepted, invalid_handle));
            if (is_per_connection(err) && !canceled) {
                if (issue(op, s)) return; // the client gave up: wait for the next one
            } else {
                op.error = err;
            }
        } else {
            // A failed or cancelled transfer may still have moved bytes: transferred() says so.
            if (op.kind == op_kind::recv || op.kind == op_kind::send) op.done += n;
            op.error = failure(op, err);
        }

        if (op.kind == op_kind::accept && is_fd_exhaustion(op.error))
            core_.note_accept_exhausted(s, op.tok);
        core_.pop_head(s, d);
        const token t = op.tok;
        op.waiter.resume(); // `s` may be dangling from here on
        pump(t, d);         // the next op of this direction, if the coroutine did not start it
    }

    reactor_core& core_;
    HANDLE port_ = nullptr;
    LPFN_ACCEPTEX accept_ex_ = nullptr;
    LPFN_CONNECTEX connect_ex_ = nullptr;
    bool ifs_providers_ = false;
    std::vector<std::uint8_t> flags_; ///< per slot index: flag_skip, flag_peer_fin
    /// The key each handle value was first associated with (the port keeps it until close).
    std::unordered_map<native_handle, ULONG_PTR> first_key_;
    /// First key -> the token now registered for that still-open handle (re-registration).
    std::unordered_map<ULONG_PTR, token> aliases_;
    std::atomic<bool> woken_{false};
    std::size_t in_kernel_ = 0;
    OVERLAPPED_ENTRY entries_[max_entries];
};

static_assert(room<iocp_reactor>);

} // namespace evio::detail

#endif // EVIO_HAS_IOCP
