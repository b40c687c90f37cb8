"""Private, throw-away services for the bench and the demo: Redis, MariaDB and the ESI stub.

Each one lives under a directory of the caller (its own loopback port or unix socket, data dir and
log) and never touches the machine's own services. Missing Debian packages are installed with
``apt-get`` when running as root; otherwise :class:`Unavailable` says what to install.

Used as a module by ``bench/bench.py`` (which runs the servers itself) and as a command by
``scripts/demo.sh`` (whose supervisord runs them, so that ``make demo-clean`` stops them)::

    python3 bench/services.py demo-prepare DIR --python VENV/bin/python   # writes DIR/services.{conf,env}
    python3 bench/services.py demo-wait DIR     # waits for Redis and MariaDB, creates the DB
"""

import argparse
import os
import shutil
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STANDIN = ROOT / "extensions" / "standin"
STUB = STANDIN / "esi_stub.py"
DB_REQUIREMENTS = STANDIN / "requirements-db.txt"

REDIS_PACKAGES = ("redis-server",)
# The server and client halves of Debian's mariadb-server, without the package that installs and
# starts the system's mariadb.service.
MARIADB_PACKAGES = ("mariadb-server-core", "mariadb-client-core")
# What mysqlclient (Auth's database driver, a C extension) needs to build.
MYSQLCLIENT_BUILD_PACKAGES = ("default-libmysqlclient-dev", "pkg-config", "build-essential", "python3-dev")
DB_NAME, DB_USER, DB_PASSWORD = "alliance_auth", "allianceserver", "standin"


class Unavailable(RuntimeError):
    """A service cannot be had on this machine (package missing and not root, install failed)."""


def log(msg):
    print("[%s %s] %s" % (Path(sys.argv[0]).stem, time.strftime("%H:%M:%S"), msg), file=sys.stderr, flush=True)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(port):
    with socket.create_connection(("127.0.0.1", port), timeout=1):
        return True


def tail(path, lines=30):
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return "".join(fh.readlines()[-lines:])
    except OSError:
        return ""


def which(name):
    """A program's path, also looking in the sbin/bin dirs a non-root PATH may lack."""
    return shutil.which(name, path=os.environ.get("PATH", "") + ":/usr/sbin:/usr/bin")


# ------------------------------------------------------------------------------------------------
# Debian packages
# ------------------------------------------------------------------------------------------------

def missing_packages(packages):
    out = subprocess.run(["dpkg-query", "-W", "-f=${Package} ${Status}\n", *packages],
                         capture_output=True, text=True, check=False).stdout
    installed = {line.split()[0] for line in out.splitlines() if line.endswith("ok installed")}
    return [pkg for pkg in packages if pkg not in installed]


def ensure_packages(packages, programs=()):
    """Install the missing Debian ``packages`` unless every one of ``programs`` is found already."""
    if programs and all(which(p) for p in programs):
        return
    missing = missing_packages(packages)
    if not missing:
        return
    if os.geteuid() != 0:
        raise Unavailable("missing Debian packages (not root): apt-get install -y %s" % " ".join(missing))
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    cmd = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing]
    log("installing " + " ".join(missing))
    if subprocess.run(cmd, env=env, stdout=sys.stderr, check=False).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, stdout=sys.stderr, check=False)
        subprocess.run(cmd, env=env, stdout=sys.stderr, check=False)
    still = missing_packages(missing)
    if still:
        raise Unavailable("apt-get could not install %s" % " ".join(still))


def ensure_mysqlclient(python):
    """mysqlclient (requirements-db.txt) in the venv of ``python``, built against Debian's libmysqlclient."""
    pin = next(line.strip() for line in DB_REQUIREMENTS.read_text(encoding="utf-8").splitlines()
               if line.strip() and not line.startswith("#"))
    probe = "import importlib.metadata as m, MySQLdb; print('mysqlclient==' + m.version('mysqlclient'))"
    found = subprocess.run([str(python), "-c", probe], capture_output=True, text=True, check=False).stdout.strip()
    if found == pin:
        return pin
    ensure_packages(MYSQLCLIENT_BUILD_PACKAGES)
    log("pip install %s (builds against libmysqlclient)" % pin)
    if subprocess.run([str(python), "-m", "pip", "install", "-q", "-r", str(DB_REQUIREMENTS)],
                      stdout=sys.stderr, check=False).returncode != 0:
        raise Unavailable("pip could not install %s" % pin)
    return pin


# ------------------------------------------------------------------------------------------------
# processes
# ------------------------------------------------------------------------------------------------

def spawn(argv, **kwargs):
    """Start a server in its own session (an interrupt of the caller reaches it only through Procs)."""
    kwargs.setdefault("stdout", subprocess.DEVNULL)
    kwargs.setdefault("stderr", subprocess.STDOUT)
    return subprocess.Popen([str(a) for a in argv], start_new_session=True, **kwargs)


def wait_until(ready, proc, what, logfile, timeout=60):
    """Poll ``ready()`` (any exception counts as not yet) until it is true; fail if ``proc`` exits."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if ready():
                return
        except Exception:  # not up yet
            pass
        if (proc is not None and proc.poll() is not None) or time.monotonic() > deadline:
            raise RuntimeError("%s did not start:\n%s" % (what, tail(logfile)))
        time.sleep(0.1)


class Procs:
    """Every process the bench starts, stopped in reverse order at the end (also on error)."""

    def __init__(self):
        self.items = []

    def add(self, name, proc, stop_timeout=30):
        self.items.append((name, proc, stop_timeout))
        return proc

    def forget(self, proc):
        self.items = [item for item in self.items if item[1] is not proc]

    @staticmethod
    def stop(proc, timeout=30):
        if proc.poll() is not None:
            return proc.returncode
        try:
            proc.send_signal(signal.SIGTERM)
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                proc.kill()
            return proc.wait(timeout=10)

    def stop_all(self):
        for name, proc, timeout in reversed(self.items):
            try:
                self.stop(proc, timeout)
            except Exception as exc:  # keep going: stop the others too
                log("could not stop %s (pid %s): %s" % (name, proc.pid, exc))
        self.items = []


# ------------------------------------------------------------------------------------------------
# Redis, the ESI stub
# ------------------------------------------------------------------------------------------------

def redis_argv(port, directory):
    """redis-server on 127.0.0.1:port, no persistence, in the foreground, logging to directory/redis.log."""
    ensure_packages(REDIS_PACKAGES, ("redis-server",))
    return [which("redis-server"), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", str(directory), "--daemonize", "no",
            "--logfile", str(Path(directory) / "redis.log")]


def redis_version():
    out = subprocess.run([which("redis-server"), "--version"], capture_output=True, text=True, check=False)
    words = out.stdout.split()
    return next((w[2:] for w in words if w.startswith("v=")), " ".join(words))


def start_redis(procs, directory):
    """A private redis-server run by the caller; returns its port."""
    directory.mkdir()
    port = free_port()
    proc = procs.add("redis", spawn(redis_argv(port, directory)))
    import redis
    client = redis.Redis(host="127.0.0.1", port=port)
    wait_until(client.ping, proc, "redis-server", directory / "redis.log", timeout=20)
    return port


def start_stub(procs, delay):
    proc = procs.add("http stub", spawn([sys.executable, STUB, "--delay", delay], stdout=subprocess.PIPE,
                                        text=True))
    line = proc.stdout.readline().strip()
    if not line.isdigit():
        raise RuntimeError("HTTP stub did not start")
    return "http://127.0.0.1:%s/latest/status/" % line


# ------------------------------------------------------------------------------------------------
# MariaDB
# ------------------------------------------------------------------------------------------------

class MariaDB:
    """A private mariadbd: data dir, unix socket, pid file and error log under ``base``; no TCP port.

    Root logs in over that socket with an empty password (``--auth-root-authentication-method=normal``);
    ``base`` is mode 0700, so only its owner reaches the socket.
    """

    def __init__(self, base):
        self.base = Path(base).resolve()
        self.datadir = self.base / "data"
        self.socket = self.base / "mysqld.sock"
        self.logfile = self.base / "mariadbd.log"

    def install(self):
        """Install the packages if needed and create the data dir once."""
        ensure_packages(MARIADB_PACKAGES, ("mariadbd", "mariadb-install-db", "mariadb", "my_print_defaults"))
        self.base.mkdir(mode=0o700, parents=True, exist_ok=True)
        if (self.datadir / "mysql").is_dir():
            return
        with open(self.base / "install-db.log", "w", encoding="utf-8") as out:
            code = subprocess.run(
                [which("mariadb-install-db"), "--no-defaults", "--datadir=%s" % self.datadir,
                 "--auth-root-authentication-method=normal", "--skip-test-db", *self._user()],
                stdout=out, stderr=subprocess.STDOUT, check=False).returncode
        if code != 0:
            raise RuntimeError("mariadb-install-db failed:\n" + tail(self.base / "install-db.log"))

    @staticmethod
    def _user():
        return ["--user=root"] if os.geteuid() == 0 else []  # mariadbd refuses root without it

    def argv(self):
        return [which("mariadbd"), "--no-defaults", "--datadir=%s" % self.datadir, "--socket=%s" % self.socket,
                "--skip-networking", "--pid-file=%s" % (self.base / "mariadbd.pid"),
                "--log-error=%s" % self.logfile, *self._user()]

    def sql(self, statements, timeout=30):
        out = subprocess.run([which("mariadb"), "--no-defaults", "--socket=%s" % self.socket, "--user=root",
                              "--batch", "--skip-column-names", "-e", statements],
                             capture_output=True, text=True, timeout=timeout, check=False)
        if out.returncode != 0:
            raise RuntimeError("mariadb: %s" % out.stderr.strip())
        return out.stdout

    def values(self, statements):
        """``{name: value}`` from statements that return name/value rows (SHOW STATUS, SHOW VARIABLES)."""
        return dict(line.split("\t", 1) for line in self.sql(statements).splitlines() if "\t" in line)

    def ready(self, proc=None, timeout=60):
        """Wait for the server, then create Auth's database and user (idempotent)."""
        wait_until(lambda: self.sql("SELECT 1", timeout=5), proc, "mariadbd", self.logfile, timeout)
        self.sql("CREATE DATABASE IF NOT EXISTS `{db}` CHARACTER SET utf8mb4; "
                 "CREATE USER IF NOT EXISTS '{user}'@'localhost' IDENTIFIED BY '{pw}'; "
                 "GRANT ALL PRIVILEGES ON `{db}`.* TO '{user}'@'localhost';"
                 .format(db=DB_NAME, user=DB_USER, pw=DB_PASSWORD))

    def env(self):
        """The stand-in's settings for this database (read by myauth/celery.py)."""
        return {"MYAUTH_DB_SOCKET": str(self.socket), "MYAUTH_DB_NAME": DB_NAME,
                "MYAUTH_DB_USER": DB_USER, "MYAUTH_DB_PASSWORD": DB_PASSWORD}

    def start(self, procs):
        self.install()
        proc = procs.add("mariadbd", spawn(self.argv()), stop_timeout=60)
        self.ready(proc)
        return proc


# ------------------------------------------------------------------------------------------------
# the demo's services, run by its supervisord
# ------------------------------------------------------------------------------------------------

PROGRAM = """
[program:{name}]
command={command}
directory={directory}
priority=1
autostart=true
autorestart=true
startsecs=2
stopwaitsecs=60
stdout_logfile={directory}/{name}.out
redirect_stderr=true
"""


def demo_prepare(demo, python):
    """Write DIR/services.conf (supervisord programs) and DIR/services.env (the stand-in's settings).

    Redis when it can be had, else the filesystem broker; MariaDB (and mysqlclient in the demo's venv)
    when they can be had, else no database settings.
    """
    programs, env = [], {"MYAUTH_DATA_DIR": str(demo / "data")}  # without a Redis URL: the filesystem broker
    try:
        redis_dir = demo / "redis"
        redis_dir.mkdir(exist_ok=True)
        port = free_port()
        programs.append(PROGRAM.format(name="redis", command=shlex.join(redis_argv(port, redis_dir)),
                                       directory=redis_dir))
        env.update(MYAUTH_BROKER_URL="redis://127.0.0.1:%d/0" % port,
                   MYAUTH_RESULT_BACKEND="redis://127.0.0.1:%d/1" % port)
    except Unavailable as exc:
        log("no Redis (%s): the stand-in uses the filesystem broker" % exc)
    try:
        db = MariaDB(demo / "mariadb")
        db.install()
        ensure_mysqlclient(python)
        programs.append(PROGRAM.format(name="mariadb", command=shlex.join(db.argv()), directory=db.base))
        env.update(db.env())
    except (Unavailable, RuntimeError) as exc:
        log("no MariaDB (%s): the demo measures io_call instead of esi_db" % exc)
    (demo / "services.conf").write_text("".join(programs), encoding="utf-8")
    (demo / "services.env").write_text("".join("%s=%s\n" % kv for kv in env.items()), encoding="utf-8")


def demo_wait(demo):
    """Wait until the services in DIR/services.env answer; create the database."""
    env = dict(line.split("=", 1) for line in (demo / "services.env").read_text(encoding="utf-8").splitlines())
    if env.get("MYAUTH_BROKER_URL", "").startswith("redis://"):
        port = urllib.parse.urlsplit(env["MYAUTH_BROKER_URL"]).port
        wait_until(lambda: port_open(port), None, "redis-server", demo / "redis" / "redis.log")
    if env.get("MYAUTH_DB_SOCKET"):
        MariaDB(demo / "mariadb").ready()


def main():
    parser = argparse.ArgumentParser(description="the demo's private Redis and MariaDB")
    parser.add_argument("action", choices=("demo-prepare", "demo-wait"))
    parser.add_argument("dir", type=Path)
    parser.add_argument("--python", default=sys.executable, help="the venv that gets mysqlclient")
    opts = parser.parse_args()
    demo = opts.dir.resolve()
    if opts.action == "demo-prepare":
        demo_prepare(demo, opts.python)
    else:
        demo_wait(demo)
    return 0


if __name__ == "__main__":
    sys.exit(main())
