"""The Debian package: built from this source tree by packaging/build-deb.sh
(dpkg-buildpackage + debhelper), then inspected without installing it on this
machine: control fields and Depends against what the binary links, the file
list and conffiles, lintian, the maintainer scripts, the systemd unit
(systemd-analyze verify), the man pages (mandoc -T lint, groff -ww, man -l),
tmpfiles and logrotate rules, and the shipped default configuration, which
must pass -t and serve PHP. Installing into a clean Debian 12 root is
packaging/test-install-chroot.sh (debootstrap, run separately).
LOWPHP_DEB=path/to/lowphp-fpm_*.deb skips the build (debugging only)."""
import glob
import os
import re
import shutil
import signal
import subprocess

from lowphp_test import TempDir, check, check_eq, check_in, fcgi, run, test, wait_for

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PKG = "lowphp-fpm"


def sh(cmd, **kw):
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    kw.setdefault("timeout", 600)
    return subprocess.run(cmd, **kw)


def project_version():
    m = re.search(r"project\(lowphp-fpm VERSION ([0-9.]+)", open(os.path.join(REPO, "CMakeLists.txt")).read())
    return m.group(1)


class Ctx:
    pass


def setup():
    c = Ctx()
    c.tmp = TempDir(prefix="lowphp-deb-test-")
    out = c.tmp.join("out")
    if os.environ.get("LOWPHP_DEB"):  # debugging: inspect an already built .deb
        os.makedirs(out)
        shutil.copy(os.environ["LOWPHP_DEB"], out)
    else:
        env = dict(os.environ, LOWPHP_NO_LINTIAN="1")  # lintian is its own test below
        r = sh(["bash", os.path.join(REPO, "packaging", "build-deb.sh"), out], env=env, timeout=1200)
        if r.returncode != 0:
            raise AssertionError(f"build-deb.sh failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    debs = glob.glob(os.path.join(out, "*.deb"))
    check_eq(len(debs), 1, f"one .deb built ({debs})")
    c.deb = debs[0]
    c.root = c.tmp.join("root")
    r = sh(["dpkg-deb", "-x", c.deb, c.root])
    check_eq(r.returncode, 0, f"dpkg-deb -x: {r.stderr}")
    c.ctl = c.tmp.join("control")
    r = sh(["dpkg-deb", "-e", c.deb, c.ctl])
    check_eq(r.returncode, 0, f"dpkg-deb -e: {r.stderr}")
    # The extracted binary looks for libphp.so in /usr/lib/lowphp-fpm (its
    # RUNPATH), which exists only once installed: give it the same link here.
    c.libdir = c.tmp.join("private-lib")
    os.makedirs(c.libdir)
    private = os.path.join(c.root, "usr/lib/lowphp-fpm")
    for name in os.listdir(private):
        target = os.path.realpath(os.path.join("/usr/lib/lowphp-fpm", os.readlink(os.path.join(private, name))))
        os.symlink(target, os.path.join(c.libdir, name))
    c.env = dict(os.environ, LD_LIBRARY_PATH=c.libdir)
    c.info = sh(["dpkg-deb", "-I", c.deb]).stdout
    c.contents = sh(["dpkg-deb", "-c", c.deb]).stdout
    return c


def teardown(c):
    if c is not None:
        c.tmp.cleanup()


def field(info, name):
    m = re.search(rf"^ {name}: (.*)$", info, re.M)
    return m.group(1) if m else None


@test
def file_name_and_control_fields(c):
    check_eq(os.path.basename(c.deb), f"{PKG}_{project_version()}_amd64.deb", "file name")
    check_eq(field(c.info, "Package"), PKG, "Package")
    check_eq(field(c.info, "Architecture"), "amd64", "Architecture")
    check_eq(field(c.info, "Version"), project_version(), "Version (debian/changelog = CMake project version)")
    for page in ("lowphp-fpm.8", "lowphp-fpm.conf.5"):
        head = open(os.path.join(REPO, "man", page)).readline()
        check_in(f'"lowphp-fpm {project_version()}"', head, f"{page}'s .TH names the version")
    check(field(c.info, "Maintainer"), "Maintainer")
    check(field(c.info, "Description"), "Description")


def needed_packages(root, binary):
    """The Debian package owning each shared library the binary links (NEEDED).
    A library the package links privately (usr/lib/lowphp-fpm/libphp.so, see
    packaging/CMakeLists.txt) is followed to the system file it points to."""
    out = sh(["readelf", "-d", binary]).stdout
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]", out)
    ldd = sh(["ldd", binary]).stdout
    owners = {}
    for lib in needed:
        private = os.path.join(root, "usr/lib/lowphp-fpm", lib)
        if os.path.islink(private):
            path = os.path.realpath(os.path.join("/usr/lib/lowphp-fpm", os.readlink(private)))
            check(os.path.exists(path), f"{lib} -> {path} exists on this system")
        else:
            m = re.search(rf"^\s*{re.escape(lib)} => (/\S+)", ldd, re.M)
            check(m, f"ldd resolves {lib}:\n{ldd}")
            path = os.path.realpath(m.group(1))
        r = sh(["dpkg", "-S", path])
        if r.returncode != 0:  # usrmerge: dpkg knows /lib/..., ldd says /usr/lib/...
            r = sh(["dpkg", "-S", path.replace("/usr/lib/", "/lib/", 1)])
        check_eq(r.returncode, 0, f"dpkg -S {path}: {r.stderr}")
        owners[lib] = r.stdout.split(":")[0]
    return owners


@test
def depends_match_the_linked_libraries(c):
    depends = field(c.info, "Depends")
    check(depends, "Depends field")
    names = {d.strip().split(" ")[0] for d in depends.split(",")}
    owners = needed_packages(c.root, os.path.join(c.root, "usr/sbin/lowphp-fpm"))
    for lib, pkg in owners.items():
        check(pkg in names, f"{lib} comes from {pkg}, missing in Depends: {depends}")
    check_in("libphp8.2-embed", names, "Depends")
    check("libfcgi0ldbl" not in names, f"no libfcgi since our own FastCGI codec: {depends}")
    check(any(n.startswith("libevent") for n in names), f"libevent in Depends: {depends}")
    # Nothing that is not linked (pg, mariadb, redis, inih are not used yet).
    check_eq(names - set(owners.values()), set(), f"Depends beyond the linked libraries ({depends})")


@test
def installed_binary_finds_libphp_through_its_private_link(c):
    binary = os.path.join(c.root, "usr/sbin/lowphp-fpm")
    out = sh(["readelf", "-d", binary]).stdout
    check_in("[/usr/lib/lowphp-fpm]", out, "RUNPATH")
    link = os.path.join(c.root, "usr/lib/lowphp-fpm/libphp.so")
    check(os.path.islink(link), "usr/lib/lowphp-fpm/libphp.so is a link")
    check_eq(os.readlink(link), "../libphp8.2.so", "libphp.so link target")


EXPECTED_FILES = [
    "./usr/sbin/lowphp-fpm",
    "./etc/lowphp/lowphp-fpm.conf",
    "./etc/lowphp/pool.d/www.conf",
    "./etc/logrotate.d/lowphp-fpm",
    "./lib/systemd/system/lowphp-fpm.service",
    "./usr/lib/tmpfiles.d/lowphp-fpm.conf",
    "./usr/share/man/man8/lowphp-fpm.8.gz",
    "./usr/share/man/man5/lowphp-fpm.conf.5.gz",
    "./usr/share/doc/lowphp-fpm/copyright",
    "./usr/share/doc/lowphp-fpm/changelog.gz",
    "./usr/share/doc/lowphp-fpm/examples/demo/lowphp-fpm.conf",
]


@test
def contents_and_conffiles(c):
    paths = {line.split()[5] for line in c.contents.splitlines() if line.strip()}
    for p in EXPECTED_FILES:
        check(p in paths, f"{p} in dpkg-deb -c:\n{c.contents}")
    binary = [line for line in c.contents.splitlines() if line.endswith("./usr/sbin/lowphp-fpm")][0]
    check(binary.startswith("-rwxr-xr-x root/root"), f"binary mode/owner: {binary}")
    conffiles = sorted(open(os.path.join(c.ctl, "conffiles")).read().split())
    check_eq(conffiles, ["/etc/logrotate.d/lowphp-fpm", "/etc/lowphp/lowphp-fpm.conf",
                         "/etc/lowphp/pool.d/www.conf"], "conffiles")


@test
def lintian_reports_no_warning(c):
    r = sh(["lintian", "--fail-on", "warning", "--display-info", c.deb])
    bad = [line for line in r.stdout.splitlines() if line[:2] in ("E:", "W:")]
    check_eq(bad, [], f"lintian errors and warnings (rc {r.returncode}):\n{r.stdout}\n{r.stderr}")
    check_eq(r.returncode, 0, f"lintian exit status:\n{r.stdout}\n{r.stderr}")
    print(r.stdout.strip() or "lintian: no tags", flush=True)


@test
def license_is_mit_in_the_tree_and_the_package(c):
    """LICENSE (MIT) at the top of the tree, the package's machine-readable
    copyright file covering every file under it as Expat, and saying that
    libphp (PHP License 3.01) is linked, not shipped."""
    text = open(os.path.join(REPO, "LICENSE")).read()
    check(text.startswith("MIT License\n"), "LICENSE is the MIT license")
    check_in("Permission is hereby granted, free of charge", text, "LICENSE")
    shipped = open(os.path.join(c.root, "usr/share/doc/lowphp-fpm/copyright")).read()
    check_eq(shipped, open(os.path.join(REPO, "packaging/debian/copyright")).read(), "shipped copyright file")
    check(shipped.startswith("Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/"),
          "machine-readable format")
    files = re.findall(r"^Files: (.*)\nCopyright: .*\nLicense: (.*)$", shipped, re.M)
    check_eq(files, [("*", "Expat")], "one Files stanza covers the whole tree, under Expat")
    check_in("\nLicense: Expat\n Permission is hereby granted, free of charge", shipped, "the license text")
    check_in("see LICENSE", shipped, "points at LICENSE")
    check_in("PHP License 3.01", shipped, "names libphp's license")
    readme = open(os.path.join(REPO, "README.md")).read()
    check(re.search(r"(?m)^## License\n\n.*MIT.*LICENSE", readme), "README's license section")


@test
def packaged_binary_names_its_version_and_commit(c):
    """-v of the packaged binary ends with the package's version and the commit
    build-deb.sh built it from (its copy of the tree has no .git)."""
    binary = os.path.join(c.root, "usr/sbin/lowphp-fpm")
    r = sh([binary, "-v"], env=c.env)
    check_eq(r.returncode, 0, f"-v: {r.stderr}")
    head = sh(["git", "-C", REPO, "rev-parse", "--short=12", "HEAD"]).stdout.strip()
    last = r.stdout.splitlines()[-1]
    check(re.fullmatch(rf"lowphp-fpm {re.escape(project_version())} \(git commit {head}( with uncommitted changes)?\)",
                       last), f"-v's last line: {last!r} (HEAD {head})")


@test
def maintainer_scripts_enable_and_start_only_under_systemd(c):
    postinst = open(os.path.join(c.ctl, "postinst")).read()
    check_in("deb-systemd-helper", postinst, "postinst enables the unit")
    check_in("lowphp-fpm.service", postinst, "postinst names the unit")
    check(re.search(r"systemd-tmpfiles .*--create lowphp-fpm.conf", postinst), "postinst creates /run/lowphp")
    # every start/reload is guarded: nothing runs where systemd is not PID 1
    blocks = re.findall(r"if \[[^\n]*-d /run/systemd/system \]; then(.*?)\n\s*fi", postinst, re.S)
    guarded = "".join(blocks)
    for m in re.finditer(r"^\s*(deb-systemd-invoke .*)$", postinst, re.M):
        check_in(m.group(1).strip(), guarded, "deb-systemd-invoke only under [ -d /run/systemd/system ]")
    check_in("try-reload-or-restart", postinst, "upgrade reloads (no restart)")


@test
def systemd_unit(c):
    unit_path = os.path.join(c.root, "lib/systemd/system/lowphp-fpm.service")
    unit = open(unit_path).read()
    for line in ["Type=notify", "KillMode=mixed", "KillSignal=SIGQUIT",
                 "ExecStartPre=/usr/sbin/lowphp-fpm --test --fpm-config /etc/lowphp/lowphp-fpm.conf",
                 "ExecStart=/usr/sbin/lowphp-fpm --nodaemonize --fpm-config /etc/lowphp/lowphp-fpm.conf",
                 "ExecReload=/bin/sh -c 'kill -USR2 $MAINPID'", "WantedBy=multi-user.target"]:
        check(re.search(rf"^{re.escape(line)}$", unit, re.M), f"unit line {line!r}:\n{unit}")
    m = re.search(r"^TimeoutStopSec=(\d+)s?$", unit, re.M)
    check(m and int(m.group(1)) >= 10, "TimeoutStopSec leaves time for a graceful stop")
    for forbidden in ["NoNewPrivileges=", "ProtectHome=", "MemoryDenyWriteExecute=", "User=", "DynamicUser="]:
        check(forbidden not in unit, f"{forbidden} would break pools running as other users / JIT")
    # systemd-analyze checks that ExecStart exists and man pages open: point it
    # at the extracted package.
    d = c.tmp.join("unit")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "lowphp-fpm.service"), "w") as f:
        f.write(unit.replace("/usr/sbin/lowphp-fpm", os.path.join(c.root, "usr/sbin/lowphp-fpm")))
    env = dict(os.environ, MANPATH=os.path.join(c.root, "usr/share/man"))
    r = sh(["systemd-analyze", "verify", os.path.join(d, "lowphp-fpm.service")], env=env)
    check_eq((r.returncode, r.stdout + r.stderr), (0, ""), "systemd-analyze verify")


@test
def man_pages_render_without_warnings(c):
    for page in ["usr/share/man/man8/lowphp-fpm.8.gz", "usr/share/man/man5/lowphp-fpm.conf.5.gz"]:
        path = os.path.join(c.root, page)
        r = sh(["mandoc", "-T", "lint", path])
        check_eq((r.returncode, r.stdout + r.stderr), (0, ""), f"mandoc -T lint {page}")
        src = sh(["zcat", path]).stdout
        r = sh(["groff", "-ww", "-man", "-Tutf8"], input=src)
        check_eq((r.returncode, r.stderr), (0, ""), f"groff -ww {page}")
        r = sh(["man", "--warnings", "-l", path], env=dict(os.environ, MANWIDTH="80"))
        check_eq((r.returncode, r.stderr), (0, ""), f"man --warnings -l {page}")
        check(len(r.stdout) > 2000, f"man -l output for {page}")


@test
def conf_man_page_documents_every_directive(c):
    parser = open(os.path.join(REPO, "src/config/parser.cpp")).read()
    directives = set(re.findall(r'^\s*\{"([a-z_.]+)",(?!\s*(?:LogLevel|PmStyle))', parser, re.M))
    check(len(directives) > 50, f"directives found in parser.cpp: {sorted(directives)}")
    text = sh(["man", "-l", os.path.join(c.root, "usr/share/man/man5/lowphp-fpm.conf.5.gz")],
              env=dict(os.environ, MANWIDTH="200")).stdout
    text = re.sub(r".\x08", "", text)
    missing = [d for d in sorted(directives) if not re.search(rf"(^|[ ,]){re.escape(d)}($|[ ,])", text, re.M)]
    check_eq(missing, [], "directives absent from lowphp-fpm.conf(5)")
    for arr in ["env[", "php_value[", "php_flag[", "php_admin_value[", "php_admin_flag[",
                "access.suppress_path[]", "include="]:
        check_in(arr, text, "lowphp-fpm.conf(5)")


@test
def tmpfiles_and_logrotate_rules(c):
    conf = os.path.join(c.root, "usr/lib/tmpfiles.d/lowphp-fpm.conf")
    target = c.tmp.join("tmpfiles-root")
    os.makedirs(target)
    r = sh(["systemd-tmpfiles", "--create", f"--root={target}", conf])
    check_eq((r.returncode, r.stderr), (0, ""), "systemd-tmpfiles --create")
    st = os.stat(os.path.join(target, "run/lowphp"))
    check_eq(oct(st.st_mode & 0o7777), "0o755", "/run/lowphp mode")
    rule = open(os.path.join(c.root, "etc/logrotate.d/lowphp-fpm")).read()
    check_in("/var/log/lowphp-fpm.log", rule, "logrotate rule file")
    check_in('kill -USR1 "$(cat /run/lowphp/lowphp-fpm.pid)"', rule, "logrotate sends SIGUSR1")
    state = c.tmp.join("logrotate.state")
    r = sh(["logrotate", "-d", "-s", state, os.path.join(c.root, "etc/logrotate.d/lowphp-fpm")])
    check_eq(r.returncode, 0, f"logrotate -d:\n{r.stdout}\n{r.stderr}")
    check("error" not in (r.stdout + r.stderr).lower(), f"logrotate -d:\n{r.stdout}\n{r.stderr}")


def relocated_config(c):
    """The shipped /etc/lowphp with its absolute paths moved under a temp dir."""
    base = c.tmp.join("etc-test")
    shutil.rmtree(base, ignore_errors=True)
    shutil.copytree(os.path.join(c.root, "etc/lowphp"), base)
    main = os.path.join(base, "lowphp-fpm.conf")
    text = open(main).read()
    for old, new in [("/etc/lowphp", base), ("/run/lowphp", base), ("/var/log", base)]:
        text = text.replace(old, new)
    open(main, "w").write(text)
    pool = os.path.join(base, "pool.d/www.conf")
    text = open(pool).read().replace("/run/lowphp", base)
    open(pool, "w").write(text)
    return base, main


@test
def default_config_passes_test_flag(c):
    binary = os.path.join(c.root, "usr/sbin/lowphp-fpm")
    # as shipped (include=/etc/lowphp/pool.d/*.conf is absolute: relocate it)
    base, main = relocated_config(c)
    r = sh([binary, "-t", "-y", main], env=c.env)
    check_eq(r.returncode, 0, f"-t exit status: {r.stderr}")
    check_in(f"configuration file {main} test is successful", r.stderr, "-t")
    r = sh([binary, "-tt", "-y", main], env=c.env)
    for line in ["user = www-data", "group = www-data", "listen.owner = www-data", "pm = dynamic",
                 "pm.max_children = 5"]:
        check_in(line, r.stderr, "-tt dump of the default www pool")


@test
def default_pool_serves_php(c):
    binary = os.path.join(c.root, "usr/sbin/lowphp-fpm")
    base, main = relocated_config(c)
    sock = os.path.join(base, "lowphp-fpm.sock")
    docroot = c.tmp.join("docroot")
    os.makedirs(docroot, exist_ok=True)
    os.chmod(c.tmp.path, 0o755)
    script = os.path.join(docroot, "who.php")
    open(script, "w").write("<?php echo posix_getpwuid(posix_geteuid())['name'], ' ', PHP_SAPI, ' ', "
                            "php_ini_loaded_file();\n")
    os.chmod(script, 0o644)
    proc = subprocess.Popen([binary, "-F", "-y", main], start_new_session=True, env=c.env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        log = os.path.join(base, "lowphp-fpm.log")
        wait_for(lambda: os.path.exists(log) and "ready to handle connections" in open(log).read(), 20,
                 what="ready to handle connections")
        st = os.stat(sock)
        check_eq(oct(st.st_mode & 0o777), "0o660", "socket mode")
        with fcgi.Connection(sock) as conn:
            r = conn.request({"REQUEST_METHOD": "GET", "SCRIPT_FILENAME": script,
                              "SCRIPT_NAME": "/who.php", "DOCUMENT_ROOT": docroot})
        check(r.complete, f"no response: {r!r}")
        check_eq(r.body, b"www-data fpm-fcgi /etc/php/8.2/embed/php.ini", "body")
        check_eq(open(os.path.join(base, "lowphp-fpm.pid")).read().strip(), str(proc.pid), "pid file")
    finally:
        os.killpg(proc.pid, signal.SIGQUIT)
        proc.wait(timeout=30)


if __name__ == "__main__":
    run(setup, teardown)
