// PostgreSQL through libpq, non-blocking: one statement at a time per
// connection (extended protocol, so one statement per call: no stacked
// queries), results typed as PDO pgsql types them (int, bool; float as float).
#include <cerrno>
#include <cmath>
#include <cstring>
#include <deque>
#include <libpq-fe.h>
#include <poll.h>

#include "link.h"
#include "zend_smart_str.h"

namespace lowphp::backends {
namespace {

// The session reset sent after every request (see README "Backends"): what
// DISCARD ALL resets, as statements that may share one simple query
// (DISCARD ALL itself refuses to run inside the implicit transaction block).
constexpr const char* kReset =
    "CLOSE ALL; SET SESSION AUTHORIZATION DEFAULT; RESET ALL; UNLISTEN *; "
    "SELECT pg_advisory_unlock_all(); DISCARD TEMP; DISCARD SEQUENCES; DEALLOCATE ALL";

constexpr Oid kBoolOid = 16, kByteaOid = 17, kInt8Oid = 20, kInt2Oid = 21, kInt4Oid = 23,
              kOidOid = 26, kFloat4Oid = 700, kFloat8Oid = 701;

struct PgConnDeleter {
    void operator()(PGconn* c) const { PQfinish(c); }
};
struct PgResultDeleter {
    void operator()(PGresult* r) const { PQclear(r); }
};
using ResultPtr = std::unique_ptr<PGresult, PgResultDeleter>;

std::string trimmed(const char* text) {
    std::string s = text ? text : "";
    while (!s.empty() && (s.back() == '\n' || s.back() == ' '))
        s.pop_back();
    return s;
}

bool valid_utf8(const std::string& s) {
    for (size_t i = 0; i < s.size();) {
        unsigned char c = static_cast<unsigned char>(s[i]);
        size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        if (n == 0 || i + n > s.size() || (n > 1 && c < 0xC2 && n == 2)) return false;
        for (size_t k = 1; k < n; ++k)
            if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
        i += n;
    }
    return true;
}

// A float as PHP's var_export writes it (serialize_precision -1: the shortest
// text that reads back the same), with PostgreSQL's names for the specials.
std::string float_text(double d) {
    if (std::isnan(d)) return "NaN";
    if (std::isinf(d)) return d > 0 ? "Infinity" : "-Infinity";
    smart_str s = {};
    smart_str_append_double(&s, d, static_cast<int>(PG(serialize_precision)), false);
    std::string out(ZSTR_VAL(s.s), ZSTR_LEN(s.s));
    smart_str_free(&s);
    return out;
}

void bytea_value(zval* out, const char* text, size_t len) {
    if (len >= 2 && text[0] == '\\' && text[1] == 'x') {
        zend_string* s = zend_string_alloc((len - 2) / 2, 0);
        auto nibble = [](char c) { return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10; };
        for (size_t i = 0; i + 1 < len - 2 + 1 && 2 + 2 * i + 1 < len; ++i)
            ZSTR_VAL(s)
        [i] = static_cast<char>(nibble(text[2 + 2 * i]) << 4 | nibble(text[3 + 2 * i]));
        ZSTR_VAL(s)[ZSTR_LEN(s)] = '\0';
        ZVAL_STR(out, s);
        return;
    }
    size_t n = 0; // bytea_output = escape
    unsigned char* raw = PQunescapeBytea(reinterpret_cast<const unsigned char*>(text), &n);
    ZVAL_STRINGL(out, reinterpret_cast<char*>(raw), n);
    PQfreemem(raw);
}

void column_value(zval* out, Oid type, const char* text, size_t len) {
    switch (type) {
    case kBoolOid:
        ZVAL_BOOL(out, text[0] == 't');
        return;
    case kInt2Oid:
    case kInt4Oid:
    case kInt8Oid:
    case kOidOid:
        ZVAL_LONG(out, ZEND_STRTOL(text, nullptr, 10));
        return;
    case kFloat4Oid:
    case kFloat8Oid:
        if (strcmp(text, "NaN") == 0)
            ZVAL_DOUBLE(out, NAN);
        else if (strcmp(text, "Infinity") == 0)
            ZVAL_DOUBLE(out, INFINITY);
        else if (strcmp(text, "-Infinity") == 0)
            ZVAL_DOUBLE(out, -INFINITY);
        else
            ZVAL_DOUBLE(out, zend_strtod(text, nullptr));
        return;
    case kByteaOid:
        bytea_value(out, text, len);
        return;
    default:
        ZVAL_STRINGL(out, text, len);
    }
}

void rows_value(zval* out, const PGresult* r) {
    int rows = PQntuples(r), cols = PQnfields(r);
    array_init_size(out, static_cast<uint32_t>(rows));
    std::vector<zend_string*> names;
    for (int c = 0; c < cols; ++c)
        names.push_back(zend_string_init(PQfname(r, c), strlen(PQfname(r, c)), 0));
    for (int i = 0; i < rows; ++i) {
        zval row;
        array_init_size(&row, static_cast<uint32_t>(cols));
        for (int c = 0; c < cols; ++c) {
            zval v;
            if (PQgetisnull(r, i, c))
                ZVAL_NULL(&v);
            else
                column_value(&v, PQftype(r, c), PQgetvalue(r, i, c),
                             static_cast<size_t>(PQgetlength(r, i, c)));
            add_column(&row, names[c], &v);
        }
        add_next_index_zval(out, &row);
    }
    for (zend_string* n : names)
        zend_string_release(n);
}

class PgsqlLink final : public Link {
  public:
    PgsqlLink(const config::BackendConfig& b, const std::string& pool)
        : dsn_(b.dsn), label_("[pgsql " + b.name + "] "), app_name_("lowphp-fpm pool " + pool) {}

    bool start_connect() override {
        const char* keys[] = {"dbname", "fallback_application_name", nullptr};
        const char* vals[] = {dsn_.c_str(), app_name_.c_str(), nullptr};
        conn_.reset(PQconnectStartParams(keys, vals, 1));
        if (!conn_ || PQstatus(conn_.get()) == CONNECTION_BAD) return fail_connect();
        PQsetNoticeReceiver(conn_.get(), &PgsqlLink::on_notice, this);
        PQsetnonblocking(conn_.get(), 1);
        state_ = State::Connecting;
        poll_status_ = PGRES_POLLING_WRITING;
        deadline_ = mono_ms() + connect_timeout_ms();
        return true;
    }

    void submit(Op* op) override {
        if (state_ == State::Broken) return op->fail("08006", label_ + error_);
        queue_.push_back(op);
        if (state_ == State::Ready) send_next();
    }

    bool busy() const override {
        return state_ == State::Connecting || state_ == State::Running ||
               state_ == State::Resetting;
    }

    Wait wait() const override {
        Wait w;
        w.fd = conn_ ? PQsocket(conn_.get()) : -1;
        if (state_ == State::Connecting) {
            w.events = poll_status_ == PGRES_POLLING_READING ? POLLIN : POLLOUT;
            w.deadline_ms = deadline_;
        } else {
            w.events = static_cast<short>(POLLIN | (flushing_ ? POLLOUT : 0));
        }
        return w;
    }

    void advance(short revents) override {
        if (state_ == State::Connecting) return advance_connect(revents);
        if (state_ != State::Running && state_ != State::Resetting) return;
        if (flushing_ && !flush()) return;
        if ((revents & (POLLIN | POLLHUP | POLLERR)) && !PQconsumeInput(conn_.get()))
            return lose(trimmed(PQerrorMessage(conn_.get())));
        read_results();
    }

    bool ready() const override { return state_ == State::Ready; }
    bool broken() const override { return state_ == State::Broken; }
    std::string error() const override { return error_; }
    bool in_transaction() const override {
        if (!conn_ || state_ == State::Broken) return false;
        auto s = PQtransactionStatus(conn_.get());
        return s == PQTRANS_INTRANS || s == PQTRANS_INERROR;
    }

    void start_reset() override {
        if (state_ != State::Ready) return;
        std::string sql = in_transaction() ? std::string("ROLLBACK; ") + kReset : kReset;
        if (!PQsendQuery(conn_.get(), sql.c_str()))
            return lose(trimmed(PQerrorMessage(conn_.get())));
        state_ = State::Resetting;
        reset_failed_.clear();
        flushing_ = true;
        flush();
    }

    bool alive() override {
        if (state_ != State::Ready) return state_ != State::Broken;
        struct pollfd p {
            PQsocket(conn_.get()), POLLIN | POLLRDHUP, 0
        };
        if (poll(&p, 1, 0) <= 0) return !fatal_seen_;
        // pg_terminate_backend: the FATAL arrives as a notice, the status stays OK.
        if (!PQconsumeInput(conn_.get()) || PQstatus(conn_.get()) == CONNECTION_BAD ||
            fatal_seen_ || (p.revents & (POLLHUP | POLLERR | POLLRDHUP))) {
            lose("the server closed the connection");
            return false;
        }
        return true;
    }

    // The op in flight still runs; its results are read and dropped.
    void abandon() override {
        current_ = nullptr;
        queue_.clear();
    }

    void close(bool graceful) override {
        if (!conn_) return;
        if (!graceful) ::close(PQsocket(conn_.get())); // PQfinish's Terminate then goes nowhere
        conn_.reset();
        state_ = State::Broken;
        error_ = "closed";
    }

  private:
    enum class State { Idle, Connecting, Ready, Running, Resetting, Broken };

    static void on_notice(void* self, const PGresult* r) {
        const char* sev = PQresultErrorField(r, PG_DIAG_SEVERITY_NONLOCALIZED);
        if (sev && (strcmp(sev, "FATAL") == 0 || strcmp(sev, "PANIC") == 0))
            static_cast<PgsqlLink*>(self)->fatal_seen_ = true;
    }

    int connect_timeout_ms() const {
        int seconds = 5;
        if (PQconninfoOption* opts = PQconninfo(conn_.get())) {
            for (PQconninfoOption* o = opts; o->keyword; ++o)
                if (strcmp(o->keyword, "connect_timeout") == 0 && o->val && atoi(o->val) > 0)
                    seconds = atoi(o->val);
            PQconninfoFree(opts);
        }
        return seconds * 1000;
    }

    bool fail_connect() {
        error_ = conn_ ? trimmed(PQerrorMessage(conn_.get())) : "out of memory";
        error_ = "connect failed: " + error_;
        conn_.reset();
        state_ = State::Broken;
        fail_all("08001");
        return false;
    }

    void advance_connect(short revents) {
        if (revents == 0 && mono_ms() >= deadline_) {
            error_ = "connect failed: timeout";
            conn_.reset();
            state_ = State::Broken;
            return fail_all("08001");
        }
        if (revents == 0) return;
        poll_status_ = PQconnectPoll(conn_.get());
        if (poll_status_ == PGRES_POLLING_FAILED) {
            fail_connect();
            return;
        }
        if (poll_status_ != PGRES_POLLING_OK) return;
        state_ = State::Ready;
        fatal_seen_ = false;
        send_next();
    }

    void send_next() {
        if (queue_.empty()) return;
        Op* op = queue_.front();
        queue_.pop_front();
        current_ = op;
        std::vector<const char*> values;
        std::vector<int> lengths, formats;
        std::vector<Oid> types;
        std::vector<std::string> texts;
        texts.reserve(op->params.size());
        for (const Param& p : op->params)
            bind(p, texts, values, lengths, formats, types);
        int n = static_cast<int>(op->params.size());
        if (!PQsendQueryParams(conn_.get(), op->sql.c_str(), n, types.data(), values.data(),
                               lengths.data(), formats.data(), 0))
            return lose(trimmed(PQerrorMessage(conn_.get())));
        state_ = State::Running;
        flushing_ = true;
        flush();
    }

    static void bind(const Param& p, std::vector<std::string>& texts,
                     std::vector<const char*>& values, std::vector<int>& lengths,
                     std::vector<int>& formats, std::vector<Oid>& types) {
        Oid type = 0; // the server infers it, as for PDO's and psql's parameters
        int format = 0;
        switch (p.type) {
        case Param::Type::Null:
            texts.emplace_back();
            break;
        case Param::Type::Int:
            texts.push_back(std::to_string(p.i));
            break;
        case Param::Type::Float:
            texts.push_back(float_text(p.d));
            break;
        case Param::Type::Bool:
            texts.push_back(p.b ? "t" : "f");
            type = kBoolOid;
            break;
        case Param::Type::String:
            texts.push_back(p.s);
            // Not text PostgreSQL would accept: sent as bytea, byte for byte.
            if (p.s.find('\0') != std::string::npos || !valid_utf8(p.s)) {
                type = kByteaOid;
                format = 1;
            }
            break;
        }
        values.push_back(p.type == Param::Type::Null ? nullptr : texts.back().c_str());
        lengths.push_back(static_cast<int>(texts.back().size()));
        formats.push_back(format);
        types.push_back(type);
    }

    bool flush() {
        int rc = PQflush(conn_.get());
        if (rc < 0) {
            lose(trimmed(PQerrorMessage(conn_.get())));
            return false;
        }
        flushing_ = rc == 1;
        return true;
    }

    void read_results() {
        while (conn_ && !PQisBusy(conn_.get())) {
            ResultPtr r(PQgetResult(conn_.get()));
            if (!r) return finish_command();
            note_result(r.get());
        }
        if (conn_ && PQstatus(conn_.get()) == CONNECTION_BAD) lose("connection lost");
    }

    void note_result(const PGresult* r) {
        ExecStatusType st = PQresultStatus(r);
        if (state_ == State::Resetting) {
            if (st == PGRES_FATAL_ERROR && reset_failed_.empty())
                reset_failed_ = trimmed(PQresultErrorMessage(r));
            return;
        }
        Op* op = current_;
        if (!op || op->settled)
            return; // a second result of one statement (COPY...): the first counts
        if (st == PGRES_FATAL_ERROR || st == PGRES_NONFATAL_ERROR || st == PGRES_BAD_RESPONSE) {
            const char* code = PQresultErrorField(r, PG_DIAG_SQLSTATE);
            return op->fail(code ? code : "HY000", label_ + trimmed(PQresultErrorMessage(r)));
        }
        if (op->kind == Op::Kind::Execute)
            ZVAL_LONG(&op->result, ZEND_STRTOL(PQcmdTuples(const_cast<PGresult*>(r)), nullptr, 10));
        else
            rows_value(&op->result, r);
        op->settled = true;
    }

    // The last result of the current command came (PQgetResult gave NULL).
    void finish_command() {
        if (state_ == State::Resetting) {
            state_ = State::Ready;
            if (!reset_failed_.empty())
                lose("reset failed: " + reset_failed_);
            else
                send_next();
            return;
        }
        if (current_ && !current_->settled) current_->fail("HY000", label_ + "no result");
        current_ = nullptr;
        state_ = State::Ready;
        send_next();
    }

    void lose(const std::string& why) {
        error_ = "connection lost: " + why;
        state_ = State::Broken;
        fail_all("08006");
    }

    void fail_all(const char* state) {
        if (current_) current_->fail(state, label_ + error_);
        current_ = nullptr;
        for (Op* op : queue_)
            op->fail(state, label_ + error_);
        queue_.clear();
    }

    std::string dsn_, label_, app_name_;
    std::unique_ptr<PGconn, PgConnDeleter> conn_;
    State state_ = State::Idle;
    PostgresPollingStatusType poll_status_ = PGRES_POLLING_WRITING;
    uint64_t deadline_ = 0;
    Op* current_ = nullptr; // in flight
    std::deque<Op*> queue_; // waiting their turn
    bool flushing_ = false, fatal_seen_ = false;
    std::string error_, reset_failed_;
};

} // namespace

LinkPtr make_pgsql_link(const config::BackendConfig& backend, const std::string& pool) {
    return std::make_unique<PgsqlLink>(backend, pool);
}

} // namespace lowphp::backends
