"""Test tasks, run by Auth's own workers (no result backend needed: see marker_dir).

* ping(marker_dir=None): who ran it (pid, worker node name, pool, thread).
* sleep(seconds, marker_dir): writes <marker_dir>/<task id>.start, sleeps, writes .done.
* esi_db(url, queries=4): one HTTP GET (stand-in for ESI), then `queries` x SELECT SLEEP(0.005)
  through Django's DB connection (mysqlclient); returns the timings.
* leak(mb): allocates mb MiB, touches every page and keeps it for the life of the process.

Stock Auth has no result backend, so a task's return value is lost unless the caller passes
marker_dir: the result is then also written as JSON to <marker_dir>/<task id>.json.
"""
import json
import os
import threading
import time
import urllib.request

from celery import shared_task
from celery.concurrency import ALIASES
from celery.signals import worker_init
from django.db import connection

MIB = 1024 * 1024
_LEAKED = []  # memory kept alive by leak()
_POOL = {"cls": None}  # the worker's pool class, set by worker_init (prefork children inherit it)

# "celery.concurrency.thread:TaskPool" -> "threads"; the first alias wins ("prefork", not "processes")
_POOL_NAMES = {}
for _alias, _path in ALIASES.items():
    _POOL_NAMES.setdefault(_path, _alias)


@worker_init.connect
def _remember_pool(sender=None, **kwargs):
    cls = getattr(sender, "pool_cls", None)
    if isinstance(cls, str):  # the class is resolved right after worker_init
        from celery.concurrency import get_implementation
        cls = get_implementation(cls)
    if cls is not None:
        _POOL["cls"] = f"{cls.__module__}:{cls.__qualname__}"


def _record(task, marker_dir, suffix, payload):
    """Write payload as JSON to <marker_dir>/<task id><suffix>, atomically."""
    if not marker_dir:
        return
    os.makedirs(marker_dir, exist_ok=True)
    path = os.path.join(marker_dir, f"{task.request.id}{suffix}")
    tmp = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(payload, handle)
    os.replace(tmp, path)


@shared_task(bind=True)
def ping(self, marker_dir=None):
    result = {
        "reply": "pong",
        "pid": os.getpid(),
        "hostname": self.request.hostname,  # the worker's node name, e.g. celery@worker_00
        "pool": _POOL_NAMES.get(_POOL["cls"], _POOL["cls"]),
        "pool_cls": _POOL["cls"],
        "thread": threading.get_ident(),
        "thread_name": threading.current_thread().name,
    }
    _record(self, marker_dir, ".json", result)
    return result


@shared_task(bind=True)
def sleep(self, seconds, marker_dir):
    started = time.time()
    _record(self, marker_dir, ".start", {"pid": os.getpid(), "t": started})
    time.sleep(float(seconds))
    result = {"pid": os.getpid(), "t": time.time(), "started": started}
    _record(self, marker_dir, ".done", result)
    return result


@shared_task(bind=True)
def esi_db(self, url, queries=4, marker_dir=None):
    t0 = time.monotonic()
    with urllib.request.urlopen(url, timeout=30) as response:
        response.read()
        status = response.status
    t1 = time.monotonic()
    with connection.cursor() as cursor:
        for dummy in range(int(queries)):
            cursor.execute("SELECT SLEEP(0.005)")
            cursor.fetchall()
    t2 = time.monotonic()
    result = {"pid": os.getpid(), "thread": threading.get_ident(), "status": status,
              "http_s": t1 - t0, "db_s": t2 - t1, "total_s": t2 - t0, "queries": int(queries)}
    _record(self, marker_dir, ".json", result)
    return result


@shared_task(bind=True)
def leak(self, mb, marker_dir=None):
    buf = bytearray(int(mb) * MIB)
    buf[::4096] = b"\x01" * len(range(0, len(buf), 4096))  # touch every page: make it resident
    _LEAKED.append(buf)
    result = {"pid": os.getpid(), "held_mb": sum(len(b) for b in _LEAKED) // MIB}
    _record(self, marker_dir, ".json", result)
    return result
