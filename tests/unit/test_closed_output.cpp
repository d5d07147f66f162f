// Output after fastcgi_finish_request() on a closed connection. Cases marked
// (php-fpm8.2) are what php-fpm8.2 did with the same script (finish, then the
// writes; did the script go on?); the others follow fcgi_write()'s arithmetic.
#include <doctest/doctest.h>

#include <string>

#include "lowphp/closed_output.h"

using lowphp::sapi::ClosedOutput;
using Stream = ClosedOutput::Stream;

TEST_CASE("closed output: a little output is taken, the script goes on (php-fpm8.2)") {
    ClosedOutput out;
    CHECK(out.write(Stream::Stdout, 5));
    ClosedOutput big;
    CHECK(big.write(Stream::Stdout, 8150));
}

TEST_CASE("closed output: a write that does not fit the 8 KB buffer fails (php-fpm8.2)") {
    ClosedOutput out;
    CHECK_FALSE(out.write(Stream::Stdout, 8200));
    // 8192 minus one record header: the last size that fits is one byte less.
    ClosedOutput edge;
    CHECK(edge.write(Stream::Stdout, 8183));
    ClosedOutput over;
    CHECK_FALSE(over.write(Stream::Stdout, 8184));
}

TEST_CASE("closed output: writes add up in one record (php-fpm8.2)") {
    ClosedOutput out;
    CHECK(out.write(Stream::Stdout, 5000));
    CHECK_FALSE(out.write(Stream::Stdout, 3500));
}

TEST_CASE("closed output: flush() fails even with nothing buffered (php-fpm8.2)") {
    ClosedOutput out;
    CHECK_FALSE(out.flush());
    CHECK(out.write(Stream::Stdout, 10));
    CHECK_FALSE(out.flush());
}

TEST_CASE("closed output: log messages fill the buffer too (php-fpm8.2)") {
    // error_log() of 100 bytes: "PHP message: " + text, later ones after "; ".
    ClosedOutput out;
    const size_t msg = std::string("PHP message: ").size() + 100;
    int taken = 0;
    for (int i = 0; i < 100; ++i) {
        if (i > 0 && !out.write(Stream::Stderr, 2)) break;
        if (!out.write(Stream::Stderr, msg)) break;
        ++taken;
    }
    CHECK(taken == 71);
}

TEST_CASE("closed output: switching stream closes the record, padded to 8 bytes") {
    ClosedOutput aligned;
    REQUIRE(aligned.write(Stream::Stdout, 4000)); // 8 + 4000 used, no padding
    CHECK(aligned.write(Stream::Stderr, 4175));   // a new header: 8192 - 4008 - 8 - 1
    ClosedOutput full;
    REQUIRE(full.write(Stream::Stdout, 4000));
    CHECK_FALSE(full.write(Stream::Stderr, 4176));
    ClosedOutput padded;
    REQUIRE(padded.write(Stream::Stdout, 4001)); // 7 bytes of padding when closed
    CHECK_FALSE(padded.write(Stream::Stderr, 4168));
    ClosedOutput padded_fits;
    REQUIRE(padded_fits.write(Stream::Stdout, 4001));
    CHECK(padded_fits.write(Stream::Stderr, 4167));
}

TEST_CASE("closed output: the failed flush empties the buffer") {
    // With ignore_user_abort the script goes on; the next writes start afresh.
    ClosedOutput out;
    REQUIRE_FALSE(out.write(Stream::Stdout, 8200));
    CHECK(out.write(Stream::Stdout, 8000));
    REQUIRE_FALSE(out.flush());
    CHECK(out.write(Stream::Stdout, 8000));
}

TEST_CASE("closed output: empty writes take nothing") {
    ClosedOutput out;
    CHECK(out.write(Stream::Stdout, 0));
    CHECK(out.write(Stream::Stdout, 8183));
}
