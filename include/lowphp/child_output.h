// What a worker writes on its captured stdout/stderr (catch_workers_output),
// cut into log lines as php-fpm's master cuts it (fpm_stdio.c + zlog_stream):
// one line per '\n', long text wrapped so that every log line, prefix and
// newline included, fits in log_limit, and the worker's end-of-request marker
// "\0fscf\0" flushing an unterminated line. Pure: the master writes the lines.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace lowphp::log {

// The 6 bytes a worker writes on stderr after each request (FPM_STDIO_CMD_FLUSH
// with its NUL).
constexpr char kFlushMarker[] = "\0fscf";
constexpr size_t kFlushMarkerSize = 6;

class ChildOutput {
  public:
    // `max_payload`: the most text one log line may carry.
    explicit ChildOutput(size_t max_payload) : max_(max_payload ? max_payload : 1) {}
    // New bytes from the pipe; completed line texts are appended to `lines`.
    void feed(const char* data, size_t size, std::vector<std::string>& lines);
    // The pipe closed: everything still held becomes lines.
    void finish(std::vector<std::string>& lines);

  private:
    void text(const char* data, size_t size, std::vector<std::string>& lines);
    void flush(std::vector<std::string>& lines);

    size_t max_;
    std::string line_;     // the current, unterminated line
    std::string held_;     // trailing bytes that may be the start of a marker
    bool wrapped_ = false; // the last line was cut at max_: a '\n' right after ends nothing new
};

// The payload room of one log line: log_limit minus the decorated prefix
// ("[date] WARNING: [pool P] child N said into S: \"") and the closing "\"\n",
// or minus the "\n" alone when the output is not decorated.
size_t child_output_room(size_t log_limit, bool decorated, const std::string& pool, int pid,
                         const std::string& stream);

} // namespace lowphp::log
