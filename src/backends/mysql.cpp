// The mysql[] backend: one MariaDB/MySQL connection driven through MariaDB
// Connector/C's non-blocking API (MYSQL_OPT_NONBLOCK, the *_start/*_cont
// calls). Each blocking library call runs on the library's own coroutine: a
// *_start or *_cont call returns the MYSQL_WAIT_* events it is waiting for, or
// 0 once the call has finished. One call is in flight at a time; the chain of
// calls an operation needs (query, store, next result...) is a Step machine.
//
// Results follow mysqlnd/PDO in PHP 8.2: integers and floats come back as PHP
// int/float (unsigned values past PHP_INT_MAX as strings), DECIMAL and the
// rest as strings, in both the text protocol (no parameters) and the binary
// protocol (prepared statements, parameters bound).
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cfloat>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <unordered_map>

#include <errmsg.h>
#include <mysql.h>
#include <mysqld_error.h>

#include "link.h"

namespace lowphp::backends {
namespace {

// mysqlnd's NOT_FIXED_DEC: a FLOAT column without a declared scale.
constexpr unsigned kNotFixedDec = 31;
// Prepared statements kept per connection (the server counts them against
// max_prepared_stmt_count); past this, a statement is closed after its use.
constexpr size_t kMaxCachedStatements = 256;
// How long a graceful close may wait to hand COM_QUIT to the kernel.
constexpr int kGoodbyeMs = 100;

struct MysqlClose {
    void operator()(MYSQL* m) const { mysql_close(m); }
};
struct ResultFree {
    void operator()(MYSQL_RES* r) const { mysql_free_result(r); }
};
// Only used on statements that can no longer reach the server (the connection
// reset, closed or lost them): mysql_stmt_close then frees memory and sends
// nothing. A statement on a live connection is closed with Step::StmtClose.
struct StmtClose {
    void operator()(MYSQL_STMT* s) const { mysql_stmt_close(s); }
};
using MysqlPtr = std::unique_ptr<MYSQL, MysqlClose>;
using ResultPtr = std::unique_ptr<MYSQL_RES, ResultFree>;
using StmtPtr = std::unique_ptr<MYSQL_STMT, StmtClose>;

// One library call in flight (or about to start).
enum class Step {
    None,
    Connect,   // mysql_real_connect
    Query,     // mysql_real_query: sends COM_QUERY, reads the first reply
    Store,     // mysql_store_result: reads the rows of a text result
    Next,      // mysql_next_result (CALL: further results)
    Prepare,   // mysql_stmt_prepare
    Execute,   // mysql_stmt_execute
    StmtStore, // mysql_stmt_store_result
    StmtNext,  // mysql_stmt_next_result
    StmtClose, // mysql_stmt_close of a statement that is not cached
    Reset,     // mysql_reset_connection (COM_RESET_CONNECTION)
    SelectDb,  // mysql_select_db after a reset, when USE changed the schema
};

// Errors after which the connection is gone: the client lost it, or the
// server announced it is closing it (KILL CONNECTION, shutdown).
bool is_lost(unsigned err) {
    return err == CR_SERVER_GONE_ERROR || err == CR_SERVER_LOST || err == CR_SERVER_LOST_EXTENDED ||
           err == ER_CONNECTION_KILLED || err == ER_SERVER_SHUTDOWN;
}

short poll_events(int wait_status) {
    short events = 0;
    if (wait_status & MYSQL_WAIT_READ) events |= POLLIN;
    if (wait_status & MYSQL_WAIT_WRITE) events |= POLLOUT;
    if (wait_status & MYSQL_WAIT_EXCEPT) events |= POLLPRI;
    return events;
}

int wait_status_from(short revents, int waiting) {
    int status = 0;
    if (revents & POLLIN) status |= MYSQL_WAIT_READ;
    if (revents & POLLOUT) status |= MYSQL_WAIT_WRITE;
    if (revents & POLLPRI) status |= MYSQL_WAIT_EXCEPT;
    // A hang-up or error can come without POLLIN: let the library find out
    // by retrying what it waits for (recv/send then report the failure).
    if (revents & (POLLHUP | POLLERR | POLLNVAL))
        status |= waiting & (MYSQL_WAIT_READ | MYSQL_WAIT_WRITE);
    return status;
}

bool is_integer_type(enum_field_types type) {
    switch (type) {
    case MYSQL_TYPE_TINY:
    case MYSQL_TYPE_SHORT:
    case MYSQL_TYPE_INT24:
    case MYSQL_TYPE_LONG:
    case MYSQL_TYPE_LONGLONG:
    case MYSQL_TYPE_YEAR:
        return true;
    default:
        return false;
    }
}

bool is_temporal_type(enum_field_types type) {
    return type == MYSQL_TYPE_DATE || type == MYSQL_TYPE_TIME || type == MYSQL_TYPE_DATETIME ||
           type == MYSQL_TYPE_TIMESTAMP;
}

// An unsigned value: PHP int when it fits, else its decimal string (mysqlnd).
void set_unsigned(zval* out, unsigned long long v) {
    if (v <= static_cast<unsigned long long>(ZEND_LONG_MAX)) {
        ZVAL_LONG(out, static_cast<zend_long>(v));
        return;
    }
    char buf[24];
    int n = snprintf(buf, sizeof buf, "%llu", v);
    ZVAL_STRINGL(out, buf, n);
}

// A ZEROFILL integer as the text protocol has it: padded to the display width.
void set_zerofill(zval* out, const MYSQL_FIELD& f, long long v) {
    char buf[96];
    int width = static_cast<int>(f.length < 64 ? f.length : 64);
    int n = (f.flags & UNSIGNED_FLAG)
                ? snprintf(buf, sizeof buf, "%0*llu", width, static_cast<unsigned long long>(v))
                : snprintf(buf, sizeof buf, "%0*lld", width, v);
    ZVAL_STRINGL(out, buf, n);
}

// BIT(n) arrives as big-endian bytes in both protocols; mysqlnd makes an int.
void set_bits(zval* out, const unsigned char* p, size_t len) {
    unsigned long long v = 0;
    for (size_t i = 0; i < len && i < 8; ++i)
        v = (v << 8) | p[i];
    set_unsigned(out, v);
}

// A text-protocol integer (NUL-terminated by the library).
void set_text_integer(zval* out, const MYSQL_FIELD& f, const char* text, size_t len) {
    errno = 0;
    if (f.flags & UNSIGNED_FLAG) {
        unsigned long long v = std::strtoull(text, nullptr, 10);
        if (errno == 0) return set_unsigned(out, v);
    } else {
        long long v = std::strtoll(text, nullptr, 10);
        if (errno == 0) {
            ZVAL_LONG(out, static_cast<zend_long>(v));
            return;
        }
    }
    ZVAL_STRINGL(out, text, len); // out of range: keep what the server sent
}

void set_text_value(zval* out, const MYSQL_FIELD& f, const char* text, unsigned long len) {
    if (!text) {
        ZVAL_NULL(out);
        return;
    }
    // ZEROFILL integers (YEAR among them) stay strings, zeros kept (PHP bug #80808).
    if (is_integer_type(f.type) && !(f.flags & ZEROFILL_FLAG))
        return set_text_integer(out, f, text, len);
    switch (f.type) {
    case MYSQL_TYPE_FLOAT:
    case MYSQL_TYPE_DOUBLE:
        ZVAL_DOUBLE(out, zend_strtod(text, nullptr));
        return;
    case MYSQL_TYPE_BIT:
        return set_bits(out, reinterpret_cast<const unsigned char*>(text), len);
    default:
        ZVAL_STRINGL(out, text, len);
    }
}

// mysqlnd's mysql_float_to_double: a FLOAT goes through its decimal text, so
// that FLOAT 1.1 reads back as 1.1 rather than 1.100000023841858. snprintf
// here is PHP's (main/snprintf.h), locale-independent like mysqlnd's.
double float_to_double(float value, unsigned decimals) {
    char buf[384];
    if (decimals < kNotFixedDec)
        snprintf(buf, sizeof buf, "%.*F", static_cast<int>(decimals), static_cast<double>(value));
    else
        zend_gcvt(static_cast<double>(value), FLT_DIG, '.', 'e', buf);
    return zend_strtod(buf, nullptr);
}

// ".fff" with the column's fraction digits, as mysqlnd prints them.
int format_fraction(char* buf, size_t size, const MYSQL_TIME& t, unsigned decimals) {
    if (decimals == 0 || decimals > 6) return 0;
    unsigned long part = t.second_part;
    for (unsigned i = decimals; i < 6; ++i)
        part /= 10;
    return snprintf(buf, size, ".%0*lu", static_cast<int>(decimals), part);
}

void set_temporal(zval* out, const MYSQL_FIELD& f, const MYSQL_TIME& t) {
    char buf[64];
    int n = 0;
    if (f.type == MYSQL_TYPE_DATE) {
        n = snprintf(buf, sizeof buf, "%04u-%02u-%02u", t.year, t.month, t.day);
    } else if (f.type == MYSQL_TYPE_TIME) {
        // Connector/C folds the days of a TIME into its hours, like mysqlnd.
        n = snprintf(buf, sizeof buf, "%s%02u:%02u:%02u", t.neg ? "-" : "", t.hour, t.minute,
                     t.second);
        n += format_fraction(buf + n, sizeof buf - n, t, f.decimals);
    } else {
        n = snprintf(buf, sizeof buf, "%04u-%02u-%02u %02u:%02u:%02u", t.year, t.month, t.day,
                     t.hour, t.minute, t.second);
        n += format_fraction(buf + n, sizeof buf - n, t, f.decimals);
    }
    ZVAL_STRINGL(out, buf, n);
}

// The storage one bound result column fetches into.
struct Cell {
    union {
        long long i;
        double d;
        float f;
        MYSQL_TIME t;
    } v;
    unsigned long length = 0;
    my_bool is_null = 0;
    my_bool error = 0;
    char none = 0; // 0-byte buffer: strings are read with mysql_stmt_fetch_column
};

class MysqlLink final : public Link {
  public:
    MysqlLink(const config::BackendConfig& backend, const std::string& pool);
    ~MysqlLink() override { close(false); }

    bool start_connect() override;
    void submit(Op* op) override;
    bool busy() const override;
    Wait wait() const override;
    void advance(short revents) override;
    bool ready() const override { return connected_ && !broken_ && !closed_; }
    bool broken() const override { return broken_; }
    std::string error() const override { return error_; }
    bool in_transaction() const override;
    void start_reset() override;
    bool alive() override;
    void abandon() override;
    void close(bool graceful) override;

  private:
    // The statement in flight: a user's Op or the configured init_command.
    struct Current {
        Op* op = nullptr; // null when abandoned (or for init_command)
        bool init_command = false;
        Op::Kind kind = Op::Kind::Execute;
        // Copies: the library may still read them after the Op is abandoned.
        std::string sql;
        std::vector<Param> params;
        MYSQL_STMT* stmt = nullptr; // the prepared statement used
        StmtPtr owned;              // set while `stmt` is not in the cache
        bool have_first = false;    // the first result (rows or OK) is taken
        unsigned long long affected = 0;
    };

    // The Step machine.
    void drive(Step step, int status);
    int start(Step step);
    int resume(Step step, int status);
    Step finished(Step step);
    Step next_work();
    void arm(int wait_status);

    // Connecting.
    void apply_options();
    void apply_ssl_options();
    Step connect_done();

    // Operations.
    Step start_op(Op* op);
    Step start_text();
    Step start_prepared();
    Step bind_and_execute();
    Step query_done();
    Step store_done();
    Step next_done();
    Step prepare_done();
    Step execute_done();
    Step stmt_store_done();
    Step stmt_next_done();
    Step more_results();
    Step stmt_more_results();
    void take_ok(unsigned long long affected);
    Step settle_current();
    Step fail_current(unsigned err, const char* state, const char* text);
    Step fail_from_mysql();
    Step fail_from_stmt();
    Step end_current();
    bool want_rows() const { return cur_.op && cur_.kind == Op::Kind::Query && !cur_.have_first; }

    // Results.
    void build_text_rows(MYSQL_RES* res, zval* list);
    bool build_binary_rows(MYSQL_STMT* st, zval* list);
    void bind_result_columns(const MYSQL_FIELD* fields, unsigned count);
    void set_binary_value(zval* out, MYSQL_STMT* st, const MYSQL_FIELD& f, unsigned col);
    void recover_interrupted_build();
    void make_names(const MYSQL_FIELD* fields, unsigned count);
    void release_names();

    // Reset.
    Step reset_done();
    Step restore_schema();

    // Failure and teardown.
    std::string prefix() const { return "[mysql " + name_ + "] "; }
    std::string describe(unsigned err, const char* text) const;
    void break_link(const std::string& message);
    void fail_queued(const std::string& state, const std::string& message);
    int live_fd() const;
    void neutralize_socket(int fd);
    void abort_step();
    void say_goodbye();

    // Configuration.
    std::string name_, pool_, host_, socket_, user_, password_, password_env_, dbname_, charset_,
        init_command_, ssl_mode_, ssl_ca_, ssl_cert_, ssl_key_;
    bool has_password_ = false;
    unsigned port_ = 3306;
    unsigned connect_timeout_s_ = 5;

    MysqlPtr mysql_;
    Step step_ = Step::None;
    int waiting_ = 0;          // MYSQL_WAIT_* of the call in flight
    uint64_t io_deadline_ = 0; // from MYSQL_WAIT_TIMEOUT
    uint64_t connect_deadline_ = 0;
    // Where the library stores a finished call's return value.
    int ret_int_ = 0;
    my_bool ret_bool_ = 0;
    MYSQL* ret_mysql_ = nullptr;
    MYSQL_RES* ret_res_ = nullptr;

    bool connected_ = false, broken_ = false, closed_ = false;
    bool dirty_ = false;         // an operation ran since the last reset
    bool reset_pending_ = false; // start_reset() asked, not begun yet
    bool building_ = false;      // making zvals (PHP may bail out of it)
    std::string error_;
    std::string broken_state_ = "08S01";

    std::deque<Op*> queue_;
    Current cur_;
    std::unordered_map<std::string, StmtPtr> stmts_;
    // Statements left attached to a connection that broke: freed once
    // mysql_close has detached them, so that freeing them sends nothing.
    std::vector<StmtPtr> orphans_;
    MYSQL_STMT* closing_ = nullptr; // the statement Step::StmtClose frees
    ResultPtr res_;                 // the text result being read into zvals

    std::vector<MYSQL_BIND> in_binds_;
    std::vector<signed char> in_bools_;
    std::vector<MYSQL_BIND> out_binds_;
    std::vector<Cell> cells_;
    // The column names of the result being read, shared by its rows.
    std::vector<zend_string*> names_;
};

bool has_option(const config::BackendConfig& b, const std::string& key) {
    for (const auto& [k, v] : b.options)
        if (k == key) return true;
    return false;
}

unsigned parse_unsigned(const std::string& text, unsigned fallback) {
    char* end = nullptr;
    errno = 0;
    unsigned long v = std::strtoul(text.c_str(), &end, 10);
    if (text.empty() || *end || errno || v > 0xffffffffUL) return fallback;
    return static_cast<unsigned>(v);
}

MysqlLink::MysqlLink(const config::BackendConfig& b, const std::string& pool)
    : name_(b.name), pool_(pool), host_(b.option("host", "127.0.0.1")), socket_(b.option("socket")),
      user_(b.option("user")), password_(b.option("password")),
      password_env_(b.option("password_env")), dbname_(b.option("dbname")),
      charset_(b.option("charset", "utf8mb4")), init_command_(b.option("init_command")),
      ssl_mode_(b.option("ssl_mode", "disable")), ssl_ca_(b.option("ssl_ca")),
      ssl_cert_(b.option("ssl_cert")), ssl_key_(b.option("ssl_key")),
      has_password_(has_option(b, "password")), port_(parse_unsigned(b.option("port"), 3306)),
      connect_timeout_s_(parse_unsigned(b.option("connect_timeout"), 5)) {}

// ---------------------------------------------------------------- connecting

bool MysqlLink::start_connect() {
    mysql_.reset(mysql_init(nullptr));
    if (!mysql_) {
        broken_ = true;
        broken_state_ = "08001";
        error_ = prefix() + "connect failed: out of memory";
        return false;
    }
    apply_options();
    if (!has_password_ && !password_env_.empty()) {
        const char* env = std::getenv(password_env_.c_str());
        password_ = env ? env : "";
    }
    connect_deadline_ = mono_ms() + uint64_t{connect_timeout_s_} * 1000;
    drive(Step::Connect, -1);
    return !broken_;
}

void MysqlLink::apply_options() {
    MYSQL* m = mysql_.get();
    mysql_options(m, MYSQL_OPT_NONBLOCK, nullptr); // the library's default coroutine stack
    mysql_options(m, MYSQL_SET_CHARSET_NAME, charset_.c_str());
    if (!init_command_.empty()) mysql_options(m, MYSQL_INIT_COMMAND, init_command_.c_str());
    unsigned int no_infile = 0; // LOAD DATA LOCAL would let the server read our files
    mysql_options(m, MYSQL_OPT_LOCAL_INFILE, &no_infile);
    my_bool no_reconnect = 0; // a silent reconnect would lose the session unseen
    mysql_options(m, MYSQL_OPT_RECONNECT, &no_reconnect);
    unsigned int timeout = connect_timeout_s_;
    mysql_options(m, MYSQL_OPT_CONNECT_TIMEOUT, &timeout);
    // Names the site to the server (performance_schema.session_connect_attrs).
    mysql_optionsv(m, MYSQL_OPT_CONNECT_ATTR_ADD, "program_name", pool_.c_str());
    apply_ssl_options();
}

// ssl_mode like libpq's: require encrypts, verify_ca also checks the chain
// against ssl_ca, verify_identity also checks the host name.
void MysqlLink::apply_ssl_options() {
    MYSQL* m = mysql_.get();
    if (ssl_mode_ == "disable" || ssl_mode_.empty()) return; // Connector/C 3.3: no TLS by default
    my_bool on = 1;
    mysql_options(m, MYSQL_OPT_SSL_ENFORCE, &on);
    if (!ssl_cert_.empty()) mysql_options(m, MYSQL_OPT_SSL_CERT, ssl_cert_.c_str());
    if (!ssl_key_.empty()) mysql_options(m, MYSQL_OPT_SSL_KEY, ssl_key_.c_str());
    if (ssl_mode_ == "require") return; // a CA given would make the library verify
    if (!ssl_ca_.empty()) mysql_options(m, MYSQL_OPT_SSL_CA, ssl_ca_.c_str());
    if (ssl_mode_ == "verify_identity") mysql_options(m, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, &on);
}

Step MysqlLink::connect_done() {
    MYSQL* m = mysql_.get();
    if (!ret_mysql_) {
        broken_ = true;
        broken_state_ = "08001";
        error_ = prefix() + "connect failed: " + mysql_error(m) + " (errno " +
                 std::to_string(mysql_errno(m)) + ")";
        fail_queued(broken_state_, error_);
        return Step::None;
    }
    connected_ = true;
    int fd = mysql_get_socket(m);
    // Not inherited by what PHP execs; keepalive notices a vanished server.
    fcntl(fd, F_SETFD, fcntl(fd, F_GETFD) | FD_CLOEXEC);
    int on = 1;
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
    return next_work();
}

// ---------------------------------------------------------- the Step machine

// Runs `step` (status -1: start it; else resume it with MYSQL_WAIT_* events)
// and the steps that follow it, until one has to wait or there is no work.
void MysqlLink::drive(Step step, int status) {
    while (step != Step::None) {
        step_ = step;
        int w = status < 0 ? start(step) : resume(step, status);
        if (w != 0) return arm(w);
        step_ = Step::None;
        waiting_ = 0;
        io_deadline_ = 0;
        step = finished(step);
        status = -1;
    }
}

void MysqlLink::arm(int wait_status) {
    waiting_ = wait_status;
    io_deadline_ = 0;
    if (wait_status & MYSQL_WAIT_TIMEOUT)
        io_deadline_ = mono_ms() + mysql_get_timeout_value_ms(mysql_.get());
}

int MysqlLink::start(Step step) {
    MYSQL* m = mysql_.get();
    const char* db = dbname_.empty() ? nullptr : dbname_.c_str();
    switch (step) {
    case Step::Connect:
        // Never CLIENT_MULTI_STATEMENTS: one statement per call, as PDO's
        // default; MULTI_RESULTS lets a CALL return its result sets.
        return mysql_real_connect_start(
            &ret_mysql_, m, socket_.empty() ? host_.c_str() : "localhost",
            user_.empty() ? nullptr : user_.c_str(), password_.c_str(), db,
            socket_.empty() ? port_ : 0, socket_.empty() ? nullptr : socket_.c_str(),
            CLIENT_MULTI_RESULTS);
    case Step::Query:
        return mysql_real_query_start(&ret_int_, m, cur_.sql.data(), cur_.sql.size());
    case Step::Store:
        return mysql_store_result_start(&ret_res_, m);
    case Step::Next:
        return mysql_next_result_start(&ret_int_, m);
    case Step::Prepare:
        return mysql_stmt_prepare_start(&ret_int_, cur_.stmt, cur_.sql.data(), cur_.sql.size());
    case Step::Execute:
        return mysql_stmt_execute_start(&ret_int_, cur_.stmt);
    case Step::StmtStore:
        return mysql_stmt_store_result_start(&ret_int_, cur_.stmt);
    case Step::StmtNext:
        return mysql_stmt_next_result_start(&ret_int_, cur_.stmt);
    case Step::StmtClose:
        return mysql_stmt_close_start(&ret_bool_, closing_);
    case Step::Reset:
        return mysql_reset_connection_start(&ret_int_, m);
    case Step::SelectDb:
        return mysql_select_db_start(&ret_int_, m, dbname_.c_str());
    case Step::None:
        break;
    }
    return 0;
}

int MysqlLink::resume(Step step, int status) {
    MYSQL* m = mysql_.get();
    switch (step) {
    case Step::Connect:
        return mysql_real_connect_cont(&ret_mysql_, m, status);
    case Step::Query:
        return mysql_real_query_cont(&ret_int_, m, status);
    case Step::Store:
        return mysql_store_result_cont(&ret_res_, m, status);
    case Step::Next:
        return mysql_next_result_cont(&ret_int_, m, status);
    case Step::Prepare:
        return mysql_stmt_prepare_cont(&ret_int_, cur_.stmt, status);
    case Step::Execute:
        return mysql_stmt_execute_cont(&ret_int_, cur_.stmt, status);
    case Step::StmtStore:
        return mysql_stmt_store_result_cont(&ret_int_, cur_.stmt, status);
    case Step::StmtNext:
        return mysql_stmt_next_result_cont(&ret_int_, cur_.stmt, status);
    case Step::StmtClose:
        return mysql_stmt_close_cont(&ret_bool_, closing_, status);
    case Step::Reset:
        return mysql_reset_connection_cont(&ret_int_, m, status);
    case Step::SelectDb:
        return mysql_select_db_cont(&ret_int_, m, status);
    case Step::None:
        break;
    }
    return 0;
}

// A call finished: what follows it.
Step MysqlLink::finished(Step step) {
    switch (step) {
    case Step::Connect:
        return connect_done();
    case Step::Query:
        return query_done();
    case Step::Store:
        return store_done();
    case Step::Next:
        return next_done();
    case Step::Prepare:
        return prepare_done();
    case Step::Execute:
        return execute_done();
    case Step::StmtStore:
        return stmt_store_done();
    case Step::StmtNext:
        return stmt_next_done();
    case Step::StmtClose:
        closing_ = nullptr; // freed by the library, whatever it returned
        return next_work();
    case Step::Reset:
        return reset_done();
    case Step::SelectDb:
        if (ret_int_ != 0) {
            break_link(prefix() + "restoring the database after a reset failed: " +
                       describe(mysql_errno(mysql_.get()), mysql_error(mysql_.get())));
            return Step::None;
        }
        return next_work();
    case Step::None:
        break;
    }
    return Step::None;
}

// Nothing in flight: the pending reset first (it ends the previous request),
// then the next queued operation.
Step MysqlLink::next_work() {
    if (broken_ || closed_) {
        fail_queued(broken_state_, error_);
        return Step::None;
    }
    if (!connected_) return Step::None;
    if (reset_pending_) {
        reset_pending_ = false;
        return Step::Reset;
    }
    while (!queue_.empty()) {
        Op* op = queue_.front();
        queue_.pop_front();
        Step step = start_op(op);
        if (step != Step::None || broken_) return step;
    }
    return Step::None;
}

// ---------------------------------------------------------------- public API

void MysqlLink::submit(Op* op) {
    recover_interrupted_build();
    if (broken_ || closed_) {
        op->fail(broken_state_, error_.empty() ? prefix() + "connection closed" : error_);
        return;
    }
    queue_.push_back(op);
    if (step_ == Step::None) drive(next_work(), -1);
}

bool MysqlLink::busy() const {
    if (broken_ || closed_) return false;
    return step_ != Step::None || !queue_.empty() || reset_pending_;
}

Wait MysqlLink::wait() const {
    Wait w;
    if (step_ == Step::None) return w;
    w.fd = live_fd();
    w.events = poll_events(waiting_);
    w.deadline_ms = io_deadline_;
    if (step_ == Step::Connect && (w.deadline_ms == 0 || connect_deadline_ < w.deadline_ms))
        w.deadline_ms = connect_deadline_;
    return w;
}

void MysqlLink::advance(short revents) {
    recover_interrupted_build();
    if (step_ == Step::None) return;
    int status = wait_status_from(revents, waiting_);
    if (revents == 0) {
        // The deadline passed: the library fails the call it is in
        // (MYSQL_WAIT_TIMEOUT ends any wait, asked for or not).
        uint64_t now = mono_ms();
        bool expired = (io_deadline_ && now >= io_deadline_) ||
                       (step_ == Step::Connect && now >= connect_deadline_);
        if (expired) status = MYSQL_WAIT_TIMEOUT;
    }
    drive(step_, status);
}

bool MysqlLink::in_transaction() const {
    if (!ready()) return false;
    unsigned int status = 0;
    if (mariadb_get_infov(mysql_.get(), MARIADB_CONNECTION_SERVER_STATUS, &status)) return false;
    return status & SERVER_STATUS_IN_TRANS;
}

void MysqlLink::start_reset() {
    recover_interrupted_build();
    // Nothing ran since the last reset (or connect): the session is clean.
    if (!ready() || !dirty_) return;
    dirty_ = false;
    reset_pending_ = true;
    if (step_ == Step::None) drive(next_work(), -1);
}

bool MysqlLink::alive() {
    recover_interrupted_build();
    if (!ready()) return false;
    if (busy()) return true;
    int fd = live_fd();
    if (fd < 0) {
        break_link(prefix() + "connection lost");
        return false;
    }
    // MariaDB says nothing on an idle connection: anything readable is the
    // error packet of a KILL, or the end of the stream.
    pollfd p{fd, static_cast<short>(POLLIN | POLLRDHUP), 0};
    if (poll(&p, 1, 0) == 0) return true;
    break_link(prefix() + "the server closed the connection");
    return false;
}

void MysqlLink::abandon() {
    recover_interrupted_build();
    queue_.clear();
    // The call in flight goes on; what it returns is dropped (want_rows()).
    cur_.op = nullptr;
}

// ---------------------------------------------------------------- operations

Step MysqlLink::start_op(Op* op) {
    if (op->kind == Op::Kind::Command) {
        op->fail("HY000", prefix() + "a mysql backend runs SQL statements, not commands");
        return Step::None;
    }
    cur_ = Current{};
    cur_.op = op;
    cur_.kind = op->kind;
    cur_.sql = op->sql;
    cur_.params = op->params;
    dirty_ = true;
    return cur_.params.empty() ? start_text() : start_prepared();
}

// No parameters: COM_QUERY, whose reply carries the rows (one round trip).
Step MysqlLink::start_text() {
    return Step::Query;
}

Step MysqlLink::start_prepared() {
    if (auto it = stmts_.find(cur_.sql); it != stmts_.end()) {
        cur_.stmt = it->second.get();
        return bind_and_execute();
    }
    cur_.owned.reset(mysql_stmt_init(mysql_.get()));
    if (!cur_.owned) return fail_current(CR_OUT_OF_MEMORY, "HY001", "out of memory");
    cur_.stmt = cur_.owned.get();
    return Step::Prepare;
}

Step MysqlLink::prepare_done() {
    if (ret_int_ != 0) return fail_from_stmt();
    if (stmts_.size() < kMaxCachedStatements) stmts_.emplace(cur_.sql, std::move(cur_.owned));
    return bind_and_execute();
}

Step MysqlLink::bind_and_execute() {
    MYSQL_STMT* st = cur_.stmt;
    size_t count = mysql_stmt_param_count(st);
    if (count != cur_.params.size()) {
        if (cur_.op)
            cur_.op->fail("HY093", prefix() + "Invalid parameter number: " +
                                       std::to_string(cur_.params.size()) + " given, " +
                                       std::to_string(count) + " expected");
        return end_current();
    }
    in_binds_.assign(count, MYSQL_BIND{});
    in_bools_.assign(count, 0);
    for (size_t i = 0; i < count; ++i) {
        Param& p = cur_.params[i];
        MYSQL_BIND& b = in_binds_[i];
        switch (p.type) {
        case Param::Type::Null:
            b.buffer_type = MYSQL_TYPE_NULL;
            break;
        case Param::Type::Int:
            b.buffer_type = MYSQL_TYPE_LONGLONG;
            b.buffer = &p.i;
            break;
        case Param::Type::Float:
            b.buffer_type = MYSQL_TYPE_DOUBLE;
            b.buffer = &p.d;
            break;
        case Param::Type::Bool:
            in_bools_[i] = p.b ? 1 : 0;
            b.buffer_type = MYSQL_TYPE_TINY;
            b.buffer = &in_bools_[i];
            break;
        case Param::Type::String:
            b.buffer_type = MYSQL_TYPE_STRING;
            b.buffer = p.s.data();
            b.buffer_length = p.s.size(); // binary-safe: no strlen
            break;
        }
    }
    if (mysql_stmt_bind_param(st, in_binds_.data())) return fail_from_stmt();
    return Step::Execute;
}

Step MysqlLink::execute_done() {
    MYSQL_STMT* st = cur_.stmt;
    if (ret_int_ != 0) return fail_from_stmt();
    // Buffered: every row is read now, so fetching later never waits.
    if (mysql_stmt_field_count(st) > 0) return Step::StmtStore;
    take_ok(mysql_stmt_affected_rows(st));
    return stmt_more_results();
}

Step MysqlLink::stmt_store_done() {
    MYSQL_STMT* st = cur_.stmt;
    if (ret_int_ != 0) return fail_from_stmt();
    bool ok = true;
    if (want_rows()) ok = build_binary_rows(st, &cur_.op->result);
    if (!cur_.have_first) cur_.affected = mysql_stmt_num_rows(st);
    cur_.have_first = true;
    if (!ok) return fail_from_stmt();
    mysql_stmt_free_result(st); // buffered: frees memory, sends nothing
    return stmt_more_results();
}

// A CALL's further results are read and dropped (PDO returns the first).
Step MysqlLink::stmt_more_results() {
    if (mysql_stmt_more_results(cur_.stmt)) return Step::StmtNext;
    return settle_current();
}

Step MysqlLink::stmt_next_done() {
    if (ret_int_ > 0) return fail_from_stmt();
    if (ret_int_ < 0) return settle_current();
    if (mysql_stmt_field_count(cur_.stmt) > 0) return Step::StmtStore;
    take_ok(mysql_stmt_affected_rows(cur_.stmt));
    return stmt_more_results();
}

Step MysqlLink::query_done() {
    MYSQL* m = mysql_.get();
    if (ret_int_ != 0) return fail_from_mysql();
    if (mysql_field_count(m) > 0) return Step::Store;
    take_ok(mysql_affected_rows(m));
    return more_results();
}

Step MysqlLink::store_done() {
    ResultPtr res(ret_res_);
    ret_res_ = nullptr;
    if (!res) return fail_from_mysql();
    if (want_rows()) {
        res_ = std::move(res); // a member: freed even if PHP bails out below
        build_text_rows(res_.get(), &cur_.op->result);
        res_.reset();
    } else if (!cur_.have_first) {
        cur_.affected = mysql_num_rows(res.get());
    }
    cur_.have_first = true;
    return more_results();
}

Step MysqlLink::more_results() {
    if (mysql_more_results(mysql_.get())) return Step::Next;
    return settle_current();
}

Step MysqlLink::next_done() {
    MYSQL* m = mysql_.get();
    if (ret_int_ > 0) return fail_from_mysql();
    if (ret_int_ < 0) return settle_current();
    if (mysql_field_count(m) > 0) return Step::Store;
    take_ok(mysql_affected_rows(m));
    return more_results();
}

// A statement without rows (INSERT...): its affected rows, and for a Query an
// empty list. Only the first result of a CALL counts.
void MysqlLink::take_ok(unsigned long long affected) {
    if (cur_.have_first) return;
    cur_.have_first = true;
    cur_.affected = affected;
}

Step MysqlLink::settle_current() {
    if (cur_.init_command) {
        cur_ = Current{};
        return restore_schema();
    }
    if (Op* op = cur_.op) {
        if (op->kind == Op::Kind::Execute)
            ZVAL_LONG(&op->result, static_cast<zend_long>(cur_.affected));
        else if (Z_ISUNDEF(op->result))
            array_init(&op->result);
        op->settled = true;
    }
    return end_current();
}

Step MysqlLink::fail_from_mysql() {
    MYSQL* m = mysql_.get();
    return fail_current(mysql_errno(m), mysql_sqlstate(m), mysql_error(m));
}

Step MysqlLink::fail_from_stmt() {
    MYSQL_STMT* st = cur_.stmt;
    return fail_current(mysql_stmt_errno(st), mysql_stmt_sqlstate(st), mysql_stmt_error(st));
}

Step MysqlLink::fail_current(unsigned err, const char* state, const char* text) {
    std::string message = prefix() + describe(err, text);
    if (is_lost(err)) {
        break_link(message);
        return Step::None;
    }
    if (cur_.init_command) {
        break_link(prefix() + "init_command failed after a reset: " + describe(err, text));
        return Step::None;
    }
    if (Op* op = cur_.op) {
        zval_ptr_dtor(&op->result); // rows of an earlier result of the same CALL
        ZVAL_UNDEF(&op->result);
        op->fail(state, message);
    }
    return end_current();
}

// The operation is over: close its statement if the cache had no room.
Step MysqlLink::end_current() {
    if (cur_.owned) {
        closing_ = cur_.owned.release();
        cur_ = Current{};
        return Step::StmtClose;
    }
    cur_ = Current{};
    return next_work();
}

// ------------------------------------------------------------------- results

void MysqlLink::build_text_rows(MYSQL_RES* res, zval* list) {
    unsigned count = mysql_num_fields(res);
    const MYSQL_FIELD* fields = mysql_fetch_fields(res);
    building_ = true;
    make_names(fields, count);
    array_init_size(list, static_cast<uint32_t>(mysql_num_rows(res)));
    while (MYSQL_ROW row = mysql_fetch_row(res)) { // buffered: no I/O
        unsigned long* lengths = mysql_fetch_lengths(res);
        zval r;
        array_init_size(&r, count);
        for (unsigned i = 0; i < count; ++i) {
            zval v;
            set_text_value(&v, fields[i], row[i], lengths[i]);
            add_column(&r, names_[i], &v);
        }
        add_next_index_zval(list, &r);
    }
    release_names();
    building_ = false;
}

// Numbers and dates into typed cells; strings of any length are read
// afterwards with mysql_stmt_fetch_column straight into a zend_string.
void MysqlLink::bind_result_columns(const MYSQL_FIELD* fields, unsigned count) {
    out_binds_.assign(count, MYSQL_BIND{});
    cells_.assign(count, Cell{});
    for (unsigned i = 0; i < count; ++i) {
        const MYSQL_FIELD& f = fields[i];
        MYSQL_BIND& b = out_binds_[i];
        Cell& c = cells_[i];
        b.length = &c.length;
        b.is_null = &c.is_null;
        b.error = &c.error;
        if (is_integer_type(f.type)) {
            b.buffer_type = MYSQL_TYPE_LONGLONG;
            b.buffer = &c.v.i;
            b.is_unsigned = (f.flags & UNSIGNED_FLAG) ? 1 : 0;
        } else if (f.type == MYSQL_TYPE_FLOAT) {
            b.buffer_type = MYSQL_TYPE_FLOAT;
            b.buffer = &c.v.f;
        } else if (f.type == MYSQL_TYPE_DOUBLE) {
            b.buffer_type = MYSQL_TYPE_DOUBLE;
            b.buffer = &c.v.d;
        } else if (is_temporal_type(f.type)) {
            b.buffer_type = f.type;
            b.buffer = &c.v.t;
        } else {
            b.buffer_type = MYSQL_TYPE_BLOB; // raw bytes, no conversion
            b.buffer = &c.none;
            b.buffer_length = 0;
        }
    }
}

bool MysqlLink::build_binary_rows(MYSQL_STMT* st, zval* list) {
    MYSQL_RES* meta = mysql_stmt_result_metadata(st);
    if (!meta) return false;
    res_.reset(meta);
    unsigned count = mysql_num_fields(meta);
    const MYSQL_FIELD* fields = mysql_fetch_fields(meta);
    bind_result_columns(fields, count);
    if (mysql_stmt_bind_result(st, out_binds_.data())) return false;
    building_ = true;
    make_names(fields, count);
    array_init_size(list, static_cast<uint32_t>(mysql_stmt_num_rows(st)));
    bool ok = true;
    while (true) {
        int rc = mysql_stmt_fetch(st); // buffered: no I/O
        if (rc == MYSQL_NO_DATA) break;
        if (rc == 1) {
            ok = false;
            break;
        }
        // MYSQL_DATA_TRUNCATED: the 0-byte string buffers, read below.
        zval r;
        array_init_size(&r, count);
        for (unsigned i = 0; i < count; ++i) {
            zval v;
            set_binary_value(&v, st, fields[i], i);
            add_column(&r, names_[i], &v);
        }
        add_next_index_zval(list, &r);
    }
    release_names();
    building_ = false;
    res_.reset();
    return ok;
}

void MysqlLink::set_binary_value(zval* out, MYSQL_STMT* st, const MYSQL_FIELD& f, unsigned col) {
    const Cell& c = cells_[col];
    if (c.is_null) {
        ZVAL_NULL(out);
        return;
    }
    if (is_integer_type(f.type)) {
        if (f.flags & ZEROFILL_FLAG) return set_zerofill(out, f, c.v.i);
        if (f.flags & UNSIGNED_FLAG)
            set_unsigned(out, static_cast<unsigned long long>(c.v.i));
        else
            ZVAL_LONG(out, static_cast<zend_long>(c.v.i));
        return;
    }
    if (f.type == MYSQL_TYPE_FLOAT) {
        ZVAL_DOUBLE(out, float_to_double(c.v.f, f.decimals));
        return;
    }
    if (f.type == MYSQL_TYPE_DOUBLE) {
        ZVAL_DOUBLE(out, c.v.d);
        return;
    }
    if (is_temporal_type(f.type)) return set_temporal(out, f, c.v.t);
    // Bytes: fetched into a string of the exact length.
    zend_string* s = zend_string_alloc(c.length, 0);
    if (c.length > 0) {
        unsigned long got = 0;
        my_bool is_null = 0, error = 0;
        MYSQL_BIND b{};
        b.buffer_type = MYSQL_TYPE_BLOB;
        b.buffer = ZSTR_VAL(s);
        b.buffer_length = c.length;
        b.length = &got;
        b.is_null = &is_null;
        b.error = &error;
        mysql_stmt_fetch_column(st, &b, col, 0);
    }
    ZSTR_VAL(s)[c.length] = '\0';
    if (f.type == MYSQL_TYPE_BIT) {
        set_bits(out, reinterpret_cast<const unsigned char*>(ZSTR_VAL(s)), ZSTR_LEN(s));
        zend_string_release(s);
        return;
    }
    ZVAL_STR(out, s);
}

void MysqlLink::make_names(const MYSQL_FIELD* fields, unsigned count) {
    names_.clear();
    for (unsigned i = 0; i < count; ++i)
        names_.push_back(zend_string_init(fields[i].name, fields[i].name_length, 0));
}

void MysqlLink::release_names() {
    for (zend_string* n : names_)
        zend_string_release(n);
    names_.clear();
}

// PHP left the row loop by longjmp (memory_limit): the request is gone, its
// Ops with it, and the connection sits in the middle of a result.
void MysqlLink::recover_interrupted_build() {
    if (!building_) return;
    building_ = false;
    names_.clear(); // emalloc'd: the request's heap reclaims them, maybe already did
    res_.reset();
    cur_.op = nullptr;
    queue_.clear();
    if (cur_.owned) orphans_.push_back(std::move(cur_.owned));
    cur_ = Current{};
    break_link(prefix() + "interrupted while reading a result");
}

// --------------------------------------------------------------------- reset

Step MysqlLink::reset_done() {
    if (ret_int_ != 0) {
        break_link(prefix() + "reset failed: " +
                   describe(mysql_errno(mysql_.get()), mysql_error(mysql_.get())));
        return Step::None;
    }
    // COM_RESET_CONNECTION deallocated them on the server and the library
    // detached them: closing them now is local.
    stmts_.clear();
    orphans_.clear();
    if (!init_command_.empty()) {
        cur_ = Current{};
        cur_.init_command = true;
        cur_.sql = init_command_;
        return Step::Query;
    }
    return restore_schema();
}

// A reset keeps the current database: put back dbname if a USE moved away.
// The library follows the schema through session tracking (MariaDB and MySQL
// track it by default); without tracking, select it every time.
Step MysqlLink::restore_schema() {
    if (dbname_.empty()) return next_work();
    MYSQL* m = mysql_.get();
    unsigned long caps = 0;
    mariadb_get_infov(m, MARIADB_CONNECTION_SERVER_CAPABILITIES, &caps);
    const char* current = nullptr;
    mariadb_get_infov(m, MARIADB_CONNECTION_SCHEMA, &current);
    if ((caps & CLIENT_SESSION_TRACKING) && current && dbname_ == current) return next_work();
    return Step::SelectDb;
}

// ------------------------------------------------------- failure and teardown

std::string MysqlLink::describe(unsigned err, const char* text) const {
    return std::string(text ? text : "") + " (errno " + std::to_string(err) + ")";
}

void MysqlLink::break_link(const std::string& message) {
    broken_ = true;
    broken_state_ = "08S01";
    error_ = message;
    if (cur_.op && !cur_.init_command) {
        zval_ptr_dtor(&cur_.op->result);
        ZVAL_UNDEF(&cur_.op->result);
        cur_.op->fail(broken_state_, message);
    }
    if (cur_.owned) orphans_.push_back(std::move(cur_.owned));
    cur_ = Current{};
    reset_pending_ = false;
    fail_queued(broken_state_, message);
}

void MysqlLink::fail_queued(const std::string& state, const std::string& message) {
    while (!queue_.empty()) {
        queue_.front()->fail(state, message);
        queue_.pop_front();
    }
}

// The socket while the library has one: during a connect the one being
// connected, after it the connection's (none once the library closed it).
int MysqlLink::live_fd() const {
    MYSQL* m = mysql_.get();
    if (!m) return -1;
    if (step_ == Step::Connect) return mysql_get_socket(m);
    unsigned int type = 0;
    if (mariadb_get_infov(m, MARIADB_CONNECTION_PVIO_TYPE, &type)) return -1;
    return mysql_get_socket(m);
}

// Puts the read end of an empty, writer-less pipe on the connection's
// descriptor number. Whatever the library does next fails at once there:
// send/recv/shutdown(2) with ENOTSOCK, OpenSSL's write(2) with EBADF, read(2)
// with end-of-file (an unconnected socket would not do: OpenSSL retries
// ENOTCONN forever). A forked child shares the parent's connection, and the
// COM_QUIT, TLS close_notify and shutdown(2) of a normal close would end the
// parent's session. If no pipe can be made, the descriptor is closed
// instead; the library's later calls then fail with EBADF (nothing in
// between opens a descriptor that could take the number).
void MysqlLink::neutralize_socket(int fd) {
    int ends[2];
    if (pipe2(ends, O_CLOEXEC) == 0) {
        ::close(ends[1]);
        int done = dup3(ends[0], fd, O_CLOEXEC);
        ::close(ends[0]);
        if (done >= 0) return;
    }
    ::close(fd);
}

// Ends the call in flight: MYSQL_WAIT_TIMEOUT makes the library fail the I/O
// it waits for, and the call unwinds, freeing what it allocated.
void MysqlLink::abort_step() {
    for (int i = 0; i < 64 && step_ != Step::None; ++i) {
        if (resume(step_, MYSQL_WAIT_TIMEOUT) != 0) continue;
        if (step_ == Step::Store && ret_res_) mysql_free_result(ret_res_);
        if (step_ == Step::StmtClose) closing_ = nullptr;
        ret_res_ = nullptr;
        step_ = Step::None;
    }
}

// COM_QUIT through the non-blocking close, given at most kGoodbyeMs.
void MysqlLink::say_goodbye() {
    int fd = live_fd();
    MYSQL* m = mysql_.release(); // mysql_close_start/_cont free it
    int w = mysql_close_start(m);
    uint64_t end = mono_ms() + kGoodbyeMs;
    while (w != 0) {
        uint64_t now = mono_ms();
        pollfd p{fd, poll_events(w), 0};
        int n = now < end ? poll(&p, 1, static_cast<int>(end - now)) : 0;
        w = mysql_close_cont(m, n > 0 ? wait_status_from(p.revents, w) : MYSQL_WAIT_TIMEOUT);
    }
}

void MysqlLink::close(bool graceful) {
    recover_interrupted_build();
    if (closed_) return;
    closed_ = true;
    if (!mysql_) return;
    bool goodbye = graceful && connected_ && !broken_ && step_ == Step::None;
    int fd = live_fd();
    if (!goodbye && fd >= 0) neutralize_socket(fd);
    abort_step();
    if (goodbye)
        say_goodbye();
    else
        mysql_.reset();
    // mysql_close detached the statements: freeing them sends nothing.
    stmts_.clear();
    orphans_.clear();
    if (error_.empty()) error_ = prefix() + "connection closed";
    if (cur_.op && !cur_.init_command) {
        zval_ptr_dtor(&cur_.op->result);
        ZVAL_UNDEF(&cur_.op->result);
        cur_.op->fail("08S01", error_);
    }
    cur_ = Current{};
    connected_ = false;
    reset_pending_ = false;
    fail_queued("08S01", error_);
}

} // namespace

LinkPtr make_mysql_link(const config::BackendConfig& backend, const std::string& pool) {
    return std::make_unique<MysqlLink>(backend, pool);
}

} // namespace lowphp::backends
