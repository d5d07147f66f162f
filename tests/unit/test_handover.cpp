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

TEST_CASE("handover: a pool's channels and the children still running cross the reload") {
    Handover out;
    out.channels["shop site"] = {20, 21, 22, 23, 24, 25, 26, 27};
    out.channels["www"] = {40, 41, 42, 43}; // no worker.match queues
    out.retiring = {{4242, "shop site", 987654321012ull, 30, 31, false},
                    {4243, "www", 5, -1, -1, true}};
    out.put();
    Handover in = Handover::take();
    REQUIRE(in.channels.count("shop site") == 1);
    const auto& c = in.channels["shop site"];
    CHECK((c.park_rx == 20 && c.park_tx == 21 && c.handoff_rx == 22 && c.handoff_tx == 23));
    CHECK((c.classic_rx == 24 && c.classic_tx == 25 && c.script_rx == 26 && c.script_tx == 27));
    const auto& w3 = in.channels["www"];
    CHECK((w3.handoff_tx == 43 && w3.classic_rx == -1 && w3.script_tx == -1));
    REQUIRE(in.retiring.size() == 2);
    const auto& w = in.retiring[0];
    CHECK(w.pid == 4242);
    CHECK(w.pool == "shop site");
    CHECK(w.started_us == 987654321012ull); // a monotonic time beyond 32 bits
    CHECK((w.out == 30 && w.err == 31 && !w.zygote));
    const auto& z = in.retiring[1];
    CHECK((z.pid == 4243 && z.pool == "www" && z.out == -1 && z.err == -1 && z.zygote));
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
