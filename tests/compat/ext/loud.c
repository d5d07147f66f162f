/* A PHP extension that says when PHP starts it, starts and ends a request:
 * loaded by a pool's php_admin_value[extension] in tests/compat/
 * test_compat_pool_extension.py, which compares where those lines land with
 * php8.2-fpm. Built by the test with gcc and php-config8.2's include flags. */
#include <stdio.h>
#include <unistd.h>

#include "php.h"

static PHP_MINIT_FUNCTION(loud) {
    fprintf(stderr, "loud: MINIT\n");
    return SUCCESS;
}

static PHP_RINIT_FUNCTION(loud) {
    fprintf(stderr, "loud: RINIT\n");
    return SUCCESS;
}

static PHP_RSHUTDOWN_FUNCTION(loud) {
    fprintf(stderr, "loud: RSHUTDOWN\n");
    return SUCCESS;
}

zend_module_entry loud_module_entry = {
    STANDARD_MODULE_HEADER, "loud", NULL, PHP_MINIT(loud), NULL, PHP_RINIT(loud),
    PHP_RSHUTDOWN(loud),    NULL,   "1.0", STANDARD_MODULE_PROPERTIES};

ZEND_GET_MODULE(loud)
