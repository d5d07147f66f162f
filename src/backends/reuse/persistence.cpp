// connections.reuse: the connect calls of ext/pgsql, PDO and mysqli are made
// persistent, so the connection outlives the request in the worker (PHP's own
// persistent lists hold it; reuse/kept.cpp keeps it clean). The app's code is
// not changed: each function's handler is swapped, in the zygote, for one that
// adds what persistence needs and calls the original.
#include <string>
#include <unordered_set>

#include "internal.h"

extern "C" {
#include "ext/mysqli/php_mysqli_structs.h"
#include "ext/pdo/php_pdo_driver.h"
#include "zend_exceptions.h"
}

namespace lowphp::reuse {
namespace {

constexpr zend_long kPdoAttrPersistent = 12; // PDO::ATTR_PERSISTENT
constexpr zend_long kPgsqlForceNew = 2;      // PGSQL_CONNECT_FORCE_NEW
constexpr zend_long kPgsqlAsync = 4;         // PGSQL_CONNECT_ASYNC

// A wrapped function's original, callable through zend_call_known_function.
struct Original {
    zend_internal_function fn{};
    bool present = false;
};
Original pdo_construct, mysqli_construct, mysqli_connect_method, mysqli_real_connect_method,
    mysqli_connect_fn, mysqli_real_connect_fn;
zif_handler pg_connect_handler = nullptr, pg_pconnect_handler = nullptr;

// ext/pgsql's PgSql\Connection object (PHP 8.2's pgsql_link_handle; the
// extension installs no header). Only read to learn which kept connection a
// pg_connect() returned; checked against the kept ones before use.
struct PgsqlLinkHandle {
    void* conn;
    zend_string* hash;
    HashTable* notices;
    bool persistent;
    zend_object std;
};

// PDO handles opened persistently in this request, by DSN and user: a second
// `new PDO` of the same while the first lives gets a connection of its own,
// as without reuse (it is not kept).
std::unordered_set<std::string> pdo_in_use;

size_t persistent_entries() {
    return zend_hash_num_elements(&EG(persistent_list));
}

// A new kept connection, or one taken from the worker's.
void count_connect(size_t before) {
    if (persistent_entries() == before) count(&PoolBoard::reuses);
}

void call_original(Original& o, zend_execute_data* execute_data, zval* return_value, uint32_t n,
                   zval* args) {
    zend_object* self = Z_TYPE(EX(This)) == IS_OBJECT ? Z_OBJ(EX(This)) : nullptr;
    HashTable* named = ZEND_CALL_INFO(execute_data) & ZEND_CALL_HAS_EXTRA_NAMED_PARAMS
                           ? execute_data->extra_named_params
                           : nullptr;
    zend_call_known_function(reinterpret_cast<zend_function*>(&o.fn), self,
                             self ? self->ce : nullptr, return_value, n, args, named);
}

// The call's arguments, padded with nulls up to `at_least`.
uint32_t copy_args(zend_execute_data* execute_data, zval* args, uint32_t at_least) {
    uint32_t n = ZEND_NUM_ARGS();
    for (uint32_t i = 0; i < n; ++i)
        ZVAL_COPY_VALUE(&args[i], ZEND_CALL_ARG(execute_data, i + 1));
    for (uint32_t i = n; i < at_least; ++i)
        ZVAL_NULL(&args[i]);
    return std::max(n, at_least);
}

// A connect the declared backend's cap refused: thrown as the driver's own
// connect failure (class `exception_class`, lower case), SQLSTATE HYT00 as
// the LowPHP\ API's wait timeout.
void refuse(const char* exception_class, const std::string& why) {
    auto* ce = static_cast<zend_class_entry*>(
        zend_hash_str_find_ptr(CG(class_table), exception_class, strlen(exception_class)));
    std::string message = "SQLSTATE[HYT00]: " + why;
    zend_object* e = zend_throw_exception(ce ? ce : zend_ce_exception, message.c_str(), 0);
    if (e && ce && strcmp(exception_class, "pdoexception") == 0) {
        zval code;
        ZVAL_STRING(&code, "HYT00"); // PDOException::getCode() is the SQLSTATE
        zend_update_property(ce, e, "code", 4, &code);
        zval_ptr_dtor(&code);
    }
}

bool pdo_driver_kept(const zval* dsn) {
    if (Z_TYPE_P(dsn) != IS_STRING) return false;
    return strncmp(Z_STRVAL_P(dsn), "pgsql:", 6) == 0 || strncmp(Z_STRVAL_P(dsn), "mysql:", 6) == 0;
}

// PDO::__construct($dsn, $username, $password, $options): ATTR_PERSISTENT
// added unless the app chose itself.
ZEND_NAMED_FUNCTION(pdo_construct_kept) {
    zval args[4];
    uint32_t given = ZEND_NUM_ARGS();
    if (given < 1 || given > 4 || !pdo_driver_kept(ZEND_CALL_ARG(execute_data, 1)))
        return call_original(pdo_construct, execute_data, return_value, given,
                             given ? ZEND_CALL_ARG(execute_data, 1) : nullptr);
    uint32_t n = copy_args(execute_data, args, 4);
    std::string key = std::string(Z_STRVAL(args[0])) + "\n" +
                      (Z_TYPE(args[1]) == IS_STRING ? Z_STRVAL(args[1]) : "");
    bool chosen = Z_TYPE(args[3]) == IS_ARRAY &&
                  zend_hash_index_exists(Z_ARRVAL(args[3]), kPdoAttrPersistent);
    zval options;
    ZVAL_UNDEF(&options);
    if (!chosen && pdo_in_use.insert(key).second) {
        if (Z_TYPE(args[3]) == IS_ARRAY)
            ZVAL_ARR(&options, zend_array_dup(Z_ARRVAL(args[3])));
        else
            array_init(&options);
        add_index_bool(&options, kPdoAttrPersistent, true);
        ZVAL_COPY_VALUE(&args[3], &options);
    }
    Admission admission;
    std::string cap_key = key + "\n" + (Z_TYPE(args[2]) == IS_STRING ? Z_STRVAL(args[2]) : "");
    if (!Z_ISUNDEF(options)) {
        admission = admit(
            [&] {
                return pdo_target(Z_STRVAL(args[0]),
                                  Z_TYPE(args[1]) == IS_STRING ? Z_STRVAL(args[1]) : "");
            },
            cap_key);
        if (!admission.refused.empty()) {
            zval_ptr_dtor(&options);
            return refuse("pdoexception", admission.refused);
        }
    }
    size_t before = persistent_entries();
    call_original(pdo_construct, execute_data, return_value, n, args);
    zval_ptr_dtor(&options);
    if (Z_ISUNDEF(options)) return;
    pdo_dbh_t* dbh = EG(exception) ? nullptr : Z_PDO_DBH_P(&EX(This));
    admitted(admission, dbh, cap_key, dbh && dbh->is_persistent);
    if (!dbh) return;
    count_connect(before);
    mark_used(dbh);
}

// The client handle behind a mysqli object (null before it connected).
const void* mysqli_handle(const zval* obj) {
    if (!obj || Z_TYPE_P(obj) != IS_OBJECT) return nullptr;
    auto* res = static_cast<MYSQLI_RESOURCE*>(php_mysqli_fetch_object(Z_OBJ_P(obj))->ptr);
    auto* my = res ? static_cast<MY_MYSQL*>(res->ptr) : nullptr;
    return my ? my->mysql : nullptr;
}

// The user, password and database after the host, as mysqli reads them
// (null or missing: its INI defaults; no database: none).
MysqliLogin login_of(const zval* host) {
    auto text = [](const zval* v, const char* ini) {
        if (v && Z_TYPE_P(v) == IS_STRING) return std::string(Z_STRVAL_P(v), Z_STRLEN_P(v));
        const char* d = ini ? INI_STR(ini) : nullptr;
        return std::string(d ? d : "");
    };
    MysqliLogin l;
    l.user = text(host + 1, "mysqli.default_user");
    l.password = text(host + 2, "mysqli.default_pw");
    l.has_db = Z_TYPE_P(host + 3) == IS_STRING;
    l.db = text(host + 3, nullptr);
    return l;
}

// mysqli's connects: "p:" before the host makes mysqli keep the link in its
// persistent pool (and reset it with COM_CHANGE_USER when it is taken again).
// `link_at`: the argument holding the mysqli object (-1: $this, -2: the
// return value).
void mysqli_kept(Original& o, zend_execute_data* execute_data, zval* return_value, uint32_t host_at,
                 int link_at) {
    uint32_t given = ZEND_NUM_ARGS();
    zval args[16];
    if (given <= host_at || given > 12)
        return call_original(o, execute_data, return_value, given,
                             given ? ZEND_CALL_ARG(execute_data, 1) : nullptr);
    copy_args(execute_data, args, host_at + 5); // nulls after the given ones, for login_of
    uint32_t n = given;
    zval host;
    ZVAL_UNDEF(&host);
    zval* given_host = &args[host_at];
    bool already =
        Z_TYPE_P(given_host) == IS_STRING && strncmp(Z_STRVAL_P(given_host), "p:", 2) == 0;
    if (!already) {
        const char* name = Z_TYPE_P(given_host) == IS_STRING && Z_STRLEN_P(given_host)
                               ? Z_STRVAL_P(given_host)
                               : INI_STR("mysqli.default_host");
        ZVAL_STR(&host, zend_strpprintf(0, "p:%s", name && *name ? name : "localhost"));
        ZVAL_COPY_VALUE(given_host, &host);
    }
    MysqliLogin login = login_of(&args[host_at]);
    const zval* port = &args[host_at + 4];
    std::string port_text = Z_TYPE_P(port) == IS_LONG        ? std::to_string(Z_LVAL_P(port))
                            : INI_STR("mysqli.default_port") ? INI_STR("mysqli.default_port")
                                                             : "";
    std::string host_text = Z_STRVAL_P(given_host);
    std::string cap_key =
        host_text + "\n" + login.user + "\n" + login.password + "\n" + login.db + "\n" + port_text;
    Admission admission =
        admit([&] { return mysqli_target(host_text, login.user, login.db, port_text); }, cap_key);
    if (!admission.refused.empty()) {
        zval_ptr_dtor(&host);
        return refuse("mysqli_sql_exception", admission.refused);
    }
    size_t waiting = mysqli_free_links();
    mysqli_taking(true);
    call_original(o, execute_data, return_value, n, args);
    mysqli_taking(false);
    zval_ptr_dtor(&host);
    if (mysqli_free_links() < waiting) count(&PoolBoard::reuses);
    const zval* link = link_at == -1   ? &EX(This)
                       : link_at == -2 ? return_value
                                       : ZEND_CALL_ARG(execute_data, link_at + 1);
    const void* handle = EG(exception) ? nullptr : mysqli_handle(link);
    admitted(admission, handle, cap_key, handle != nullptr);
    if (!handle) return;
    mark_used(handle);
    remember_login(handle, std::move(login));
}

ZEND_NAMED_FUNCTION(mysqli_construct_kept) {
    mysqli_kept(mysqli_construct, execute_data, return_value, 0, -1);
}
ZEND_NAMED_FUNCTION(mysqli_connect_method_kept) {
    mysqli_kept(mysqli_connect_method, execute_data, return_value, 0, -1);
}
ZEND_NAMED_FUNCTION(mysqli_real_connect_method_kept) {
    mysqli_kept(mysqli_real_connect_method, execute_data, return_value, 0, -1);
}
ZEND_NAMED_FUNCTION(mysqli_connect_fn_kept) {
    mysqli_kept(mysqli_connect_fn, execute_data, return_value, 0, -2);
}
ZEND_NAMED_FUNCTION(mysqli_real_connect_fn_kept) {
    mysqli_kept(mysqli_real_connect_fn, execute_data, return_value, 1, 0);
}

// pg_connect($conninfo, $flags): pg_pconnect's handler takes the same
// arguments; a connection asked to be new or asynchronous stays as asked.
ZEND_NAMED_FUNCTION(pg_connect_kept) {
    zval* flags = ZEND_NUM_ARGS() >= 2 ? ZEND_CALL_ARG(execute_data, 2) : nullptr;
    if (flags && Z_TYPE_P(flags) == IS_LONG && (Z_LVAL_P(flags) & (kPgsqlForceNew | kPgsqlAsync)))
        return pg_connect_handler(INTERNAL_FUNCTION_PARAM_PASSTHRU);
    zval* conninfo = ZEND_NUM_ARGS() >= 1 ? ZEND_CALL_ARG(execute_data, 1) : nullptr;
    std::string cap_key = conninfo && Z_TYPE_P(conninfo) == IS_STRING ? Z_STRVAL_P(conninfo) : "";
    Admission admission;
    if (!cap_key.empty() && ZEND_NUM_ARGS() <= 2) {
        // pg_pconnect hands the same link to every pg_connect of a request.
        admission = admit([&] { return pgsql_target(cap_key, ""); }, cap_key, true);
        if (!admission.refused.empty()) {
            php_error_docref(nullptr, E_WARNING, "Unable to connect to PostgreSQL server: %s",
                             admission.refused.c_str());
            RETURN_FALSE;
        }
    }
    size_t before = persistent_entries();
    pg_pconnect_handler(INTERNAL_FUNCTION_PARAM_PASSTHRU);
    PgsqlLinkHandle* link = nullptr;
    if (!EG(exception) && Z_TYPE_P(return_value) == IS_OBJECT)
        link = reinterpret_cast<PgsqlLinkHandle*>(reinterpret_cast<char*>(Z_OBJ_P(return_value)) -
                                                  XtOffsetOf(PgsqlLinkHandle, std));
    admitted(admission, link ? link->conn : nullptr, cap_key, link && link->persistent);
    if (!link) return;
    count_connect(before);
    if (link->persistent && link->conn)
        mark_used(link->conn);
    else
        mark_every_pg_link_used();
}

zend_function* find(HashTable* table, const char* name) {
    return static_cast<zend_function*>(zend_hash_str_find_ptr(table, name, strlen(name)));
}

HashTable* methods_of(const char* class_name) {
    auto* ce = static_cast<zend_class_entry*>(
        zend_hash_str_find_ptr(CG(class_table), class_name, strlen(class_name)));
    return ce ? &ce->function_table : nullptr;
}

void wrap(HashTable* table, const char* name, Original& o, zif_handler with) {
    zend_function* f = table ? find(table, name) : nullptr;
    if (!f || f->type != ZEND_INTERNAL_FUNCTION) return;
    o.fn = f->internal_function;
    o.present = true;
    f->internal_function.handler = with;
}

} // namespace

void forget_request_handles() {
    pdo_in_use.clear();
}

void wrap_connect_functions() {
    wrap(methods_of("pdo"), "__construct", pdo_construct, pdo_construct_kept);
    HashTable* mysqli = methods_of("mysqli");
    wrap(mysqli, "__construct", mysqli_construct, mysqli_construct_kept);
    wrap(mysqli, "connect", mysqli_connect_method, mysqli_connect_method_kept);
    wrap(mysqli, "real_connect", mysqli_real_connect_method, mysqli_real_connect_method_kept);
    wrap(CG(function_table), "mysqli_connect", mysqli_connect_fn, mysqli_connect_fn_kept);
    wrap(CG(function_table), "mysqli_real_connect", mysqli_real_connect_fn,
         mysqli_real_connect_fn_kept);
    zend_function* connect = find(CG(function_table), "pg_connect");
    zend_function* pconnect = find(CG(function_table), "pg_pconnect");
    if (connect && pconnect) {
        pg_connect_handler = connect->internal_function.handler;
        pg_pconnect_handler = pconnect->internal_function.handler;
        connect->internal_function.handler = pg_connect_kept;
    }
}

} // namespace lowphp::reuse
