"""Who may connect to a pool: unix socket permissions (php-fpm's 0660 default,
listen.owner/group, listen.acl_users) and listen.allowed_clients on TCP."""
import os
import pwd
import socket
import stat
import subprocess

from lowphp_test import Backend, check, check_eq, fcgi, run, test, util

connect_as = util.connect_as



def hello(backend):
    script = os.path.join(backend.dir, "hi.php")
    with open(script, "w") as f:
        f.write("<?php echo 'hi';")
    with fcgi.Connection(backend.address) as c:
        return c.request({"REQUEST_METHOD": "GET", "SCRIPT_FILENAME": script, "SCRIPT_NAME": "/hi.php"})


@test
def unix_socket_default_mode_and_owner():
    b = Backend(pool={"listen.owner": "www-data", "listen.group": "www-data"})
    b.start()
    try:
        st = os.stat(b.socket_path)
        check_eq(oct(stat.S_IMODE(st.st_mode)), "0o660", "socket mode")
        check_eq(pwd.getpwuid(st.st_uid).pw_name, "www-data", "socket owner")
        check_eq(connect_as("www-data", b.socket_path), "connected", "www-data (listen.owner)")
        check_eq(connect_as("nobody", b.socket_path), "denied", "another user")
    finally:
        b.stop()


@test
def acl_users_grant_access_to_named_user_only():
    b = Backend(pool={"listen.acl_users": "nobody", "listen.mode": "0600"})
    b.start()
    try:
        check(os.getxattr(b.socket_path, "system.posix_acl_access"), "ACL written on the socket")
        check_eq(connect_as("nobody", b.socket_path), "connected", "nobody (listen.acl_users)")
        check_eq(connect_as("www-data", b.socket_path), "denied", "www-data (not in the ACL)")
    finally:
        b.stop()


@test
def allowed_clients_drops_other_addresses():
    # The refusal is logged by the worker: visible with catch_workers_output.
    b = Backend(listen="tcp", pool={"listen.allowed_clients": "127.0.0.2",
                                    "catch_workers_output": "yes"})
    b.start()
    try:
        mark = b.log_mark()
        r = None
        try:
            r = hello(b)
        except (ConnectionError, socket.timeout, OSError):
            pass
        check(r is None or not r.complete, f"a request from 127.0.0.1 must not be served: {r!r}")
        b.wait_log(r"Connection disallowed: IP address '127\.0\.0\.1' has been dropped\.", mark)
    finally:
        b.stop()


@test
def allowed_clients_lets_listed_address_in():
    b = Backend(listen="tcp", pool={"listen.allowed_clients": "127.0.0.1,::1"})
    b.start()
    try:
        r = hello(b)
        check(r.complete and r.body == b"hi", f"served: {r!r}")
    finally:
        b.stop()


def served_over(family, host, port, script):
    with fcgi.Connection((host, port)) as c:
        r = c.request({"REQUEST_METHOD": "GET", "SCRIPT_FILENAME": script, "SCRIPT_NAME": "/hi.php"})
    return r.complete and r.body == b"hi"


@test
def port_alone_and_ipv6_listen_forms():
    # php-fpm: a port alone and [::]:port take IPv4 and IPv6 (dual stack),
    # [::1]:port only IPv6 loopback
    for form, reach, unreachable in (("{port}", [("127.0.0.1", socket.AF_INET), ("::1", socket.AF_INET6)], []),
                                     ("[::]:{port}", [("127.0.0.1", socket.AF_INET), ("::1", socket.AF_INET6)], []),
                                     ("[::1]:{port}", [("::1", socket.AF_INET6)], ["127.0.0.1"])):
        port = util.free_port()
        b = Backend(listen="tcp", pool={"listen": form.format(port=port)})
        b.start()
        try:
            script = b.tmp.join("hi.php")
            util.write_file(script, "<?php echo 'hi';")
            for host, family in reach:
                check(served_over(family, host, port, script), f"listen = {form}: served over {host}")
            for host in unreachable:
                try:
                    socket.create_connection((host, port), timeout=2).close()
                    refused = False
                except OSError:
                    refused = True
                check(refused, f"listen = {form}: {host} refused")
        finally:
            b.stop()
            b.close()


if __name__ == "__main__":
    run()
