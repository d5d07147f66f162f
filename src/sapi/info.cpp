// -v, -i and -m: PHP started in the invoking process, output to stdout; -t
// starts it too, for its start-up messages.
#include "lowphp/exit_codes.h"
#include "lowphp/php_cli.h"
#include "lowphp_build_info.h" // generated: LOWPHP_BUILD_COMMIT
#include "sapi_internal.h"

extern "C" {
#include "ext/standard/info.h"
#include "php_output.h"
#include "zend_extensions.h"
}

#include <algorithm>
#include <string>
#include <vector>

namespace lowphp::sapi {
namespace {

void print_modules() {
    std::vector<std::string> names;
    zval* entry;
    ZEND_HASH_MAP_FOREACH_VAL(&module_registry, entry) {
        names.emplace_back(static_cast<zend_module_entry*>(Z_PTR_P(entry))->name);
    }
    ZEND_HASH_FOREACH_END();
    std::sort(names.begin(), names.end(), [](const std::string& a, const std::string& b) {
        return strcasecmp(a.c_str(), b.c_str()) < 0;
    });
    php_printf("[PHP Modules]\n");
    for (const auto& n : names)
        php_printf("%s\n", n.c_str());
    php_printf("\n[Zend Modules]\n");
    std::vector<std::string> exts;
    for (zend_llist_element* e = zend_extensions.head; e; e = e->next)
        exts.emplace_back(static_cast<zend_extension*>(static_cast<void*>(e->data))->name);
    std::sort(exts.begin(), exts.end());
    for (const auto& n : exts)
        php_printf("%s\n", n.c_str());
    php_printf("\n");
}

} // namespace

int print_info(InfoMode mode, const PhpIniOptions& ini) {
    if (mode == InfoMode::Info) lowphp_sapi_module.phpinfo_as_text = 1;
    if (!start_php(nullptr, ini)) return kExitSoftware;
    if (mode == InfoMode::Startup) {
        // nothing to print: PHP's own start-up messages are the point
    } else if (mode == InfoMode::Modules) {
        php_output_activate();
        SG(headers_sent) = 1;
        print_modules();
        php_output_end_all();
        php_output_deactivate();
    } else {
        if (php_request_startup() == FAILURE) return kExitSoftware;
        SG(headers_sent) = 1;
        SG(request_info).no_headers = 1;
        if (mode == InfoMode::Version)
            // php-fpm's -v (fpm_main.c); the build stamp is lowphp-fpm's own.
            // The last line is ours: which lowphp-fpm, built from which commit.
            php_printf("PHP %s (%s) (built: %s %s)\nCopyright (c) The PHP Group\n%s"
                       "lowphp-fpm %s (%s)\n",
                       PHP_VERSION, sapi_module.name, __DATE__, __TIME__, get_zend_version(),
                       LOWPHP_VERSION, LOWPHP_BUILD_COMMIT);
        else
            php_print_info(0xFFFFFFFF);
        php_request_shutdown(nullptr);
    }
    php_module_shutdown();
    sapi_shutdown();
    return 0;
}

} // namespace lowphp::sapi
