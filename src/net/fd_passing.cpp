// SCM_RIGHTS, the one encoder for every descriptor that travels. A one-byte
// payload on SOCK_SEQPACKET keeps each kept-alive connection its own message,
// so several readers can share one socket.
#include <cerrno>
#include <cstring>
#include <sys/socket.h>
#include <unistd.h>

#include "lowphp/fd_passing.h"

namespace lowphp::net {
namespace {

constexpr size_t kMaxFds = 8; // more than any message carries

} // namespace

bool send_with_fds(int sock, const void* data, size_t len, const int* fds, size_t nfds, int flags) {
    if (nfds > kMaxFds) return false;
    struct iovec iov = {const_cast<void*>(data), len};
    struct msghdr msg {};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFds)];
    if (nfds > 0) {
        msg.msg_control = control;
        msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
        struct cmsghdr* c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
        memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
    }
    ssize_t n;
    do
        n = sendmsg(sock, &msg, MSG_NOSIGNAL | flags);
    while (n < 0 && errno == EINTR);
    return n == static_cast<ssize_t>(len);
}

ssize_t recv_with_fds(int sock, void* data, size_t len, int* fds, size_t max_fds, size_t& nfds,
                      int flags) {
    nfds = 0;
    struct iovec iov = {data, len};
    struct msghdr msg {};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFds)];
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t n;
    do
        n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC | flags);
    while (n < 0 && errno == EINTR);
    if (n < 0) return n;
    for (struct cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < count; ++i) {
            int fd;
            memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
            if (nfds < max_fds)
                fds[nfds++] = fd;
            else
                close(fd); // nobody expects it: not leaked
        }
    }
    return n;
}

bool send_fd(int sock, int fd) {
    char byte = 0;
    return send_with_fds(sock, &byte, 1, &fd, 1, MSG_DONTWAIT);
}

int recv_fd(int sock) {
    char byte;
    int fd = -1;
    size_t nfds;
    if (recv_with_fds(sock, &byte, 1, &fd, 1, nfds, MSG_DONTWAIT) != 1 || nfds != 1) {
        if (nfds == 1) close(fd);
        return -1;
    }
    return fd;
}

} // namespace lowphp::net
