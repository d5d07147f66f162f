// The slow log without ptrace. php-fpm's master stops the worker with ptrace and
// peeks its memory; that needs CAP_SYS_PTRACE (or a permissive Yama setting)
// and fails in unprivileged containers. Here each worker of a pool with a
// slowlog runs one extra thread that sleeps on a futex in its scoreboard slot;
// when the master asks, it walks the PHP call stack of the main thread with
// process_vm_readv on its own process (always permitted: same thread group),
// which reports a bad pointer as EFAULT instead of crashing while the stack
// changes under it. The main thread is never interrupted: a script blocked in
// a syscall (usleep, a socket read) is traced where it waits.
#include <cerrno>
#include <climits>
#include <csignal>
#include <cstring>
#include <ctime>
#include <linux/futex.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "lowphp/log.h"
#include "sapi_internal.h"

namespace lowphp::sapi {
namespace {

struct Tracer {
    int fd = -1;
    int depth = 20;
    WorkerSlot* slot = nullptr;
    std::string pool;
};

Tracer tracer;

// Copy `size` bytes at `addr` of this process; false if any of it is unmapped.
bool peek(const void* addr, void* out, size_t size) {
    struct iovec local = {out, size};
    struct iovec remote = {const_cast<void*>(addr), size};
    return process_vm_readv(getpid(), &local, 1, &remote, 1, 0) == static_cast<ssize_t>(size);
}

template <typename T> bool peek_value(const void* addr, T& out) {
    return peek(addr, &out, sizeof out);
}

// A zend_string's text, or "" when it cannot be read.
std::string peek_zstr(const zend_string* zs) {
    size_t len = 0;
    if (!zs || !peek_value(reinterpret_cast<const char*>(zs) + offsetof(zend_string, len), len))
        return {};
    len = std::min<size_t>(len, 1023);
    std::string out(len, '\0');
    if (!peek(reinterpret_cast<const char*>(zs) + offsetof(zend_string, val), out.data(), len))
        return {};
    return out;
}

std::string peek_cstr(const char* p) {
    std::string out;
    char c;
    while (p && out.size() < 1023 && peek_value(p + out.size(), c) && c)
        out += c;
    return out;
}

// The name of the function a frame runs; "" means "stop" (the main script).
std::string frame_name(const zend_execute_data* ex) {
    zend_function* func = nullptr;
    if (!peek_value(&ex->func, func) || !func) return "???";
    zend_string* name = nullptr;
    if (!peek_value(&func->common.function_name, name)) return "???";
    if (name) return peek_zstr(name);
    uint32_t info = 0;
    if (!peek_value(&ex->This.u1.type_info, info)) return "???";
    return ZEND_CALL_KIND_EX(info) == ZEND_CALL_TOP_CODE ? "" : "[INCLUDE_OR_EVAL]";
}

// "file:line" of the nearest user-code frame at or above `ex` (the call site).
std::string call_site(const zend_execute_data* ex) {
    while (ex) {
        zend_function* func = nullptr;
        if (!peek_value(&ex->func, func) || !func) break;
        uint8_t type = 0;
        if (!peek_value(&func->type, type)) break;
        if (ZEND_USER_CODE(type)) {
            zend_string* file = nullptr;
            peek_value(&func->op_array.filename, file);
            const zend_op* opline = nullptr;
            uint32_t line = 0;
            if (peek_value(&ex->opline, opline) && opline) peek_value(&opline->lineno, line);
            std::string f = peek_zstr(file);
            return (f.empty() ? "unknown" : f) + ":" + std::to_string(line);
        }
        if (!peek_value(&ex->prev_execute_data, ex)) break;
    }
    return "unknown:0";
}

// fpm_php_trace_dump's text: header, script_filename, one line per frame.
std::string backtrace_text() {
    char when[64];
    time_t now = time(nullptr);
    struct tm tm;
    localtime_r(&now, &tm);
    strftime(when, sizeof when, "[%d-%b-%Y %H:%M:%S]", &tm);
    std::string out = std::string("\n") + when + "  [pool " + tracer.pool + "] pid " +
                      std::to_string(getpid()) + "\n";
    char* script = nullptr;
    if (!peek_value(&SG(request_info).path_translated, script)) return out + "+++ dump failed\n";
    out += "script_filename = " + peek_cstr(script) + "\n";
    zend_execute_data* ex = nullptr;
    if (!peek_value(&EG(current_execute_data), ex)) return out + "+++ dump failed\n";
    for (int n = 0; ex && n < tracer.depth; ++n) {
        std::string name = frame_name(ex);
        if (name.empty()) break;
        zend_execute_data* prev = nullptr;
        if (!peek_value(&ex->prev_execute_data, prev)) return out + "+++ dump failed\n";
        char addr[32];
        snprintf(addr, sizeof addr, "[0x%016lx] ", reinterpret_cast<unsigned long>(ex));
        out += addr + name + "() " + call_site(prev) + "\n";
        ex = prev;
    }
    return out;
}

void* trace_loop(void*) {
    uint32_t seen = tracer.slot->trace_requests.load();
    for (;;) {
        syscall(SYS_futex, reinterpret_cast<uint32_t*>(&tracer.slot->trace_requests), FUTEX_WAIT,
                seen, nullptr, nullptr, 0);
        uint32_t now = tracer.slot->trace_requests.load();
        if (now == seen) continue; // spurious wake-up
        seen = now;
        std::string text = backtrace_text();
        if (write(tracer.fd, text.data(), text.size()) < 0)
            ZLOG_SYSERROR("unable to write the slowlog of pool %s", tracer.pool.c_str());
    }
    return nullptr;
}

} // namespace

void start_slowlog_thread(const config::PoolConfig& pool, WorkerSlot* slot, int fd) {
    if (fd < 0 || !slot || pool.request_slowlog_timeout <= 0) return;
    tracer = {fd, pool.request_slowlog_trace_depth > 0 ? pool.request_slowlog_trace_depth : 20,
              slot, pool.name};
    // Signals stay with the main thread: the tracer starts with all of them blocked.
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_t thread;
    int err = pthread_create(&thread, nullptr, trace_loop, nullptr);
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
    if (err != 0) {
        errno = err;
        ZLOG_SYSERROR("[pool %s] unable to start the slowlog thread", pool.name.c_str());
        return;
    }
    pthread_detach(thread);
}

} // namespace lowphp::sapi
