// The connections.max token tables: a cap across processes, waiters woken by
// a release in another process, tokens of a dead worker freed by the master,
// and one nudge seen by every idle worker's epoll.
#include <doctest/doctest.h>
#include <sys/epoll.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lowphp/backend_board.h"
#include "lowphp/scoreboard.h"

using namespace lowphp;

namespace {

std::vector<config::PoolConfig> one_pool(int max) {
    config::PoolConfig p;
    p.name = "www";
    config::BackendConfig b;
    b.name = "main";
    b.max = max;
    p.backends.push_back(b);
    return {p};
}

} // namespace

TEST_CASE("backend board: the cap holds and a release frees a token") {
    BackendBoard board;
    REQUIRE(board.create(one_pool(2)));
    BackendTable& t = *board.tables(0)[0];
    int a = tokens::try_acquire(t, 100), b = tokens::try_acquire(t, 101);
    CHECK(a >= 0);
    CHECK(b >= 0);
    CHECK(tokens::try_acquire(t, 102) == -1);
    tokens::set_busy(t, a, 100, true);
    auto st = board.status(0);
    REQUIRE(st.size() == 1);
    CHECK(st[0].open == 2);
    CHECK(st[0].busy == 1);
    CHECK(st[0].type == "pgsql");
    tokens::release(t, b);
    CHECK(tokens::try_acquire(t, 102) == b);
    // Timing out: counted as a wait, and the give-back request withdrawn.
    CHECK(tokens::acquire(t, 103, -1, mono_us() + 20000) == -1);
    CHECK(board.status(0)[0].waits == 1);
    CHECK(t.wanted.load() == 0);
}

TEST_CASE("backend board: a waiter in another process gets the token released here") {
    BackendBoard board;
    REQUIRE(board.create(one_pool(1)));
    BackendTable& t = *board.tables(0)[0];
    int mine = tokens::try_acquire(t, getpid());
    REQUIRE(mine == 0);
    pid_t child = fork();
    if (child == 0) {
        int got = tokens::acquire(t, getpid(), board.nudge_fd(0), mono_us() + 5000000);
        _exit(got == 0 ? 0 : 1);
    }
    // The child asks for a give-back before it sleeps on the futex.
    for (int i = 0; i < 200 && t.wanted.load() == 0; ++i)
        usleep(5000);
    CHECK(tokens::claim_give_back(t));
    tokens::release(t, mine);
    int status = 0;
    waitpid(child, &status, 0);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
    // The child exited holding it: the master's reap frees it.
    CHECK(tokens::try_acquire(t, 999) == -1);
    board.release_pid(child);
    CHECK(tokens::try_acquire(t, 999) == 0);
}

TEST_CASE("backend board: one nudge wakes every idle worker's epoll once") {
    BackendBoard board;
    REQUIRE(board.create(one_pool(1)));
    int nudge = board.nudge_fd(0);
    REQUIRE(nudge >= 0);
    int ep[2] = {epoll_create1(0), epoll_create1(0)};
    for (int e : ep) {
        struct epoll_event ev {};
        ev.events = EPOLLIN | EPOLLET;
        REQUIRE(epoll_ctl(e, EPOLL_CTL_ADD, nudge, &ev) == 0);
    }
    uint64_t one = 1;
    REQUIRE(write(nudge, &one, sizeof one) == sizeof one);
    struct epoll_event out {};
    for (int e : ep) {
        CHECK(epoll_wait(e, &out, 1, 100) == 1);
        CHECK(epoll_wait(e, &out, 1, 0) == 0); // edge-triggered: once per write
    }
    REQUIRE(write(nudge, &one, sizeof one) == sizeof one);
    for (int e : ep) {
        CHECK(epoll_wait(e, &out, 1, 100) == 1);
        close(e);
    }
}

TEST_CASE("backend board: a reload's new image shares the tables of the same backends") {
    BackendBoard old_image;
    REQUIRE(old_image.create(one_pool(1)));
    BackendTable& old_table = *old_image.tables(0)[0];
    REQUIRE(tokens::try_acquire(old_table, 4242) == 0); // an old worker's connection
    BackendBoard new_image;
    REQUIRE(new_image.create(one_pool(1), dup(old_image.fd())));
    BackendTable& t = *new_image.tables(0)[0];
    CHECK(tokens::try_acquire(t, 4343) == -1); // the cap counts the old worker's
    new_image.release_pid(4242);               // reaped by the new master
    CHECK(tokens::try_acquire(old_table, 4444) == 0);
    // Another DSN is another backend: a table of its own.
    auto other = one_pool(1);
    other[0].backends[0].dsn = "host=elsewhere";
    BackendBoard third;
    REQUIRE(third.create(other, dup(new_image.fd())));
    CHECK(tokens::try_acquire(*third.tables(0)[0], 4545) == 0);
}

TEST_CASE("backend board: a token given back for a waiter cannot be taken by a newcomer") {
    BackendBoard board;
    REQUIRE(board.create(one_pool(1)));
    BackendTable& t = *board.tables(0)[0];
    int mine = tokens::try_acquire(t, 100);
    REQUIRE(mine == 0);
    tokens::release(t, mine, true);
    CHECK(tokens::try_acquire(t, 101) == -1); // a worker that did not wait
    CHECK(board.status(0)[0].open == 0);      // reserved is not an open connection
    CHECK(tokens::acquire(t, 102, -1, mono_us() + 1000000) == 0); // a waiter
}
