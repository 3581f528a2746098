// SPDX-License-Identifier: MIT
// Raw epoll echo server: one thread, C-style, written for speed; the limit epoll allows.
// Level-triggered EPOLLIN; per readiness event, recv into a shared buffer and send the bytes
// straight back, again while a recv fills the whole buffer (up to 16 times). Only when the
// socket buffer is full are the unsent bytes copied to the
// connection and EPOLLOUT armed; reading that connection pauses until they are out.
//
//   raw_epoll_echo_server [--port N] [--max-reads N]
#include <arpa/inet.h>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

namespace {

constexpr int buf_size = 16384; // the same read size in every server of the benchmark
constexpr int max_fds = 1 << 16;

struct pending { // bytes the socket did not take yet
    char* data;
    int off;
    int len;
};

pending* conns[max_fds];
char buf[buf_size];
int ep;

void drop(int fd) {
    if (conns[fd]) {
        std::free(conns[fd]->data);
        std::free(conns[fd]);
        conns[fd] = nullptr;
    }
    ::close(fd); // also removes it from the epoll set
}

void set_events(int fd, unsigned events) {
    epoll_event ev{};
    ev.events = events;
    ev.data.fd = fd;
    ::epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
}

// Sends data[0..len); keeps what does not fit and switches the socket to EPOLLOUT.
bool send_or_park(int fd, const char* data, int len) {
    int off = 0;
    while (off < len) {
        const ssize_t n = ::send(fd, data + off, static_cast<size_t>(len - off), MSG_NOSIGNAL);
        if (n > 0) {
            off += static_cast<int>(n);
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) {
            pending* p = conns[fd];
            if (!p) {
                p = static_cast<pending*>(std::calloc(1, sizeof(pending)));
                p->data = static_cast<char*>(std::malloc(buf_size));
                conns[fd] = p;
            }
            std::memcpy(p->data, data + off, static_cast<size_t>(len - off));
            p->off = 0;
            p->len = len - off;
            set_events(fd, EPOLLOUT);
            return true;
        }
        return false;
    }
    return true;
}

} // namespace

int main(int argc, char** argv) {
    int port = 0;
    long long reads_left = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!std::strcmp(argv[i], "--port")) port = std::atoi(argv[i + 1]);
        else if (!std::strcmp(argv[i], "--max-reads")) reads_left = std::atoll(argv[i + 1]);
        else {
            std::fprintf(stderr, "usage: raw_epoll_echo_server [--port N] [--max-reads N]\n");
            return 2;
        }
    }
    rlimit rl{};
    ::getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &rl);

    const int lfd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    const int one = 1;
    ::setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(static_cast<uint16_t>(port));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof sa;
    if (::bind(lfd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 || ::listen(lfd, 4096) != 0 ||
        ::getsockname(lfd, reinterpret_cast<sockaddr*>(&sa), &sl) != 0) {
        std::perror("raw_epoll_echo_server: bind/listen");
        return 1;
    }
    std::printf("port %u pid %d backend epoll\n", ntohs(sa.sin_port), static_cast<int>(::getpid()));
    std::fflush(stdout);

    ep = ::epoll_create1(EPOLL_CLOEXEC);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = lfd;
    ::epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);

    epoll_event evs[512];
    for (;;) {
        const int n = ::epoll_wait(ep, evs, 512, -1);
        if (n < 0 && errno != EINTR) return 1;
        for (int i = 0; i < n; ++i) {
            const int fd = evs[i].data.fd;
            if (fd == lfd) {
                for (;;) {
                    const int c = ::accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
                    if (c < 0) break; // EAGAIN, or EMFILE: retried on the next readiness
                    if (c >= max_fds) {
                        ::close(c);
                        continue;
                    }
                    ::setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    epoll_event cev{};
                    cev.events = EPOLLIN;
                    cev.data.fd = c;
                    ::epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev);
                }
                continue;
            }
            pending* p = conns[fd];
            if (p && p->len > 0) { // EPOLLOUT armed: flush, then read again
                const ssize_t w = ::send(fd, p->data + p->off, static_cast<size_t>(p->len), MSG_NOSIGNAL);
                if (w < 0 && errno != EAGAIN && errno != EINTR) {
                    drop(fd);
                    continue;
                }
                if (w > 0) {
                    p->off += static_cast<int>(w);
                    p->len -= static_cast<int>(w);
                }
                if (p->len == 0) set_events(fd, EPOLLIN);
                continue;
            }
            // A full buffer means more may be queued: read on (up to 16 reads per event, then
            // the other sockets' turn; level-triggered, so the rest brings another event).
            for (int k = 0; k < 16; ++k) {
                const ssize_t r = ::recv(fd, buf, buf_size, 0);
                if (r > 0) {
                    if (reads_left > 0 && --reads_left == 0) return 0;
                    if (!send_or_park(fd, buf, static_cast<int>(r))) {
                        drop(fd);
                        break;
                    }
                    if (conns[fd] && conns[fd]->len > 0) break; // parked: EPOLLOUT first
                    if (r < buf_size) break;                     // the receive queue is empty
                    continue;
                }
                if (r == 0 || (errno != EAGAIN && errno != EINTR)) drop(fd);
                break;
            }
        }
    }
}
