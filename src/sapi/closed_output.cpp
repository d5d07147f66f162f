// The arithmetic of php-fpm's fcgi_write() / fcgi_flush() (main/fastcgi.c) on a
// request whose socket is closed; see closed_output.h.
#include "lowphp/closed_output.h"

namespace lowphp::sapi {

bool ClosedOutput::write(Stream stream, size_t len) {
    if (len == 0) return true;
    // A write to the other stream closes the open record: its padding to a
    // multiple of 8 takes buffer space too.
    if (record_open_ && record_stream_ != stream) {
        used_ += (8 - record_len_ % 8) % 8;
        record_open_ = false;
    }
    size_t limit = kBufferSize - used_;
    if (!record_open_) limit = limit > kHeaderSize ? limit - kHeaderSize : 0;
    if (len >= limit) {
        // fcgi_write flushes here; the failed flush empties the buffer.
        reset();
        return false;
    }
    if (!record_open_) {
        used_ += kHeaderSize;
        record_open_ = true;
        record_stream_ = stream;
        record_len_ = 0;
    }
    used_ += len;
    record_len_ += len;
    return true;
}

bool ClosedOutput::flush() {
    reset();
    return false;
}

void ClosedOutput::reset() {
    used_ = record_len_ = 0;
    record_open_ = false;
}

} // namespace lowphp::sapi
