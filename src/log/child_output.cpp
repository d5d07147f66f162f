// Worker output into log lines (see child_output.h), checked against php-fpm
// 8.2's own log tests (sapi/fpm/tests/log-*).
#include <cstring>

#include "lowphp/child_output.h"

namespace lowphp::log {

void ChildOutput::feed(const char* data, size_t size, std::vector<std::string>& lines) {
    std::string buf = held_;
    buf.append(data, size);
    held_.clear();
    size_t pos = 0;
    for (;;) {
        size_t at = buf.find(std::string(kFlushMarker, kFlushMarkerSize), pos);
        if (at == std::string::npos) break;
        text(buf.data() + pos, at - pos, lines);
        flush(lines);
        pos = at + kFlushMarkerSize;
    }
    // Keep a tail that could be the first bytes of a marker still in the pipe.
    size_t keep = 0;
    for (size_t n = std::min(kFlushMarkerSize - 1, buf.size() - pos); n > 0; --n)
        if (memcmp(buf.data() + buf.size() - n, kFlushMarker, n) == 0) {
            keep = n;
            break;
        }
    text(buf.data() + pos, buf.size() - pos - keep, lines);
    held_.assign(buf, buf.size() - keep, keep);
}

void ChildOutput::finish(std::vector<std::string>& lines) {
    text(held_.data(), held_.size(), lines);
    held_.clear();
    flush(lines);
}

void ChildOutput::text(const char* data, size_t size, std::vector<std::string>& lines) {
    for (size_t i = 0; i < size; ++i) {
        if (data[i] == '\n') {
            if (!wrapped_ || !line_.empty()) lines.push_back(std::move(line_));
            line_.clear();
            wrapped_ = false;
            continue;
        }
        line_ += data[i];
        wrapped_ = false;
        if (line_.size() >= max_) { // wrap: the rest continues on the next log line
            lines.push_back(std::move(line_));
            line_.clear();
            wrapped_ = true;
        }
    }
}

void ChildOutput::flush(std::vector<std::string>& lines) {
    if (!line_.empty()) lines.push_back(std::move(line_));
    line_.clear();
    wrapped_ = false;
}

size_t child_output_room(size_t log_limit, bool decorated, const std::string& pool, int pid,
                         const std::string& stream) {
    if (!decorated) return log_limit > 1 ? log_limit - 1 : 1;
    // "[23-Nov-2026 09:25:17] " + "WARNING: " + "[pool P] child N said into S: \"" ... "\"\n"
    size_t prefix = 23 + 9 +
                    std::string("[pool " + pool + "] child " + std::to_string(pid) + " said into " +
                                stream + ": \"")
                        .size();
    return log_limit > prefix + 2 ? log_limit - prefix - 2 : 1;
}

} // namespace lowphp::log
