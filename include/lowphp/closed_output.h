// Output after fastcgi_finish_request() closed the connection, as php-fpm's
// FastCGI layer treats it: fcgi_write() still copies each write into the
// request's 8 KB output buffer and reports success while it fits; the first
// write that does not fit, and any flush, must reach the socket, which is gone,
// so they fail and PHP sees an aborted connection (the script stops unless
// ignore_user_abort is set). A script may therefore keep running and echo a
// little after the answer went out, and only a large amount of output, or a
// flush(), ends it.
#pragma once

#include <cstddef>

namespace lowphp::sapi {

class ClosedOutput {
  public:
    enum class Stream { Stdout, Stderr };

    // One fcgi_write() of `len` bytes: false where php-fpm's would fail.
    bool write(Stream stream, size_t len);
    // fcgi_flush(): always fails once the connection is closed.
    bool flush();

  private:
    void reset();

    static constexpr size_t kBufferSize = 8192; // fcgi_request.out_buf
    static constexpr size_t kHeaderSize = 8;    // one FastCGI record header
    size_t used_ = 0;                           // bytes in the buffer, headers included
    size_t record_len_ = 0;                     // content of the open record
    bool record_open_ = false;
    Stream record_stream_ = Stream::Stdout;
};

} // namespace lowphp::sapi
