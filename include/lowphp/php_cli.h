// One-shot PHP start-ups for php-fpm's informational flags (-v, -i, -m). These
// run in the invoking process and exit; the master role never starts PHP.
#pragma once

#include "lowphp/zygote.h"

namespace lowphp::sapi {

enum class InfoMode { Version, Info, Modules };

int print_info(InfoMode mode, const zygote::PhpIniOptions& ini);

} // namespace lowphp::sapi
