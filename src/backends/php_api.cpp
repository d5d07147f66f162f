// The LowPHP\ API: pgsql()/mysql()/redis() handles, queries and commands,
// async calls and await(), transactions, BackendException. A module of its
// own ("lowphp"), registered only in pools that declare backends.
#include "internal.h"
#include "lowphp/backends.h"

extern "C" {
#include "SAPI.h"
#include "ext/spl/spl_exceptions.h"
#include "zend_exceptions.h"
#include "zend_interfaces.h"
}

namespace lowphp::backends {
namespace {

zend_class_entry *pgsql_ce, *mysql_ce, *redis_ce, *pending_ce, *exception_ce;
zend_object_handlers handle_handlers, pending_handlers;

// A handle is only a backend's index, never a connection: one kept across
// requests (worker mode) resolves the current request's lease at each call.
struct HandleObj {
    uint32_t backend;
    zend_object std;
};
struct PendingObj {
    Op* op;
    uint64_t generation; // the request that made it
    uint32_t backend;
    zend_object std;
};

HandleObj* handle_of(zend_object* o) {
    return reinterpret_cast<HandleObj*>(reinterpret_cast<char*>(o) - XtOffsetOf(HandleObj, std));
}
PendingObj* pending_of(zend_object* o) {
    return reinterpret_cast<PendingObj*>(reinterpret_cast<char*>(o) - XtOffsetOf(PendingObj, std));
}

zend_object* create_handle(zend_class_entry* ce) {
    auto* h = static_cast<HandleObj*>(zend_object_alloc(sizeof(HandleObj), ce));
    zend_object_std_init(&h->std, ce);
    h->std.handlers = &handle_handlers;
    return &h->std;
}

zend_object* create_pending(zend_class_entry* ce) {
    auto* p = static_cast<PendingObj*>(zend_object_alloc(sizeof(PendingObj), ce));
    zend_object_std_init(&p->std, ce);
    p->std.handlers = &pending_handlers;
    return &p->std;
}

zend_function* no_constructor(zend_object* o) {
    zend_throw_error(nullptr, "Cannot directly construct %s, use %s()", ZSTR_VAL(o->ce->name),
                     o->ce == pgsql_ce   ? "LowPHP\\pgsql"
                     : o->ce == mysql_ce ? "LowPHP\\mysql"
                     : o->ce == redis_ce ? "LowPHP\\redis"
                                         : "LowPHP\\Pgsql::queryAsync");
    return nullptr;
}

// A BackendException: the server's message, its SQLSTATE as getCode() (a
// string, as PDOException's), the backend's name.
zend_object* make_exception(const std::string& backend, const std::string& sqlstate,
                            const std::string& message) {
    zval ex;
    object_init_ex(&ex, exception_ce);
    zend_object* o = Z_OBJ(ex);
    zend_update_property_stringl(zend_ce_exception, o, "message", 7, message.data(),
                                 message.size());
    zend_update_property_stringl(zend_ce_exception, o, "code", 4, sqlstate.data(), sqlstate.size());
    zend_update_property_stringl(exception_ce, o, "backend", 7, backend.data(), backend.size());
    if (Worker* w = worker())
        if (Backend* b = w->find(backend)) b->table->errors.fetch_add(1);
    return o;
}

void throw_object(zend_object* o) {
    zval z;
    ZVAL_OBJ(&z, o);
    zend_throw_exception_object(&z);
}

void throw_failure(const std::string& backend, const Op& op) {
    throw_object(make_exception(backend, op.sqlstate, op.message));
}

void throw_plain(const std::string& backend, const char* sqlstate, const std::string& message) {
    throw_object(make_exception(backend, sqlstate, message));
}

bool to_param(zval* v, Param& p) {
    switch (Z_TYPE_P(v)) {
    case IS_NULL:
        p.type = Param::Type::Null;
        return true;
    case IS_LONG:
        p.type = Param::Type::Int;
        p.i = Z_LVAL_P(v);
        return true;
    case IS_DOUBLE:
        p.type = Param::Type::Float;
        p.d = Z_DVAL_P(v);
        return true;
    case IS_TRUE:
    case IS_FALSE:
        p.type = Param::Type::Bool;
        p.b = Z_TYPE_P(v) == IS_TRUE;
        return true;
    case IS_STRING:
        p.type = Param::Type::String;
        p.s.assign(Z_STRVAL_P(v), Z_STRLEN_P(v));
        return true;
    default:
        return false;
    }
}

Backend* backend_of(zend_object* handle) {
    Worker* w = worker();
    uint32_t i = handle_of(handle)->backend;
    return w && i < w->all().size() ? &w->all()[i] : nullptr;
}

// Leases the backend and queues `op` on it; a lease that failed settles the
// op with its error at once (thrown when awaited).
void submit(Backend& b, Op* op) {
    if (!b.leased && SG(request_info).path_translated)
        worker()->set_script(SG(request_info).path_translated);
    std::string sqlstate;
    std::string err = worker()->lease(b, sqlstate);
    if (!err.empty()) {
        op->fail(sqlstate, "[" + std::string(config::backend_kind_name(b.cfg->kind)) + " " +
                               b.cfg->name + "] " + err);
        return;
    }
    b.link->submit(op);
}

// A Pending for `op` in `return_value`.
void return_pending(zval* return_value, Op* op, uint32_t backend) {
    object_init_ex(return_value, pending_ce);
    PendingObj* p = pending_of(Z_OBJ_P(return_value));
    p->op = op;
    p->generation = worker()->request_generation();
    p->backend = backend;
}

// Builds and submits an SQL op from (string $sql, array $params): nullptr
// after throwing a TypeError.
Op* sql_op(zend_object* self, zend_string* sql, HashTable* params, Op::Kind kind) {
    Backend* b = backend_of(self);
    if (!b) {
        zend_throw_error(nullptr, "LowPHP: no backends in this worker");
        return nullptr;
    }
    Op* op = worker()->new_op();
    op->kind = kind;
    op->sql.assign(ZSTR_VAL(sql), ZSTR_LEN(sql));
    if (params) {
        zend_ulong index;
        zend_string* key;
        zval* v;
        ZEND_HASH_FOREACH_KEY_VAL(params, index, key, v) {
            ZVAL_DEREF(v);
            Param p;
            if (!to_param(v, p)) {
                std::string at = key ? std::string(ZSTR_VAL(key)) : std::to_string(index);
                zend_type_error("Parameter %s must be int, float, bool, null or string, %s given",
                                at.c_str(), zend_zval_type_name(v));
                return nullptr;
            }
            op->params.push_back(std::move(p));
        }
        ZEND_HASH_FOREACH_END();
    }
    submit(*b, op);
    return op;
}

// Runs until `ops` settled; true if none failed.
void settle(const std::vector<Op*>& ops) {
    worker()->run_until([&] {
        for (Op* op : ops)
            if (!op->settled) return false;
        return true;
    });
    for (Op* op : ops)
        if (!op->settled) op->fail("HY000", "the connection stopped answering");
}

// The result of one op into return_value, or its exception.
void return_result(zval* return_value, Op* op, const std::string& backend) {
    settle({op});
    if (op->failed) return throw_failure(backend, *op);
    RETURN_COPY(&op->result);
}

void run_sql(INTERNAL_FUNCTION_PARAMETERS, Op::Kind kind, bool async) {
    zend_string* sql;
    HashTable* params = nullptr;
    ZEND_PARSE_PARAMETERS_START(1, 2)
    Z_PARAM_STR(sql)
    Z_PARAM_OPTIONAL
    Z_PARAM_ARRAY_HT(params)
    ZEND_PARSE_PARAMETERS_END();
    Op* op = sql_op(Z_OBJ_P(ZEND_THIS), sql, params, kind);
    if (!op) return;
    if (async) return return_pending(return_value, op, handle_of(Z_OBJ_P(ZEND_THIS))->backend);
    return_result(return_value, op, backend_of(Z_OBJ_P(ZEND_THIS))->cfg->name);
}

// BEGIN / COMMIT / ROLLBACK and savepoints, as statements on the lease.
bool run_statement(zend_object* self, const std::string& sql) {
    Backend* b = backend_of(self);
    Op* op = worker()->new_op();
    op->kind = Op::Kind::Execute;
    op->sql = sql;
    submit(*b, op);
    settle({op});
    if (op->failed) throw_failure(b->cfg->name, *op);
    return !op->failed;
}

bool in_transaction(zend_object* self) {
    Backend* b = backend_of(self);
    return b && b->leased && b->link && b->link->in_transaction();
}

const char* begin_sql(zend_object* self) {
    return backend_of(self)->cfg->kind == config::BackendKind::Mysql ? "START TRANSACTION"
                                                                     : "BEGIN";
}

} // namespace
} // namespace lowphp::backends

using namespace lowphp::backends;

// ---------------------------------------------------------------- functions

static void new_handle(INTERNAL_FUNCTION_PARAMETERS, lowphp::config::BackendKind kind,
                       zend_class_entry* ce) {
    zend_string* name;
    ZEND_PARSE_PARAMETERS_START(1, 1)
    Z_PARAM_STR(name)
    ZEND_PARSE_PARAMETERS_END();
    Worker* w = worker();
    std::string wanted(ZSTR_VAL(name), ZSTR_LEN(name));
    const char* kind_name = lowphp::config::backend_kind_name(kind);
    for (uint32_t i = 0; w && i < w->all().size(); ++i) {
        if (w->all()[i].cfg->name != wanted || w->all()[i].cfg->kind != kind) continue;
        object_init_ex(return_value, ce);
        handle_of(Z_OBJ_P(return_value))->backend = i;
        return;
    }
    throw_plain(wanted, "HY000",
                std::string("no ") + kind_name + " backend '" + wanted + "' in pool " +
                    (w ? w->pool_name() : std::string("(none)")) + " (declare " + kind_name + "[" +
                    wanted + "] in the pool)");
}

static ZEND_NAMED_FUNCTION(zif_lowphp_pgsql) {
    new_handle(INTERNAL_FUNCTION_PARAM_PASSTHRU, lowphp::config::BackendKind::Pgsql, pgsql_ce);
}
static ZEND_NAMED_FUNCTION(zif_lowphp_mysql) {
    new_handle(INTERNAL_FUNCTION_PARAM_PASSTHRU, lowphp::config::BackendKind::Mysql, mysql_ce);
}
static ZEND_NAMED_FUNCTION(zif_lowphp_redis) {
    new_handle(INTERNAL_FUNCTION_PARAM_PASSTHRU, lowphp::config::BackendKind::Redis, redis_ce);
}

// await(array $pending): array — every call settles (concurrently across
// backends), results under the same keys; then the first failure in array
// order is thrown, getFailures() holding every failed key.
static ZEND_NAMED_FUNCTION(zif_lowphp_await) {
    HashTable* pending;
    ZEND_PARSE_PARAMETERS_START(1, 1)
    Z_PARAM_ARRAY_HT(pending)
    ZEND_PARSE_PARAMETERS_END();
    std::vector<Op*> ops;
    std::vector<PendingObj*> objs;
    zval* v;
    ZEND_HASH_FOREACH_VAL(pending, v) {
        ZVAL_DEREF(v);
        if (Z_TYPE_P(v) != IS_OBJECT || Z_OBJCE_P(v) != pending_ce) {
            zend_argument_type_error(1, "must contain only LowPHP\\Pending objects, %s given",
                                     zend_zval_type_name(v));
            RETURN_THROWS();
        }
        PendingObj* p = pending_of(Z_OBJ_P(v));
        if (!worker() || p->generation != worker()->request_generation()) {
            throw_plain("", "HY000", "stale LowPHP\\Pending: created by an earlier request");
            RETURN_THROWS();
        }
        objs.push_back(p);
        ops.push_back(p->op);
    }
    ZEND_HASH_FOREACH_END();
    settle(ops);
    array_init_size(return_value, zend_hash_num_elements(pending));
    zval failures, first;
    array_init(&failures);
    ZVAL_UNDEF(&first);
    zend_ulong index;
    zend_string* key;
    size_t i = 0;
    ZEND_HASH_FOREACH_KEY_VAL(pending, index, key, v) {
        Op* op = ops[i];
        const std::string& name = worker()->all()[objs[i++]->backend].cfg->name;
        zval item;
        if (op->failed) {
            ZVAL_OBJ(&item, make_exception(name, op->sqlstate, op->message));
            if (Z_ISUNDEF(first)) ZVAL_COPY(&first, &item);
            key ? zend_hash_update(Z_ARRVAL(failures), key, &item)
                : zend_hash_index_update(Z_ARRVAL(failures), index, &item);
            continue;
        }
        ZVAL_COPY(&item, &op->result);
        key ? zend_hash_update(Z_ARRVAL_P(return_value), key, &item)
            : zend_hash_index_update(Z_ARRVAL_P(return_value), index, &item);
    }
    ZEND_HASH_FOREACH_END();
    if (Z_ISUNDEF(first)) {
        zval_ptr_dtor(&failures);
        return;
    }
    zend_update_property(exception_ce, Z_OBJ(first), "failures", 8, &failures);
    zval_ptr_dtor(&failures);
    zval_ptr_dtor(return_value);
    ZVAL_NULL(return_value);
    zend_throw_exception_object(&first);
}

// ---------------------------------------------------------------- SQL methods

static ZEND_NAMED_FUNCTION(zim_sql_query) {
    run_sql(INTERNAL_FUNCTION_PARAM_PASSTHRU, Op::Kind::Query, false);
}
static ZEND_NAMED_FUNCTION(zim_sql_execute) {
    run_sql(INTERNAL_FUNCTION_PARAM_PASSTHRU, Op::Kind::Execute, false);
}
static ZEND_NAMED_FUNCTION(zim_sql_queryAsync) {
    run_sql(INTERNAL_FUNCTION_PARAM_PASSTHRU, Op::Kind::Query, true);
}
static ZEND_NAMED_FUNCTION(zim_sql_executeAsync) {
    run_sql(INTERNAL_FUNCTION_PARAM_PASSTHRU, Op::Kind::Execute, true);
}

static ZEND_NAMED_FUNCTION(zim_sql_begin) {
    ZEND_PARSE_PARAMETERS_NONE();
    if (in_transaction(Z_OBJ_P(ZEND_THIS))) {
        throw_plain(backend_of(Z_OBJ_P(ZEND_THIS))->cfg->name, "25001",
                    "There is already an active transaction");
        RETURN_THROWS();
    }
    run_statement(Z_OBJ_P(ZEND_THIS), begin_sql(Z_OBJ_P(ZEND_THIS)));
}

static void end_transaction(INTERNAL_FUNCTION_PARAMETERS, const char* sql) {
    ZEND_PARSE_PARAMETERS_NONE();
    if (!in_transaction(Z_OBJ_P(ZEND_THIS))) {
        throw_plain(backend_of(Z_OBJ_P(ZEND_THIS))->cfg->name, "25000",
                    "There is no active transaction");
        RETURN_THROWS();
    }
    run_statement(Z_OBJ_P(ZEND_THIS), sql);
}
static ZEND_NAMED_FUNCTION(zim_sql_commit) {
    end_transaction(INTERNAL_FUNCTION_PARAM_PASSTHRU, "COMMIT");
}
static ZEND_NAMED_FUNCTION(zim_sql_rollback) {
    end_transaction(INTERNAL_FUNCTION_PARAM_PASSTHRU, "ROLLBACK");
}

// transaction(callable $fn): $fn($handle) inside BEGIN…COMMIT, rolled back if
// it throws (the exception goes on); nested calls use savepoints.
static ZEND_NAMED_FUNCTION(zim_sql_transaction) {
    zend_fcall_info fci;
    zend_fcall_info_cache fcc;
    ZEND_PARSE_PARAMETERS_START(1, 1)
    Z_PARAM_FUNC(fci, fcc)
    ZEND_PARSE_PARAMETERS_END();
    zend_object* self = Z_OBJ_P(ZEND_THIS);
    static int depth = 0;
    bool nested = in_transaction(self);
    std::string savepoint = "lowphp_sp" + std::to_string(depth + 1);
    if (!run_statement(self, nested ? "SAVEPOINT " + savepoint : begin_sql(self))) return;
    ++depth;
    zval arg, retval;
    ZVAL_OBJ_COPY(&arg, self);
    fci.retval = &retval;
    fci.params = &arg;
    fci.param_count = 1;
    zend_result called = zend_call_function(&fci, &fcc);
    --depth;
    zval_ptr_dtor(&arg);
    if (called != SUCCESS || EG(exception)) {
        zend_object* pending = EG(exception);
        EG(exception) = nullptr; // the rollback runs; then the app's exception goes on
        run_statement(self, nested ? "ROLLBACK TO SAVEPOINT " + savepoint : "ROLLBACK");
        if (EG(exception))
            zend_exception_set_previous(EG(exception), pending);
        else
            EG(exception) = pending;
        if (called == SUCCESS) zval_ptr_dtor(&retval);
        return;
    }
    if (!run_statement(self, nested ? "RELEASE SAVEPOINT " + savepoint : "COMMIT")) {
        zval_ptr_dtor(&retval);
        return;
    }
    RETURN_COPY_VALUE(&retval);
}

// ---------------------------------------------------------------- Redis

static void redis_call(INTERNAL_FUNCTION_PARAMETERS, bool async) {
    zend_string* command;
    zval* args = nullptr;
    uint32_t count = 0;
    ZEND_PARSE_PARAMETERS_START(1, -1)
    Z_PARAM_STR(command)
    Z_PARAM_VARIADIC('*', args, count)
    ZEND_PARSE_PARAMETERS_END();
    Backend* b = backend_of(Z_OBJ_P(ZEND_THIS));
    Op* op = worker()->new_op();
    op->kind = Op::Kind::Command;
    op->args.emplace_back(ZSTR_VAL(command), ZSTR_LEN(command));
    for (uint32_t i = 0; i < count; ++i) {
        zend_string* s = zval_try_get_string(&args[i]);
        if (!s) RETURN_THROWS();
        op->args.emplace_back(ZSTR_VAL(s), ZSTR_LEN(s));
        zend_string_release(s);
    }
    submit(*b, op);
    if (async) return return_pending(return_value, op, handle_of(Z_OBJ_P(ZEND_THIS))->backend);
    return_result(return_value, op, b->cfg->name);
}
static ZEND_NAMED_FUNCTION(zim_redis_call) {
    redis_call(INTERNAL_FUNCTION_PARAM_PASSTHRU, false);
}
static ZEND_NAMED_FUNCTION(zim_redis_callAsync) {
    redis_call(INTERNAL_FUNCTION_PARAM_PASSTHRU, true);
}

// ---------------------------------------------------------------- BackendException

static ZEND_NAMED_FUNCTION(zim_exception_getBackend) {
    ZEND_PARSE_PARAMETERS_NONE();
    zval rv;
    RETURN_COPY_DEREF(zend_read_property(exception_ce, Z_OBJ_P(ZEND_THIS), "backend", 7, 1, &rv));
}
static ZEND_NAMED_FUNCTION(zim_exception_getFailures) {
    ZEND_PARSE_PARAMETERS_NONE();
    zval rv;
    RETURN_COPY_DEREF(zend_read_property(exception_ce, Z_OBJ_P(ZEND_THIS), "failures", 8, 1, &rv));
}

// ---------------------------------------------------------------- tables
// clang-format off
ZEND_BEGIN_ARG_WITH_RETURN_OBJ_INFO_EX(arginfo_pgsql, 0, 1, LowPHP\\Pgsql, 0)
ZEND_ARG_TYPE_INFO(0, name, IS_STRING, 0)
ZEND_END_ARG_INFO()
ZEND_BEGIN_ARG_WITH_RETURN_OBJ_INFO_EX(arginfo_mysql, 0, 1, LowPHP\\Mysql, 0)
ZEND_ARG_TYPE_INFO(0, name, IS_STRING, 0)
ZEND_END_ARG_INFO()
ZEND_BEGIN_ARG_WITH_RETURN_OBJ_INFO_EX(arginfo_redis, 0, 1, LowPHP\\Redis, 0)
ZEND_ARG_TYPE_INFO(0, name, IS_STRING, 0)
ZEND_END_ARG_INFO()
ZEND_BEGIN_ARG_WITH_RETURN_TYPE_INFO_EX(arginfo_await, 0, 1, IS_ARRAY, 0)
ZEND_ARG_TYPE_INFO(0, pending, IS_ARRAY, 0)
ZEND_END_ARG_INFO()
ZEND_BEGIN_ARG_WITH_RETURN_TYPE_INFO_EX(arginfo_query, 0, 1, IS_ARRAY, 0)
ZEND_ARG_TYPE_INFO(0, sql, IS_STRING, 0)
ZEND_ARG_TYPE_INFO_WITH_DEFAULT_VALUE(0, params, IS_ARRAY, 0, "[]")
ZEND_END_ARG_INFO()
ZEND_BEGIN_ARG_WITH_RETURN_TYPE_INFO_EX(arginfo_execute, 0, 1, IS_LONG, 0)
ZEND_ARG_TYPE_INFO(0, sql, IS_STRING, 0)
ZEND_ARG_TYPE_INFO_WITH_DEFAULT_VALUE(0, params, IS_ARRAY, 0, "[]")
ZEND_END_ARG_INFO()
ZEND_BEGIN_ARG_WITH_RETURN_OBJ_INFO_EX(arginfo_sql_async, 0, 1, LowPHP\\Pending, 0)
ZEND_ARG_TYPE_INFO(0, sql, IS_STRING, 0)
ZEND_ARG_TYPE_INFO_WITH_DEFAULT_VALUE(0, params, IS_ARRAY, 0, "[]")
ZEND_END_ARG_INFO()
ZEND_BEGIN_ARG_WITH_RETURN_TYPE_INFO_EX(arginfo_void, 0, 0, IS_VOID, 0)
ZEND_END_ARG_INFO()
ZEND_BEGIN_ARG_WITH_RETURN_TYPE_INFO_EX(arginfo_transaction, 0, 1, IS_MIXED, 0)
ZEND_ARG_TYPE_INFO(0, fn, IS_CALLABLE, 0)
ZEND_END_ARG_INFO()
ZEND_BEGIN_ARG_WITH_RETURN_TYPE_INFO_EX(arginfo_call, 0, 1, IS_MIXED, 0)
ZEND_ARG_TYPE_INFO(0, command, IS_STRING, 0)
ZEND_ARG_VARIADIC_TYPE_INFO(0, args, IS_STRING, 0)
ZEND_END_ARG_INFO()
ZEND_BEGIN_ARG_WITH_RETURN_OBJ_INFO_EX(arginfo_call_async, 0, 1, LowPHP\\Pending, 0)
ZEND_ARG_TYPE_INFO(0, command, IS_STRING, 0)
ZEND_ARG_VARIADIC_TYPE_INFO(0, args, IS_STRING, 0)
ZEND_END_ARG_INFO()
ZEND_BEGIN_ARG_WITH_RETURN_TYPE_INFO_EX(arginfo_get_backend, 0, 0, IS_STRING, 0)
ZEND_END_ARG_INFO()
ZEND_BEGIN_ARG_WITH_RETURN_TYPE_INFO_EX(arginfo_get_failures, 0, 0, IS_ARRAY, 0)
ZEND_END_ARG_INFO()

static const zend_function_entry lowphp_functions[] = {
    ZEND_NS_NAMED_FE("LowPHP", pgsql, zif_lowphp_pgsql, arginfo_pgsql)
    ZEND_NS_NAMED_FE("LowPHP", mysql, zif_lowphp_mysql, arginfo_mysql)
    ZEND_NS_NAMED_FE("LowPHP", redis, zif_lowphp_redis, arginfo_redis)
    ZEND_NS_NAMED_FE("LowPHP", await, zif_lowphp_await, arginfo_await)
    ZEND_FE_END,
};

static const zend_function_entry sql_methods[] = {
    ZEND_RAW_FENTRY("query", zim_sql_query, arginfo_query, ZEND_ACC_PUBLIC)
    ZEND_RAW_FENTRY("execute", zim_sql_execute, arginfo_execute, ZEND_ACC_PUBLIC)
    ZEND_RAW_FENTRY("queryAsync", zim_sql_queryAsync, arginfo_sql_async, ZEND_ACC_PUBLIC)
    ZEND_RAW_FENTRY("executeAsync", zim_sql_executeAsync, arginfo_sql_async, ZEND_ACC_PUBLIC)
    ZEND_RAW_FENTRY("begin", zim_sql_begin, arginfo_void, ZEND_ACC_PUBLIC)
    ZEND_RAW_FENTRY("commit", zim_sql_commit, arginfo_void, ZEND_ACC_PUBLIC)
    ZEND_RAW_FENTRY("rollback", zim_sql_rollback, arginfo_void, ZEND_ACC_PUBLIC)
    ZEND_RAW_FENTRY("transaction", zim_sql_transaction, arginfo_transaction, ZEND_ACC_PUBLIC)
    ZEND_FE_END,
};

static const zend_function_entry redis_methods[] = {
    ZEND_RAW_FENTRY("call", zim_redis_call, arginfo_call, ZEND_ACC_PUBLIC)
    ZEND_RAW_FENTRY("callAsync", zim_redis_callAsync, arginfo_call_async, ZEND_ACC_PUBLIC)
    ZEND_FE_END,
};

static const zend_function_entry exception_methods[] = {
    ZEND_RAW_FENTRY("getBackend", zim_exception_getBackend, arginfo_get_backend, ZEND_ACC_PUBLIC)
    ZEND_RAW_FENTRY("getFailures", zim_exception_getFailures, arginfo_get_failures, ZEND_ACC_PUBLIC)
    ZEND_FE_END,
};
// clang-format on

static zend_class_entry* register_final(const char* name, const zend_function_entry* methods,
                                        zend_object* (*create)(zend_class_entry*)) {
    zend_class_entry ce;
    INIT_CLASS_ENTRY_EX(ce, name, strlen(name), methods);
    zend_class_entry* out = zend_register_internal_class_ex(&ce, nullptr);
    out->ce_flags |= ZEND_ACC_FINAL | ZEND_ACC_NO_DYNAMIC_PROPERTIES | ZEND_ACC_NOT_SERIALIZABLE;
    out->create_object = create;
    return out;
}

static PHP_MINIT_FUNCTION(lowphp) {
    (void)type;
    (void)module_number;
    memcpy(&handle_handlers, &std_object_handlers, sizeof handle_handlers);
    handle_handlers.offset = XtOffsetOf(HandleObj, std);
    handle_handlers.clone_obj = nullptr;
    handle_handlers.get_constructor = no_constructor;
    memcpy(&pending_handlers, &handle_handlers, sizeof pending_handlers);
    pending_handlers.offset = XtOffsetOf(PendingObj, std);
    pgsql_ce = register_final("LowPHP\\Pgsql", sql_methods, create_handle);
    mysql_ce = register_final("LowPHP\\Mysql", sql_methods, create_handle);
    redis_ce = register_final("LowPHP\\Redis", redis_methods, create_handle);
    pending_ce = register_final("LowPHP\\Pending", nullptr, create_pending);
    zend_class_entry ce;
    INIT_CLASS_ENTRY(ce, "LowPHP\\BackendException", exception_methods);
    exception_ce = zend_register_internal_class_ex(&ce, spl_ce_RuntimeException);
    zend_declare_property_string(exception_ce, "backend", 7, "", ZEND_ACC_PROTECTED);
    zval empty;
    ZVAL_EMPTY_ARRAY(&empty);
    zend_declare_property(exception_ce, "failures", 8, &empty, ZEND_ACC_PROTECTED);
    return SUCCESS;
}

// After every RSHUTDOWN (a session handler may still query), before the
// request's memory goes: no op result may outlive it.
static ZEND_MODULE_POST_ZEND_DEACTIVATE_D(lowphp) {
    if (Worker* w = worker()) {
        w->drop_ops();
        w->warn_open_transactions();
    }
    return SUCCESS;
}

static const zend_module_dep lowphp_deps[] = {ZEND_MOD_REQUIRED("spl") ZEND_MOD_END};

static zend_module_entry lowphp_module_entry = {
    STANDARD_MODULE_HEADER_EX,
    nullptr,
    lowphp_deps,
    "lowphp",
    lowphp_functions,
    PHP_MINIT(lowphp),
    nullptr,
    nullptr,
    nullptr,
    nullptr,
    "0.2.0",
    NO_MODULE_GLOBALS,
    ZEND_MODULE_POST_ZEND_DEACTIVATE_N(lowphp),
    STANDARD_MODULE_PROPERTIES_EX,
};

namespace {
int (*previous_register)() = nullptr;
int register_with_lowphp() {
    int rc = previous_register();
    if (rc == SUCCESS) zend_register_internal_module(&lowphp_module_entry);
    return rc;
}
} // namespace

namespace lowphp::backends {

void register_php_module(const config::PoolConfig& pool) {
    if (pool.backends.empty() || previous_register) return;
    previous_register = php_register_internal_extensions_func;
    php_register_internal_extensions_func = register_with_lowphp;
}

void add_column(zval* row, zend_string* name, zval* value) {
    zend_symtable_update(Z_ARRVAL_P(row), name, value);
}

} // namespace lowphp::backends
