// Redis through hiredis 0.14 (RESP2), non-blocking: hiredis formats commands
// and parses replies; the socket I/O is ours (send with MSG_NOSIGNAL, reads
// until EAGAIN). Commands pipeline: everything submitted is written in one go
// and the replies settle the ops in order.
//
// Limits of hiredis 0.14: it aborts on out-of-memory, resolves host names with
// a blocking getaddrinfo(), and refuses replies nested deeper than 7 arrays (a
// protocol error: the connection is lost).
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fcntl.h>
#include <initializer_list>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string_view>
#include <sys/socket.h>
#include <vector>

#include "link.h"

// hiredis 0.14's sds.h (sdsrange) lacks the extern "C" its other headers have.
extern "C" {
#include <hiredis/hiredis.h>
}

namespace lowphp::backends {
namespace {

struct ContextFree {
    void operator()(redisContext* c) const { redisFree(c); } // also closes the fd, says nothing
};
using ContextPtr = std::unique_ptr<redisContext, ContextFree>;
struct ReplyFree {
    void operator()(redisReply* r) const { freeReplyObject(r); }
};
using ReplyPtr = std::unique_ptr<redisReply, ReplyFree>;

constexpr size_t kReadChunk = 16384;
// Past this much read in one advance() the loop polls again, so one huge
// reply does not keep the worker from the other connections.
constexpr size_t kMaxReadPerAdvance = 4 * 1024 * 1024;

std::string upper(std::string_view s) {
    std::string out(s);
    for (char& c : out)
        if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    return out;
}

// "WRONGTYPE Operation against..." → "WRONGTYPE": the error's code, as the
// sqlstate of a failed op.
std::string first_word(std::string_view text) {
    std::string_view word = text.substr(0, text.find(' '));
    return word.empty() ? "ERR" : std::string(word);
}

// CLIENT SETNAME refuses spaces and anything outside '!'..'~'.
std::string client_name_safe(std::string name) {
    for (char& c : name)
        if (c < '!' || c > '~') c = '-';
    return name;
}

bool parse_long(const std::string& text, long min, long max, long& out) {
    if (text.empty()) return false;
    char* end = nullptr;
    errno = 0;
    long v = std::strtol(text.c_str(), &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max) return false;
    out = v;
    return true;
}

// INFO server's "redis_version:7.0.15" as 700 (major * 100 + minor); 0 if absent.
int parse_version(std::string_view info) {
    constexpr std::string_view key = "redis_version:";
    size_t at = info.find(key);
    if (at == std::string_view::npos) return 0;
    const char* p = info.data() + at + key.size();
    char* end = nullptr;
    long major = std::strtol(p, &end, 10);
    long minor = *end == '.' ? std::strtol(end + 1, nullptr, 10) : 0;
    return static_cast<int>(major * 100 + minor);
}

// Commands that would leave the connection in a state the next request cannot
// use (a subscription, a replication stream, no replies, a closed or RESP3
// connection), or that would run our own reset out of turn. "" if allowed,
// else the command's name.
std::string refused(const std::vector<std::string>& args) {
    static const char* const kRefused[] = {"SUBSCRIBE", "PSUBSCRIBE", "SSUBSCRIBE",
                                           "MONITOR",   "SYNC",       "PSYNC",
                                           "QUIT",      "RESET",      "HELLO"};
    std::string cmd = upper(args[0]);
    for (const char* r : kRefused)
        if (cmd == r) return cmd;
    if (cmd == "CLIENT" && args.size() > 1 && upper(args[1]) == "REPLY") return "CLIENT REPLY";
    return "";
}

// The first error reply in `r` or the arrays inside it (EXEC's elements), or null.
const redisReply* find_error(const redisReply* r) {
    if (r->type == REDIS_REPLY_ERROR) return r;
    if (r->type != REDIS_REPLY_ARRAY) return nullptr;
    for (size_t i = 0; i < r->elements; ++i)
        if (const redisReply* e = find_error(r->element[i])) return e;
    return nullptr;
}

// A reply without errors as PHP sees it (emalloc'd: memory_limit counts it).
void reply_value(const redisReply* r, zval* out) {
    switch (r->type) {
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
        ZVAL_STRINGL(out, r->str, r->len);
        return;
    case REDIS_REPLY_INTEGER:
        ZVAL_LONG(out, static_cast<zend_long>(r->integer));
        return;
    case REDIS_REPLY_ARRAY:
        array_init_size(out, static_cast<uint32_t>(r->elements));
        for (size_t i = 0; i < r->elements; ++i) {
            zval v;
            reply_value(r->element[i], &v);
            add_next_index_zval(out, &v);
        }
        return;
    default: // REDIS_REPLY_NIL: a nil bulk string, and a nil array (EXEC after a WATCH fired)
        ZVAL_NULL(out);
    }
}

// What the configuration says, read at each connect (password_env may change).
struct Settings {
    std::string host = "127.0.0.1", socket, user, password, client_name, where;
    long port = 6379, db = 0;
    uint64_t connect_timeout_ms = 5000;
};

bool has_option(const config::BackendConfig& b, const std::string& key) {
    for (const auto& kv : b.options)
        if (kv.first == key) return true;
    return false;
}

// "" or what is wrong.
std::string read_settings(const config::BackendConfig& b, const std::string& pool, Settings& s) {
    s.host = b.option("host", s.host);
    s.socket = b.option("socket");
    s.user = b.option("user");
    if (!parse_long(b.option("port", "6379"), 1, 65535, s.port))
        return "port '" + b.option("port") + "' is not a port number";
    if (!parse_long(b.option("db", "0"), 0, 1L << 30, s.db))
        return "db '" + b.option("db") + "' is not a database number";
    char* end = nullptr;
    std::string timeout = b.option("connect_timeout", "5");
    double seconds = std::strtod(timeout.c_str(), &end);
    if (timeout.empty() || *end != '\0' || !(seconds > 0) || seconds > 86400)
        return "connect_timeout '" + timeout + "' is not a number of seconds";
    s.connect_timeout_ms = static_cast<uint64_t>(seconds * 1000);
    if (has_option(b, "password")) {
        s.password = b.option("password");
    } else if (has_option(b, "password_env")) {
        std::string var = b.option("password_env");
        const char* value = std::getenv(var.c_str());
        if (!value) return "password_env: " + var + " is not set";
        s.password = value;
    }
    s.client_name = client_name_safe(b.option("client_name", "lowphp-fpm pool " + pool));
    s.where = s.socket.empty() ? s.host + ":" + std::to_string(s.port) : s.socket;
    return "";
}

class RedisLink final : public Link {
  public:
    RedisLink(const config::BackendConfig& b, const std::string& pool)
        : cfg_(b), pool_(pool), label_("[redis " + b.name + "] ") {}

    bool start_connect() override {
        if (std::string why = read_settings(cfg_, pool_, s_); !why.empty())
            return fail_connect("ERR", why);
        ctx_.reset(s_.socket.empty()
                       ? redisConnectNonBlock(s_.host.c_str(), static_cast<int>(s_.port))
                       : redisConnectUnixNonBlock(s_.socket.c_str()));
        if (!ctx_) return fail_connect("ERR", "connect to " + s_.where + ": out of memory");
        if (ctx_->err) return fail_connect("ERR", "connect to " + s_.where + ": " + ctx_->errstr);
        configure_socket();
        phase_ = Phase::Connecting;
        deadline_ = mono_ms() + s_.connect_timeout_ms;
        return true;
    }

    void submit(Op* op) override {
        if (op->kind != Op::Kind::Command || op->args.empty())
            return op->fail("ERR", label_ + "only commands run on a redis backend");
        if (std::string cmd = refused(op->args); !cmd.empty())
            return op->fail("ERR", label_ + cmd + " is not allowed on a pooled connection");
        if (phase_ == Phase::Broken) return op->fail("ERR", label_ + error_);
        if (phase_ == Phase::Ready) return send(op);
        queued_.push_back(op); // runs once the handshake is through
    }

    bool busy() const override {
        return phase_ == Phase::Connecting || phase_ == Phase::Handshake ||
               (phase_ == Phase::Ready && !pending_.empty());
    }

    Wait wait() const override {
        Wait w;
        w.fd = ctx_ ? ctx_->fd : -1;
        if (phase_ == Phase::Connecting) {
            w.events = POLLOUT;
        } else {
            w.events = static_cast<short>(POLLIN | (output_pending() ? POLLOUT : 0));
        }
        // The handshake too: a server that accepts but never answers must not hang us.
        if (phase_ == Phase::Connecting || phase_ == Phase::Handshake) w.deadline_ms = deadline_;
        return w;
    }

    void advance(short revents) override {
        if (phase_ == Phase::Connecting && !finish_connect(revents)) return;
        if (phase_ != Phase::Handshake && phase_ != Phase::Ready) return;
        pump(revents);
        if (phase_ == Phase::Handshake && mono_ms() >= deadline_)
            fail_connect("ERR",
                         "connect to " + s_.where + " timed out waiting for the server's replies");
    }

    bool ready() const override { return phase_ == Phase::Ready; }
    bool broken() const override { return phase_ == Phase::Broken; }
    std::string error() const override { return error_; }
    bool in_transaction() const override { return phase_ == Phase::Ready && in_multi_; }

    void start_reset() override {
        if (phase_ != Phase::Ready || !used_) return; // nothing ran: nothing to undo
        if (version_ >= 602) {
            // RESET: logs out, db 0, no MULTI, no WATCH, no name, no tracking.
            append(Expect::Reset, {"RESET"});
            send_login(Expect::Reset);
        } else {
            send_old_reset();
        }
        in_multi_ = db_changed_ = watched_ = name_changed_ = tracking_ = auth_used_ = used_ = false;
        flush(); // not waited for: the next lease reads the replies
    }

    // Redis sends nothing unsolicited to an idle RESP2 client: anything
    // readable is the server closing (timeout, CLIENT KILL, shutdown).
    bool alive() override {
        if (phase_ != Phase::Ready) return phase_ != Phase::Broken;
        if (!pending_.empty()) return true; // replies due: readable says nothing
        struct pollfd p {
            ctx_->fd, POLLIN | POLLRDHUP, 0
        };
        int n = poll(&p, 1, 0);
        if (n == 0 || (n < 0 && errno == EINTR)) return true;
        lose("the server closed the connection");
        return false;
    }

    // Their replies still come: read and dropped in turn.
    void abandon() override {
        for (Pending& p : pending_)
            p.op = nullptr;
        queued_.clear(); // never sent: nothing to read for them
    }

    void close(bool graceful) override {
        if (graceful && phase_ == Phase::Ready && ctx_ && !output_pending()) {
            static constexpr char kQuit[] = "*1\r\n$4\r\nQUIT\r\n";
            // Best effort: a full socket buffer or a dead peer just loses the goodbye.
            [[maybe_unused]] ssize_t n =
                ::send(ctx_->fd, kQuit, sizeof kQuit - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
        }
        // The owner may be gone: forget the ops without touching them.
        pending_.clear();
        queued_.clear();
        ctx_.reset();
        phase_ = Phase::Broken;
        error_ = "closed";
    }

  private:
    enum class Phase { Idle, Connecting, Handshake, Ready, Broken };
    // What the next reply answers.
    enum class Expect { Op, Handshake, Info, Reset };
    // Commands whose reply changes what in_transaction() says.
    enum class Track { None, Multi, EndMulti };
    struct Pending {
        Expect expect;
        Op* op = nullptr; // Expect::Op; null once abandoned
        Track track = Track::None;
    };

    void configure_socket() {
        int fd = ctx_->fd, on = 1;
        fcntl(fd, F_SETFD, fcntl(fd, F_GETFD) | FD_CLOEXEC); // not into CGI children
        setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
        // Pipelined small writes must not wait for the server's delayed ACK.
        if (s_.socket.empty()) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    }

    // The non-blocking connect ends when the socket turns writable.
    bool finish_connect(short revents) {
        if (!(revents & (POLLOUT | POLLERR | POLLHUP))) {
            if (mono_ms() >= deadline_)
                fail_connect("ERR", "connect to " + s_.where + " timed out");
            return false;
        }
        int err = 0;
        socklen_t len = sizeof err;
        if (getsockopt(ctx_->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
        if (err != 0) {
            fail_connect("ERR", "connect to " + s_.where + ": " + std::strerror(err));
            return false;
        }
        start_handshake();
        return true;
    }

    // One write: who we are, which db, our name, and the server's version
    // (which reset it understands). Ops wait for these replies: a failed
    // SELECT must not let them run in db 0.
    void start_handshake() {
        phase_ = Phase::Handshake;
        send_login(Expect::Handshake);
        append(Expect::Info, {"INFO", "server"});
    }

    // [AUTH [user] password] [SELECT db] CLIENT SETNAME name
    void send_login(Expect expect) {
        if (!s_.user.empty())
            append(expect, {"AUTH", s_.user, s_.password});
        else if (!s_.password.empty())
            append(expect, {"AUTH", s_.password});
        if (s_.db != 0) append(expect, {"SELECT", std::to_string(s_.db)});
        append(expect, {"CLIENT", "SETNAME", s_.client_name});
    }

    // Before RESET (6.2): undo what the request did, command by command. A
    // CLIENT TRACKING or AUTH of the request's own is undone as far as it can.
    void send_old_reset() {
        if (in_multi_) append(Expect::Reset, {"DISCARD"});
        if (watched_) append(Expect::Reset, {"UNWATCH"});
        if (tracking_) append(Expect::Reset, {"CLIENT", "TRACKING", "off"});
        if (auth_used_ && !s_.password.empty()) {
            if (!s_.user.empty())
                append(Expect::Reset, {"AUTH", s_.user, s_.password});
            else
                append(Expect::Reset, {"AUTH", s_.password});
        }
        if (db_changed_) append(Expect::Reset, {"SELECT", std::to_string(s_.db)});
        if (name_changed_) append(Expect::Reset, {"CLIENT", "SETNAME", s_.client_name});
    }

    void append(Expect expect, std::initializer_list<std::string_view> args, Op* op = nullptr,
                Track track = Track::None) {
        std::vector<const char*> argv;
        std::vector<size_t> lens;
        for (std::string_view a : args) {
            argv.push_back(a.data());
            lens.push_back(a.size());
        }
        append_argv(expect, argv, lens, op, track);
    }

    void append_argv(Expect expect, const std::vector<const char*>& argv,
                     const std::vector<size_t>& lens, Op* op, Track track) {
        if (!ctx_) { // lost while appending a batch
            if (op) op->fail("ERR", label_ + error_);
            return;
        }
        if (redisAppendCommandArgv(ctx_.get(), static_cast<int>(argv.size()),
                                   const_cast<const char**>(argv.data()), lens.data()) != REDIS_OK)
            return lose(std::string("formatting a command: ") + ctx_->errstr);
        pending_.push_back({expect, op, track});
    }

    // Appended now, written by the next advance(): ops submitted together go
    // out in one write.
    void send(Op* op) {
        std::vector<const char*> argv;
        std::vector<size_t> lens;
        for (const std::string& a : op->args) {
            argv.push_back(a.data());
            lens.push_back(a.size());
        }
        used_ = true;
        append_argv(Expect::Op, argv, lens, op, note_command(op->args));
    }

    // What the reset will have to undo. MULTI's state follows the replies
    // (a refused MULTI opens nothing); the rest is noted when sent.
    Track note_command(const std::vector<std::string>& args) {
        std::string cmd = upper(args[0]);
        std::string sub = args.size() > 1 ? upper(args[1]) : "";
        if (cmd == "SELECT") db_changed_ = true;
        if (cmd == "WATCH") watched_ = true;
        if (cmd == "AUTH") auth_used_ = true;
        if (cmd == "CLIENT" && sub == "SETNAME") name_changed_ = true;
        if (cmd == "CLIENT" && sub == "TRACKING") tracking_ = true;
        if (cmd == "MULTI") return Track::Multi;
        if (cmd == "EXEC" || cmd == "DISCARD") return Track::EndMulti;
        return Track::None;
    }

    bool output_pending() const { return ctx_ && sdslen(ctx_->obuf) > 0; }

    // Writes what hiredis formatted, until done or the socket is full.
    bool flush() {
        while (output_pending()) {
            ssize_t n = ::send(ctx_->fd, ctx_->obuf, sdslen(ctx_->obuf), MSG_NOSIGNAL);
            if (n > 0) {
                sdsrange(ctx_->obuf, static_cast<int>(n), -1);
            } else if (n < 0 && errno == EINTR) {
                continue;
            } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                return true;
            } else {
                lose(std::string("write: ") + std::strerror(n < 0 ? errno : EPIPE));
                return false;
            }
        }
        return true;
    }

    // Feeds hiredis's reader until the socket is drained. "" or why the
    // connection ended (the replies before the end still count).
    std::string fill() {
        char buf[kReadChunk];
        for (size_t total = 0; total < kMaxReadPerAdvance;) {
            ssize_t n = ::recv(ctx_->fd, buf, sizeof buf, 0);
            if (n > 0) {
                if (redisReaderFeed(ctx_->reader, buf, static_cast<size_t>(n)) != REDIS_OK)
                    return std::string("reading: ") + ctx_->reader->errstr;
                total += static_cast<size_t>(n);
                if (static_cast<size_t>(n) < sizeof buf)
                    return ""; // drained: spare the EAGAIN read
            } else if (n == 0) {
                return "the server closed the connection";
            } else if (errno == EINTR) {
                continue;
            } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
                return "";
            } else {
                return std::string("read: ") + std::strerror(errno);
            }
        }
        return "";
    }

    // Writes, reads (when poll said so: a reply never follows our write at
    // once), settles; once more writes what the replies released (the ops
    // queued behind the handshake).
    void pump(short revents) {
        if (!flush()) return;
        if (!(revents & (POLLIN | POLLHUP | POLLERR))) return;
        std::string ended = fill();
        take_replies();
        if (!ended.empty()) return lose(ended);
        if (phase_ == Phase::Handshake || phase_ == Phase::Ready) flush();
    }

    void take_replies() {
        while (ctx_ && (phase_ == Phase::Handshake || phase_ == Phase::Ready)) {
            void* raw = nullptr;
            if (redisGetReplyFromReader(ctx_.get(), &raw) != REDIS_OK)
                return lose(std::string("protocol error: ") + ctx_->errstr);
            if (!raw) return;
            ReplyPtr reply(static_cast<redisReply*>(raw));
            if (pending_.empty()) return lose("a reply nothing asked for");
            Pending p = pending_.front();
            pending_.pop_front();
            on_reply(p, reply.get());
        }
    }

    void on_reply(const Pending& p, const redisReply* r) {
        const redisReply* err = find_error(r);
        switch (p.expect) {
        case Expect::Op:
            return on_op_reply(p, r, err);
        case Expect::Handshake:
            if (err) { // AUTH or SELECT refused: error() is the server's word
                fail_connect(first_word({err->str, err->len}), std::string(err->str, err->len));
                return;
            }
            break;
        case Expect::Info: // refused (ACL): the version stays unknown, the old reset is used
            if (!err && r->type == REDIS_REPLY_STRING) version_ = parse_version({r->str, r->len});
            break;
        case Expect::Reset:
            if (err) return lose("session reset failed: " + std::string(err->str, err->len));
            break;
        }
        if (phase_ == Phase::Handshake && pending_.empty()) become_ready();
    }

    void on_op_reply(const Pending& p, const redisReply* r, const redisReply* err) {
        if (p.track == Track::Multi && r->type != REDIS_REPLY_ERROR) in_multi_ = true;
        if (p.track == Track::EndMulti) in_multi_ = false; // EXECABORT ends it too
        if (!p.op) return;                                 // abandoned
        if (err)
            return p.op->fail(first_word({err->str, err->len}),
                              label_ + std::string(err->str, err->len));
        reply_value(r, &p.op->result);
        p.op->settled = true;
    }

    void become_ready() {
        phase_ = Phase::Ready;
        deadline_ = 0;
        std::deque<Op*> waiting;
        waiting.swap(queued_);
        for (Op* op : waiting)
            send(op);
    }

    // Failed before the handshake was through: error() says why, queued ops
    // fail with the same words.
    bool fail_connect(std::string state, std::string why) {
        error_ = std::move(why);
        end(state);
        return false;
    }

    // Lost once connected: every op waiting fails.
    void lose(const std::string& why) {
        if (phase_ == Phase::Handshake || phase_ == Phase::Connecting) {
            fail_connect("ERR", "connect to " + s_.where + ": " + why);
            return;
        }
        error_ = "connection lost: " + why;
        end("ERR");
    }

    void end(const std::string& state) {
        phase_ = Phase::Broken;
        ctx_.reset(); // the socket goes now, not when the pool drops the link
        std::deque<Pending> pending;
        pending.swap(pending_);
        std::deque<Op*> queued;
        queued.swap(queued_);
        for (const Pending& p : pending)
            if (p.op) p.op->fail(state, label_ + error_);
        for (Op* op : queued)
            op->fail(state, label_ + error_);
    }

    const config::BackendConfig cfg_;
    const std::string pool_, label_;
    Settings s_;
    ContextPtr ctx_;
    Phase phase_ = Phase::Idle;
    uint64_t deadline_ = 0;
    std::deque<Op*> queued_;      // submitted before the handshake was through
    std::deque<Pending> pending_; // one per command appended, in reply order
    int version_ = 0;             // major * 100 + minor; 0 = unknown
    bool used_ = false;           // an op ran since the last reset
    bool in_multi_ = false, db_changed_ = false, watched_ = false, name_changed_ = false,
         tracking_ = false, auth_used_ = false;
    std::string error_;
};

} // namespace

LinkPtr make_redis_link(const config::BackendConfig& backend, const std::string& pool) {
    return std::make_unique<RedisLink>(backend, pool);
}

} // namespace lowphp::backends
