// What a worker reads and writes to change to its pool's AppArmor hat
// (apparmor_hat): pure text, the system calls are in src/worker/apparmor_hat.cpp.
#pragma once

#include <string>

namespace lowphp::apparmor {

// A task's confinement as the kernel reports it ("profile (enforce)\n",
// "unconfined\n"): its name ("profile", "unconfined"), as libapparmor's
// aa_getcon returns it.
std::string confinement_name(std::string reported);

// What aa_change_profile writes to attr/current to enter `hat` of `current`.
std::string change_hat_command(const std::string& current, const std::string& hat);

} // namespace lowphp::apparmor
