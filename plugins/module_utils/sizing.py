# -*- coding: utf-8 -*-
# Copyright: authops.celery_tuning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Sizing: the pool choice (workload and database driver) and the one sizing model for auto concurrency
and numprocs, used by the planner and by ``worker_profile``'s recommendation alike."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.authops.celery_tuning.plugins.module_utils.memory_limits import (
    DEFAULT_BASELINE,
)
from ansible_collections.authops.celery_tuning.plugins.module_utils.memory_fit import (
    process_estimate,
)
from ansible_collections.authops.celery_tuning.plugins.module_utils.sizes import (
    human_size,
)


#: Python packages a pool needs inside the virtualenv.
POOL_PACKAGES = {"gevent": ["gevent"], "eventlet": ["eventlet"]}

#: Pools whose process runs Python in one thread at a time (the GIL): one core per process.
ONE_CORE_POOLS = ("threads", "gevent", "eventlet")
#: Auth 5.x's stock threads concurrency: the auto value of workload mixed without a measurement.
DEFAULT_THREADS_CONCURRENCY = 5

#: Database drivers the pool rule knows. Auth's driver is mysqlclient (a C extension: each query
#: blocks a gevent hub). ``none``: the tasks use no database.
DB_DRIVERS = ("mysqlclient", "pymysql", "psycopg2", "psycopg", "sqlite3", "none", "unknown")
DEFAULT_DB_DRIVER = "mysqlclient"
#: Drivers under which every blocking library of an Auth task is cooperative with gevent's
#: patching (pure-Python sockets, like requests/urllib for ESI).
COOPERATIVE_DRIVERS = ("pymysql", "none")

#: The sizing model (size_pool). Target share of one core a process should use: below 1 so the
#: host keeps room for gunicorn, MariaDB and Redis, and a slot is free when a burst arrives.
TARGET_UTILIZATION = 0.8
#: Task profile assumed without a measurement: Auth 5.5's own update tasks (update_character with its two
#: ESI calls, update_corp, update_alliance; ESI answered by a stub after 100-300 ms) in the real Auth 5.5
#: image, `make bench` (bench/auth_tasks.py), 2026-12-06 on 2 CPUs: 480 ms per task (Celery's own run times
#: under Auth's shipped threads 5) and 12 ms of worker CPU per task (/proc: utime + stime of the worker
#: processes over the tasks, Celery's own overhead included, as worker_profile counts it). The CPU is what a
#: task costs at the plan's throughput: 10.3 to 12.5 ms in the rows of 18 to 50 threads x 2, and 12.7 ms by
#: worker_profile on Auth's own worker; threads 5, idle most of the time, measured 13.6 ms (its fixed
#: per-second overhead spread over fewer tasks). 0.8 x 0.48 / 0.012 = 32 threads per process (bench/README.md).
#: (Before: 10 ms from two runs of 2026-12-03, 38 threads; before that the bench's own synthetic DB task,
#: 156 ms and 6.8 ms: 18 threads.)
DEFAULT_TASK_SECONDS = 0.48
DEFAULT_TASK_CPU_SECONDS = 0.012
#: A profile with fewer completed tasks than this in its window is not used for sizing.
MIN_PROFILE_TASKS = 20


def auto_pool(workload, db_driver=DEFAULT_DB_DRIVER):
    """The pool for ``pool: auto`` (not single-threaded) and the reason, from workload and DB driver."""
    if workload == "cpu":
        return "prefork", "workload cpu: prefork runs one process per core, free of the GIL"
    if workload == "io" and db_driver in COOPERATIVE_DRIVERS:
        return "gevent", (
            "workload io with %s: every blocking call (HTTP to ESI, %s) is cooperative under gevent's "
            "patching, so greenlets overlap all the waits" % (
                "no database" if db_driver == "none" else "database driver " + db_driver,
                "no database" if db_driver == "none" else db_driver + "'s pure-Python socket"))
    if workload == "io":
        return "threads", (
            "workload io (ESI HTTP calls, then DB updates) on database driver %s: threads overlap the "
            "waits and release the GIL in the driver; %s; ask for pool gevent only with a cooperative "
            "driver such as PyMySQL" % (db_driver, "mysqlclient is a C extension that gevent cannot make "
                                        "cooperative (each query would block every greenlet)"
                                        if db_driver == "mysqlclient" else
                                        "gevent cannot make it cooperative" if db_driver != "unknown" else
                                        "the driver is not known to be cooperative"))
    return "threads", "workload mixed: threads (Auth 5.x's stock pool) overlap I/O without extra packages"


def choose_pool(p, db_driver=DEFAULT_DB_DRIVER, db_driver_source="default"):
    explain = p["explain"]
    if p["beat"]:
        p["pool"] = None
        explain.append("beat program: runs the Celery beat scheduler, no pool or concurrency")
    elif p["pool"] != "auto":
        explain.append("pool=%s: given" % p["pool"])
        if p["pool"] in ("gevent", "eventlet") and db_driver not in COOPERATIVE_DRIVERS and p["workload"] != "cpu":
            p["warnings"].append(
                "pool %s with database driver %s (%s): each query blocks every %s of the process; "
                "pool threads (or pool auto) overlaps them"
                % (p["pool"], db_driver, db_driver_source, "greenlet" if p["pool"] == "gevent" else "green thread"))
    elif p["single_threaded"]:
        p["pool"] = "prefork"
        explain.append(
            "pool=prefork: auto with single_threaded runs prefork with one child so "
            "--max-memory-per-child and --max-tasks-per-child keep working")
    else:
        p["pool"], reason = auto_pool(p["workload"], db_driver)
        explain.append("pool=%s: auto from %s (driver: %s)" % (p["pool"], reason, db_driver_source))


def size_pool(pool, workload, cpu_count, profile=None, utilization=TARGET_UTILIZATION):
    """The one sizing model: concurrency and numprocs for an auto-sized worker, with the reasons.

    ``profile`` (optional) is a measured task profile as ``worker_profile`` returns it for a program:
    ``task_seconds`` (mean wall time by Little's law), ``cpu_seconds_per_task``, ``in_flight_mean``,
    ``backlog_min`` (tasks that waited in the queue through the whole window) and ``tasks``.

    * prefork: one child per CPU, one process.
    * threads, gevent, eventlet (one core per process): slots = utilisation x wall / CPU per task,
      at least 1; the process is then ``utilization`` busy. Past that ceiling numprocs grows towards
      ``cpu_count``. Without a usable measurement, workload io takes Auth's update tasks as the bench
      measured them (DEFAULT_TASK_SECONDS / DEFAULT_TASK_CPU_SECONDS) and Auth's bursts (periodic updates of every
      character and corporation queue far more tasks than one process clears): one process per CPU;
      mixed takes Auth's stock 5 in one process. With a measurement: all CPUs when work waited in the
      queue through the window, else what the measured tasks in flight need at the target utilisation.
    * solo: 1.
    """
    cpu_count = max(1, int(cpu_count))
    if pool == "prefork":
        return dict(concurrency=cpu_count, numprocs=1, measured=False,
                    explain=["concurrency=%d: one prefork child per CPU (%d CPUs)" % (cpu_count, cpu_count)])
    if pool not in ONE_CORE_POOLS:
        return dict(concurrency=1, numprocs=1, measured=False, explain=["concurrency=1: pool %s" % pool])
    measured = _usable_profile(profile)
    if measured:
        wall, cpu = float(profile["task_seconds"]), float(profile["cpu_seconds_per_task"])
        source = "measured over %d tasks" % int(profile["tasks"])
    elif workload == "mixed":
        return dict(concurrency=DEFAULT_THREADS_CONCURRENCY, numprocs=1, measured=False, explain=[
            "concurrency=%d: workload mixed without a measurement: Auth 5.x's stock threads concurrency"
            % DEFAULT_THREADS_CONCURRENCY])
    else:
        wall, cpu = DEFAULT_TASK_SECONDS, DEFAULT_TASK_CPU_SECONDS
        source = "no measurement: Auth 5.5's update tasks as the bench measured them"
    slots = max(1, int(utilization * wall / cpu + 1e-9))
    explain = ["concurrency=%d: %d%% target utilisation x task time %.0f ms / CPU %.1f ms per task (%s): "
               "one process (one core, the GIL) is then %d%% busy"
               % (slots, round(utilization * 100), wall * 1000, cpu * 1000, source, round(utilization * 100))]
    numprocs = 1
    if not measured:
        numprocs = cpu_count
        explain.append("numprocs=%d: no measurement: Auth's periodic updates come in bursts that one process, capped "
                       "at one core, clears slower than %d would: one process per CPU (celery_workers_profile: "
                       "observe sizes it from the real load)" % (numprocs, numprocs) if numprocs > 1 else
                       "numprocs=1: one CPU (a process of this pool is capped at one core by the GIL)")
    elif float(profile.get("backlog_min") or 0) > 0:
        numprocs = cpu_count
        explain.append("numprocs=%d: work waited in the queue through the whole window and one process "
                       "is capped at one core: one process per CPU (%d CPUs)" % (numprocs, cpu_count))
    else:
        needed = -(-float(profile.get("in_flight_mean") or 0) // utilization)
        numprocs = int(min(cpu_count, max(1, -(-needed // slots))))
        explain.append("numprocs=%d: no work waited; %.1f tasks in flight on average need %d slots at %d%% "
                       "utilisation (%d per process, up to %d CPUs)"
                       % (numprocs, float(profile.get("in_flight_mean") or 0), needed,
                          round(utilization * 100), slots, cpu_count))
    return dict(concurrency=slots, numprocs=numprocs, measured=bool(measured), explain=explain)


def _usable_profile(profile):
    """A profile with enough tasks and positive times; anything else is sized from the defaults."""
    if not isinstance(profile, dict):
        return False
    try:
        return (int(profile.get("tasks") or 0) >= MIN_PROFILE_TASKS
                and float(profile.get("task_seconds") or 0) > 0
                and float(profile.get("cpu_seconds_per_task") or 0) > 0)
    except (TypeError, ValueError):
        return False


def desired_size(p, worker, context):
    """What the sizing model wants for an auto worker before the DB and memory budgets; numprocs auto."""
    numprocs_auto = p["numprocs_auto"] = p["numprocs"] is None
    p["caps"], p["numprocs_model"] = [], None
    if numprocs_auto:
        p["numprocs"] = 1
    p["desired"] = p["desired_explain"] = None
    if p["fixed_concurrency"] is not None:
        if numprocs_auto and not p["beat"] and not p["single_threaded"]:
            p["explain"].append("numprocs=1: auto with a fixed concurrency")
        return
    profile = context["profiles"].get(p["name"])
    if profile is not None and not _usable_profile(profile):
        p["explain"].append("measured profile not used: %s tasks in its window (at least %d needed)"
                            % (profile.get("tasks") if isinstance(profile, dict) else profile, MIN_PROFILE_TASKS))
    size = size_pool(p["pool"], p["workload"], context["cpu_count"], profile)
    p["desired"], p["desired_explain"] = size["concurrency"], size["explain"]
    if not numprocs_auto:
        p["explain"].append("numprocs=%d: given" % p["numprocs"])
        p["desired_explain"] = [line for line in size["explain"] if not line.startswith("numprocs=")]
        return
    numprocs = size["numprocs"]
    if numprocs > 1 and "%(process_num)" not in str(worker["process_name"]):
        numprocs = 1
        p["explain"].append("numprocs kept at 1: process_name %r has no %%(process_num)" % worker["process_name"])
    per_process = process_estimate(p["pool"], size["concurrency"], p["memory_baseline"] or DEFAULT_BASELINE)
    if numprocs > 1 and context["memory"] is not None:
        fits = max(1, int(context["memory"] // 2 // per_process))
        if fits < numprocs:
            p["numprocs_model"] = numprocs
            p["caps"].append("numprocs capped from %d to %d: each process uses about %s and one program gets at "
                             "most half the workers' memory budget %s (%s)"
                             % (numprocs, fits, human_size(per_process), human_size(context["memory"]),
                                context.get("memory_why") or "given"))
            numprocs = fits
    p["numprocs"] = numprocs
