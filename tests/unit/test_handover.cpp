// The reload hand-over record: what one image leaves in the environment, the
// next takes back, including what lowphp-fpm 0.2.0 left (a package upgrade).
#include <cstdlib>
#include <doctest/doctest.h>

#include "../../src/master/handover.h"

using lowphp::master::Handover;

TEST_CASE("handover: what one image puts, the next takes, once") {
    Handover out;
    out.sockets = {{"/run/php/www.sock", 5}, {"127.0.0.1:9000", 7}};
    out.parked = {{"www", 11}, {"www", 12}, {"shop site", 13}};
    out.put();
    Handover in = Handover::take();
    CHECK(in.reloaded);
    CHECK(in.sockets == out.sockets); // the pools' order is kept
    CHECK(in.parked == out.parked);
    CHECK(getenv("LOWPHP_FPM_HANDOVER") == nullptr); // no child inherits it
    CHECK_FALSE(Handover::take().reloaded);          // a first start
}

TEST_CASE("handover: a 0.2.0 image's three variables are read too") {
    setenv("LOWPHP_FPM_RELOADED", "1", 1);
    setenv("LOWPHP_FPM_SOCKETS", "/run/php/a.sock=4,[::]:9000=6", 1);
    setenv("LOWPHP_FPM_PARKED", "9 www\n10 www\n", 1);
    Handover in = Handover::take();
    CHECK(in.reloaded);
    REQUIRE(in.sockets.size() == 2);
    CHECK(in.sockets[0] == std::pair<std::string, int>{"/run/php/a.sock", 4});
    CHECK(in.sockets[1] == std::pair<std::string, int>{"[::]:9000", 6});
    CHECK(in.parked.count("www") == 2);
    for (const char* name : {"LOWPHP_FPM_RELOADED", "LOWPHP_FPM_SOCKETS", "LOWPHP_FPM_PARKED"})
        CHECK(getenv(name) == nullptr);
}
