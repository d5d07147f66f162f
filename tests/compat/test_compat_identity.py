"""Who a worker becomes, compared with php8.2-fpm (both run as root with -R):
uid, gid, supplementary groups, USER and HOME for each shape of a pool's
`user` and `group` (a name, digits with and without a passwd entry, a group
alone). lowphp-fpm resolves them once in the master (src/pool/identity.cpp)."""
import json
import os

from lowphp_test import Backend, check, fcgi, run, test, util
from lowphp_test.backend import lowphp_bin, phpfpm_bin

SCRIPT = ("<?php echo json_encode(['uid' => posix_getuid(), 'euid' => posix_geteuid(), 'gid' => posix_getgid(),"
          " 'egid' => posix_getegid(), 'groups' => posix_getgroups(), 'USER' => getenv('USER'),"
          " 'HOME' => getenv('HOME')]);")

# user 12345 has no passwd entry on Debian; group 4 is adm.
SHAPES = [{"group": "nogroup"}, {"group": "4"}, {"user": "nobody"}, {"user": "65534"},
          {"user": "nobody", "group": "adm"}, {"user": "12345"}, {"user": "12345", "group": "4"}]


AS_NOBODY = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"]


def identity(binary, name, shape, as_nobody=False):
    b = Backend(binary, name=name, pool=dict({"pm": "static", "pm.max_children": "1"}, **shape))
    if as_nobody:  # the whole server started as nobody: user and group are ignored
        plain = b.command
        b.command = lambda: AS_NOBODY + plain()
        os.chown(b.tmp.join(""), 65534, 65534)
        for f in os.listdir(b.tmp.join("")):
            os.chown(b.tmp.join(f), 65534, 65534)
    try:
        path = b.tmp.join("id.php")
        util.write_file(path, SCRIPT)
        os.chmod(path, 0o644)
        os.chmod(b.tmp.join(""), 0o755)  # readable by a worker that is not root
        b.start()
        with fcgi.Connection(b.address, timeout=15) as c:
            r = c.request([("REQUEST_METHOD", "GET"), ("SCRIPT_FILENAME", path), ("SCRIPT_NAME", "/id.php"),
                           ("REQUEST_URI", "/id.php"), ("QUERY_STRING", "")])
        check(r.complete and r.status == 200, f"{name} {shape}: {r!r}")
        return json.loads(r.body)
    finally:
        if b.proc is not None:
            b.stop()
        b.close()


@test(timeout=180)
def worker_identity_as_php_fpm():
    diffs = []
    for shape in SHAPES:
        ref = identity(phpfpm_bin(), "php-fpm8.2", shape)
        sub = identity(lowphp_bin(), "lowphp-fpm", shape)
        print(f"  {shape}: php-fpm8.2 {ref}" + ("" if ref == sub else f"\n      lowphp-fpm {sub}"), flush=True)
        if ref != sub:
            diffs.append(f"{shape}: php-fpm8.2 {ref}, lowphp-fpm {sub}")
    for shape in ({}, {"user": "www-data"}):
        ref = identity(phpfpm_bin(), "php-fpm8.2", shape, as_nobody=True)
        sub = identity(lowphp_bin(), "lowphp-fpm", shape, as_nobody=True)
        print(f"  started as nobody, {shape}: php-fpm8.2 {ref}" + ("" if ref == sub else f"\n      lowphp-fpm {sub}"),
              flush=True)
        if ref != sub:
            diffs.append(f"started as nobody, {shape}: php-fpm8.2 {ref}, lowphp-fpm {sub}")
    check(not diffs, "the worker's identity differs:\n" + "\n".join(diffs))


@test(timeout=60)
def group_alone_switches_the_gid():
    """-R and a pool that sets only `group`: the worker keeps uid 0 and takes
    that group's gid (it used to keep gid 0)."""
    got = identity(lowphp_bin(), "lowphp-fpm", {"group": "nogroup"})
    check(got["uid"] == 0 and got["gid"] == 65534 and got["egid"] == 65534, f"uid 0, gid nogroup: {got}")


if __name__ == "__main__":
    run()
