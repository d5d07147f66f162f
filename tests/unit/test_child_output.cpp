// Worker output into log lines, cases taken from what php-fpm 8.2 logs for the
// same bytes (its sapi/fpm/tests/log-* tests).
#include <doctest/doctest.h>

#include "lowphp/child_output.h"

using lowphp::log::ChildOutput;

namespace {
std::vector<std::string> cut(size_t room, const std::vector<std::string>& writes) {
    ChildOutput c(room);
    std::vector<std::string> lines;
    for (const auto& w : writes)
        c.feed(w.data(), w.size(), lines);
    c.finish(lines);
    return lines;
}
const std::string M("\0fscf\0", 6);
} // namespace

TEST_CASE("child output: lines, wrapping at the room, the flush marker") {
    CHECK(cut(100, {"msg 1\nmsg 2\nmsg 3"}) == std::vector<std::string>{"msg 1", "msg 2", "msg 3"});
    // 100 a then 2500 b, plain, log_limit 1024: 1023-byte lines
    auto l = cut(1023, {std::string(100, 'a'), std::string(2500, 'b')});
    REQUIRE(l.size() == 3);
    CHECK(l[0] == std::string(100, 'a') + std::string(923, 'b'));
    CHECK(l[1] == std::string(1023, 'b'));
    CHECK(l[2] == std::string(554, 'b'));
    // the marker ends the line and vanishes, even split across reads
    CHECK(cut(1023, {std::string(1022, 'a') + M}) ==
          std::vector<std::string>{std::string(1022, 'a')});
    CHECK(cut(100, {std::string("x\0fs", 4), "cf", std::string(1, '\0') + "y"}) ==
          std::vector<std::string>{"x", "y"});
    // not a marker after all: passed through as text
    CHECK(cut(1023, {std::string(1021, 'a') + std::string("\0f", 2), "abc"}) ==
          std::vector<std::string>{std::string(1021, 'a') + std::string("\0f", 2), "abc"});
    CHECK(cut(1023, {std::string(1013, 'a') + "Quarkslab" + M + "Quarkslab"}) ==
          std::vector<std::string>{std::string(1013, 'a') + "Quarkslab", "Quarkslab"});
    // two requests, each ending with the marker
    CHECK(cut(100, {"msg 1 - ", "msg 2 - ", "msg 3" + M, "msg 1 - msg 2 - msg 3" + M}) ==
          std::vector<std::string>{"msg 1 - msg 2 - msg 3", "msg 1 - msg 2 - msg 3"});
    // a line exactly filling the room, then its newline: no empty line after it
    CHECK(cut(3, {"abc\nd\n"}) == std::vector<std::string>{"abc", "d"});
}

TEST_CASE("child output: room of a decorated line") {
    // [23-Nov-2026 09:25:17] WARNING: [pool unconfined] child 12345 said into stderr: "…"
    CHECK(lowphp::log::child_output_room(1050, true, "unconfined", 12345, "stderr") == 967);
    CHECK(lowphp::log::child_output_room(1500, false, "www", 1, "stderr") == 1499);
}
