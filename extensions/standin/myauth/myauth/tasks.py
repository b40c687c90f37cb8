"""Tasks of the stand-in Auth project, one per behaviour the role's tests need."""
import errno
import fcntl
import json
import os
import resource
import socket
import tempfile
import threading
import time
import urllib.error
import urllib.request


from celery.signals import worker_init

from .celery import DATA_DIR, DB, app

MIB = 1024 * 1024

# Memory deliberately kept alive by ``leak`` for the life of the process.
_LEAKED = []

# Filled in by the worker_init signal in the worker's main process; prefork
# children inherit it through fork().
_POOL = {"pool_cls": None}

_ALIASES = {
    "celery.concurrency.prefork": "prefork",
    "celery.concurrency.thread": "threads",
    "celery.concurrency.solo": "solo",
    "celery.concurrency.eventlet": "eventlet",
    "celery.concurrency.gevent": "gevent",
}


@worker_init.connect
def _remember_pool(sender=None, **kwargs):
    cls = getattr(sender, "pool_cls", None)
    if isinstance(cls, str):  # not resolved yet on some versions
        from celery.concurrency import get_implementation
        cls = get_implementation(cls)
    if cls is not None:
        _POOL["pool_cls"] = f"{cls.__module__}.{cls.__qualname__}"


def _pool_info():
    qualname = _POOL["pool_cls"]
    module = qualname.rsplit(".", 1)[0] if qualname else None
    return {
        # both prefork and threads pools are classes named "TaskPool", hence
        # the module-qualified name and the short alias
        "pool_cls": qualname,
        "pool": _ALIASES.get(module, module),
        "pid": os.getpid(),
        "ppid": os.getppid(),
        "thread": threading.current_thread().name,
    }


def _rss_kib():
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _default_dir(name):
    path = os.path.join(DATA_DIR if os.path.isdir(DATA_DIR) else tempfile.gettempdir(),
                        name)
    os.makedirs(path, exist_ok=True)
    return path


def _write_marker(path, payload):
    tmp = f"{path}.tmp.{os.getpid()}.{threading.get_ident()}"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(payload, fh)
    os.replace(tmp, path)  # atomic: readers never see a half-written marker


@app.task(bind=True)
def ping(self):
    """'pong' plus which pool/process/thread ran it."""
    info = _pool_info()
    info.update(reply="pong", hostname=self.request.hostname,
                queue=(self.request.delivery_info or {}).get("routing_key"))
    return info


@app.task(bind=True)
def sleep(self, seconds, marker_dir=None):
    """Long task for graceful-restart tests.

    Writes ``<marker_dir>/<task id>.start`` when it begins and
    ``<marker_dir>/<task id>.done`` when it finishes (JSON with pid/time).
    A worker killed mid-task leaves a ``.start`` without a ``.done``.
    """
    marker_dir = marker_dir or _default_dir("markers")
    os.makedirs(marker_dir, exist_ok=True)
    base = os.path.join(marker_dir, self.request.id or f"local-{os.getpid()}")
    started = time.time()
    _write_marker(base + ".start", {"pid": os.getpid(), "t": started,
                                    "seconds": seconds})
    time.sleep(float(seconds))
    finished = time.time()
    _write_marker(base + ".done", {"pid": os.getpid(), "t": finished,
                                   "started": started})
    return {"pid": os.getpid(), "slept": finished - started, "marker": base}


@app.task
def leak(mb):
    """Allocate ``mb`` MiB, touch every page and keep it until the process dies.

    For memmon / --max-memory-per-child tests.  Returns the pid (plus totals).
    """
    size = int(mb) * MIB
    buf = bytearray(size)               # calloc'd: not resident yet
    buf[::4096] = b"\x01" * len(range(0, size, 4096))  # touch each page
    _LEAKED.append(buf)
    return {
        "pid": os.getpid(),
        "held_mb": sum(len(b) for b in _LEAKED) // MIB,
        "rss_kib": _rss_kib(),
        "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }


def _get(url, timeout):
    """One urllib GET: ``{"status", "bytes"}`` or ``{"error"}``, plus ``pid``, ``elapsed`` and ``started_at``
    (the wall clock when the task began: benchmarks time a backlog from the first task that ran)."""
    started_at = time.time()
    started = time.monotonic()
    try:
        with urllib.request.urlopen(url, timeout=float(timeout)) as resp:
            result = {"status": resp.status, "bytes": len(resp.read())}
    except urllib.error.HTTPError as exc:  # a status is still a result
        result = {"status": exc.code, "bytes": len(exc.read())}
    except (urllib.error.URLError, socket.timeout) as exc:
        result = {"error": str(exc)}
    return dict(result, pid=os.getpid(), elapsed=time.monotonic() - started, started_at=started_at)


@app.task
def io_call(url, timeout=10):
    """HTTP GET via urllib: stand-in for an ESI request."""
    return _get(url, timeout)


@app.task
def esi_db(url, queries=4, query_seconds=0.005, timeout=10):
    """Shaped like an Auth task: one ESI GET, then ``queries`` short queries (``SELECT SLEEP``)
    through mysqlclient, Auth's driver (a C extension).

    The connection is opened for the task and closed after it, as Django does with Auth's
    ``CONN_MAX_AGE`` (0).  Returns ``status``, ``queries``, ``http_s``, ``db_s``, ``elapsed``,
    or ``error`` when the GET or the database failed (settings: ``MYAUTH_DB_*``, see celery.py).
    """
    result = _get(url, timeout)
    result["http_s"] = result["elapsed"]
    if "error" in result:
        return result
    started = time.monotonic()
    try:
        if not DB["socket"]:
            raise RuntimeError("MYAUTH_DB_SOCKET is not set")
        import MySQLdb  # only this task needs the driver (extensions/standin/requirements-db.txt)
        conn = MySQLdb.connect(unix_socket=DB["socket"], user=DB["user"], password=DB["password"],
                               database=DB["name"], charset="utf8mb4")
        try:
            cursor = conn.cursor()
            for _index in range(int(queries)):
                cursor.execute("SELECT SLEEP(%s)", (float(query_seconds),))
                cursor.fetchall()
        finally:
            conn.close()
    except Exception as exc:  # ImportError, MySQLdb.Error, no socket: a result all the same
        result["error"] = "database: %s" % exc
    result.update(queries=int(queries), db_s=time.monotonic() - started)
    result["elapsed"] += result["db_s"]
    return result


@app.task
def cpu(n):
    """CPU-bound loop (holds the GIL: shows threads vs prefork)."""
    started_at = time.time()
    started = time.monotonic()
    acc = 0
    for i in range(int(n)):
        acc = (acc + i * i) % 1000000007
    return {"pid": os.getpid(), "result": acc,
            "elapsed": time.monotonic() - started, "started_at": started_at}


class ConcurrentExecution(RuntimeError):
    """sync_services found another sync_services already running."""


@app.task(bind=True)
def sync_services(self, seconds=1, lock_dir=None):
    """Routed to the ``services`` queue, like Auth's discord.* tasks.

    Takes a non-blocking flock on ``<lock_dir>/sync_services.lock`` (flock
    locks belong to the open file, so two threads of one process conflict
    too).  If it is already held, one JSON line is appended to
    ``sync_services.overlaps`` and ConcurrentExecution is raised.  Every run
    appends start/end lines to ``sync_services.log``.
    """
    lock_dir = lock_dir or _default_dir("services")
    os.makedirs(lock_dir, exist_ok=True)
    me = {"task_id": self.request.id, "pid": os.getpid(),
          "thread": threading.current_thread().name,
          "hostname": self.request.hostname}

    def record(name, **extra):
        line = json.dumps(dict(me, t=time.time(), **extra)) + "\n"
        with open(os.path.join(lock_dir, name), "a", encoding="utf-8") as fh:
            fh.write(line)

    fh = open(os.path.join(lock_dir, "sync_services.lock"), "a+")
    try:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            record("sync_services.overlaps", event="overlap")
            raise ConcurrentExecution(
                "sync_services is already running: the services worker is "
                "executing more than one task at a time") from None
        record("sync_services.log", event="start")
        time.sleep(float(seconds))
        record("sync_services.log", event="end")
        return dict(me, ok=True)
    finally:
        fh.close()  # releases the flock


__all__ = ["app", "ping", "sleep", "leak", "io_call", "esi_db", "cpu", "sync_services",
           "ConcurrentExecution"]
