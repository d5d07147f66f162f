// FastCGI as php-fpm 8.2 speaks it (main/fastcgi.c): a worker reads one
// request's BEGIN_REQUEST, PARAMS and STDIN from a connection and answers with
// STDOUT / STDERR records and an END_REQUEST, in as few writes as it can.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace lowphp::fastcgi {

enum RecordType : uint8_t {
    kBeginRequest = 1,
    kAbortRequest = 2,
    kEndRequest = 3,
    kParams = 4,
    kStdin = 5,
    kStdout = 6,
    kStderr = 7,
    kGetValues = 9,
    kGetValuesResult = 10,
};

constexpr size_t kHeaderSize = 8;
// php-fpm's FCGI_MAX_LENGTH: content + padding of a record it accepts.
constexpr size_t kMaxRecord = 0xffff;
// php-fpm cuts long output into records of this size (a multiple of 8: no padding).
constexpr size_t kMaxOutputRecord = 0xfff8;

struct Header {
    uint8_t version = 0;
    uint8_t type = 0;
    uint16_t request_id = 0;
    uint16_t content_length = 0;
    uint8_t padding = 0;
};

Header parse_header(const unsigned char* p);
void put_header(unsigned char* p, uint8_t type, uint16_t request_id, uint16_t content_length,
                uint8_t padding);

using Param = std::pair<std::string_view, std::string_view>;

// Decodes a name-value pair stream (PARAMS, GET_VALUES). Each pair is copied to
// `arena` as "name\0value\0", so names and values in `out` are NUL-terminated
// (PHP reads them as C strings). False when a length runs past the end.
bool decode_params(std::string_view stream, std::string& arena, std::vector<Param>& out);
void encode_param(std::string& out, std::string_view name, std::string_view value);

// What the bytes at the start of a connection hold of its next request:
// nothing yet, a request begun but not all there (its params, or its body up to
// `body_bound` bytes or CONTENT_LENGTH), or enough to serve it without waiting
// on the client. Malformed input is Ready: reading it refuses it at once.
// `scratch` holds the params while they are judged.
enum class Arrival { Nothing, Partial, Ready };
// `scratch` holds the params stream seen (whole pairs or not) afterwards.
Arrival request_arrival(std::string_view bytes, size_t body_bound, std::string& scratch);
// A param's value in a params stream (the last one if repeated).
std::optional<std::string_view> find_param(std::string_view params, std::string_view name);

// Records waiting to be written. Stream data extends the record still open
// when it has the same type, so many small echoes make one record, as
// php-fpm's output buffer does.
class OutputBuffer {
  public:
    void append(uint8_t type, uint16_t request_id, const char* data, size_t len);
    // A closed record's header alone: its `len` bytes of content are written
    // after the buffer, straight from the caller's memory.
    void append_header(uint8_t type, uint16_t request_id, uint16_t len);
    bool record_open() const { return open_type_ != 0; }
    uint8_t open_type() const { return open_type_; }
    // Pads the open record and writes its header.
    void close_record();
    // Closes the open record and adds END_REQUEST (appStatus 0, REQUEST_COMPLETE).
    void end_request(uint16_t request_id);
    // Everything to write (closes the open record).
    std::string_view bytes();
    size_t size() const { return buf_.size(); }
    void reserve(size_t n) { buf_.reserve(n); }
    void clear();

  private:
    std::string buf_;
    size_t open_ = 0; // offset of the open record's header, when open_type_ != 0
    uint8_t open_type_ = 0;
    uint16_t open_id_ = 0;
};

struct Request {
    uint16_t id = 0;
    bool keep_connection = false; // FCGI_KEEP_CONN
    const char* role = "RESPONDER";
    std::vector<Param> params; // in arrival order, views into `arena`
    std::string arena;
};

// One blocking connection to the web server. The worker keeps one object and
// attaches it to each connection it serves, so its buffers are allocated once.
class Connection {
  public:
    // php-fpm's output buffer (fcgi_request.out_buf): output leaves when
    // php-fpm's would (fcgi_write's arithmetic), in the same records, so a
    // script's output streams to the client as it does under php-fpm.
    static constexpr size_t kOutputBuffer = 8192;

    Connection();
    // Serve `fd` (closing nothing: the worker owns the fd until close()).
    void attach(int fd, bool tcp);
    int fd() const { return fd_; }
    // Bytes of a next request already read from the socket.
    bool has_input() const { return end_ > pos_; }

    enum class Next {
        Request, // `req` holds it; its body follows through read_stdin()
        Idle,    // nothing more to read now (keep the connection, wait for it)
        Closed,  // the peer closed, or sent something else than a request
    };
    // Reads the next request, answering FCGI_GET_VALUES on the way. Only the
    // first byte is waited for without blocking; a request begun is read
    // whole. On Closed, php-fpm closes the connection without a word.
    Next read_request(Request& req);
    // What has arrived of the next request, peeked from the socket (nothing
    // is consumed, so the connection can still go elsewhere). A request
    // larger than a peek, or whose client has shut down its side, is Ready:
    // read as it comes. peeked() is how many bytes were seen.
    Arrival arrival(size_t body_bound);
    size_t peeked() const { return peeked_; }
    // A param of the request arrival() peeked at (its params as far as seen).
    std::optional<std::string_view> peeked_param(std::string_view name) const {
        if (peeked_ == 0) return std::nullopt;
        return find_param(arrival_scratch_, name);
    }
    // Wait up to `timeout_ms` for bytes to read (a web server writes its
    // request right after connecting). False on timeout.
    bool wait_readable(int timeout_ms) const;
    // The request body from STDIN records; 0 at its end. A record of another
    // type ends it too, and then the connection is not kept (php-fpm).
    size_t read_stdin(char* buf, size_t len);
    bool stdin_ended() const { return stdin_ended_; }

    // fcgi_write(): buffered while it fits; false once the peer is gone (the
    // connection is then not kept).
    bool write(uint8_t type, const char* data, size_t len);
    // fcgi_flush(): what is buffered goes out; with nothing buffered, an empty
    // write still tells whether the peer is gone (PHP's flush() aborts then).
    bool flush();
    // What is left and the END_REQUEST, in one write.
    bool end_request();
    // The request is answered: END_REQUEST, then the connection closes unless
    // the web server keeps it. Closing lingers only while input is unread: the
    // body's end record can arrive after PHP read CONTENT_LENGTH bytes, and
    // closing on it resets the connection (TCP and unix socket alike), so nginx,
    // reading on after END_REQUEST, drops the response body it holds; once
    // STDIN's end was seen there is nothing left to read and no round trip to
    // wait. Returns whether the connection stays open.
    bool finish();

    // A request whose PARAMS stream grows past `bytes` is not read: the
    // connection closes (0: no limit). params_over_limit() tells it was that.
    void set_params_limit(size_t bytes) { params_limit_ = bytes; }
    bool params_over_limit() const { return params_over_limit_; }
    // Between requests: buffers a huge request grew go back to the system.
    // True when something was freed.
    bool release_large_buffers(Request& req);

    bool keep() const { return keep_; }
    void set_keep(bool keep) { keep_ = keep; }
    // Close. `linger`: first shut down our side and wait (up to 2 s) for the
    // peer to close, so unread input cannot turn into a TCP reset that cuts
    // the answer (php-fpm always lingers when it closes a served connection).
    void close(bool linger);
    // The fd leaves this object (handed to another process); -1 if not free
    // to go: a body still unread, or a next request already in our buffer.
    int release();

  private:
    bool ensure(size_t n);  // at least n unread bytes in the buffer (blocking)
    int fill_nonblocking(); // > 0 bytes read, 0 peer closed, -1 nothing yet
    void note_stdin_end();  // consume a buffered empty STDIN record
    void take_stdin_end();  // the same, after reading what has arrived
    void consume(size_t n) { pos_ += n; }
    const unsigned char* at() const { return in_.get() + pos_; }
    bool read_params(Request& req);
    bool answer_get_values(const Header& h);
    // The buffer, then `len` bytes of `data`, in one sendmsg; the buffer empties.
    bool send_buffer_and(const char* data, size_t len);
    bool write_large(uint8_t type, const char* data, size_t len);

    int fd_ = -1;
    bool tcp_ = false, nodelay_ = false;
    // A whole record (header, 64 KB content, padding) fits, with room to read
    // ahead. Left uninitialised: only the pages a request fills become resident.
    static constexpr size_t kInputBuffer = 80 * 1024;
    // What one read asks for beyond what is needed: a request's records
    // usually, not a large body (that goes straight to PHP's buffer).
    static constexpr size_t kReadAhead = 16 * 1024;
    std::unique_ptr<unsigned char[]> in_;
    size_t pos_ = 0, end_ = 0;
    std::string params_; // the PARAMS stream of the request being read
    size_t params_limit_ = 0;
    size_t peeked_ = 0;
    std::string arrival_scratch_; // the params arrival() judges
    // arrival() judges at most this much: below a socket's smallest receive
    // buffer, so a request larger than that cannot wait for ever.
    static constexpr size_t kPeekLimit = 32 * 1024;
    bool params_over_limit_ = false;
    uint16_t id_ = 0;
    bool keep_ = false;
    size_t stdin_left_ = 0; // content bytes left in the current STDIN record
    uint8_t stdin_padding_ = 0;
    bool stdin_ended_ = true;
    bool broken_ = false; // a write failed
    OutputBuffer out_;
};

} // namespace lowphp::fastcgi
