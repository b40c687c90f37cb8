# -*- coding: utf-8 -*-
# Copyright: authops.celery_tuning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Logic behind the ``authops.celery_tuning.worker_profile`` module: measure the live workers.

Three parts, each testable alone:

* :func:`find_workers` finds the Celery worker processes of an app in /proc (their argv, owner,
  working directory and the venv's python);
* :data:`PROBE` is a small program the module runs with that python, as the workers' owner, in
  their working directory and environment. For a window it asks the workers (Celery's remote
  control, read-only: ``inspect stats`` totals at both ends, ``inspect active`` every interval,
  ``inspect active_queues`` once), the broker (queue lengths, read-only: LLEN on Redis) and /proc
  (CPU time of each worker's whole process tree), then prints one JSON document. No events needed;
- :func:`summarize` turns that document into figures per supervisor program (completions per
  second, mean tasks in flight, mean task time by Little's law, CPU seconds per task, backlog) and a
  recommendation from the planner's own sizing model (``sizing.size_pool``).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible_collections.authops.celery_tuning.plugins.module_utils.sizing import (
    MIN_PROFILE_TASKS,
    TARGET_UTILIZATION,
    auto_pool,
    size_pool,
)
from ansible_collections.authops.celery_tuning.plugins.module_utils.worker_options import WORKLOADS
from ansible_collections.authops.celery_tuning.plugins.module_utils.root_safe import root_safe_problems
from ansible_collections.authops.celery_tuning.plugins.module_utils.procfs import (
    program_of,
    read_cmdline,
    read_ppid,
)

#: Celery pool implementations as ``inspect stats`` names them, by the pool option's name.
POOL_NAMES = {
    "celery.concurrency.prefork:TaskPool": "prefork",
    "celery.concurrency.thread:TaskPool": "threads",
    "celery.concurrency.gevent:TaskPool": "gevent",
    "celery.concurrency.eventlet:TaskPool": "eventlet",
    "celery.concurrency.solo:TaskPool": "solo",
}


class ProfileError(Exception):
    """The workers cannot be measured; the message says what to change."""


# ---------------------------------------------------------------------------------------------
# the worker processes
# ---------------------------------------------------------------------------------------------

def _titled_args(argv):
    """The arguments kept in a Celery process title (setproctitle, as in Auth's venv):
    ``[celeryd: celery@worker_00:MainProcess] -active- (-A myauth worker --pool=threads ...)``."""
    text = " ".join(argv)
    if not text.startswith("[celeryd") or "(" not in text:
        return None
    inner = text[text.index("(") + 1:]
    return inner[:inner.rindex(")")].split() if ")" in inner else inner.split()


def worker_app(argv):
    """The ``-A``/``--app`` of a ``celery ... worker`` argv (or process title), or None when it is no Celery worker."""
    if not argv:
        return None
    args = _titled_args(argv)
    if args is None:
        start = 0
        if os.path.basename(argv[0]).startswith("python"):
            start = 2 if len(argv) > 2 and argv[1] == "-m" else 1
        if start >= len(argv) or "celery" not in os.path.basename(argv[start]):
            return None
        args = argv[start + 1:]
    app = None
    for index, arg in enumerate(args):
        if arg in ("-A", "--app") and index + 1 < len(args):
            app = args[index + 1]
        elif arg.startswith("--app="):
            app = arg.split("=", 1)[1]
        elif arg.startswith("-A") and len(arg) > 2:
            app = arg[2:]
    return app if "worker" in args else None


def _status_uid(pid, proc):
    try:
        with open(os.path.join(proc, str(pid), "status")) as handle:
            for line in handle:
                if line.startswith("Uid:"):
                    return int(line.split()[1])
    except (IOError, OSError, ValueError, IndexError):
        return None
    return None


def _python_of(pid, argv, proc):
    """The interpreter that runs the worker: argv[0] when it is a python, the python next to celery, or (for a
    process title) the ``bin/python`` of the virtualenv whose site-packages the process has mapped."""
    if argv and os.path.basename(argv[0]).startswith("python"):
        return argv[0]
    if argv and os.path.basename(argv[0]).startswith("celery"):
        return os.path.join(os.path.dirname(argv[0]), "python")
    try:
        with open(os.path.join(proc, str(pid), "maps")) as handle:
            for line in handle:
                path = line.split(None, 5)[-1].strip() if line.count(" ") >= 5 else ""
                if "/lib/python" in path and "/site-packages/" in path:
                    return path[:path.index("/lib/python")] + "/bin/python"
    except (IOError, OSError):
        pass
    return None


def _pid_namespace(pid, proc):
    try:
        return os.readlink(os.path.join(proc, str(pid), "ns", "pid"))
    except OSError:
        return None


def group_pids(process_infos, group):
    """The pids of the group's running processes, from supervisor's ``getAllProcessInfo``."""
    return sorted(int(info["pid"]) for info in process_infos or []
                  if info.get("group") == group and info.get("pid") and info.get("statename") == "RUNNING")


def find_workers(app, proc="/proc", project_dir=None, pids=None):
    """The main processes of the app's Celery workers (not prefork children), sorted by pid.

    ``pids``: the processes supervisor runs for the group (``getAllProcessInfo``); only those and their
    children are looked at. Without it every process of /proc is (a worker started by hand, say).

    Each is ``dict(pid, uid, argv, python, cwd)``; ``python`` and ``cwd`` are None when they cannot be read
    (they need ptrace access: root without CAP_SYS_PTRACE, in a container, cannot read them for another
    user's process). Processes of another PID namespace (containers on the host) are left out, and with
    ``project_dir`` those that run elsewhere.
    """
    own_namespace = _pid_namespace("self", proc)
    matches = {}
    entries = os.listdir(proc) if pids is None else [str(int(pid)) for pid in pids if pid]
    for entry in entries:
        if not entry.isdigit() or not os.path.isdir(os.path.join(proc, entry)):
            continue
        argv = read_cmdline(entry, proc)
        if argv and worker_app(argv) == app:
            namespace = _pid_namespace(entry, proc)
            # unreadable (root without CAP_SYS_PTRACE in a container): cannot tell, so keep it
            if namespace is None or own_namespace is None or namespace == own_namespace:
                matches[int(entry)] = argv
    found = []
    for pid in sorted(matches):
        if read_ppid(pid, proc) in matches:
            continue  # a prefork child: its parent is the worker
        try:
            cwd = os.readlink(os.path.join(proc, str(pid), "cwd"))
        except OSError:
            cwd = None
        if project_dir and cwd is not None and cwd != project_dir.rstrip("/"):
            continue
        found.append(dict(pid=pid, uid=_status_uid(pid, proc), argv=matches[pid],
                          python=_python_of(pid, matches[pid], proc), cwd=cwd))
    return found


def probe_uid(worker_uid, euid, python, cwd, root_safe=root_safe_problems):
    """The uid the probe must run as (the workers' owner), or a refusal.

    The probe runs the workers' Python and imports their project: as root that is code from wherever the
    workers run. A worker whose owner cannot be read (``/proc/<pid>/status`` unreadable) is refused instead
    of probed as root; a worker that runs as root is probed as root only when its Python and project are
    root-safe (``root_safe.root_safe_problems``).
    """
    if worker_uid is None:
        raise ProfileError("cannot read which user runs the worker (its /proc status); the measurement does not run "
                           "then, because it would run the worker's Python as %s. Check that the module runs in the "
                           "workers' PID namespace" % ("root" if euid == 0 else "uid %d" % euid))
    if worker_uid != 0:
        return worker_uid
    problems = []
    for path in (python, cwd):
        problems += root_safe(os.path.realpath(path)) if path else []
    if problems:
        raise ProfileError("the workers run as root, and the measurement would run their Python as root from a "
                           "place another user can change: %s. Run the workers as the Auth user" % problems[0])
    return 0


# ---------------------------------------------------------------------------------------------
# the probe (runs in the workers' venv; standard library, Celery and kombu only)
# ---------------------------------------------------------------------------------------------

PROBE = r'''
import importlib, json, os, sys, time
args = json.loads(sys.argv[1])
try:  # the worker's own environment (supervisor's environment= included); readable as its user
    with open("/proc/%d/environ" % args["pid"], "rb") as fh:
        for item in fh.read().split(b"\0"):
            if b"=" in item:
                key, value = item.split(b"=", 1)
                os.environ[key.decode("utf-8", "replace")] = value.decode("utf-8", "replace")
except (OSError, KeyError, TypeError):
    pass
sys.path.insert(0, os.getcwd())
from celery.app.utils import find_app
app = find_app(args["app"])
TICK = float(os.sysconf("SC_CLK_TCK"))


def children():
    tree = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open("/proc/%s/stat" % entry) as fh:
                    data = fh.read()
                tree.setdefault(int(data[data.rindex(")") + 2:].split()[1]), []).append(int(entry))
            except (OSError, ValueError, IndexError):
                pass
    return tree


def cpu_seconds(pid, tree):
    total, todo = 0.0, [pid]
    while todo:
        one = todo.pop()
        try:
            with open("/proc/%d/stat" % one) as fh:
                data = fh.read()
            fields = data[data.rindex(")") + 2:].split()
            total += sum(int(x) for x in fields[11:15]) / TICK  # utime stime cutime cstime
        except (OSError, ValueError, IndexError):
            continue
        todo.extend(tree.get(one, ()))
    return total


def inspect():
    return app.control.inspect(timeout=args["timeout"])


def stats():
    out = {}
    for node, info in (inspect().stats() or {}).items():
        pool = info.get("pool") or {}
        out[node] = {"pid": info.get("pid"), "total": sum((info.get("total") or {}).values()),
                     "pool": pool.get("implementation"), "max_concurrency": pool.get("max-concurrency")}
    tree = children()
    for node in out.values():
        node["cpu_seconds"] = cpu_seconds(node["pid"], tree) if node["pid"] else None
    return out


def backlog(queues):
    """Tasks waiting in each queue: kombu's passive queue_declare (read-only; Redis: LLEN). A queue that is
    not declared (on Redis an empty queue has no key) holds none."""
    sizes = {}
    with app.connection_for_read() as conn:
        for queue in queues:
            channel = conn.channel()
            try:
                sizes[queue] = int(channel.queue_declare(queue=queue, passive=True).message_count)
            except conn.channel_errors:
                sizes[queue] = 0
            except Exception as exc:  # the broker did not answer: no figure
                sizes[queue] = None
            finally:
                try:
                    channel.close()
                except Exception:
                    pass
    return sizes


def db_driver():
    engine = None
    try:
        from django.conf import settings
        engine = settings.DATABASES["default"]["ENGINE"]
    except Exception:
        pass
    def importable(name):
        try:
            return importlib.import_module(name)
        except Exception:
            return None
    if engine is None or "mysql" in engine:
        mysqldb = importable("MySQLdb")
        if mysqldb is not None:
            return engine, "pymysql" if mysqldb.__name__.startswith("pymysql") else "mysqlclient"
        if importable("pymysql") is not None:
            return engine, "pymysql"
    if engine and "postgresql" in engine:
        return engine, "psycopg" if importable("psycopg") is not None else "psycopg2"
    if engine and "sqlite3" in engine:
        return engine, "sqlite3"
    if engine and "dummy" in engine:
        return engine, "none"
    return engine, "unknown"


started = time.time()
first = stats()
t_first = time.time()
queues = {}
for node, items in (inspect().active_queues() or {}).items():
    queues[node] = sorted(q.get("name") for q in items if q.get("name"))
all_queues = sorted(set(q for names in queues.values() for q in names))
samples = []
while True:
    now = time.time()
    active = dict((node, len(tasks)) for node, tasks in (inspect().active() or {}).items())
    samples.append({"t": round(now - t_first, 3), "active": active, "backlog": backlog(all_queues)})
    if time.time() + args["interval"] >= t_first + args["window"]:
        break
    time.sleep(max(0.0, args["interval"] - (time.time() - now)))
time.sleep(max(0.0, t_first + args["window"] - time.time()))
last = stats()
t_last = time.time()
engine, driver = db_driver()
print(json.dumps({"window": round(t_last - t_first, 3), "first": first, "last": last, "queues": queues,
                  "samples": samples, "engine": engine, "db_driver": driver,
                  "probe_seconds": round(time.time() - started, 3)}))
'''


def probe_args(app, window, interval, timeout, pid=None):
    """The probe's one argument (JSON), checked. ``pid``: the worker whose environment the probe takes."""
    import json
    if not isinstance(window, (int, float)) or window < 5:
        raise ProfileError("window must be at least 5 seconds, got %r" % (window,))
    if not isinstance(interval, (int, float)) or not 0.2 <= interval <= window:
        raise ProfileError("interval must be between 0.2 seconds and the window, got %r" % (interval,))
    if not isinstance(timeout, (int, float)) or not 0.1 <= timeout <= 30:
        raise ProfileError("timeout must be between 0.1 and 30 seconds, got %r" % (timeout,))
    return json.dumps({"app": app, "window": window, "interval": interval, "timeout": timeout, "pid": pid})


# ---------------------------------------------------------------------------------------------
# figures and recommendation
# ---------------------------------------------------------------------------------------------

def node_program(node):
    """``celery@worker_00`` -> ``worker`` (Auth's process names: the program name, then ``_NN``)."""
    return program_of(node.split("@", 1)[-1])


def _mean(values):
    values = list(values)
    return sum(values) / len(values) if values else 0.0


def _program_figures(name, nodes, raw):
    """Figures of one program from the probe's document (nodes: its node names)."""
    first, last, samples = raw["first"], raw["last"], raw.get("samples") or []
    window = float(raw["window"])
    both = [n for n in nodes if n in first and n in last]
    tasks = sum(max(0, int(last[n]["total"]) - int(first[n]["total"])) for n in both)
    cpu = sum(max(0.0, float(last[n]["cpu_seconds"] or 0) - float(first[n]["cpu_seconds"] or 0)) for n in both)
    in_flight = _mean(sum(s["active"].get(n, 0) for n in nodes) for s in samples)
    queues = sorted(set(q for n in nodes for q in raw["queues"].get(n, [])))
    backlogs = [sum(s["backlog"].get(q) or 0 for q in queues) for s in samples]
    rate = tasks / window if window > 0 else 0.0
    pools = sorted(set(POOL_NAMES.get(last[n].get("pool"), last[n].get("pool")) for n in both)) or [None]
    slots = [int(last[n].get("max_concurrency") or 0) for n in both]
    figures = dict(
        name=name, nodes=sorted(nodes), numprocs=len(nodes), pool=pools[0] if len(pools) == 1 else ",".join(pools),
        concurrency=max(slots) if slots else None, queues=queues, window_seconds=round(window, 2), tasks=tasks,
        completions_per_s=round(rate, 3), in_flight_mean=round(in_flight, 2),
        task_seconds=round(in_flight / rate, 4) if rate > 0 else None,
        cpu_seconds=round(cpu, 3), cpu_seconds_per_task=round(cpu / tasks, 5) if tasks else None,
        cpu_cores_per_process=round(cpu / window / max(1, len(both)), 3) if window > 0 else None,
        slot_utilization=round(in_flight / sum(slots), 3) if sum(slots) else None,
        backlog_min=min(backlogs) if backlogs else 0, backlog_mean=round(_mean(backlogs), 1),
        backlog_last=backlogs[-1] if backlogs else 0, samples=len(samples))
    return figures


def _single_slot(figures):
    """Auth's worker_services: one process running one task at a time; the plan keeps it as it is."""
    return figures["numprocs"] == 1 and figures["concurrency"] == 1


def recommend(figures, workload, db_driver, cpu_count):
    """The planner's own rules for this program: pool from workload and driver, size from the figures."""
    if _single_slot(figures):
        return dict(pool=figures["pool"], concurrency=1, numprocs=1, measured=False, explain=[
            "one process running one task at a time (as Auth's worker_services on queue services must): kept as it is"])
    pool, why = auto_pool(workload, db_driver)
    size = size_pool(pool, workload, cpu_count, figures)
    explain = ["pool=%s: %s" % (pool, why)] + size["explain"]
    if figures["tasks"] < MIN_PROFILE_TASKS:
        explain.insert(1, "only %d tasks in the window (%d needed to size from them): run it while the workers are "
                          "busy, or with a longer window" % (figures["tasks"], MIN_PROFILE_TASKS))
    return dict(pool=pool, concurrency=size["concurrency"], numprocs=size["numprocs"], measured=size["measured"],
                explain=explain)


def summarize(raw, workload="io", cpu_count=1, programs=None):
    """Per-program figures and recommendations from the probe's JSON document (already parsed)."""
    if workload not in WORKLOADS:
        raise ProfileError("workload must be one of %s, got %r" % (", ".join(WORKLOADS), workload))
    for key in ("window", "first", "last", "queues"):
        if key not in raw:
            raise ProfileError("the probe's output has no %s: %r" % (key, raw))
    if not raw["first"]:
        raise ProfileError("no worker of the app answered `inspect stats`: are the workers running and "
                           "connected to the broker the app is configured with?")
    by_program = {}
    for node in set(raw["first"]) | set(raw["last"]):
        by_program.setdefault(node_program(node), []).append(node)
    if programs:
        missing = sorted(set(programs) - set(by_program))
        if missing:
            raise ProfileError("no worker node of program(s) %s answered (nodes seen: %s); Auth's nodes are named "
                               "<program>_NN with -n" % (", ".join(missing), ", ".join(sorted(raw["first"]))))
    driver = raw.get("db_driver") or "unknown"
    workers = []
    for name in sorted(by_program):
        if programs and name not in programs:
            continue
        figures = _program_figures(name, by_program[name], raw)
        figures["recommended"] = recommend(figures, workload, driver, cpu_count)
        workers.append(figures)
    return dict(workers=workers, db_driver=driver, db_engine=raw.get("engine"), cpu_count=cpu_count,
                target_utilization=TARGET_UTILIZATION, window_seconds=round(float(raw["window"]), 2),
                queues=sorted(set(q for names in raw["queues"].values() for q in names)))
