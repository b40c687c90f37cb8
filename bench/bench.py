"""Benchmark of Alliance Auth's Celery worker settings on the stand-in project.

Run by ``make bench`` with the bench venv (.cache/bench-venv, bench/requirements.txt)::

    .cache/bench-venv/bin/python bench/bench.py [--quick] [--out results]

Everything runs locally and is torn down at the end (also on error):

* a real ``redis-server`` on a free loopback port (no persistence) as broker and result backend,
* an HTTP stub that answers every GET after 100 ms (stand-in for ESI),
* the stand-in project ``extensions/standin/myauth`` (copied to a temp dir) with real Celery workers.

Measured:

1. I/O set: the same N ``io_call`` tasks under the guide's default (prefork, one process per core),
   Auth 5.x's shipped default (threads 5), the guide's gevent example (gevent 10), the flags
   ``worker_flags`` computes for ``workload: io`` on this host, and gevent 50 / threads 50.
2. CPU set: M ``cpu(n)`` tasks (~75 ms each) under prefork(cores), threads 5, gevent 10 and the
   flags ``worker_flags`` computes for ``workload: cpu`` (asserted to be prefork).
3. Graceful restart under load with ``authops.celery_tuning.supervisor_group`` (``ansible localhost -m``)
   against a private supervisord: tasks lost, consumption gap, the module's stop_seconds/killed.
4. memmon (superlance) restarting worker_00 after ``leak(300)`` crosses its 200MB limit.

All worker flags come from the collection's own planner (``plan_workers``, the logic of the
``worker_flags`` module) with host facts from ``host_facts``, not from a copy of its rules.

Writes results/bench.json and results/bench.png and prints Markdown tables. Exits non-zero when a
task was lost in the restart, memmon did not restart the worker, or the CPU plan is not prefork.
Timing figures are produced here only; no test asserts on speed.
"""

import argparse
import datetime
import importlib.metadata
import json
import os
import platform
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

ROOT = Path(__file__).resolve().parent.parent
STANDIN = ROOT / "extensions" / "standin" / "myauth"
COLLECTIONS = ROOT / ".cache" / "collections"
ANSIBLE = Path(os.environ.get("BENCH_ANSIBLE", ROOT / ".venv" / "bin" / "ansible"))
VENV_BIN = Path(sys.executable).parent
CELERY = VENV_BIN / "celery"

sys.path.insert(0, str(COLLECTIONS))
try:
    from ansible_collections.authops.celery_tuning.plugins.module_utils import celery_flags
    from ansible_collections.authops.celery_tuning.plugins.module_utils.host_facts import host_facts
except ImportError as exc:  # pragma: no cover - setup problem
    sys.exit("cannot import the collection from %s (%s); run `make link` first" % (COLLECTIONS, exc))

IO_DELAY = 0.1          # seconds the HTTP stub waits before answering
CPU_TARGET = 0.075      # seconds one cpu(n) task should take
PAGE = os.sysconf("SC_PAGE_SIZE")
MIB = 1024 * 1024

STUB = ROOT / "extensions" / "standin" / "esi_stub.py"


def log(msg):
    print("[bench %s] %s" % (time.strftime("%H:%M:%S"), msg), file=sys.stderr, flush=True)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def version(dist):
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def tail(path, lines=30):
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return "".join(fh.readlines()[-lines:])
    except OSError:
        return ""


# ------------------------------------------------------------------------------------------------
# process bookkeeping
# ------------------------------------------------------------------------------------------------

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


def proc_tree_rss(root_pid):
    """RSS in bytes of root_pid and all its descendants (from /proc)."""
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
    total, todo = 0, [root_pid]
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
    """Samples the RSS of a process tree every 100 ms; ``peak`` is the largest sum seen."""

    def __init__(self, pid, interval=0.1):
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.peak = 0
        self.samples = 0
        self._stop_event = threading.Event()

    def run(self):
        while True:
            rss = proc_tree_rss(self.pid)
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
# services: redis, HTTP stub
# ------------------------------------------------------------------------------------------------

def ensure_redis_server():
    path = shutil.which("redis-server") or ("/usr/bin/redis-server" if os.path.exists("/usr/bin/redis-server") else None)
    if path:
        return path
    if os.geteuid() != 0:
        sys.exit("redis-server is missing and the bench is not root: apt-get install -y redis-server")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    log("redis-server missing: apt-get install -y redis-server")
    if subprocess.run(["apt-get", "install", "-y", "redis-server"], env=env, check=False).returncode != 0:
        subprocess.run(["apt-get", "update"], env=env, check=True)
        subprocess.run(["apt-get", "install", "-y", "redis-server"], env=env, check=True)
    path = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not os.path.exists(path):
        sys.exit("redis-server still missing after apt-get install")
    return path


def start_redis(procs, tmp):
    binary = ensure_redis_server()
    port = free_port()
    rdir = tmp / "redis"
    rdir.mkdir()
    proc = procs.add("redis", subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(rdir), "--daemonize", "no", "--logfile", str(rdir / "redis.log")],
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True))
    import redis
    client = redis.Redis(host="127.0.0.1", port=port)
    deadline = time.monotonic() + 20
    while True:
        try:
            client.ping()
            break
        except redis.exceptions.ConnectionError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start:\n" + tail(rdir / "redis.log"))
            time.sleep(0.1)
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False).stdout.split()
    return port, next((w[2:] for w in out if w.startswith("v=")), " ".join(out))


def start_stub(procs):
    proc = procs.add("http stub", subprocess.Popen(
        [sys.executable, str(STUB), "--delay", str(IO_DELAY)], stdout=subprocess.PIPE, text=True,
        start_new_session=True))
    line = proc.stdout.readline().strip()
    if not line.isdigit():
        raise RuntimeError("HTTP stub did not start")
    return "http://127.0.0.1:%s/latest/status/" % line


# ------------------------------------------------------------------------------------------------
# worker flags from the collection
# ------------------------------------------------------------------------------------------------

def plan(facts, **worker):
    """One worker's plan from the collection's planner, with the worker_flags module's defaults."""
    spec = {"name": "worker", "app": "myauth", "celery_bin": str(CELERY), "loglevel": "warning",
            "queues": ["celery"], "node_name": "bench@%h", "prefetch_multiplier": 1}
    spec.update(worker)
    result = celery_flags.plan_workers(
        [spec], cpu_count=facts["cpu_count"], memory_total=facts["memory_bytes"],
        cpu_source=facts["cpu_count_source"], memory_source=facts["memory_source"])
    return result["workers"][0]


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
        self.redis_port, self.redis_version = start_redis(self.procs, self.tmp)
        log("redis on 127.0.0.1:%d (%s)" % (self.redis_port, self.redis_version))
        self.url = start_stub(self.procs)
        log("HTTP stub (%.0f ms per GET) at %s" % (IO_DELAY * 1000, self.url))

        # a private copy of the stand-in project, so nothing is written into the work tree
        self.project = self.tmp / "myauth"
        shutil.copytree(STANDIN, self.project,
                        ignore=shutil.ignore_patterns("__pycache__", "log", "data", "standin.env",
                                                      "celerybeat-schedule*"))
        env = {k: v for k, v in os.environ.items()
               if not k.lower().endswith("_proxy") and not k.startswith("MYAUTH_")}
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

    # -- one worker ---------------------------------------------------------------------------------
    def start_worker(self, label, argv):
        logfile = self.tmp / ("worker-%s.log" % label)
        fh = open(logfile, "w", encoding="utf-8")
        proc = self.procs.add("worker " + label, subprocess.Popen(
            argv, cwd=self.project, env=self.env, stdout=fh, stderr=subprocess.STDOUT,
            start_new_session=True), stop_timeout=60)
        fh.close()
        sampler = RssSampler(proc.pid)
        sampler.start()
        started = time.monotonic()
        reply = self.tasks.ping.apply_async()
        while not reply.ready():
            if proc.poll() is not None:
                sampler.finish()
                raise RuntimeError("worker %s exited with %s:\n%s" % (label, proc.returncode, tail(logfile)))
            if time.monotonic() - started > 120:
                raise RuntimeError("worker %s did not answer ping within 120 s:\n%s" % (label, tail(logfile)))
            time.sleep(0.05)
        return proc, sampler, reply.get(timeout=10), time.monotonic() - started, logfile

    def stop_worker(self, proc, sampler):
        started = time.monotonic()
        code = Procs.stop(proc, timeout=60)
        self.procs.forget(proc)
        return sampler.finish(), code, time.monotonic() - started

    def run_set(self, label, flags, make_sig, count, ideal):
        """Start the worker, time ``count`` tasks from first send to last result, stop it."""
        self.reset_queue()
        load_before = os.getloadavg()[0]
        proc, sampler, pong, startup, logfile = self.start_worker(label, flags["argv"])
        if pong.get("pool") != flags["pool"]:
            raise RuntimeError("worker %s runs pool %s, expected %s" % (label, pong.get("pool"), flags["pool"]))
        from celery.result import ResultSet
        t0 = time.monotonic()
        results = [make_sig().apply_async() for _index in range(count)]
        sent = time.monotonic() - t0
        values = ResultSet(results).join_native(timeout=600, propagate=False)
        wall = time.monotonic() - t0
        peak, code, stop_s = self.stop_worker(proc, sampler)
        errors = sum(1 for v in values if not isinstance(v, dict) or v.get("error")
                     or v.get("status", 200) != 200)
        elapsed = [v["elapsed"] for v in values if isinstance(v, dict) and "elapsed" in v]
        row = {
            "label": label, "pool": flags["pool"], "concurrency": flags["concurrency"],
            "argv": flags["argv"], "tasks": count, "seconds": round(wall, 3),
            "send_seconds": round(sent, 3), "tasks_per_s": round(count / wall, 2),
            "ideal_tasks_per_s": round(ideal, 2), "peak_rss_mib": round(peak / MIB, 1),
            "rss_samples": sampler.samples, "errors": errors,
            "task_elapsed_mean_ms": round(1000 * sum(elapsed) / len(elapsed), 1) if elapsed else None,
            "worker_pids": sorted({v.get("pid") for v in values if isinstance(v, dict)}),
            "startup_seconds": round(startup, 2), "stop_seconds": round(stop_s, 2),
            "exit_code": code, "loadavg_1m_before": round(load_before, 2),
            "loadavg_1m_after": round(os.getloadavg()[0], 2), "ping": {k: pong.get(k) for k in ("pool", "pool_cls", "hostname", "queue")},
        }
        row["pct_of_ideal"] = round(100 * row["tasks_per_s"] / ideal, 1) if ideal else None
        if errors:
            self.failures.append("%s: %d task errors (see %s)" % (label, errors, logfile))
        log("%-28s %7.1f tasks/s in %6.2f s (ideal %.0f/s), peak RSS %.0f MiB, errors %d"
            % (label, row["tasks_per_s"], wall, ideal, row["peak_rss_mib"], errors))
        return row

    # -- 1. I/O set -------------------------------------------------------------------------------
    def io_set(self, n):
        cores = self.cores
        configs = [
            ("a", "guide default: prefork x cores", plan(self.facts, pool="prefork", concurrency=cores)),
            ("b", "Auth 5.x default: threads 5", plan(self.facts, pool="threads", concurrency=5)),
            ("c", "guide gevent example: gevent 10", plan(self.facts, pool="gevent", concurrency=10)),
            ("d", "worker_flags workload=io", plan(self.facts, workload="io")),
            ("e1", "gevent 50 (DB budget)", plan(self.facts, pool="gevent", concurrency=50)),
            ("e2", "threads 50 (DB budget)", plan(self.facts, pool="threads", concurrency=50)),
        ]
        rows = []
        for key, label, flags in configs:
            row = self.run_set(label, flags, lambda: self.tasks.io_call.s(self.url), n,
                               flags["concurrency"] / IO_DELAY)
            row["key"] = key
            if key == "d":
                row["explain"] = flags["explain"]
            rows.append(row)
        base = rows[0]["tasks_per_s"]
        for row in rows:
            row["ratio_to_a"] = round(row["tasks_per_s"] / base, 2)
        return rows

    # -- 2. CPU set -------------------------------------------------------------------------------
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
        cores = self.cores
        auto = plan(self.facts, workload="cpu")
        configs = [
            ("a", "prefork x cores", plan(self.facts, pool="prefork", concurrency=cores)),
            ("b", "threads 5", plan(self.facts, pool="threads", concurrency=5)),
            ("c", "gevent 10", plan(self.facts, pool="gevent", concurrency=10)),
            ("d", "worker_flags workload=cpu", auto),
        ]
        rows = []
        for key, label, flags in configs:
            parallel = min(flags["concurrency"], cores) if flags["pool"] == "prefork" else 1
            row = self.run_set("cpu: " + label, flags, lambda: self.tasks.cpu.s(n), m, parallel / one)
            row["key"] = key
            rows.append(row)
        base = rows[0]["tasks_per_s"]
        for row in rows:
            row["ratio_to_a"] = round(row["tasks_per_s"] / base, 2)
        assertion = {"pool": auto["pool"], "concurrency": auto["concurrency"],
                     "ok": auto["pool"] == "prefork", "explain": auto["explain"]}
        if not assertion["ok"]:
            self.failures.append("worker_flags workload=cpu chose pool %s, not prefork" % auto["pool"])
        return {"n": n, "one_task_seconds": one, "rows": rows, "cpu_plan_is_prefork": assertion}

    # -- 3./4. supervisord: graceful restart and memmon --------------------------------------------
    def write_supervisor_conf(self, sdir):
        flags = plan(self.facts, pool="threads", concurrency=5, stopwaitsecs=60,
                     node_name=celery_flags.DEFAULT_NODE_NAME, group_name="myauth")
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
        env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS), ANSIBLE_STDOUT_CALLBACK="minimal",
                   ANSIBLE_LOCALHOST_WARNING="False", ANSIBLE_INVENTORY_UNPARSED_WARNING="False",
                   ANSIBLE_NOCOLOR="1")
        cmd = [str(ANSIBLE), "localhost", "-m", "authops.celery_tuning.supervisor_group",
               "-a", json.dumps(args), "-e", "ansible_python_interpreter=%s" % sys.executable]
        started = time.time()
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, check=False)
        ended = time.time()
        text = out.stdout
        try:
            result = json.loads(text[text.index("{", text.index("=>")):])
        except ValueError:
            raise RuntimeError("cannot read the module's result (rc %d):\n%s\n%s"
                               % (out.returncode, text, out.stderr))
        if out.returncode != 0 or result.get("failed"):
            raise RuntimeError("supervisor_group failed: %s" % result.get("msg"))
        return result, started, ended, shlex.join(cmd)

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
# output
# ------------------------------------------------------------------------------------------------

def markdown(report):
    out = []
    io = report["io"]
    out.append("### I/O set: %d x io_call (stub answers after %d ms)\n" % (report["n"], IO_DELAY * 1000))
    out.append("| | config | pool | conc. | tasks/s | x (a) | ideal/s | % ideal | peak RSS MiB | errors | seconds |")
    out.append("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in io:
        out.append("| %s | %s | %s | %d | %.1f | %.2f | %.0f | %.0f | %.0f | %d | %.2f |" % (
            r["key"], r["label"], r["pool"], r["concurrency"], r["tasks_per_s"], r["ratio_to_a"],
            r["ideal_tasks_per_s"], r["pct_of_ideal"], r["peak_rss_mib"], r["errors"], r["seconds"]))
    d = next(r for r in io if r["key"] == "d")
    out.append("\n(d) worker_flags argv: `%s`\n" % " ".join(d["argv"][1:]))
    cpu = report["cpu"]
    out.append("### CPU set: %d x cpu(n=%d), ~%.0f ms each\n" % (report["m"], cpu["n"], cpu["one_task_seconds"] * 1000))
    out.append("| | config | pool | conc. | tasks/s | x (a) | ideal/s (GIL) | peak RSS MiB | seconds |")
    out.append("|---|---|---|---:|---:|---:|---:|---:|---:|")
    for r in cpu["rows"]:
        out.append("| %s | %s | %s | %d | %.1f | %.2f | %.1f | %.0f | %.2f |" % (
            r["key"], r["label"][5:], r["pool"], r["concurrency"], r["tasks_per_s"], r["ratio_to_a"],
            r["ideal_tasks_per_s"], r["peak_rss_mib"], r["seconds"]))
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
    out.append("\nhost: %d CPUs (%s), %.1f GiB (%s); %s" % (
        h["cpu_count"], h["cpu_count_source"], h["memory_bytes"] / 1024 ** 3, h["memory_source"],
        ", ".join("%s %s" % kv for kv in report["versions"].items() if kv[1])))
    return "\n".join(out)


def chart(report, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(13, 5), gridspec_kw={"width_ratios": [3, 2]})
    for ax, rows, title in ((axes[0], report["io"], "I/O set: %d io_call (100 ms stub)" % report["n"]),
                            (axes[1], report["cpu"]["rows"], "CPU set: %d cpu(n)" % report["m"])):
        labels = ["(%s) %s %d" % (r["key"], r["pool"], r["concurrency"]) for r in rows]
        values = [r["tasks_per_s"] for r in rows]
        bars = ax.bar(range(len(rows)), values, color="#4878a8")
        ax.scatter(range(len(rows)), [r["ideal_tasks_per_s"] for r in rows], marker="_", s=600,
                   color="#c44", label="ideal", zorder=3)
        for rect, value in zip(bars, values):
            ax.annotate("%.1f" % value, (rect.get_x() + rect.get_width() / 2, value), ha="center",
                        va="bottom", fontsize=8)
        ax.set_xticks(range(len(rows)))
        ax.set_xticklabels(labels, rotation=25, ha="right", fontsize=8)
        ax.set_ylabel("tasks/s")
        ax.set_title(title)
        ax.legend(fontsize=8, loc="upper left")
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
    parser.add_argument("-n", type=int, help="io_call tasks per config (default 400, quick 100)")
    parser.add_argument("-m", type=int, help="cpu tasks per config (default 120, quick 40)")
    parser.add_argument("--restart-tasks", type=int, default=30, help="sleep(2) tasks in the restart test")
    parser.add_argument("--out", default=str(ROOT / "results"), help="where bench.json/bench.png go")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs) after a successful run")
    opts = parser.parse_args()
    n = opts.n or (100 if opts.quick else 400)
    m = opts.m or (40 if opts.quick else 120)

    def on_signal(signum, frame):
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    began = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="celery-bench-"))
    procs = Procs()
    ok = False
    try:
        bench = Bench(opts, tmp, procs)
        bench.setup()
        io = bench.io_set(n)
        cpu = bench.cpu_set(m)
        restart, memmon = bench.supervisor_part(opts.restart_tasks)
        report = {
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "quick": opts.quick, "n": n, "m": m, "io_delay_seconds": IO_DELAY,
            "host": dict(bench.facts, hostname=socket.gethostname(), platform=platform.platform()),
            "versions": {
                "python": platform.python_version(), "celery": version("celery"), "kombu": version("kombu"),
                "billiard": version("billiard"), "redis-py": version("redis"), "gevent": version("gevent"),
                "greenlet": version("greenlet"), "supervisor": version("supervisor"),
                "superlance": version("superlance"), "matplotlib": version("matplotlib"),
                "redis-server": bench.redis_version, "ansible-core": ansible_version(),
            },
            "io": io, "cpu": cpu, "restart": restart, "memmon": memmon,
            "failures": bench.failures,
        }
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
