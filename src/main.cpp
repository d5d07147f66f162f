// lowphp-fpm's command line: php-fpm's flags, their exit codes and messages, then
// the hand-over to the master.
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <grp.h>
#include <pwd.h>
#include <string>
#include <sys/stat.h>
#include <unistd.h>

#include "lowphp/config.h"
#include "lowphp/exit_codes.h"
#include "lowphp/identity.h"
#include "lowphp/log.h"
#include "lowphp/master.h"
#include "lowphp/migrate.h"
#include "lowphp/php_cli.h"
#include "lowphp/proctitle.h"

namespace {

using lowphp::kExitConfig;
using lowphp::kExitOk;
using lowphp::kExitUsage;
constexpr const char* kDefaultConfig = "/etc/lowphp/lowphp-fpm.conf";
constexpr const char* kDefaultPrefix = "/usr";

void usage(const char* argv0) {
    const char* prog = strrchr(argv0, '/');
    prog = prog ? prog + 1 : "php";
    printf("Usage: %s [-n] [-e] [-h] [-i] [-m] [-v] [-t] [-p <prefix>] [-g <pid>] [-c <file>] "
           "[-d foo[=bar]] [-y <file>] [-D] [-F [-O]]\n"
           "  -c <path>|<file> Look for php.ini file in this directory\n"
           "  -n               No php.ini file will be used\n"
           "  -d foo[=bar]     Define INI entry foo with value 'bar'\n"
           "  -e               Generate extended information for debugger/profiler\n"
           "  -h               This help\n"
           "  -i               PHP information\n"
           "  -m               Show compiled in modules\n"
           "  -v               Version number\n"
           "  -p, --prefix <dir>\n"
           "                   Specify alternative prefix path to FastCGI process manager "
           "(default: %s).\n"
           "  -g, --pid <file>\n"
           "                   Specify the PID file location.\n"
           "  -y, --fpm-config <file>\n"
           "                   Specify alternative path to FastCGI process manager config file.\n"
           "  -t, --test       Test FPM configuration and exit\n"
           "  -D, --daemonize  force to run in background, and ignore daemonize option from "
           "config file\n"
           "  -F, --nodaemonize\n"
           "                   force to stay in foreground, and ignore daemonize option from "
           "config file\n"
           "  -O, --force-stderr\n"
           "                   force output to stderr in nodaemonize even if stderr is not a TTY\n"
           "  -R, --allow-to-run-as-root\n"
           "                   Allow pool to run as root (disabled by default)\n",
           prog, kDefaultPrefix);
}

struct CommandLine {
    lowphp::master::Options opts;
    int test = 0;
    bool help = false;
    bool bad = false;
    bool info = false, modules = false, version = false;
};

// Long options php-fpm accepts, mapped to their short letter.
char long_option(const char* name) {
    static const struct {
        const char* name;
        char c;
    } table[] = {{"php-ini", 'c'},      {"define", 'd'},
                 {"profile-info", 'e'}, {"help", 'h'},
                 {"info", 'i'},         {"modules", 'm'},
                 {"no-php-ini", 'n'},   {"usage", 'h'},
                 {"version", 'v'},      {"fpm-config", 'y'},
                 {"test", 't'},         {"prefix", 'p'},
                 {"pid", 'g'},          {"allow-to-run-as-root", 'R'},
                 {"daemonize", 'D'},    {"nodaemonize", 'F'},
                 {"force-stderr", 'O'}};
    for (const auto& o : table)
        if (strcmp(o.name, name) == 0) return o.c;
    return 0;
}

bool takes_value(char c) {
    return strchr("cdypg", c) != nullptr;
}

void apply(CommandLine& cl, char c, const char* value) {
    auto& o = cl.opts;
    switch (c) {
    case 'c':
        o.ini.ini_path = value;
        break;
    case 'n':
        o.ini.no_ini = true;
        break;
    case 'd':
        o.ini.defines.emplace_back(value);
        break;
    case 'y':
        o.config_path = value;
        break;
    case 'p':
        o.prefix = value;
        break;
    case 'g':
        o.pid_path = value;
        break;
    case 'e':
        break; // extended info: accepted, no effect on a production server
    case 't':
        ++cl.test;
        break;
    case 'i':
        cl.info = true;
        break;
    case 'm':
        cl.modules = true;
        break;
    case 'v':
        cl.version = true;
        break;
    case 'R':
        o.run_as_root = true;
        break;
    case 'D':
        o.force_daemon = 1;
        break;
    case 'F':
        o.force_daemon = 0;
        break;
    case 'O':
        o.force_stderr = true;
        break;
    case 'h':
    case '?': // php-fpm: the usage, exit status 0
        cl.help = true;
        break;
    default:
        cl.bad = true;
        break;
    }
}

// php-fpm acts on -h, -i, -m and -v as soon as getopt meets them: what
// follows is not read (`-v -Z` prints the version, not the usage).
bool acts_at_once(const CommandLine& cl) {
    return cl.help || cl.info || cl.modules || cl.version;
}

CommandLine parse(int argc, char** argv) {
    CommandLine cl;
    for (int i = 1; i < argc && !cl.bad && !acts_at_once(cl); ++i) {
        const char* arg = argv[i];
        if (arg[0] != '-' || arg[1] == '\0') {
            cl.bad = true; // php-fpm takes no operands
            break;
        }
        if (arg[1] == '-') {
            std::string name = arg + 2, value;
            size_t eq = name.find('=');
            if (eq != std::string::npos) {
                value = name.substr(eq + 1);
                name.resize(eq);
            }
            char c = long_option(name.c_str());
            if (!c) {
                cl.bad = true;
            } else if (takes_value(c) && eq == std::string::npos) {
                if (i + 1 >= argc)
                    cl.bad = true;
                else
                    apply(cl, c, argv[++i]);
            } else {
                apply(cl, c, value.c_str());
            }
            continue;
        }
        for (const char* p = arg + 1; *p && !cl.bad && !acts_at_once(cl); ++p) {
            if (!takes_value(*p)) {
                apply(cl, *p, nullptr);
                continue;
            }
            const char* value = p[1] ? p + 1 : (i + 1 < argc ? argv[++i] : nullptr);
            if (!value)
                cl.bad = true;
            else
                apply(cl, *p, value);
            break;
        }
    }
    return cl;
}

} // namespace

int main(int argc, char** argv) {
    if (argc > 1 && strcmp(argv[1], "--migrate") == 0) return lowphp::migrate::main(argc, argv);
    std::vector<std::string> original(argv, argv + argc);
    lowphp::proctitle::init(argc, argv);
    CommandLine cl = parse(argc, argv);
    cl.opts.argv = original;
    if (cl.bad || cl.help) {
        usage(argv[0]);
        return cl.bad ? kExitUsage : kExitOk;
    }
    if (cl.version) return lowphp::sapi::print_info(lowphp::sapi::InfoMode::Version, cl.opts.ini);
    if (cl.modules) return lowphp::sapi::print_info(lowphp::sapi::InfoMode::Modules, cl.opts.ini);
    if (cl.info) return lowphp::sapi::print_info(lowphp::sapi::InfoMode::Info, cl.opts.ini);

    auto& opts = cl.opts;
    // php-fpm's main() starts PHP before it reads its configuration: -t shows a
    // broken php.ini or extension first (the test's verdict does not depend on it).
    if (cl.test) lowphp::sapi::print_info(lowphp::sapi::InfoMode::Startup, opts.ini);
    if (struct stat st;
        !opts.prefix.empty() && (stat(opts.prefix.c_str(), &st) < 0 || !S_ISDIR(st.st_mode))) {
        ZLOG_ERROR("the global prefix '%s' does not exist or is not a directory",
                   opts.prefix.c_str());
        ZLOG_ERROR("FPM initialization failed");
        return kExitConfig;
    }
    if (opts.config_path.empty()) opts.config_path = kDefaultConfig;
    lowphp::config::ParseOptions po;
    po.prefix = opts.prefix;
    po.default_prefix = kDefaultPrefix;
    po.require_user = geteuid() == 0 && !opts.run_as_root;
    po.open_log_files = true;
    lowphp::config::ParseResult parsed = lowphp::config::load(opts.config_path, po);
    opts.parse = po;
    if (parsed.global) { // its own notices already obey its log_level (as php-fpm's)
        lowphp::log::Settings ls = lowphp::log::settings();
        ls.level = parsed.global->log_level;
        lowphp::log::configure(ls);
    }
    lowphp::master::log_config_messages(parsed.messages, 0, parsed.error_log_from);
    if (parsed.global) {
        // php-fpm opens error_log once [global] checked out: what follows (the
        // pools' errors, -t's verdict) is written there too, and to stderr
        // until start-up ends.
        const auto& g = *parsed.global;
        bool daemon = opts.force_daemon >= 0 ? opts.force_daemon == 1 : g.daemonize;
        if (lowphp::log::use_error_log(daemon, opts.force_stderr))
            lowphp::log::open_target(g.error_log, g.syslog_ident, g.syslog_facility);
        lowphp::master::log_config_messages(parsed.messages, parsed.error_log_from,
                                            parsed.messages.size());
    }
    std::vector<lowphp::pool::Identity> identities;
    if (!parsed.config || !lowphp::pool::check_identities(
                              *parsed.config, /*root_allowed=*/opts.run_as_root || cl.test,
                              /*test=*/cl.test, /*notices=*/!cl.test, identities)) {
        ZLOG_ERROR("FPM initialization failed");
        return kExitConfig;
    }
    if (cl.test) {
        if (cl.test > 1)
            for (const auto& line : lowphp::config::dump(*parsed.config))
                ZLOG_NOTICE("%s", line.c_str());
        ZLOG_NOTICE("configuration file %s test is successful\n", opts.config_path.c_str());
        return kExitOk;
    }
    return lowphp::master::run(std::move(*parsed.config), std::move(identities), opts);
}
