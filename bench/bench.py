"""Benchmark of Alliance Auth's Celery worker settings on the stand-in project.

Run by ``make bench`` with the bench venv (.cache/bench-venv, bench/requirements.txt)::

    .cache/bench-venv/bin/python bench/bench.py [--quick] [--out results]

Everything runs locally and is torn down at the end (also on error or interrupt); see services.py:

* a real ``redis-server`` on a free loopback port (no persistence) as broker and result backend,
* a private ``mariadbd`` (own data dir, unix socket, no TCP) with Auth's database and user,
* an HTTP stub that answers every GET after 100 ms (stand-in for ESI),
* the stand-in project ``extensions/standin/myauth`` (copied to a temp dir) with real Celery workers.

Measured:

1. I/O set: the same N ``io_call`` tasks under the guide's default (prefork, one process per core),
   Auth 5.x's shipped default (threads 5), the guide's gevent example (gevent 10), the flags
   ``worker_flags`` computes for ``workload: io`` on this host, and gevent 50 / threads 50.
2. DB set: N ``esi_db`` tasks (the GET, then 4 x ``SELECT SLEEP(0.005)`` through mysqlclient) under
   the same configurations plus threads 25 x 2 processes; also the DB connections they held.
3. CPU set: M ``cpu(n)`` tasks (~75 ms each) under prefork(cores), threads 5, gevent 10 and the
   flags ``worker_flags`` computes for ``workload: cpu`` (asserted to be prefork).
4. Graceful restart under load with ``authops.celery_tuning.supervisor_group`` (``ansible localhost -m``)
   against a private supervisord: tasks lost, consumption gap, the module's stop_seconds/killed.
5. memmon (superlance) restarting worker_00 after ``leak(300)`` crosses its 200MB limit.

All worker flags come from the collection's own planner (``plan_workers``, the logic of the
``worker_flags`` module) with host facts from ``host_facts``, not from a copy of its rules.

Writes results/bench.json and results/bench.png and prints Markdown tables. Exits non-zero when a
task was lost in the restart, memmon did not restart the worker, a task failed, or the CPU plan is
not prefork. Timing figures are produced here only; no test asserts on speed.
"""

import argparse
import datetime
import importlib.metadata
import json
import os
import platform
import re
import shutil
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import xmlrpc.client
from pathlib import Path

import spreads
from services import MariaDB, Procs, ensure_mysqlclient, log, redis_version, start_redis, start_stub, tail

ROOT = Path(__file__).resolve().parent.parent
STANDIN = ROOT / "extensions" / "standin" / "myauth"
COLLECTIONS = ROOT / ".cache" / "collections"
ANSIBLE = Path(os.environ.get("BENCH_ANSIBLE", ROOT / ".venv" / "bin" / "ansible"))
VENV_BIN = Path(sys.executable).parent
CELERY = VENV_BIN / "celery"

sys.path.insert(0, str(COLLECTIONS))
try:
    from ansible_collections.authops.celery_tuning.plugins.module_utils import worker_options, worker_plan
    from ansible_collections.authops.celery_tuning.plugins.module_utils.host_facts import host_facts
except ImportError as exc:  # pragma: no cover - setup problem
    sys.exit("cannot import the collection from %s (%s); run `make link` first" % (COLLECTIONS, exc))

IO_DELAY = 0.1          # seconds the HTTP stub waits before answering
DB_QUERIES = 4          # queries per esi_db task
DB_QUERY_SECONDS = 0.005
CPU_TARGET = 0.075      # seconds one cpu(n) task should take
PAGE = os.sysconf("SC_PAGE_SIZE")
MIB = 1024 * 1024
NODE_NAME = "bench_%(process_num)02d"  # as Auth's -n worker_00: the node is celery@bench_00, program "bench"
KINDS = ("guide_default", "auth_shipped", "auto", "other")


def version(dist):
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


# ------------------------------------------------------------------------------------------------
# memory of the workers
# ------------------------------------------------------------------------------------------------

def proc_tree_rss(root_pids):
    """RSS in bytes of root_pids and all their descendants (from /proc)."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry, "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(b")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    total, todo = 0, list(root_pids)
    while todo:
        pid = todo.pop()
        try:
            with open("/proc/%d/statm" % pid, "rb") as fh:
                total += int(fh.read().split()[1]) * PAGE
        except OSError:
            continue
        todo.extend(children.get(pid, ()))
    return total


class RssSampler(threading.Thread):
    """Samples the RSS of process trees every 100 ms; ``peak`` is the largest sum seen."""

    def __init__(self, pids, interval=0.1):
        super().__init__(daemon=True)
        self.pids, self.interval = pids, interval
        self.peak = 0
        self.samples = 0
        self._stop_event = threading.Event()

    def run(self):
        while True:
            rss = proc_tree_rss(self.pids)
            if rss:
                self.peak = max(self.peak, rss)
                self.samples += 1
            if self._stop_event.wait(self.interval):
                return

    def finish(self):
        self._stop_event.set()
        self.join(timeout=5)
        return self.peak


# ------------------------------------------------------------------------------------------------
# worker flags from the collection
# ------------------------------------------------------------------------------------------------

def plan(facts, **worker):
    """One worker's plan from the collection's planner, with the worker_flags module's defaults."""
    spec = {"name": "worker", "app": "myauth", "celery_bin": str(CELERY), "loglevel": "warning",
            "queues": ["celery"], "node_name": NODE_NAME, "prefetch_multiplier": 1}
    spec.update(worker)
    result = worker_plan.plan_workers(
        [spec], cpu_count=facts["cpu_count"], memory_total=facts["memory_bytes"],
        cpu_source=facts["cpu_count_source"], memory_source=facts["memory_source"])
    return result["workers"][0]


def numprocs(flags):
    return len(flags["process_names"])


def median_row(runs):
    """One row from repeated runs of a configuration: the median run (by tasks/s), its spread and the runs."""
    row = dict(sorted(runs, key=lambda r: r["tasks_per_s"])[len(runs) // 2])
    row.update(repeats=len(runs), tasks_per_s_spread=[min(r["tasks_per_s"] for r in runs),
                                                      max(r["tasks_per_s"] for r in runs)],
               runs=[{k: r[k] for k in ("seconds", "tasks_per_s", "errors", "loadavg_1m_after")} for r in runs])
    return row


def add_ratios(rows):
    """ratio_to_a: to the first row (the guide's default); ratio_to_auth: to Auth's shipped default."""
    auth = next(r["tasks_per_s"] for r in rows if r["kind"] == "auth_shipped")
    for row in rows:
        row["ratio_to_a"] = round(row["tasks_per_s"] / rows[0]["tasks_per_s"], 2)
        row["ratio_to_auth"] = round(row["tasks_per_s"] / auth, 2)
    return rows


# ------------------------------------------------------------------------------------------------
# the bench
# ------------------------------------------------------------------------------------------------

class Bench:
    def __init__(self, opts, tmp, procs):
        self.opts, self.tmp, self.procs = opts, tmp, procs
        self.facts = host_facts()
        self.cores = self.facts["cpu_count"]
        self.failures = []

    # -- setup ------------------------------------------------------------------------------------
    def setup(self):
        self.mysqlclient = ensure_mysqlclient(sys.executable)
        self.redis_port = start_redis(self.procs, self.tmp / "redis")
        self.redis_version = redis_version()
        log("redis on 127.0.0.1:%d (%s)" % (self.redis_port, self.redis_version))
        self.db = MariaDB(self.tmp / "mariadb")
        self.db.start(self.procs)
        self.db_info = self.db.values("SELECT 'version', VERSION(); SHOW VARIABLES LIKE 'max_connections'")
        log("mariadbd %s on %s (max_connections %s)"
            % (self.db_info["version"], self.db.socket, self.db_info["max_connections"]))
        self.url = start_stub(self.procs, IO_DELAY)
        log("HTTP stub (%.0f ms per GET) at %s" % (IO_DELAY * 1000, self.url))

        # a private copy of the stand-in project, so nothing is written into the work tree
        self.project = self.tmp / "myauth"
        shutil.copytree(STANDIN, self.project,
                        ignore=shutil.ignore_patterns("__pycache__", "log", "data", "standin.env",
                                                      "celerybeat-schedule*"))
        env = {k: v for k, v in os.environ.items()
               if not k.lower().endswith("_proxy") and not k.startswith("MYAUTH_")}
        env.update(self.db.env())
        env.update({
            "MYAUTH_BROKER_URL": "redis://127.0.0.1:%d/0" % self.redis_port,
            "MYAUTH_RESULT_BACKEND": "redis://127.0.0.1:%d/1" % self.redis_port,
            "MYAUTH_ENV_FILE": str(self.tmp / "no-standin.env"),
            "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost",
            "PYTHONUNBUFFERED": "1",
        })
        self.env = env
        os.environ.clear()
        os.environ.update(env)
        sys.path.insert(0, str(self.project))
        from myauth import tasks  # noqa: E402  (needs the env above)
        from myauth.celery import app
        self.tasks, self.app = tasks, app
        import redis
        self.results_db = redis.Redis(host="127.0.0.1", port=self.redis_port, db=1)

    def reset_queue(self):
        self.app.control.purge()
        self.results_db.flushdb()

    # -- one configuration: numprocs worker processes -----------------------------------------------
    def start_workers(self, label, flags):
        """Start the plan's processes; return once each answers a control ping and a ping task ran."""
        procs, name = [], re.sub(r"\W+", "-", label).strip("-")
        for num in range(numprocs(flags)):
            logfile = self.tmp / ("worker-%s-%02d.log" % (name, num))
            # supervisor's expansion of its command (Python %-formatting with these names)
            expansions = {"program_name": flags["name"], "group_name": flags["name"], "process_num": num,
                          "host_node_name": socket.gethostname()}
            argv = [arg % expansions for arg in flags["argv"]]
            with open(logfile, "w", encoding="utf-8") as fh:
                procs.append(self.procs.add("worker %s %02d" % (label, num), subprocess.Popen(
                    argv, cwd=self.project, env=self.env, stdout=fh, stderr=subprocess.STDOUT,
                    start_new_session=True), stop_timeout=60))
        sampler = RssSampler([p.pid for p in procs])
        sampler.start()
        started = time.monotonic()
        while len(self.app.control.ping(timeout=0.5)) < len(procs):
            exited = [p for p in procs if p.poll() is not None]
            if exited or time.monotonic() - started > 120:
                raise RuntimeError("worker %s %s:\n%s" % (
                    label, "exited with %s" % exited[0].returncode if exited else "did not answer within 120 s",
                    tail(logfile)))
        pong = self.tasks.ping.apply_async().get(timeout=60)
        if pong.get("pool") != flags["pool"]:
            raise RuntimeError("worker %s runs pool %s, expected %s" % (label, pong.get("pool"), flags["pool"]))
        return procs, sampler, pong, time.monotonic() - started

    def stop_workers(self, procs, sampler):
        started = time.monotonic()
        codes = [Procs.stop(proc, timeout=60) for proc in procs]
        for proc in procs:
            self.procs.forget(proc)
        return sampler.finish(), codes, time.monotonic() - started

    def db_status(self, flush=False):
        """Connection counters; FLUSH STATUS first restarts Max_used_connections from this client's 1."""
        return {k: int(v) for k, v in self.db.values(
            ("FLUSH STATUS; " if flush else "") + "SHOW GLOBAL STATUS WHERE Variable_name IN "
            "('Max_used_connections', 'Threads_connected', 'Connections')").items()}

    def consume(self, on, count):
        """Make every worker stop (or start again) consuming the queue.

        A worker replies before it acts, and a gevent worker acts only when its loop wakes (up to 2 s):
        a pause is confirmed with ``inspect active_queues`` before anything is sent. A resume needs no
        confirmation: the clock starts at the first task that ran (``started_at``)."""
        control = self.app.control.add_consumer if on else self.app.control.cancel_consumer
        # limit: return once every worker replied, not after the whole timeout
        replies = control("celery", reply=True, timeout=10.0, limit=count)
        if len(replies) < count:
            raise RuntimeError("%s: %d of %d workers replied" % (control.__name__, len(replies), count))
        deadline = time.monotonic() + 15
        while not on:
            queues = self.app.control.inspect(timeout=1.0).active_queues() or {}
            if len(queues) >= count and not any(q.get("name") == "celery" for qs in queues.values() for q in qs):
                return
            if time.monotonic() > deadline:
                raise RuntimeError("the workers did not stop consuming within 15 s: %s" % queues)
            time.sleep(0.1)

    def run_set(self, key, kind, label, flags, make_sig, count, ideal, db=False):
        """Start the workers, time how fast they drain a backlog of ``count`` tasks, stop them.

        The workers stop consuming while the tasks are sent and start again when all are queued: the
        clock measures the workers draining the queue (as after beat queues a burst of ESI updates), not
        how fast this one producer sends, which on 2 cores is slower than the better configurations drain.
        """
        self.reset_queue()
        load_before = os.getloadavg()[0]
        procs, sampler, pong, startup = self.start_workers(label, flags)
        connects = self.db_status(flush=True)["Connections"] if db else None
        from celery.result import ResultSet
        self.consume(False, len(procs))
        t0 = time.monotonic()
        results = [make_sig().apply_async() for _index in range(count)]
        sent = time.monotonic() - t0
        resumed = time.time()
        try:
            self.consume(True, len(procs))
        finally:
            values = ResultSet(results).join_native(timeout=600, propagate=False)
        ended = time.time()
        # From the first task that ran (a gevent worker resumes up to 2 s after it was told) to the last result.
        starts = [v["started_at"] for v in values if isinstance(v, dict) and "started_at" in v]
        wall = ended - (min(starts) if starts else resumed)
        status = self.db_status() if db else None
        peak, codes, stop_s = self.stop_workers(procs, sampler)
        failed = [v for v in values if not isinstance(v, dict) or v.get("error") or v.get("status", 200) != 200]
        elapsed = [v["elapsed"] for v in values if isinstance(v, dict) and "elapsed" in v]
        row = {
            "key": key, "kind": kind, "label": label, "pool": flags["pool"],
            "concurrency": flags["concurrency"], "numprocs": len(procs), "argv": flags["argv"],
            "tasks": count, "seconds": round(wall, 3),
            "send_seconds": round(sent, 3), "tasks_per_s": round(count / wall, 2),
            "ideal_tasks_per_s": round(ideal, 2), "peak_rss_mib": round(peak / MIB, 1),
            "rss_samples": sampler.samples, "errors": len(failed),
            "task_elapsed_mean_ms": round(1000 * sum(elapsed) / len(elapsed), 1) if elapsed else None,
            "worker_pids": sorted({v.get("pid") for v in values if isinstance(v, dict)}),
            "startup_seconds": round(startup, 2), "stop_seconds": round(stop_s, 2),
            "exit_codes": codes, "loadavg_1m_before": round(load_before, 2),
            "loadavg_1m_after": round(os.getloadavg()[0], 2), "ping": {k: pong.get(k) for k in ("pool", "pool_cls", "hostname", "queue")},
        }
        row["pct_of_ideal"] = round(100 * row["tasks_per_s"] / ideal, 1) if ideal else None
        if kind == "auto":
            row["explain"] = flags["explain"]
        if db:
            # the mariadb client that reads the status is the one connection that is not a worker's
            row.update(db_connections_peak=status["Max_used_connections"],
                       db_connections_after=status["Threads_connected"] - 1,
                       db_connects=status["Connections"] - connects - 1)
        if failed:
            self.failures.append("%s: %d task errors, e.g. %r" % (label, len(failed), failed[0]))
        log("%-34s %7.1f tasks/s in %6.2f s (ideal %.0f/s), peak RSS %.0f MiB, errors %d%s"
            % (label, row["tasks_per_s"], wall, ideal, row["peak_rss_mib"], len(failed),
               ", DB connections peak %d" % row["db_connections_peak"] if db else ""))
        return row

    def run_configs(self, prefix, configs, make_sig, count, ideal, db=False):
        """run_set for each (key, kind, label, flags); ideal(flags) is the tasks/s without overhead.

        Every configuration runs once; then, in rounds (one run of each per round, in the set's order), each
        one that drained in under --min-seconds runs again until it has --repeats runs, and so do the automatic
        plan and the fastest row whatever their drain: a noisy minute of the machine then falls on one run of
        several rows, not on the runs of one row. A row is its median run, with the spread (min-max of tasks/s)
        of its runs."""
        def runner(key, kind, label, flags):
            return lambda: self.run_set(key, kind, prefix + label, flags, make_sig, count, ideal(flags), db)
        runs = {config[0]: [runner(*config)()] for config in configs}
        fastest = max(configs, key=lambda c: runs[c[0]][0]["tasks_per_s"])[0]
        again = [config for config in configs
                 if config[1] == "auto" or config[0] == fastest or runs[config[0]][0]["seconds"] < self.opts.min_seconds]
        for _round in range(1, self.opts.repeats):
            for config in again:
                runs[config[0]].append(runner(*config)())
        return add_ratios([median_row(runs[config[0]]) for config in configs])

    def repeat(self, run):
        """--repeats runs of one configuration, back to back (the worker_profile recommendation, after the set)."""
        return [run() for _index in range(self.opts.repeats)]

    def pool_configs(self, workload):
        """The configurations every set compares, as (key, kind, label, flags)."""
        return [
            ("a", "guide_default", "guide default: prefork x cores",
             plan(self.facts, pool="prefork", concurrency=self.cores)),
            ("b", "auth_shipped", "Auth 5.x default: threads 5", plan(self.facts, pool="threads", concurrency=5)),
            ("c", "other", "guide gevent example: gevent 10", plan(self.facts, pool="gevent", concurrency=10)),
            ("d", "auto", "worker_flags workload=%s" % workload, plan(self.facts, workload=workload)),
        ]

    # -- 1. I/O set -------------------------------------------------------------------------------
    def io_set(self, n):
        configs = self.pool_configs("io") + [
            ("e1", "other", "gevent 50 (DB budget)", plan(self.facts, pool="gevent", concurrency=50)),
            ("e2", "other", "threads 50 (DB budget)", plan(self.facts, pool="threads", concurrency=50)),
        ]
        return self.run_configs("", configs, lambda: self.tasks.io_call.s(self.url), n,
                                lambda flags: numprocs(flags) * flags["concurrency"] / IO_DELAY)

    # -- 2. DB set --------------------------------------------------------------------------------
    def db_set(self, n):
        configs = self.pool_configs("io") + [
            ("e1", "other", "gevent 50", plan(self.facts, pool="gevent", concurrency=50)),
            ("e2", "other", "threads 50", plan(self.facts, pool="threads", concurrency=50)),
            ("e3", "other", "threads 25 x 2 processes", plan(self.facts, pool="threads", concurrency=25, numprocs=2)),
        ]
        db_seconds = DB_QUERIES * DB_QUERY_SECONDS

        def ideal(flags):
            # every slot waits IO_DELAY + db_seconds; mysqlclient blocks a gevent hub for the queries
            per_proc = flags["concurrency"] / (IO_DELAY + db_seconds)
            return numprocs(flags) * (min(per_proc, 1 / db_seconds) if flags["pool"] == "gevent" else per_proc)

        def make_sig():
            return self.tasks.esi_db.s(self.url, DB_QUERIES, DB_QUERY_SECONDS)
        rows = self.run_configs("db: ", configs, make_sig, n, ideal, db=True)
        profile = self.profile_run(make_sig, n)
        rec = profile["recommended"]
        flags = plan(self.facts, pool=rec["pool"], concurrency=rec["concurrency"], numprocs=rec["numprocs"])

        def recommended():
            return self.run_set("p", "other", "db: worker_profile recommendation", flags, make_sig, n, ideal(flags), db=True)
        row = median_row(self.repeat(recommended))
        rows = add_ratios(rows + [row])
        best = max(rows, key=lambda r: r["tasks_per_s"])
        profile.update(recommended_row=row["key"], recommended_tasks_per_s=row["tasks_per_s"],
                       best_key=best["key"], best_label=best["label"], best_tasks_per_s=best["tasks_per_s"],
                       ratio_to_best=round(row["tasks_per_s"] / best["tasks_per_s"], 3))
        log("worker_profile recommendation %s %d x %d: %.1f tasks/s, %.0f%% of the best (%s, %.1f)"
            % (rec["pool"], rec["concurrency"], rec["numprocs"], row["tasks_per_s"], 100 * profile["ratio_to_best"],
               best["label"], best["tasks_per_s"]))
        return {"queries": DB_QUERIES, "query_seconds": DB_QUERY_SECONDS,
                "max_connections": int(self.db_info["max_connections"]),
                "mariadb": self.db_info["version"], "mysqlclient": self.mysqlclient, "rows": rows,
                "profile": profile}

    def profile_run(self, make_sig, n):
        """worker_profile (the module, through ``ansible localhost -m``) on Auth's threads 5 under the DB load."""
        flags = plan(self.facts, pool="threads", concurrency=5)
        self.reset_queue()
        procs, sampler, _pong, _startup = self.start_workers("profile: Auth 5.x default: threads 5", flags)
        load_before = os.getloadavg()[0]
        import redis
        broker = redis.Redis(host="127.0.0.1", port=self.redis_port, db=0)
        stop = threading.Event()

        def feed():  # a steady load: keep 100 to 300 tasks waiting until the module has returned
            while not stop.is_set():
                if sum(broker.llen(key) for key in broker.keys("celery*")) < 100:  # with kombu's priority lists
                    for _index in range(200):
                        make_sig().apply_async(ignore_result=True)
                stop.wait(0.2)
        feeder = threading.Thread(target=feed, daemon=True)
        feeder.start()
        try:
            time.sleep(3)  # past the first prefetch
            args = {"app": "myauth", "window": self.opts.profile_window, "interval": 1.0,
                    "project_dir": str(self.project), "programs": ["bench"], "cpu_count": self.cores}
            module = self.run_ansible("authops.celery_tuning.worker_profile", args)
        finally:
            stop.set()
            feeder.join(timeout=30)
            self.reset_queue()
            self.stop_workers(procs, sampler)
            self.reset_queue()
        worker = module["workers"][0]
        log("worker_profile on threads 5: %.1f tasks/s, %.1f in flight, task %.0f ms, CPU %.1f ms/task, backlog min %s"
            " -> %s %d x %d" % (worker["completions_per_s"], worker["in_flight_mean"], 1000 * (worker["task_seconds"] or 0),
                                1000 * (worker["cpu_seconds_per_task"] or 0), worker["backlog_min"],
                                worker["recommended"]["pool"], worker["recommended"]["concurrency"],
                                worker["recommended"]["numprocs"]))
        return dict(worker, db_driver=module["db_driver"], db_engine=module["db_engine"], profiled="threads 5 (Auth 5.x default)",
                    probe_seconds=module["probe_seconds"], loadavg_1m_before=round(load_before, 2),
                    loadavg_1m_after=round(os.getloadavg()[0], 2))

    # -- 3. CPU set -------------------------------------------------------------------------------
    def calibrate_cpu(self):
        probe = 200000
        best = min(self._time_cpu(probe) for _index in range(3))
        n = max(10000, int(probe * CPU_TARGET / best))
        return n, round(min(self._time_cpu(n) for _index in range(3)), 4)

    def _time_cpu(self, n):
        started = time.perf_counter()
        self.tasks.cpu.run(n)
        return time.perf_counter() - started

    def cpu_set(self, m):
        n, one = self.calibrate_cpu()
        log("cpu(n=%d) takes %.0f ms in the bench process" % (n, one * 1000))
        configs = self.pool_configs("cpu")

        def ideal(flags):  # prefork children run in parallel up to the cores; the GIL serialises the rest
            slots = flags["concurrency"] if flags["pool"] == "prefork" else 1
            return min(numprocs(flags) * slots, self.cores) / one
        rows = self.run_configs("cpu: ", configs, lambda: self.tasks.cpu.s(n), m, ideal)
        auto = configs[3][3]
        assertion = {"pool": auto["pool"], "concurrency": auto["concurrency"],
                     "ok": auto["pool"] == "prefork", "explain": auto["explain"]}
        if not assertion["ok"]:
            self.failures.append("worker_flags workload=cpu chose pool %s, not prefork" % auto["pool"])
        return {"n": n, "one_task_seconds": one, "rows": rows, "cpu_plan_is_prefork": assertion}

    # -- 4./5. supervisord: graceful restart and memmon --------------------------------------------
    def write_supervisor_conf(self, sdir):
        flags = plan(self.facts, pool="threads", concurrency=5, stopwaitsecs=60,
                     node_name=worker_options.DEFAULT_NODE_NAME, group_name="myauth")
        memmon = VENV_BIN / "memmon"
        conf = sdir / "supervisord.conf"
        conf.write_text("""\
[unix_http_server]
file={sdir}/supervisor.sock
chmod=0700

[supervisord]
logfile={sdir}/supervisord.log
pidfile={sdir}/supervisord.pid
childlogdir={sdir}/log
loglevel=info

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://{sdir}/supervisor.sock

[program:worker]
command={command}
directory={project}
numprocs=1
process_name=%(program_name)s_%(process_num)02d
stdout_logfile={sdir}/log/worker.log
redirect_stderr=true
autostart=true
autorestart=true
startsecs=5
stopwaitsecs=60
killasgroup=true
priority=998

[eventlistener:memmon]
command={memmon} -c -p worker_00=200MB
directory={project}
events=TICK_5
stdout_logfile={sdir}/log/memmon.log
stderr_logfile={sdir}/log/memmon.log

[group:myauth]
programs=worker
priority=999
""".format(sdir=sdir, command=flags["command"], project=self.project, memmon=memmon),
            encoding="utf-8")
        return conf, flags

    @staticmethod
    def rpc(sock, method, *args):
        """``supervisor.<method>(*args)`` over the unix socket, with a fresh connection per call
        (SupervisorTransport keeps one, which a failed request leaves unusable)."""
        from supervisor.xmlrpc import SupervisorTransport
        proxy = xmlrpc.client.ServerProxy(
            "http://127.0.0.1", transport=SupervisorTransport(None, None, "unix://" + str(sock)))
        return getattr(proxy.supervisor, method)(*args)

    def wait_running(self, sock, name, timeout=60, not_pid=None):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                info = self.rpc(sock, "getProcessInfo", name)
                if info["statename"] == "RUNNING" and info["pid"] and info["pid"] != not_pid:
                    return info
            except Exception:  # not up yet (no socket, SHUTDOWN_STATE, ...)
                pass
            time.sleep(0.1)
        return None

    def supervisor_part(self, restart_tasks):
        sdir = self.tmp / "supervisor"
        (sdir / "log").mkdir(parents=True)
        conf, flags = self.write_supervisor_conf(sdir)
        sock = sdir / "supervisor.sock"
        self.reset_queue()
        proc = self.procs.add("supervisord", subprocess.Popen(
            [str(VENV_BIN / "supervisord"), "-n", "-c", str(conf)], cwd=sdir, env=self.env,
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True),
            stop_timeout=90)
        try:
            info = self.wait_running(sock, "myauth:worker_00")
            if not info:
                raise RuntimeError("worker_00 not RUNNING under supervisord:\n" + tail(sdir / "log" / "worker.log"))
            pong = self.tasks.ping.apply_async().get(timeout=60)
            if pong.get("pool") != "threads":
                raise RuntimeError("supervised worker runs %s, expected threads" % pong.get("pool"))
            restart = self.restart_under_load(sock, restart_tasks)
            restart["worker_command"] = flags["command"]
            memmon = self.memmon(sock)
        finally:
            try:
                self.rpc(sock, "shutdown")
                proc.wait(timeout=90)
            except Exception as exc:
                log("supervisord shutdown over RPC failed (%s); sending TERM" % exc)
            Procs.stop(proc, timeout=90)
            self.procs.forget(proc)
        return restart, memmon

    def run_module(self, sock):
        args = {"name": "myauth", "state": "restarted", "daemon": "unchanged", "socket": str(sock)}
        started = time.time()
        result, cmd = self.run_ansible("authops.celery_tuning.supervisor_group", args, with_cmd=True)
        return result, started, time.time(), cmd

    def run_ansible(self, module, args, with_cmd=False):
        """``ansible localhost -m <module> -a <args>``: the module's result (a failure raises)."""
        env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS), ANSIBLE_STDOUT_CALLBACK="minimal",
                   ANSIBLE_LOCALHOST_WARNING="False", ANSIBLE_INVENTORY_UNPARSED_WARNING="False",
                   ANSIBLE_NOCOLOR="1")
        cmd = [str(ANSIBLE), "localhost", "-m", module,
               "-a", json.dumps(args), "-e", "ansible_python_interpreter=%s" % sys.executable]
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, check=False)
        text = out.stdout
        try:
            result = json.loads(text[text.index("{", text.index("=>")):])
        except ValueError:
            raise RuntimeError("cannot read the module's result (rc %d):\n%s\n%s"
                               % (out.returncode, text, out.stderr))
        if out.returncode != 0 or result.get("failed"):
            raise RuntimeError("%s failed: %s" % (module, result.get("msg")))
        return (result, shlex.join(cmd)) if with_cmd else result

    def restart_under_load(self, sock, count, seconds=2.0):
        markers = self.tmp / "markers"
        markers.mkdir()
        pid_before = self.rpc(sock, "getProcessInfo", "myauth:worker_00")["pid"]
        t_send = time.time()
        results = [self.tasks.sleep.apply_async(args=(seconds, str(markers))) for _index in range(count)]
        time.sleep(max(0.0, t_send + 3.0 - time.time()))
        log("graceful restart with supervisor_group (state=restarted) while %d sleep(%g) tasks run"
            % (count, seconds))
        module, m_start, m_end, cmd = self.run_module(sock)
        timeout = 60 + count * seconds
        deadline = time.monotonic() + timeout
        for res in results:
            try:
                res.get(timeout=max(0.1, deadline - time.monotonic()), propagate=False)
            except Exception:
                pass
        done, started_only = [], 0
        for res in results:
            base = markers / res.id
            if (markers / (res.id + ".done")).exists():
                done.append(json.loads(Path(str(base) + ".done").read_text())["t"])
            elif (markers / (res.id + ".start")).exists():
                started_only += 1
        lost = count - len(done)
        done.sort()
        gaps = [(b - a, a, b) for a, b in zip([t_send] + done, done)]
        gap, gap_from, gap_to = max(gaps) if gaps else (None, None, None)
        proc_info = next((p for p in module.get("processes", []) if p.get("name") == "myauth:worker_00"), {})
        row = {
            "tasks": count, "task_seconds": seconds, "completed": len(done), "lost": lost,
            "killed_mid_task": started_only, "lost_timeout_seconds": timeout,
            "consumption_gap_seconds": round(gap, 2) if gap is not None else None,
            "gap_from_s": round(gap_from - t_send, 2) if gap is not None else None,
            "gap_to_s": round(gap_to - t_send, 2) if gap is not None else None,
            "module_started_s": round(m_start - t_send, 2), "module_ended_s": round(m_end - t_send, 2),
            "module_wall_seconds": round(m_end - m_start, 2),
            "module_stop_seconds": proc_info.get("stop_seconds"), "module_killed": proc_info.get("killed"),
            "module_start_seconds": proc_info.get("start_seconds"),
            "module_changed": module.get("changed"), "module_msg": module.get("msg"),
            "pid_before": pid_before, "pid_after": proc_info.get("pid"),
            "last_completion_s": round(done[-1] - t_send, 2) if done else None,
            "ideal_seconds_without_restart": count * seconds / 5,
            "module_command": cmd,
        }
        if lost:
            self.failures.append("graceful restart: %d of %d tasks lost" % (lost, count))
        log("restart: %d/%d completed, lost %d, gap %.2f s, stop_seconds %s, killed %s"
            % (len(done), count, lost, gap or 0, row["module_stop_seconds"], row["module_killed"]))
        return row

    def memmon(self, sock, mb=300):
        pid = self.wait_running(sock, "myauth:worker_00")["pid"]
        result = self.tasks.leak.apply_async(args=(mb,)).get(timeout=60)
        t_done = time.monotonic()
        new_pid, seconds = None, None
        deadline = t_done + 60
        while time.monotonic() < deadline:
            try:
                info = self.rpc(sock, "getProcessInfo", "myauth:worker_00")
            except Exception:
                info = {}
            if info.get("pid") and info["pid"] != pid:
                new_pid, seconds = info["pid"], round(time.monotonic() - t_done, 2)
                break
            time.sleep(0.05)
        running = self.wait_running(sock, "myauth:worker_00", timeout=60) if new_pid else None
        row = {"leak_mb": mb, "limit": "worker_00=200MB (memmon -c, TICK_5)", "restarted": new_pid is not None,
               "seconds_to_new_pid": seconds, "pid_before": pid, "leak_task_pid": result.get("pid"),
               "pid_after": new_pid, "running_again": running is not None,
               "leak_rss_mib": round((result.get("rss_kib") or 0) / 1024, 1)}
        if new_pid is None:
            self.failures.append("memmon did not restart worker_00 within 60 s after leak(%d)" % mb)
        log("memmon: restarted=%s after %s s (pid %s -> %s)" % (row["restarted"], seconds, pid, new_pid))
        return row


# ------------------------------------------------------------------------------------------------
# thresholds of issue 11 ("Tuning from evidence"): reported, never tuned for
# ------------------------------------------------------------------------------------------------

def _kind(rows, kind):
    return next(r for r in rows if r["kind"] == kind)


def thresholds(report):
    """Each threshold with the figures it compares and whether this run met it."""
    out = []

    def check(name, value, target, ok, figures):
        out.append({"threshold": name, "value": round(value, 3), "target": target, "met": bool(ok), "figures": figures})

    sets = (("I/O (HTTP only)", report["io"]), ("DB", report["db"]["rows"]), ("CPU", report["cpu"]["rows"]))
    for name, rows in sets:
        auto, auth = _kind(rows, "auto"), _kind(rows, "auth_shipped")
        best = max(rows, key=lambda r: r["tasks_per_s"])
        fig = "auto (%s) %.1f, Auth shipped (%s) %.1f, best (%s) %.1f tasks/s" % (
            auto["key"], auto["tasks_per_s"], auth["key"], auth["tasks_per_s"], best["key"], best["tasks_per_s"])
        if name == "DB":
            check("DB: auto >= 4x Auth's shipped", auto["tasks_per_s"] / auth["tasks_per_s"], ">= 4",
                  auto["tasks_per_s"] >= 4 * auth["tasks_per_s"], fig)
            check("DB: auto >= 90% of the best", auto["tasks_per_s"] / best["tasks_per_s"], ">= 0.9",
                  auto["tasks_per_s"] >= 0.9 * best["tasks_per_s"], fig)
        elif name == "CPU":
            prefork = rows[0]
            check("CPU: auto within 10% of prefork", auto["tasks_per_s"] / prefork["tasks_per_s"], ">= 0.9",
                  auto["tasks_per_s"] >= 0.9 * prefork["tasks_per_s"],
                  "auto (%s) %.1f, prefork (%s) %.1f tasks/s"
                  % (auto["key"], auto["tasks_per_s"], prefork["key"], prefork["tasks_per_s"]))
        else:
            guide = _kind(rows, "guide_default")
            check("HTTP only: auto >= 15x the guide's default", auto["tasks_per_s"] / guide["tasks_per_s"], ">= 15",
                  auto["tasks_per_s"] >= 15 * guide["tasks_per_s"], fig + ", guide (%s) %.1f" % (guide["key"], guide["tasks_per_s"]))
            check("HTTP only: auto >= 80% of the best", auto["tasks_per_s"] / best["tasks_per_s"], ">= 0.8",
                  auto["tasks_per_s"] >= 0.8 * best["tasks_per_s"], fig)
        check("%s: auto not below Auth's shipped" % name, auto["tasks_per_s"] / auth["tasks_per_s"], ">= 1",
              auto["tasks_per_s"] >= auth["tasks_per_s"], fig)
    prof = report["db"].get("profile")
    if prof:
        rec = prof["recommended"]
        check("DB: worker_profile's recommendation within 15% of the best", prof["ratio_to_best"], ">= 0.85",
              prof["ratio_to_best"] >= 0.85,
              "recommended %s %d x %d (%s) %.1f, best (%s) %.1f tasks/s" % (
                  rec["pool"], rec["concurrency"], rec["numprocs"], prof["recommended_row"],
                  prof["recommended_tasks_per_s"], prof["best_key"], prof["best_tasks_per_s"]))
    return out


# ------------------------------------------------------------------------------------------------
# output
# ------------------------------------------------------------------------------------------------

def table(rows, columns):
    """A Markdown table: columns are (header, format, row -> value); numbers right-aligned."""
    out = ["| " + " | ".join(header for header, _fmt, _get in columns) + " |",
           "|" + "|".join("---" if fmt == "%s" else "---:" for _header, fmt, _get in columns) + "|"]
    for row in rows:
        out.append("| " + " | ".join(fmt % get(row) for _header, fmt, get in columns) + " |")
    return "\n".join(out)


def pool_columns(ratio_header, ratio_key):
    return [("", "%s", lambda r: r["key"]), ("config", "%s", lambda r: r["label"].split(": ", 1)[-1]),
            ("kind", "%s", lambda r: r["kind"]), ("pool", "%s", lambda r: r["pool"]),
            ("conc. x procs", "%s", lambda r: "%d x %d" % (r["concurrency"], r["numprocs"])),
            ("tasks/s", "%.1f", lambda r: r["tasks_per_s"]),
            ("spread", "%s", spreads.describe),
            (ratio_header, "%.2f", lambda r: r[ratio_key]),
            ("ideal/s", "%.0f", lambda r: r["ideal_tasks_per_s"]), ("% ideal", "%.0f", lambda r: r["pct_of_ideal"]),
            ("peak RSS MiB", "%.0f", lambda r: r["peak_rss_mib"])]


def markdown(report):
    out = []
    tail_columns = [("errors", "%d", lambda r: r["errors"]), ("seconds", "%.2f", lambda r: r["seconds"])]
    out.append("### I/O set: %d x io_call (stub answers after %d ms)\n" % (report["n"], IO_DELAY * 1000))
    out.append(table(report["io"], pool_columns("x (a)", "ratio_to_a") + tail_columns))
    db = report["db"]
    out.append("\n### DB set: %d x esi_db (the GET, then %d x SELECT SLEEP(%g) through %s; MariaDB %s, "
               "max_connections %d)\n" % (report["n"], db["queries"], db["query_seconds"], db["mysqlclient"],
                                          db["mariadb"], db["max_connections"]))
    out.append(table(db["rows"], pool_columns("x Auth (b)", "ratio_to_auth") + [
        ("DB conns peak", "%d", lambda r: r["db_connections_peak"]),
        ("held after", "%d", lambda r: r["db_connections_after"])] + tail_columns))
    cpu = report["cpu"]
    out.append("\n### CPU set: %d x cpu(n=%d), ~%.0f ms each\n" % (report["m"], cpu["n"], cpu["one_task_seconds"] * 1000))
    out.append(table(cpu["rows"], pool_columns("x (a)", "ratio_to_a") + tail_columns[1:]))
    for name, rows in (("I/O", report["io"]), ("DB", db["rows"])):
        auto = next(r for r in rows if r["kind"] == "auto")
        out.append("\n(%s) %s, worker_flags argv: `%s`" % (auto["key"], name, " ".join(auto["argv"][1:])))
    prof = db.get("profile")
    if prof:
        out.append("\n(p) worker_profile (`ansible localhost -m authops.celery_tuning.worker_profile`, %.0f s window) on "
                   "%s under the DB load: %.1f tasks/s, %.1f tasks in flight, task %.0f ms (Little's law), CPU %.1f ms "
                   "per task (%.2f cores), backlog min %d, driver %s -> recommends %s %d x %d:\n%s"
                   % (prof["window_seconds"], prof["profiled"], prof["completions_per_s"], prof["in_flight_mean"],
                      1000 * (prof["task_seconds"] or 0), 1000 * (prof["cpu_seconds_per_task"] or 0),
                      prof["cpu_cores_per_process"] or 0, prof["backlog_min"], prof["db_driver"],
                      prof["recommended"]["pool"], prof["recommended"]["concurrency"], prof["recommended"]["numprocs"],
                      "\n".join("  - " + line for line in prof["recommended"]["explain"])))
    out.append("\nranking of the automatic plan (median tasks/s; spread: min-max of its runs): " + "; ".join(
        "%s: %s (auto %s %.1f-%.1f, fastest %s %.1f-%.1f)" % (
            name, r["relation"], r["auto"], r["auto_spread"][0], r["auto_spread"][1], r["best"], r["best_spread"][0],
            r["best_spread"][1]) for name, r in report.get("ranking", {}).items()))
    out.append("\n### Thresholds (issue 11)\n")
    out.append("| threshold | value | target | met | figures |")
    out.append("|---|---:|---|---|---|")
    for t in report.get("thresholds", []):
        met = "yes" if t["met"] else "**NO**"
        out.append("| %s | %.2f | %s | %s | %s |" % (t["threshold"], t["value"], t["target"], met, t["figures"]))
    a = cpu["cpu_plan_is_prefork"]
    out.append("\nassert worker_flags workload=cpu -> pool prefork: **%s** (pool=%s, concurrency=%d)\n"
               % ("OK" if a["ok"] else "FAILED", a["pool"], a["concurrency"]))
    rs = report["restart"]
    out.append("### Graceful restart under load (supervisor_group state=restarted, threads 5, stopwaitsecs 60)\n")
    out.append("| tasks | completed | lost | killed mid-task | consumption gap s | module stop_seconds | killed | start_seconds | module wall s |")
    out.append("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    out.append("| %d x sleep(%g) | %d | %d | %d | %.2f (%.1f-%.1f s) | %s | %s | %s | %.2f |" % (
        rs["tasks"], rs["task_seconds"], rs["completed"], rs["lost"], rs["killed_mid_task"],
        rs["consumption_gap_seconds"] or 0, rs["gap_from_s"] or 0, rs["gap_to_s"] or 0,
        rs["module_stop_seconds"], rs["module_killed"], rs["module_start_seconds"], rs["module_wall_seconds"]))
    mm = report["memmon"]
    out.append("\n### memmon (-c -p worker_00=200MB, TICK_5) after leak(%d)\n" % mm["leak_mb"])
    out.append("| restarted | seconds to new pid | worker RSS after leak MiB | pid before -> after |")
    out.append("|---|---:|---:|---|")
    out.append("| %s | %s | %.0f | %s -> %s |" % (
        "yes" if mm["restarted"] else "NO", mm["seconds_to_new_pid"],
        mm["leak_rss_mib"], mm["pid_before"], mm["pid_after"]))
    h = report["host"]
    out.append("\nhost: %d CPUs (%s), %.1f GiB (%s); load average (1 min) %.2f before, %.2f after; %s" % (
        h["cpu_count"], h["cpu_count_source"], h["memory_bytes"] / 1024 ** 3, h["memory_source"],
        report["loadavg_1m_start"], report["loadavg_1m_end"],
        ", ".join("%s %s" % kv for kv in report["versions"].items() if kv[1])))
    return "\n".join(out)


KIND_COLORS = {"guide_default": "#8c8c8c", "auth_shipped": "#dd8452", "auto": "#55a868", "other": "#4878a8"}


def chart(report, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch
    panels = ((report["io"], "I/O set: %d io_call (100 ms stub)" % report["n"]),
              (report["db"]["rows"], "DB set: %d esi_db (stub + %d queries)" % (report["n"], report["db"]["queries"])),
              (report["cpu"]["rows"], "CPU set: %d cpu(n)" % report["m"]))
    fig, axes = plt.subplots(1, 3, figsize=(19, 5.5), gridspec_kw={"width_ratios": [6, 7, 4]})
    for ax, (rows, title) in zip(axes, panels):
        labels = ["(%s) %s %d%s" % (r["key"], r["pool"], r["concurrency"],
                                    " x %d" % r["numprocs"] if r["numprocs"] > 1 else "") for r in rows]
        values = [r["tasks_per_s"] for r in rows]
        bars = ax.bar(range(len(rows)), values, color=[KIND_COLORS[r["kind"]] for r in rows])
        ideal = ax.scatter(range(len(rows)), [r["ideal_tasks_per_s"] for r in rows], marker="_", s=600,
                           color="#c44", zorder=3)
        for rect, value in zip(bars, values):
            ax.annotate("%.1f" % value, (rect.get_x() + rect.get_width() / 2, value), ha="center",
                        va="bottom", fontsize=8)
        ax.set_xticks(range(len(rows)))
        ax.set_xticklabels(labels, rotation=25, ha="right", fontsize=8)
        ax.set_ylabel("tasks/s")
        ax.set_title(title)
    axes[0].legend([Patch(color=c) for c in KIND_COLORS.values()] + [ideal], list(KIND_COLORS) + ["ideal"],
                   fontsize=8, loc="upper left")
    h = report["host"]
    fig.suptitle("authops.celery_tuning bench: %d CPUs, %.0f GiB, Celery %s (%s)"
                 % (h["cpu_count"], h["memory_bytes"] / 1024 ** 3, report["versions"]["celery"], report["date"][:10]))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def ansible_version():
    try:
        out = subprocess.run([str(ANSIBLE), "--version"], capture_output=True, text=True, timeout=60, check=False).stdout
        first = out.splitlines()[0]  # "ansible [core 2.19.14]"
        return first.split("core", 1)[1].strip(" ]") if "core" in first else first.strip()
    except (OSError, IndexError, subprocess.SubprocessError):
        return None


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--quick", action="store_true", help="fewer tasks (N=100, M=40)")
    parser.add_argument("-n", type=int, help="io_call and esi_db tasks per config (default 800, quick 100)")
    parser.add_argument("-m", type=int, help="cpu tasks per config (default 240, quick 40)")
    parser.add_argument("--restart-tasks", type=int, default=30, help="sleep(2) tasks in the restart test")
    parser.add_argument("--out", default=str(ROOT / "results"), help="where bench.json/bench.png go")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs) after a successful run")
    parser.add_argument("--profile-window", type=int, default=15, help="seconds worker_profile samples (default 15)")
    parser.add_argument("--min-seconds", type=float, default=15,
                        help="a row that drains faster runs --repeats times (default 15)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="runs of a short row, of the automatic plan and of the fastest row (default 3)")
    opts = parser.parse_args()
    n = opts.n or (100 if opts.quick else 800)
    m = opts.m or (40 if opts.quick else 240)

    def on_signal(signum, frame):
        raise SystemExit(128 + signum)
    for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):  # SIGINT too: a background job ignores it
        signal.signal(signum, on_signal)

    began = time.monotonic()
    load_start = os.getloadavg()[0]
    tmp = Path(tempfile.mkdtemp(prefix="celery-bench-"))
    procs = Procs()
    ok = False
    try:
        bench = Bench(opts, tmp, procs)
        bench.setup()
        io = bench.io_set(n)
        db = bench.db_set(n)
        cpu = bench.cpu_set(m)
        restart, memmon = bench.supervisor_part(opts.restart_tasks)
        report = {
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "quick": opts.quick, "n": n, "m": m, "io_delay_seconds": IO_DELAY,
            "host": dict(bench.facts, hostname=socket.gethostname(), platform=platform.platform()),
            "loadavg_1m_start": round(load_start, 2), "loadavg_1m_end": round(os.getloadavg()[0], 2),
            "versions": {
                "python": platform.python_version(), "celery": version("celery"), "kombu": version("kombu"),
                "billiard": version("billiard"), "redis-py": version("redis"), "gevent": version("gevent"),
                "greenlet": version("greenlet"), "mysqlclient": version("mysqlclient"),
                "supervisor": version("supervisor"), "superlance": version("superlance"),
                "matplotlib": version("matplotlib"), "redis-server": bench.redis_version,
                "mariadb": db["mariadb"], "ansible-core": ansible_version(),
            },
            "kinds": list(KINDS),
            "io": io, "db": db, "cpu": cpu, "restart": restart, "memmon": memmon,
            "failures": bench.failures,
        }
        report["ranking"] = {"io": spreads.ranking(io), "db": spreads.ranking(db["rows"]),
                             "cpu": spreads.ranking(cpu["rows"])}
        report["thresholds"] = thresholds(report)
        report["bench_seconds"] = round(time.monotonic() - began, 1)
        out = Path(opts.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "bench.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        chart(report, out / "bench.png")
        print(markdown(report))
        print("\nbench took %.0f s; wrote %s and %s" % (report["bench_seconds"], out / "bench.json", out / "bench.png"))
        for failure in bench.failures:
            print("FAILED: " + failure)
        ok = not bench.failures
        return 0 if ok else 1
    finally:
        procs.stop_all()
        if ok and not opts.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            log("logs kept in %s" % tmp)


if __name__ == "__main__":
    sys.exit(main())
