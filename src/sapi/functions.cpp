// Functions php-fpm gives scripts: fastcgi_finish_request(), apache_request_headers()
// and its alias getallheaders(), fpm_get_status() (in status.cpp).
#include "sapi_internal.h"

extern "C" {
#include "php_output.h"
}

namespace lowphp::sapi {
namespace {

// HTTP_ACCEPT_ENCODING → Accept-Encoding, as sapi_add_request_header does.
bool header_name(std::string_view param, std::string& out) {
    if (param.size() > 5 && param.compare(0, 5, "HTTP_") == 0) {
        out.clear();
        bool upper = true;
        for (size_t i = 5; i < param.size(); ++i) {
            char c = param[i];
            if (c == '_') {
                out += '-';
                upper = true;
            } else {
                out += upper ? c : static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
                upper = false;
            }
        }
        return true;
    }
    if (param == "CONTENT_TYPE")
        out = "Content-Type";
    else if (param == "CONTENT_LENGTH")
        out = "Content-Length";
    else
        return false;
    return true;
}

} // namespace

extern "C" {

ZEND_BEGIN_ARG_WITH_RETURN_TYPE_INFO_EX(arginfo_fastcgi_finish_request, 0, 0, _IS_BOOL, 0)
ZEND_END_ARG_INFO()

ZEND_BEGIN_ARG_WITH_RETURN_TYPE_INFO_EX(arginfo_apache_request_headers, 0, 0, IS_ARRAY, 0)
ZEND_END_ARG_INFO()

ZEND_BEGIN_ARG_WITH_RETURN_TYPE_MASK_EX(arginfo_fpm_get_status, 0, 0, MAY_BE_ARRAY | MAY_BE_FALSE)
ZEND_END_ARG_INFO()

static PHP_FUNCTION(fastcgi_finish_request) {
    ZEND_PARSE_PARAMETERS_NONE();
    RequestContext* ctx = current_request;
    if (!ctx || !ctx->conn) RETURN_FALSE; // no client: a worker script's boot
    if (ctx->closed) {
        // php-fpm keeps a kept connection's fd after the answer (fcgi_close
        // without force), so fcgi_is_closed() stays false: a second call ends
        // the output buffers again and succeeds. A closed one returns false.
        if (!ctx->kept_after_finish) RETURN_FALSE;
        php_output_end_all();
        RETURN_TRUE;
    }
    php_output_end_all();
    sapi_send_headers();
    finish_fastcgi_request(*ctx);
    release_kept_connection(*ctx);
    // The answer is out: request_terminate_timeout stops watching it unless
    // request_terminate_timeout_track_finished says otherwise (php-fpm's stage).
    if (current_slot) current_slot->state.store(static_cast<int>(WorkerState::Finishing));
    RETURN_TRUE;
}

static PHP_FUNCTION(apache_request_headers) {
    ZEND_PARSE_PARAMETERS_NONE();
    array_init(return_value);
    if (!current_request) return;
    std::string name;
    const auto& items = current_request->params.items();
    for (auto it = items.rbegin(); it != items.rend(); ++it) // php-fpm's table order
        if (const auto& [param, value] = *it; header_name(param, name))
            add_assoc_stringl_ex(return_value, name.c_str(), name.size(), value.data(),
                                 value.size());
}

} // extern "C"

ZEND_BEGIN_ARG_WITH_RETURN_TYPE_INFO_EX(arginfo_lowphp_handle_request, 0, 1, _IS_BOOL, 0)
ZEND_ARG_TYPE_INFO(0, handler, IS_CALLABLE, 0)
ZEND_END_ARG_INFO()

// php-fpm's functions, in both tables (clang-format cannot lay out these macros).
// clang-format off
#define LOWPHP_FPM_FUNCTIONS                                                                       \
    ZEND_FE(fastcgi_finish_request, arginfo_fastcgi_finish_request)                                \
    ZEND_FE(apache_request_headers, arginfo_apache_request_headers)                                \
    ZEND_FALIAS(getallheaders, apache_request_headers, arginfo_apache_request_headers)            \
    ZEND_FE(fpm_get_status, arginfo_fpm_get_status)

const zend_function_entry sapi_functions[] = {
    LOWPHP_FPM_FUNCTIONS
    ZEND_FE_END,
};

const zend_function_entry worker_mode_functions[] = {
    LOWPHP_FPM_FUNCTIONS
    ZEND_FE(lowphp_handle_request, arginfo_lowphp_handle_request)
    ZEND_FALIAS(frankenphp_handle_request, lowphp_handle_request, arginfo_lowphp_handle_request)
    ZEND_FALIAS(frankenphp_finish_request, fastcgi_finish_request, arginfo_fastcgi_finish_request)
    ZEND_FALIAS(frankenphp_request_headers, apache_request_headers, arginfo_apache_request_headers)
    ZEND_FE_END,
};
// clang-format on

} // namespace lowphp::sapi
