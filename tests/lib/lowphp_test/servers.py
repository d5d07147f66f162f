"""Real database servers on loopback for integration tests: PostgreSQL 15,
MariaDB and Redis, each in its own temp dir on a free 127.0.0.1 port.

    with Postgres() as pg, MariaDB() as my, Redis() as rd:
        pg.dsn, my.dsn, rd.dsn           # what a pool's pgsql[]/mysql[]/redis[] takes
        pg.sql("SELECT 1")               # [("1",)]
        pg.app_sessions()                # sessions open as the app user now

Every server gets user `app`, password `apppw`, database `app` (Redis: an
ACL user app/apppw; database 0).

How the processes are run, and why:
- Each server is a direct child of the test (subprocess.Popen, never pg_ctl
  or a daemonising wrapper), so the test reaps it: on the development VM PID 1
  reaps orphans late (seconds) or not at all, and a pg_ctl-daemonised
  postmaster was seen staying a zombie there.
- Popen drops to the server's system user (postgres, mysql, redis) itself,
  with no supplementary groups, before exec.
- A new session, so a Ctrl-C at the terminal reaches only the test (whose
  __exit__ then stops the server), not the server directly.
- Backstops if the test never reaches stop(): an atexit hook stops every
  server still running, and `setpriv --pdeathsig` makes the kernel send the
  server its stop signal when the test process dies (SIGKILL, ctest timeout).
  The parent-death signal belongs to the *thread* that started the server:
  start servers from the main thread (the runner's tests run there).

Standard library only.
"""
import atexit
import os
import pwd
import shlex
import signal
import socket
import subprocess
import sys
import time

if __package__:
    from . import util
else:  # run as a script (the smoke check): python3 tests/lib/lowphp_test/servers.py
    # sys.path[0] is this file's directory, whose http.py would shadow the
    # standard library's: put the package's parent there instead
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    from lowphp_test import util

APP_USER = "app"
APP_PASSWORD = "apppw"
APP_DB = "app"

PG_BIN = "/usr/lib/postgresql/15/bin"
MARIADBD = "/usr/sbin/mariadbd"
MARIADB_INSTALL_DB = "/usr/bin/mariadb-install-db"
MARIADB = "/usr/bin/mariadb"
MARIADB_ADMIN = "/usr/bin/mariadb-admin"
REDIS_SERVER = "/usr/bin/redis-server"

# Servers started and not yet stopped, for the atexit backstop.
_running = set()


@atexit.register
def _stop_leftovers():
    for server in list(_running):
        try:
            server.stop(timeout=5.0)
        except Exception:  # noqa: BLE001 - best effort at exit
            pass


class ServerError(AssertionError):
    """A server did not start, or a command against it failed (an
    AssertionError, so the runner prints the message as the failure)."""


class _PortTaken(Exception):
    """The server exited because its port was taken between free_port() and bind."""


class _Server:
    """Common start/stop logic; subclasses define the commands."""

    name = "server"
    run_as = None                 # system user the server runs as (None: root)
    stop_signal = signal.SIGTERM  # graceful stop, also the parent-death signal
    requires = ()                 # (program, Debian package) pairs

    def __init__(self, ready_timeout=30.0, stop_timeout=20.0):
        self.ready_timeout = ready_timeout
        self.stop_timeout = stop_timeout
        self.host = "127.0.0.1"
        self.port = None
        self.proc = None
        self.tmp = None
        self.dir = None
        self.log_file = None
        self.returncode = None
        self.startup_seconds = None  # start() to ready and set up

    # -- subclass hooks ---------------------------------------------------
    def _init(self):
        """Create the data directory (runs once, before the first spawn)."""

    def _command(self):
        raise NotImplementedError

    def _ready(self):
        """True once the server accepts connections."""
        raise NotImplementedError

    def _setup(self):
        """Create the app user and database."""

    def _after_stop(self):
        """Release client-side resources (connections held by the harness)."""

    # -- lifecycle --------------------------------------------------------
    def start(self):
        if self.proc is not None:
            raise ServerError(f"{self.name} already started")
        missing = [f"{prog} (package {pkg})" for prog, pkg in self.requires if not os.access(prog, os.X_OK)]
        if missing:
            raise ServerError(f"{self.name}: missing {', '.join(missing)}; run scripts/install-deps.sh")
        t0 = time.monotonic()
        self.tmp = util.TempDir(prefix=f"lowphp-{self.name}-")  # mode 0755: traversable by the server's user
        self.dir = self.tmp.path
        self.log_file = self.tmp.join(f"{self.name}.log")
        try:
            if self.run_as:
                pw = pwd.getpwnam(self.run_as)
                os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            self._init()
            # free_port() releases the port before the server binds it; another
            # test (ctest -j) may take it in between: then retry with a new one.
            for attempt in range(3):
                self.port = util.free_port()
                try:
                    self._spawn()
                    self._wait_ready()
                    break
                except _PortTaken:
                    self.proc.wait()
                    _running.discard(self)
                    self.proc = None
                    if attempt == 2:
                        raise ServerError(f"{self.name}: port taken three times in a row\n{self.log_tail()}")
            self._setup()
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - t0
        return self

    def _spawn(self):
        cmd = self._command()
        # setpriv runs after Popen has dropped to run_as, so the parent-death
        # signal survives (a change of uid clears it); it then execs the server,
        # which keeps setpriv's pid: self.proc.pid is the server.
        full = ["setpriv", f"--pdeathsig={self.stop_signal.name}", "--"] + cmd
        kw = {}
        if self.run_as:
            kw = dict(user=self.run_as, group=pwd.getpwnam(self.run_as).pw_gid, extra_groups=[])
        self._log_mark = len(util.read_text(self.log_file))
        with open(self.log_file, "ab") as log:
            self.proc = subprocess.Popen(full, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                         cwd=self.dir, start_new_session=True, **kw)
        _running.add(self)

    def _wait_ready(self):
        deadline = time.monotonic() + self.ready_timeout
        while True:
            # exit first: when the port was taken, whatever holds it may
            # accept the probe's connection and never answer
            if self.proc.poll() is not None:
                if "Address already in use" in util.read_text(self.log_file)[self._log_mark:]:
                    raise _PortTaken()
                raise ServerError(f"{self.name} exited with status {self.proc.returncode} before it was ready\n"
                                  f"command: {shlex.join(self._command())}\n{self.log_tail()}")
            if self._ready():
                return
            if time.monotonic() > deadline:
                raise ServerError(f"{self.name} not ready after {self.ready_timeout}s\n"
                                  f"command: {shlex.join(self._command())}\n{self.log_tail()}")
            time.sleep(0.05)

    def stop(self, timeout=None):
        """Stop the server (its stop signal, SIGKILL to it and its children
        after `timeout`) and remove the temp dir. Safe to call twice."""
        timeout = self.stop_timeout if timeout is None else timeout
        try:
            self._after_stop()
        except Exception:  # noqa: BLE001
            pass
        proc = self.proc
        if proc is not None:
            if proc.poll() is None:
                # collected now: once the server is killed they are orphans
                children = util.descendants_of(proc.pid)
                util.kill_quiet(proc.pid, self.stop_signal)
                try:
                    proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    for pid in [proc.pid] + children:
                        util.kill_quiet(pid, signal.SIGKILL)
                    proc.wait()
            self.returncode = proc.returncode
            self.proc = None
            _running.discard(self)
        if self.tmp is not None:
            self.tmp.cleanup()
            self.tmp = None

    def restart(self, down=0.0):
        """Stop the server process (its stop signal) and start it again on
        the same port with the same data, as an operator's restart does;
        `down` seconds pass in between. Returns once it accepts connections."""
        proc = self.proc
        if proc is None:
            raise ServerError(f"{self.name} is not running")
        util.kill_quiet(proc.pid, self.stop_signal)
        try:
            proc.wait(self.stop_timeout)
        except subprocess.TimeoutExpired:
            util.kill_quiet(proc.pid, signal.SIGKILL)
            proc.wait()
        _running.discard(self)
        self.proc = None
        time.sleep(down)
        self._spawn()
        self._wait_ready()

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def log(self):
        return util.read_text(self.log_file) if self.log_file else ""

    def log_tail(self, lines=40):
        text = self.log().splitlines()[-lines:]
        return f"--- last {len(text)} lines of {self.log_file} ---\n" + "\n".join(text)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- helpers ----------------------------------------------------------
    def _run(self, cmd, what, input=None, timeout=30, **kw):
        """Run a client command; raise ServerError with its output on failure."""
        r = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout, **kw)
        if r.returncode != 0:
            raise ServerError(f"{self.name}: {what} failed with status {r.returncode}\n"
                              f"command: {shlex.join(cmd)}\n--- stdout ---\n{r.stdout}--- stderr ---\n{r.stderr}")
        return r.stdout

    @staticmethod
    def _rows(out):
        """Tab-separated client output -> list of tuples of strings."""
        return [tuple(line.split("\t")) for line in out.splitlines()]


# ---------------------------------------------------------------- PostgreSQL
class Postgres(_Server):
    """PostgreSQL 15: unix socket in the temp dir (trust, for the harness as
    superuser `postgres`), TCP on 127.0.0.1 with scram-sha-256 (the app).

    settings: extra server settings, {"name": value}, passed as -c name=value.
    """

    name = "postgres"
    run_as = "postgres"
    stop_signal = signal.SIGINT  # fast shutdown; SIGTERM (smart) waits for every client to leave
    requires = [(f"{PG_BIN}/{p}", "postgresql-15") for p in ("initdb", "postgres", "pg_isready", "psql")]
    superuser_password = "postgres"  # initdb wants one with password auth on TCP; unused by the harness

    def __init__(self, settings=None, **kw):
        super().__init__(**kw)
        self.settings = dict(settings or {})

    @property
    def socket_dir(self):
        return self.dir

    @property
    def dsn(self):
        return f"host={self.host} port={self.port} dbname={APP_DB} user={APP_USER} password={APP_PASSWORD}"

    @property
    def pdo_dsn(self):
        return f"pgsql:host={self.host};port={self.port};dbname={APP_DB}"

    def _init(self):
        pw = pwd.getpwnam(self.run_as)
        pwfile = self.tmp.join("pwfile")
        util.write_file(pwfile, self.superuser_password + "\n", 0o600)
        os.chown(pwfile, pw.pw_uid, pw.pw_gid)
        self._run([f"{PG_BIN}/initdb", "-D", self.tmp.join("data"), "-U", "postgres",
                   "--auth-local=trust", "--auth-host=scram-sha-256", f"--pwfile={pwfile}",
                   "-E", "UTF8", "--no-locale", "--no-sync"],
                  "initdb", user=self.run_as, group=pw.pw_gid, extra_groups=[], cwd=self.dir)
        os.unlink(pwfile)

    def _command(self):
        settings = {
            "listen_addresses": "127.0.0.1",
            "fsync": "off", "synchronous_commit": "off", "full_page_writes": "off",
            "max_connections": "100",
            # one line per connection, with the user: connects() counts them
            "log_connections": "on",
        }
        settings.update(self.settings)
        cmd = [f"{PG_BIN}/postgres", "-D", self.tmp.join("data"), "-p", str(self.port), "-k", self.dir]
        for k, v in settings.items():
            cmd += ["-c", f"{k}={v}"]
        return cmd

    def _ready(self):
        # the log line first: no probe goes to a port that someone else took
        if "database system is ready to accept connections" not in self.log()[self._log_mark:]:
            return False
        return subprocess.run([f"{PG_BIN}/pg_isready", "-q", "-h", self.host, "-p", str(self.port), "-t", "1"],
                              capture_output=True).returncode == 0

    def _setup(self):
        self.sql(f"CREATE ROLE {APP_USER} LOGIN PASSWORD '{APP_PASSWORD}'", db="postgres")
        self.sql(f"CREATE DATABASE {APP_DB} OWNER {APP_USER}", db="postgres")

    def psql_command(self, db=APP_DB, user="postgres"):
        """psql over the unix socket (trust), no psqlrc, stop on error, unaligned tab-separated rows."""
        return [f"{PG_BIN}/psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-At", "-F", "\t",
                "-h", self.dir, "-p", str(self.port), "-U", user, "-d", db]

    def sql(self, query, db=APP_DB, user="postgres"):
        """Run `query` (one or more statements; rows of the last) -> list of
        tuples of strings (NULL is ""). Raises ServerError on an SQL error."""
        return self._rows(self._run(self.psql_command(db, user) + ["-c", query], f"SQL {query!r}"))

    # The counters below query database `postgres`: pg_stat_activity and
    # pg_stat_database cover the whole cluster, and a harness session in
    # database `app` would itself count in pg_stat_database.sessions.
    def app_sessions(self):
        """Backends of the app user right now (pg_stat_activity is live)."""
        return int(self.sql(f"SELECT count(*) FROM pg_stat_activity WHERE usename = '{APP_USER}'", db="postgres")[0][0])

    def connects(self):
        """Connections the app user has opened since start (successful
        authentications), counted from the log_connections lines: exact, at
        once (the backend logs before the client's connect completes), and
        only the app user's."""
        return self.log().count(f"connection authorized: user={APP_USER} ")

    def stat_sessions(self):
        """pg_stat_database.sessions of database `app`: sessions of *any* user
        in it, so sql() calls (database `app` by default) count too. A backend
        flushes its statistics when it first goes idle, before its first
        ReadyForQuery, so a new session is counted by the time its client is
        connected (observed: at once, open or closed); a flush that meets lock
        contention is retried within about a second."""
        return int(self.sql(f"SELECT sessions FROM pg_stat_database WHERE datname = '{APP_DB}'", db="postgres")[0][0])

    def kill_app_sessions(self, wait_ms=5000):
        """pg_terminate_backend() every app session, waiting up to wait_ms for
        each to exit (PG14+); returns how many there were."""
        return int(self.sql(f"SELECT count(pg_terminate_backend(pid, {int(wait_ms)})) "
                            f"FROM pg_stat_activity WHERE usename = '{APP_USER}'", db="postgres")[0][0])


# ------------------------------------------------------------------- MariaDB
class MariaDB(_Server):
    """MariaDB: unix socket in the temp dir (root by unix_socket auth, for the
    harness), TCP on 127.0.0.1 (the app: app@127.0.0.1 and app@localhost).

    options: extra mariadbd options, ["--name=value", ...].
    """

    name = "mariadb"
    run_as = "mysql"  # as Debian's mariadb.service does (User=mysql); --user would need root
    stop_signal = signal.SIGTERM
    requires = [(MARIADBD, "mariadb-server"), (MARIADB_INSTALL_DB, "mariadb-server"),
                (MARIADB, "mariadb-client"), (MARIADB_ADMIN, "mariadb-client")]

    def __init__(self, options=(), **kw):
        super().__init__(**kw)
        self.options = list(options)

    @property
    def socket(self):
        return self.tmp.join("mysqld.sock") if self.tmp else None

    @property
    def dsn(self):
        return f"host={self.host} port={self.port} user={APP_USER} password={APP_PASSWORD} dbname={APP_DB}"

    @property
    def pdo_dsn(self):
        return f"mysql:host={self.host};port={self.port};dbname={APP_DB}"

    def _server_options(self):
        # Also given to mariadb-install-db (it passes them on to its bootstrap
        # server), so the files it creates match: e.g. an 8 MB redo log
        # instead of the 96 MB default.
        return [
            f"--datadir={self.tmp.join('data')}",
            "--innodb-buffer-pool-size=16M", "--innodb-log-file-size=8M",
            "--innodb-flush-log-at-trx-commit=0", "--innodb-doublewrite=0",
            "--skip-log-bin", "--performance-schema=OFF",
            # Debian's /etc/mysql/mariadb.conf.d/50-server.cnf sets these
            "--character-set-server=utf8mb4", "--collation-server=utf8mb4_general_ci",
            # per-user counters in information_schema.USER_STATISTICS: connects()
            "--userstat=1",
        ]

    def _init(self):
        # as root with --user=mysql: the script chowns the data dir to it
        self._run([MARIADB_INSTALL_DB, "--no-defaults", "--user=mysql", "--skip-test-db",
                   "--auth-root-authentication-method=socket"] + self._server_options(),
                  "mariadb-install-db", cwd=self.dir, timeout=120)

    def _command(self):
        return [MARIADBD, "--no-defaults"] + self._server_options() + [
            f"--socket={self.socket}", f"--port={self.port}", f"--bind-address={self.host}",
            "--skip-name-resolve", f"--pid-file={self.tmp.join('mariadb.pid')}",
            f"--log-error={self.log_file}",
        ] + self.options

    def _ready(self):
        if not os.path.exists(self.socket):
            return False
        return subprocess.run([MARIADB_ADMIN, "--no-defaults", "-S", self.socket, "-uroot", "ping"],
                              capture_output=True).returncode == 0

    def _setup(self):
        users = [f"{APP_USER}@'127.0.0.1'", f"{APP_USER}@'localhost'"]
        self.sql(f"CREATE DATABASE {APP_DB}; "
                 + "".join(f"CREATE USER {u} IDENTIFIED BY '{APP_PASSWORD}'; "
                           f"GRANT ALL ON {APP_DB}.* TO {u}; " for u in users))

    def client_command(self):
        """mariadb as root over the unix socket, batch mode, no column names."""
        return [MARIADB, "--no-defaults", "-S", self.socket, "-uroot", "-N", "-B"]

    def sql(self, query, db=None):
        """Run `query` as root -> list of tuples of strings (NULL is "NULL")."""
        cmd = self.client_command() + ([db] if db else []) + ["-e", query]
        return self._rows(self._run(cmd, f"SQL {query!r}"))

    def _app_ids(self):
        return [r[0] for r in self.sql(f"SELECT ID FROM information_schema.PROCESSLIST WHERE USER = '{APP_USER}'")]

    def app_sessions(self):
        return len(self._app_ids())

    def connects(self):
        """Connections the app user has opened since start
        (USER_STATISTICS.TOTAL_CONNECTIONS, counted when the connection
        logs in; the harness's root connections are not in it)."""
        rows = self.sql("SELECT TOTAL_CONNECTIONS FROM information_schema.USER_STATISTICS "
                        f"WHERE USER = '{APP_USER}'")
        return int(rows[0][0]) if rows else 0

    def global_connections(self):
        """SHOW GLOBAL STATUS 'Connections': every connection attempt, the
        harness's own included (each sql() call is one)."""
        return int(self.sql("SHOW GLOBAL STATUS LIKE 'Connections'")[0][1])

    def kill_app_sessions(self):
        """KILL every app session; returns how many there were."""
        ids = self._app_ids()
        if ids:
            # --force: go on when a session has already gone ("Unknown thread id")
            cmd = self.client_command() + ["--force", "-e", "".join(f"KILL {i};" for i in ids)]
            subprocess.run(cmd, capture_output=True, timeout=30)
            util.wait_for(lambda: not set(ids) & set(self._app_ids()), 10, what="killed app sessions to go")
        return len(ids)


# --------------------------------------------------------------------- Redis
class RedisError(Exception):
    """An error reply (-ERR ...) from Redis."""


class RespClient:
    """A minimal blocking RESP2 client: cmd(*args) -> str / int / None / list;
    an error reply raises RedisError (inside an array it is returned as a
    RedisError instance)."""

    def __init__(self, address, timeout=10.0):
        family = socket.AF_UNIX if isinstance(address, str) else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(address)
        self.rfile = self.sock.makefile("rb")

    def close(self):
        self.rfile.close()
        self.sock.close()

    @staticmethod
    def encode(args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            if isinstance(a, str):
                a = a.encode()
            elif not isinstance(a, bytes):
                a = str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        return b"".join(out)

    def cmd(self, *args):
        self.sock.sendall(self.encode(args))
        reply = self._read()
        if isinstance(reply, RedisError):
            raise reply
        return reply

    def _line(self):
        line = self.rfile.readline()
        if not line.endswith(b"\r\n"):
            raise ConnectionError("connection closed by redis")
        return line[:-2]

    def _read(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            return RedisError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = self.rfile.read(n + 2)
            if len(data) != n + 2:
                raise ConnectionError("connection closed by redis")
            return data[:-2].decode("utf-8", "surrogateescape")
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._read() for _ in range(n)]
        raise ConnectionError(f"unexpected reply line from redis: {line!r}")


class Redis(_Server):
    """Redis: TCP on 127.0.0.1 and a unix socket in the temp dir, no
    persistence. password: requirepass for the default user. An ACL user
    app/apppw is created too (user_dsn).

    The harness keeps one connection of its own, named `harness` (CLIENT
    SETNAME); app_sessions() and kill_app_sessions() leave it out, and
    connects() subtracts the connections the harness made.
    """

    name = "redis"
    stop_signal = signal.SIGTERM
    requires = [(REDIS_SERVER, "redis-server")]
    harness_name = "harness"

    def __init__(self, password=None, unixsocketperm="700", **kw):
        super().__init__(**kw)
        self.password = password
        self.unixsocketperm = unixsocketperm
        self.run_as = "redis" if _user_exists("redis") else None
        self._client = None
        self._harness_connects = 0

    @property
    def socket(self):
        return self.tmp.join("redis.sock") if self.tmp else None

    @property
    def dsn(self):
        return f"host={self.host} port={self.port}" + (f" password={self.password}" if self.password else "")

    @property
    def user_dsn(self):
        return f"host={self.host} port={self.port} user={APP_USER} password={APP_PASSWORD}"

    def _command(self):
        cmd = [REDIS_SERVER, "--port", str(self.port), "--bind", self.host, "--save", "", "--appendonly", "no",
               "--daemonize", "no", "--dir", self.dir, "--logfile", "",  # "": stdout, our log file
               "--unixsocket", self.socket, "--unixsocketperm", self.unixsocketperm]
        if self.password:
            cmd += ["--requirepass", self.password]
        return cmd

    def _connect(self, timeout=10.0):
        c = RespClient((self.host, self.port), timeout)
        self._harness_connects += 1
        try:
            if self.password:
                c.cmd("AUTH", self.password)
            c.cmd("CLIENT", "SETNAME", self.harness_name)
        except BaseException:
            c.close()
            raise
        return c

    def _ready(self):
        # the unix socket is made after the TCP listener: no probe goes to a
        # port that someone else took
        if not os.path.exists(self.socket):
            return False
        try:
            c = self._connect(timeout=1.0)
            c.sock.settimeout(10.0)
        except (ConnectionError, OSError, RedisError):  # RedisError: -LOADING
            return False
        try:
            if c.cmd("PING") == "PONG":
                self._client = c
                return True
        except (ConnectionError, OSError, RedisError):
            pass
        c.close()
        return False

    def _setup(self):
        self.cmd("ACL", "SETUSER", APP_USER, "on", f">{APP_PASSWORD}", "~*", "&*", "+@all")

    def _after_stop(self):
        if self._client is not None:
            self._client.close()
            self._client = None

    def cmd(self, *args):
        """Send one command on the harness connection; returns the reply.
        If Redis closed that connection (e.g. a test ran CLIENT KILL without
        SKIPME), reconnects once and resends: a closed connection ran nothing."""
        for attempt in (1, 2):
            if self._client is None:
                self._client = self._connect()
            try:
                return self._client.cmd(*args)
            except (ConnectionError, BrokenPipeError):
                self._client.close()
                self._client = None
                if attempt == 2:
                    raise

    def clients(self):
        """CLIENT LIST as dicts, the harness's own connection left out."""
        out = []
        for line in self.cmd("CLIENT", "LIST").splitlines():
            fields = dict(f.split("=", 1) for f in line.split() if "=" in f)
            if fields.get("name") != self.harness_name:
                out.append(fields)
        return out

    def app_sessions(self):
        return len(self.clients())

    def connects(self):
        """Connections accepted since start (INFO total_connections_received)
        minus the harness's own."""
        info = self.cmd("INFO", "stats")
        for line in info.splitlines():
            if line.startswith("total_connections_received:"):
                return int(line.split(":", 1)[1]) - self._harness_connects
        raise ServerError(f"no total_connections_received in INFO stats:\n{info}")

    def kill_app_sessions(self):
        """CLIENT KILL every normal client but the harness; returns the count."""
        return self.cmd("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")


def _user_exists(name):
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


# ---------------------------------------------------------------- smoke test
def _smoke():
    """Starts each server (two at once), logs in as the app over TCP with the
    password, checks the counters and the kill, and that stopping leaves no
    process and no temp dir behind. Prints the start-up times."""

    def check(cond, msg):
        if not cond:
            raise AssertionError(msg)

    def wait_eq(fn, want, what, timeout=5.0):
        try:
            util.wait_for(lambda: fn() == want, timeout, what=what)
        except TimeoutError:
            raise AssertionError(f"{what}: want {want}, got {fn()}")

    def pg_client(pg, *args, stdin=None):
        env = dict(os.environ, PGPASSWORD=APP_PASSWORD)
        cmd = [f"{PG_BIN}/psql", "-X", "-q", "-At", "-h", pg.host, "-p", str(pg.port), "-U", APP_USER, APP_DB] + list(args)
        if stdin is not None:
            return subprocess.Popen(cmd, stdin=stdin, stdout=subprocess.DEVNULL, env=env)
        return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=30)

    def my_client(my, *args, stdin=None):
        cmd = [MARIADB, "--no-defaults", f"-h{my.host}", f"-P{my.port}", f"-u{APP_USER}", f"-p{APP_PASSWORD}", "-N", "-B",
               APP_DB] + list(args)
        if stdin is not None:
            return subprocess.Popen(cmd, stdin=stdin, stdout=subprocess.DEVNULL)
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30)

    def check_pg(pg):
        r = pg_client(pg, "-c", "select 1")
        check(r.returncode == 0 and r.stdout.strip() == "1", f"app login over TCP: {r}")
        bad = subprocess.run([f"{PG_BIN}/psql", "-X", "-h", pg.host, "-p", str(pg.port), "-U", APP_USER, APP_DB, "-c", "select 1"],
                             capture_output=True, text=True, env=dict(os.environ, PGPASSWORD="wrong"))
        check(bad.returncode != 0 and "password authentication failed" in bad.stderr, f"wrong password refused: {bad}")
        before, stat0 = pg.connects(), pg.stat_sessions()
        pg_client(pg, "-c", "select 1")
        check(pg.connects() == before + 1, f"connects {before} -> {pg.connects()}")
        check(pg.stat_sessions() == stat0 + 1, f"pg_stat_database.sessions {stat0} -> {pg.stat_sessions()}")
        held = pg_client(pg, stdin=subprocess.PIPE)  # a session that stays open
        try:
            wait_eq(pg.app_sessions, 1, "pg app sessions while one is open")
            check(pg.connects() == before + 2, "connects counts the open session")
            check(pg.stat_sessions() == stat0 + 2, "pg_stat_database.sessions counts the open session at once")
            check(pg.kill_app_sessions() == 1, "kill counted one")
            check(pg.app_sessions() == 0, "no app session after kill (waited for)")
        finally:
            held.stdin.close()
            held.wait(10)

    def check_my(my):
        r = my_client(my, "-e", "select 1")
        check(r.returncode == 0 and r.stdout.strip() == "1", f"app login over TCP: {r}")
        before, glob = my.connects(), my.global_connections()
        my_client(my, "-e", "select 1")
        check(my.connects() == before + 1, f"connects {before} -> {my.connects()}")
        check(my.global_connections() > glob, "global Connections grows too")
        held = my_client(my, stdin=subprocess.PIPE)
        try:
            wait_eq(my.app_sessions, 1, "mariadb app sessions while one is open")
            check(my.connects() == before + 2, "connects counts the open session")
            check(my.kill_app_sessions() == 1, "kill counted one")
            check(my.app_sessions() == 0, "no app session after kill")
        finally:
            held.stdin.close()
            held.wait(10)

    def check_redis(rd):
        check(rd.cmd("PING") == "PONG", "harness PING")
        before = rd.connects()
        app = RespClient((rd.host, rd.port))
        try:
            if rd.password:
                check(_raises(lambda: app.cmd("GET", "k"), "NOAUTH"), "requirepass enforced")
                app.cmd("AUTH", rd.password)
            check(app.cmd("PING") == "PONG", "app PING over TCP")
            check(app.cmd("SET", "k", "v") == "OK" and app.cmd("GET", "k") == "v", "SET/GET")
            check(app.cmd("GET", "missing") is None and app.cmd("INCR", "n") == 1, "nil and integer replies")
            check(app.cmd("MGET", "k", "missing") == ["v", None], "array reply")
            check(_raises(lambda: app.cmd("NOSUCHCOMMAND"), "unknown command"), "error reply raises")
            check(rd.connects() == before + 1, f"connects {before} -> {rd.connects()}")
            check(rd.app_sessions() == 1, f"one app session: {rd.clients()}")
            check(rd.kill_app_sessions() == 1, "kill counted one")
            check(rd.app_sessions() == 0, "no app session after kill")
            check(rd.cmd("PING") == "PONG", "harness connection survived the kill")
        finally:
            app.close()
        user = RespClient(rd.socket)  # the unix socket, with the ACL user
        try:
            check(user.cmd("AUTH", APP_USER, APP_PASSWORD) == "OK", "ACL user app logs in")
        finally:
            user.close()

    def zombies():
        # ours only: other processes on the machine may leave zombies of PID 1
        # (which reaps lazily here) meanwhile
        names = {"postgres", "mariadbd", "redis-server", "setpriv"}
        return {p for p in util.all_pids() if (util.proc_stat(p) or {}).get("state") == "Z"
                and util.read_text(f"/proc/{p}/comm").strip() in names}

    zombies_before = zombies()
    checks = {Postgres: check_pg, MariaDB: check_my, Redis: check_redis}
    for cls, fn in checks.items():
        servers = [cls(), cls(password="s3cret") if cls is Redis else cls()]
        dirs = []
        try:
            for s in servers:  # two at once, as under ctest -j2
                s.start()
                dirs.append(s.dir)
                print(f"{s.name}: pid {s.pid}, port {s.port}, started in {s.startup_seconds:.2f}s")
            check(servers[0].port != servers[1].port, "different ports")
            for s in servers:
                fn(s)
        finally:
            for s in servers:
                t0 = time.monotonic()
                s.stop()
                print(f"{s.name}: stopped in {time.monotonic() - t0:.2f}s, exit status {s.returncode}")
        for d in dirs:
            check(not os.path.exists(d), f"temp dir {d} removed")
        left = [p for p in util.all_pids() if any(d in util.proc_cmdline(p) for d in dirs)]
        check(not left, f"processes left behind: {[(p, util.proc_cmdline(p)) for p in left]}")
        check(not util.children_of(os.getpid()), f"children left: {util.children_of(os.getpid())}")
        print(f"{cls.__name__}: OK")
    new_zombies = zombies() - zombies_before
    check(not new_zombies, f"zombies left: {sorted(new_zombies)}")
    print("all servers OK")


def _raises(fn, text):
    try:
        fn()
    except RedisError as e:
        return text in str(e)
    return False


if __name__ == "__main__":
    _smoke()
