// SPDX-License-Identifier: MIT
// Raw liburing echo server: one thread, written for speed; the strong io_uring reference.
// Multishot accept, one multishot recv per connection into a ring of provided buffers (16 KiB
// each), the received buffer sent straight back and returned to the ring when the send
// completes. One send in flight per connection (later buffers queue behind it, so bytes stay in
// order). A recv that finds no buffer (-ENOBUFS) is armed again when a send returns one. One
// io_uring_submit_and_wait per loop turn; SINGLE_ISSUER + DEFER_TASKRUN when the kernel has them.
//
//   raw_uring_echo_server [--port N] [--max-reads N] [--buffers N]
//
// --buffers: provided buffers, a power of two (default 1024; the smoke test runs 8 so that recvs
// find none and wait).
#include <liburing.h>

#include <arpa/inet.h>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <vector>

namespace {

constexpr unsigned buf_size = 16384; // the same read size in every server of the benchmark
// Power of two. 1,024 x 16 KiB: a ring of 8,192 (128 MiB, every 64 KiB message of 1000
// connections in flight at once) was 16-21 % slower in the 64 KiB cells: the kernel fills the
// buffers in ring order, so each recv copied into memory that had left the caches long ago.
// When all are in use a multishot recv ends with -ENOBUFS (see `starved`).
unsigned nbufs = 1024;
constexpr int bgid = 0;
constexpr int max_fds = 1 << 16;

enum op : unsigned { op_accept = 1, op_recv = 2, op_send = 3 };

struct conn {
    std::vector<unsigned> queue; // buffer ids waiting to be sent, from head
    std::vector<unsigned> lens;  // their byte counts
    std::size_t head = 0;
    unsigned sent = 0; // bytes of queue[head] already sent
    bool recv_armed = false;
    bool send_inflight = false;
    bool closing = false;
};

io_uring ring;
io_uring_buf_ring* br;
char* bufs;
unsigned returned = 0; // buffers added to the ring since the last advance
conn* conns[max_fds];
std::vector<int> starved; // connections whose multishot recv ended with -ENOBUFS
int lfd;

io_uring_sqe* sqe_get() {
    io_uring_sqe* s = io_uring_get_sqe(&ring);
    while (!s) {
        io_uring_submit(&ring);
        s = io_uring_get_sqe(&ring);
    }
    return s;
}

std::uint64_t tag(op o, int fd) { return (static_cast<std::uint64_t>(o) << 32) | static_cast<unsigned>(fd); }

void arm_accept() {
    io_uring_sqe* s = sqe_get();
    io_uring_prep_multishot_accept(s, lfd, nullptr, nullptr, SOCK_CLOEXEC);
    io_uring_sqe_set_data64(s, tag(op_accept, lfd));
}

void arm_recv(int fd) {
    io_uring_sqe* s = sqe_get();
    io_uring_prep_recv_multishot(s, fd, nullptr, 0, 0);
    s->flags |= IOSQE_BUFFER_SELECT;
    s->buf_group = bgid;
    io_uring_sqe_set_data64(s, tag(op_recv, fd));
    conns[fd]->recv_armed = true;
}

void give_back(unsigned bid) {
    io_uring_buf_ring_add(br, bufs + static_cast<std::size_t>(bid) * buf_size, buf_size,
                          static_cast<unsigned short>(bid), io_uring_buf_ring_mask(nbufs),
                          static_cast<int>(returned));
    ++returned;
}

void send_head(int fd) {
    conn* c = conns[fd];
    const unsigned bid = c->queue[c->head];
    io_uring_sqe* s = sqe_get();
    io_uring_prep_send(s, fd, bufs + static_cast<std::size_t>(bid) * buf_size + c->sent,
                       c->lens[c->head] - c->sent, MSG_NOSIGNAL);
    io_uring_sqe_set_data64(s, tag(op_send, fd));
    c->send_inflight = true;
}

void maybe_close(int fd) {
    conn* c = conns[fd];
    if (!c || !c->closing || c->recv_armed || c->send_inflight) return;
    for (std::size_t i = c->head; i < c->queue.size(); ++i) give_back(c->queue[i]);
    delete c;
    conns[fd] = nullptr;
    ::close(fd);
}

void start_closing(int fd) {
    conn* c = conns[fd];
    if (!c->closing) {
        c->closing = true;
        if (c->recv_armed) ::shutdown(fd, SHUT_RDWR); // ends the multishot recv
    }
    maybe_close(fd);
}

} // namespace

int main(int argc, char** argv) {
    int port = 0;
    long long reads_left = 0;
    bool ok = argc % 2 == 1;
    for (int i = 1; ok && i + 1 < argc; i += 2) {
        if (!std::strcmp(argv[i], "--port")) port = std::atoi(argv[i + 1]);
        else if (!std::strcmp(argv[i], "--max-reads")) reads_left = std::atoll(argv[i + 1]);
        else if (!std::strcmp(argv[i], "--buffers")) nbufs = static_cast<unsigned>(std::atoi(argv[i + 1]));
        else ok = false;
    }
    if (!ok || nbufs < 1 || nbufs > 32768 || (nbufs & (nbufs - 1)) != 0) {
        std::fprintf(stderr, "usage: raw_uring_echo_server [--port N] [--max-reads N] [--buffers 2^k <= 32768]\n");
        return 2;
    }
    rlimit rl{};
    ::getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &rl);

    io_uring_params p{};
    p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
    if (io_uring_queue_init_params(4096, &ring, &p) < 0) {
        p = io_uring_params{};
        p.flags = IORING_SETUP_COOP_TASKRUN;
        if (io_uring_queue_init_params(4096, &ring, &p) < 0) {
            p = io_uring_params{};
            if (int e = io_uring_queue_init_params(4096, &ring, &p); e < 0) {
                std::fprintf(stderr, "raw_uring_echo_server: io_uring_setup: %s\n", std::strerror(-e));
                return 1;
            }
        }
    }

    // The provided-buffer ring (liburing 2.3 has no io_uring_setup_buf_ring yet).
    void* mem = nullptr;
    if (::posix_memalign(&mem, 4096, nbufs * sizeof(io_uring_buf)) != 0 ||
        ::posix_memalign(reinterpret_cast<void**>(&bufs), 4096, static_cast<std::size_t>(nbufs) * buf_size) != 0)
        return 1;
    // Touch every buffer now: a first write by the kernel into a page that is not mapped yet
    // cannot happen inline and is punted to an io-wq worker (0.2 ms per message for a while).
    std::memset(bufs, 0, static_cast<std::size_t>(nbufs) * buf_size);
    br = static_cast<io_uring_buf_ring*>(mem);
    io_uring_buf_ring_init(br);
    io_uring_buf_reg reg{};
    reg.ring_addr = reinterpret_cast<std::uint64_t>(br);
    reg.ring_entries = nbufs;
    reg.bgid = bgid;
    if (int e = io_uring_register_buf_ring(&ring, &reg, 0); e < 0) {
        std::fprintf(stderr, "raw_uring_echo_server: register_buf_ring: %s\n", std::strerror(-e));
        return 1;
    }
    for (unsigned b = 0; b < nbufs; ++b) give_back(b);
    io_uring_buf_ring_advance(br, static_cast<int>(returned));
    returned = 0;

    lfd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const int one = 1;
    ::setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(static_cast<uint16_t>(port));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof sa;
    if (::bind(lfd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 || ::listen(lfd, 4096) != 0 ||
        ::getsockname(lfd, reinterpret_cast<sockaddr*>(&sa), &sl) != 0) {
        std::perror("raw_uring_echo_server: bind/listen");
        return 1;
    }
    std::printf("port %u pid %d backend io_uring\n", ntohs(sa.sin_port), static_cast<int>(::getpid()));
    std::fflush(stdout);
    arm_accept();

    for (;;) {
        const int e = io_uring_submit_and_wait(&ring, 1);
        if (e < 0 && e != -EINTR && e != -EAGAIN && e != -EBUSY) {
            std::fprintf(stderr, "raw_uring_echo_server: submit_and_wait: %s\n", std::strerror(-e));
            return 1;
        }
        unsigned head = 0, seen = 0;
        io_uring_cqe* cqe;
        io_uring_for_each_cqe(&ring, head, cqe) {
            ++seen;
            const std::uint64_t ud = io_uring_cqe_get_data64(cqe);
            const int fd = static_cast<int>(ud & 0xffffffffu);
            const int res = cqe->res;
            const bool more = cqe->flags & IORING_CQE_F_MORE;
            switch (static_cast<op>(ud >> 32)) {
            case op_accept:
                if (res >= 0) {
                    if (res >= max_fds) {
                        ::close(res);
                    } else {
                        ::setsockopt(res, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                        conns[res] = new conn;
                        arm_recv(res);
                    }
                }
                if (!more) arm_accept();
                break;
            case op_recv: {
                conn* c = conns[fd];
                if (!more) c->recv_armed = false;
                if (res > 0) {
                    const unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
                    if (reads_left > 0 && --reads_left == 0) return 0;
                    if (c->closing) {
                        give_back(bid);
                    } else {
                        c->queue.push_back(bid);
                        c->lens.push_back(static_cast<unsigned>(res));
                        if (!c->send_inflight) send_head(fd);
                    }
                    if (!more && !c->closing) arm_recv(fd); // ran out of buffers or similar
                } else if (res == -ENOBUFS && !c->closing) {
                    starved.push_back(fd); // armed again when a send gives a buffer back
                } else {
                    start_closing(fd); // end of stream or error
                }
                if (conns[fd] && conns[fd]->closing) maybe_close(fd);
                break;
            }
            case op_send: {
                conn* c = conns[fd];
                c->send_inflight = false;
                if (res < 0) {
                    start_closing(fd);
                    break;
                }
                c->sent += static_cast<unsigned>(res);
                if (c->sent == c->lens[c->head]) {
                    give_back(c->queue[c->head]);
                    if (!starved.empty()) {
                        const int f = starved.back();
                        starved.pop_back();
                        if (conns[f] && !conns[f]->closing && !conns[f]->recv_armed) arm_recv(f);
                    }
                    c->sent = 0;
                    if (++c->head == c->queue.size()) {
                        c->queue.clear();
                        c->lens.clear();
                        c->head = 0;
                    }
                }
                if (c->head < c->queue.size() && !c->closing) send_head(fd);
                if (conns[fd] && conns[fd]->closing) maybe_close(fd);
                break;
            }
            }
        }
        io_uring_cq_advance(&ring, seen);
        if (returned) {
            io_uring_buf_ring_advance(br, static_cast<int>(returned));
            returned = 0;
        }
    }
}
