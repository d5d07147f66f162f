// The per-pool default session directory: created for the pool's user with mode
// 0700, repaired when it exists with another owner or mode, and never created
// through a base directory someone else could have planted (symlink, foreign
// owner, group/other writable). Ownership checks need root (as CI runs them);
// without root the pool user is the caller.
#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <sys/stat.h>
#include <unistd.h>

#include "lowphp/session_dir.h"

using lowphp::session_dir::prepare;
namespace fs = std::filesystem;

namespace {

struct TempTree {
    std::string path;
    TempTree() {
        char tmpl[] = "/tmp/lowphp-sessdir-XXXXXX";
        const char* p = mkdtemp(tmpl);
        REQUIRE(p != nullptr);
        path = p;
    }
    ~TempTree() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
};

struct stat stat_of(const std::string& p) {
    struct stat st {};
    REQUIRE(lstat(p.c_str(), &st) == 0);
    return st;
}

// A uid/gid that is not the caller's when running as root.
uid_t pool_uid() {
    return geteuid() == 0 ? 65534 : geteuid();
}
gid_t pool_gid() {
    return geteuid() == 0 ? 65534 : getegid();
}

} // namespace

TEST_CASE("session dir: created with missing parents, pool dir 0700 for the pool user") {
    TempTree t;
    std::string base = t.path + "/var/lib/php/sessions/lowphp";
    CHECK(prepare(base, "shop", pool_uid(), pool_gid()) == "");
    struct stat b = stat_of(base);
    CHECK(S_ISDIR(b.st_mode));
    CHECK((b.st_mode & 07777) == 0711);
    CHECK(b.st_uid == geteuid());
    struct stat d = stat_of(base + "/shop");
    CHECK(S_ISDIR(d.st_mode));
    CHECK((d.st_mode & 07777) == 0700);
    CHECK(d.st_uid == pool_uid());
    CHECK(d.st_gid == pool_gid());
    // Again: nothing to do, still fine.
    CHECK(prepare(base, "shop", pool_uid(), pool_gid()) == "");
}

TEST_CASE("session dir: an existing pool dir gets the pool's owner and mode 0700") {
    TempTree t;
    std::string base = t.path + "/base";
    REQUIRE(mkdir(base.c_str(), 0711) == 0);
    REQUIRE(mkdir((base + "/www").c_str(), 0777) == 0);
    REQUIRE(chmod((base + "/www").c_str(), 0777) == 0);
    CHECK(prepare(base, "www", pool_uid(), pool_gid()) == "");
    struct stat d = stat_of(base + "/www");
    CHECK((d.st_mode & 07777) == 0700);
    CHECK(d.st_uid == pool_uid());
}

TEST_CASE("session dir: a symlinked base or pool dir is refused") {
    TempTree t;
    std::string elsewhere = t.path + "/elsewhere";
    REQUIRE(mkdir(elsewhere.c_str(), 0711) == 0);
    std::string base = t.path + "/base";
    REQUIRE(symlink(elsewhere.c_str(), base.c_str()) == 0);
    std::string err = prepare(base, "www", pool_uid(), pool_gid());
    CHECK(err.find("open(" + base + ") failed") == 0);
    // O_DIRECTORY | O_NOFOLLOW on a link: ENOTDIR, with its text
    CHECK(err.find(": Not a directory (20)") != std::string::npos);
    CHECK(!fs::exists(elsewhere + "/www"));

    std::string base2 = t.path + "/base2";
    REQUIRE(mkdir(base2.c_str(), 0711) == 0);
    REQUIRE(symlink(elsewhere.c_str(), (base2 + "/www").c_str()) == 0);
    CHECK(prepare(base2, "www", pool_uid(), pool_gid()).find("open(" + base2 + "/www) failed") ==
          0);
    CHECK(stat_of(elsewhere).st_uid == geteuid()); // not chowned through the link
}

TEST_CASE("session dir: a base writable by others or owned by someone else is refused") {
    TempTree t;
    std::string base = t.path + "/base";
    REQUIRE(mkdir(base.c_str(), 0711) == 0);
    REQUIRE(chmod(base.c_str(), 01733) == 0); // like /var/lib/php/sessions itself
    CHECK(prepare(base, "www", pool_uid(), pool_gid()).find("refusing") != std::string::npos);
    CHECK(!fs::exists(base + "/www"));
    if (geteuid() == 0) {
        REQUIRE(chmod(base.c_str(), 0711) == 0);
        REQUIRE(chown(base.c_str(), 65534, 65534) == 0);
        CHECK(prepare(base, "www", pool_uid(), pool_gid()).find("refusing") != std::string::npos);
        CHECK(!fs::exists(base + "/www"));
    }
}

TEST_CASE("session dir: pool names that are not one path component are refused") {
    TempTree t;
    std::string base = t.path + "/base";
    for (const char* name : {"", ".", "..", "a/b", "../x"})
        CHECK(prepare(base, name, pool_uid(), pool_gid()) != "");
    CHECK(prepare("relative/base", "www", pool_uid(), pool_gid()) != "");
    CHECK(!fs::exists(base));
}
