// apparmor_hat's text: the confinement name libapparmor's aa_getcon would
// return from what the kernel reports, and the change_profile request. The
// system calls around them need an AppArmor kernel (not this CI's); the
// failure path is covered by tests/compat/test_compat_pm_logs.py.
#include <doctest/doctest.h>

#include <string>

#include "lowphp/apparmor.h"

using lowphp::apparmor::change_hat_command;
using lowphp::apparmor::confinement_name;

TEST_CASE("the confinement's name without its mode") {
    CHECK(confinement_name("unconfined\n") == "unconfined");
    CHECK(confinement_name("/usr/sbin/php-fpm8.2 (enforce)\n") == "/usr/sbin/php-fpm8.2");
    CHECK(confinement_name("php-fpm//site_a (complain)\n") == "php-fpm//site_a");
    CHECK(confinement_name(std::string("unconfined\n\0", 12)) == "unconfined");
    CHECK(confinement_name("profile with spaces (enforce)") == "profile with spaces");
    CHECK(confinement_name("lowphp (kill)\n") == "lowphp");
    CHECK(confinement_name("") == "");
}

TEST_CASE("a name that only ends in a parenthesis keeps it") {
    CHECK(confinement_name("odd)\n") == "odd)");
}

TEST_CASE("the hat is entered below the current confinement") {
    CHECK(change_hat_command("php-fpm", "site_a") == "changeprofile php-fpm//site_a");
    CHECK(change_hat_command("unconfined", "a") == "changeprofile unconfined//a");
}
