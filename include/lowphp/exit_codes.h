// php-fpm's exit statuses (fpm.h's FPM_EXIT_*, sysexits.h values): scripts,
// systemd and the master's "exited with code N" lines rely on them.
#pragma once

namespace lowphp {

constexpr int kExitOk = 0;
constexpr int kExitUsage = 64;    // FPM_EXIT_USAGE: bad command line
constexpr int kExitSoftware = 70; // FPM_EXIT_SOFTWARE: internal failure
constexpr int kExitConfig = 78;   // FPM_EXIT_CONFIG: configuration error
// lowphp: a worker whose worker.script failed before serving (EX_TEMPFAIL):
// the master names the script in its log.
constexpr int kExitWorkerBoot = 75;

} // namespace lowphp
