// Passing one file descriptor over a unix socket (SCM_RIGHTS), as the master and
// the workers hand kept-alive connections to each other.
#pragma once

namespace lowphp::net {

// Sends `fd` with a one-byte message; false if it could not be queued now.
bool send_fd(int sock, int fd);
// Receives one descriptor (close-on-exec), or -1 when none is waiting.
int recv_fd(int sock);

} // namespace lowphp::net
