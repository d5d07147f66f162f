// Passing file descriptors over a unix socket (SCM_RIGHTS): the master and the
// workers hand kept-alive connections to each other, the master sends a
// zygote each new worker's descriptors with the command that asks for it.
#pragma once

#include <cstddef>
#include <sys/types.h>

namespace lowphp::net {

// Sends `len` bytes of `data` with `nfds` descriptors in one message; true if
// all of it was queued. `flags` adds to MSG_NOSIGNAL (MSG_DONTWAIT, say).
bool send_with_fds(int sock, const void* data, size_t len, const int* fds, size_t nfds, int flags);
// Receives one message into `data` (up to `len` bytes) and up to `max_fds`
// descriptors (close-on-exec) into `fds`, their count in `nfds` (any beyond
// `max_fds` are closed). Returns recvmsg's result.
ssize_t recv_with_fds(int sock, void* data, size_t len, int* fds, size_t max_fds, size_t& nfds,
                      int flags);

// One descriptor with a one-byte message; false if it could not be queued now.
bool send_fd(int sock, int fd);
// Receives one descriptor, or -1 when none is waiting.
int recv_fd(int sock);

} // namespace lowphp::net
