// The text side of apparmor_hat (see include/lowphp/apparmor.h), unit-tested.
#include "lowphp/apparmor.h"

namespace lowphp::apparmor {

std::string confinement_name(std::string reported) {
    while (!reported.empty() && (reported.back() == '\n' || reported.back() == '\0'))
        reported.pop_back();
    // "unconfined" has no mode; a profile is followed by " (enforce)" or so
    if (!reported.empty() && reported.back() == ')') {
        size_t mode = reported.rfind(" (");
        if (mode != std::string::npos) reported.resize(mode);
    }
    return reported;
}

std::string change_hat_command(const std::string& current, const std::string& hat) {
    return "changeprofile " + current + "//" + hat;
}

} // namespace lowphp::apparmor
