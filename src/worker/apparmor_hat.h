// apparmor_hat: a worker enters its pool's AppArmor hat once it is set up.
#pragma once

#include <string>

#include "lowphp/config.h"

namespace lowphp::worker {

// Changes the calling thread to "<its confinement>//<apparmor_hat>" (nothing
// without apparmor_hat). False, logged with php-fpm's words, when the
// confinement cannot be read or changed: the worker must not run unconfined.
bool change_apparmor_hat(const config::PoolConfig& pool);

} // namespace lowphp::worker
