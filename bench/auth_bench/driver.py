"""The auth_tasks bench inside a real Auth 5.5 container (run by bench/auth_tasks.py, never by hand).

    /home/allianceserver/venv/auth/bin/python driver.py SPEC.json OUT.json

Runs as root with Auth's venv and settings (myauth.settings.local). Measures the RSS of Auth's gunicorn after a
few requests to the website, stops Auth's supervisor programs, loads the bench universe into Auth's database
(EveAllianceInfo, EveCorporationInfo, EveCharacter, the layout of esi_stub.py, all rows stale), starts the ESI
stub, then for each configuration of SPEC:

1. starts the configuration's worker processes as the Auth user, from the project directory, with the
   argv the planner gave (Auth's own ``celery -A myauth worker ...``), each answering a control ping;
   the workers stop consuming (cancel_consumer) while the tasks are queued;
2. queues Auth's update tasks the way ``run_model_update`` does (update_corp per corporation,
   update_alliance per alliance, then per character; priority 7), but without its random countdown of
   up to 600 s, and for every character ``update_character`` (what update_character_chunk queues for a
   character whose affiliation changed, and for every character when the bulk call fails);
3. FLUSH STATUS, CPU times of the worker processes, add_consumer, and waits until every task's effect is
   in the database (rows carrying the run's marker: see esi_stub.py) or nothing moved for 60 s;
4. reads the worker logs (--loglevel=info: "Task ... succeeded in Xs"), Max_used_connections, the CPU
   times again, and stops the workers with TERM.

After the last configuration it measures the RSS of MariaDB and Redis (``services_rss_mib``, with gunicorn's).

SPEC: {"n": characters, "configs": [{"key", "kind", "label", "pool", "concurrency", "numprocs", "argv"}],
"min_seconds": 15, "repeats": 5, "rounds": true, "round_seconds": 60, "max_steal_pct": 5,
"observe": {"done_file", "timeout"}}.
Without rounds, a configuration whose drain is shorter than min_seconds runs ``repeats`` times in all, one run after
the other. With rounds, every configuration runs once, then those that drained in under round_seconds run again in
rounds (one run of each per round, in another order each round: see round_order()) until each has ``repeats``
runs. Every run records the CPU time the hypervisor took from the host while it ran (``steal_pct``, /proc/stat),
the machine's noise that no order removes; with "max_steal_pct", a short run over it runs again (see Sweep). With
observe, after the rows, Auth's own
``myauth:worker`` program (supervisor, as Auth ships it) drains the burst until the host has run worker_profile
against it (see observe()). Progress goes to stderr, the result (JSON) to OUT.
"""

import datetime
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

PROJECT = "/home/allianceserver/myauth"
AA_USER = "allianceserver"
HERE = os.path.dirname(os.path.abspath(__file__))
STUB_PORT = 8091
PAGE = os.sysconf("SC_PAGE_SIZE")
TICK = os.sysconf("SC_CLK_TCK")
MIB = 1024 * 1024
TASK_PRIORITY = 7  # allianceauth.eveonline.tasks.TASK_PRIORITY
LOG_LINE = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}): \w+/[^\]]*\] Task ([\w.]+)\[([\w-]+)\] "
                      r"(succeeded in ([\d.e-]+)s|raised unexpected|retry)")

sys.path.insert(0, PROJECT)
sys.path.insert(0, HERE)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "myauth.settings.local")
import django  # noqa: E402  pylint: disable=wrong-import-position

django.setup()
from django.db import connection  # noqa: E402  pylint: disable=wrong-import-position

from allianceauth.eveonline import tasks as eve_tasks  # noqa: E402  pylint: disable=wrong-import-position
from allianceauth.eveonline.models import (  # noqa: E402  pylint: disable=wrong-import-position
    EveAllianceInfo, EveCharacter, EveCorporationInfo)
from myauth.celery import app  # noqa: E402  pylint: disable=wrong-import-position
import esi_stub  # noqa: E402  pylint: disable=wrong-import-position


def log(msg):
    print("auth_tasks: %s" % msg, file=sys.stderr, flush=True)


def sh(*argv):
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout


def mysql(sql):
    """As root over the unix socket (Debian's MariaDB); returns {name: value} of two-column rows."""
    out = sh("mysql", "-u", "root", "-N", "-B", "-e", sql)
    return dict(line.split("\t", 1) for line in out.splitlines() if "\t" in line)


# ------------------------------------------------------------------------------------------------
# /proc: the workers' process trees
# ------------------------------------------------------------------------------------------------

def tree(root_pids):
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open("/proc/%s/stat" % entry, "rb") as fh:
                    stat = fh.read()
            except OSError:
                continue
            children.setdefault(int(stat[stat.rindex(b")") + 2:].split()[1]), []).append(int(entry))
    out, todo = [], list(root_pids)
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, ()))
    return out


def rss_bytes(pids):
    total = 0
    for pid in pids:
        try:
            with open("/proc/%d/statm" % pid, "rb") as fh:
                total += int(fh.read().split()[1]) * PAGE
        except OSError:
            pass
    return total


def host_cpu_ticks():
    """(steal, all) clock ticks of the host's CPUs so far (/proc/stat; a container sees the host's)."""
    with open("/proc/stat", encoding="ascii") as fh:
        fields = [int(v) for v in fh.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal [guest guest_nice: already in user and nice]
    return fields[7] if len(fields) > 7 else 0, sum(fields[:8])


def round_order(rows, index):
    """The order of round ``index`` (0: the first round, the sweep's order): reversed, every other row first, that
    reversed, then the second half first, and again. No row always runs at the same place or after the same row."""
    alternate = rows[0::2] + rows[1::2]
    half = len(rows) // 2
    orders = []
    for order in (rows, rows[::-1], alternate, alternate[::-1], rows[half:] + rows[:half]):
        if order not in orders:  # with few rows some coincide
            orders.append(order)
    return list(orders[index % len(orders)])


def cpu_seconds(pids):
    """utime + stime of each live process (and of its waited-for children), in seconds."""
    total = 0
    for pid in pids:
        try:
            with open("/proc/%d/stat" % pid, "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        fields = stat[stat.rindex(b")") + 2:].split()
        total += sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
    return total / TICK


class Sampler(threading.Thread):
    """Peak RSS of all worker processes, every 100 ms."""

    def __init__(self, roots):
        super().__init__(daemon=True)
        self.roots, self.peak, self.samples = roots, 0, 0
        self.stop_event = threading.Event()

    def run(self):
        while not self.stop_event.wait(0.1):
            self.peak = max(self.peak, rss_bytes(tree(self.roots)))
            self.samples += 1

    def finish(self):
        self.stop_event.set()
        self.join(timeout=5)
        return self.peak


# ------------------------------------------------------------------------------------------------
# the universe in Auth's database
# ------------------------------------------------------------------------------------------------

def universe(n):
    chars = [esi_stub.CHAR_BASE + i for i in range(n)]
    corps = sorted({esi_stub.corp_of(c) for c in chars})
    alliances = sorted({esi_stub.alliance_of(c) for c in corps})
    return chars, corps, alliances


def load(n):
    """Stale rows for n characters, their corporations and alliances (bulk, as an import would)."""
    chars, corps, alliances = universe(n)
    old = datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc)
    EveCharacter.objects.filter(character_id__gte=esi_stub.CHAR_BASE, character_id__lt=esi_stub.CORP_BASE).delete()
    EveCorporationInfo.objects.filter(corporation_id__gte=esi_stub.CORP_BASE).delete()
    EveAllianceInfo.objects.filter(alliance_id__gte=esi_stub.ALLIANCE_BASE).delete()
    EveAllianceInfo.objects.bulk_create([EveAllianceInfo(
        alliance_id=a, alliance_name="Old Alliance %d" % a, alliance_ticker="OLD", executor_corp_id=0,
        last_updated=old) for a in alliances])
    by_id = {a.alliance_id: a for a in EveAllianceInfo.objects.filter(alliance_id__in=alliances)}
    EveCorporationInfo.objects.bulk_create([EveCorporationInfo(
        corporation_id=c, corporation_name="Old Corp %d" % c, corporation_ticker="OLD", member_count=1, ceo_id=2,
        alliance=by_id[esi_stub.alliance_of(c)], last_updated=old) for c in corps], batch_size=1000)
    EveCharacter.objects.bulk_create([EveCharacter(
        character_id=c, character_name="Old Pilot %d" % c, corporation_id=esi_stub.corp_of(c),
        corporation_name="Old Corp", corporation_ticker="OLD", alliance_id=esi_stub.alliance_of(esi_stub.corp_of(c)),
        alliance_name="Old Alliance", alliance_ticker="OLD", last_updated_affiliations=old, last_updated_other=old)
        for c in chars], batch_size=1000)
    return chars, corps, alliances


def effects(universe_ids, marker):
    """How many of the queued tasks have their effect in the database (rows carrying the marker)."""
    chars, corps, alliances = universe_ids
    stamp = datetime.datetime.fromtimestamp(marker, datetime.timezone.utc)
    got_chars = EveCharacter.objects.filter(character_id__in=chars, last_updated_affiliations=stamp,
                                            last_updated_other=stamp).count()
    got_corps = EveCorporationInfo.objects.filter(corporation_id__in=corps, last_updated=stamp).count()
    got_alliances = EveAllianceInfo.objects.filter(alliance_id__in=alliances, last_updated=stamp).count()
    connection.close()  # a fresh connection (and snapshot) at the next poll
    return got_chars, got_corps, got_alliances


# ------------------------------------------------------------------------------------------------
# the stub and the workers
# ------------------------------------------------------------------------------------------------

def stub(path, body=None):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (STUB_PORT, path),
                                 data=json.dumps(body).encode() if body is not None else None,
                                 method="POST" if body is not None else "GET")
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def services_rss(names):
    """{name: MiB} of the processes whose comm is each name (all of them: gunicorn's master and workers)."""
    out = dict((name, 0) for name in names)
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/comm" % entry, encoding="utf-8") as fh:
                comm = fh.read().strip()
        except OSError:
            continue
        if comm in out:
            out[comm] += rss_bytes([int(entry)])
    return dict((name, round(value / MIB, 1)) for name, value in out.items())


def warm_website(count=20, wait=120):
    """A few requests to Auth's website (gunicorn), once it answers (up to ``wait`` s after the boot), so its workers
    hold what serving pages costs."""
    answered, deadline = 0, time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen("http://127.0.0.1:8000/", timeout=30) as resp:
                resp.read()
            break
        except urllib.error.HTTPError:  # an answer (a redirect to the login page is followed; a 500 is one too)
            break
        except Exception:  # pylint: disable=broad-except  # not listening yet
            time.sleep(1)
    for _index in range(count):
        try:
            with urllib.request.urlopen("http://127.0.0.1:8000/", timeout=30) as resp:
                resp.read()
            answered += 1
        except Exception:  # pylint: disable=broad-except  # any answer (a 500 included) or none: only RSS counts
            pass
    return answered


def worker_env():
    return {"PATH": "/home/allianceserver/venv/auth/bin:/usr/local/bin:/usr/bin:/bin", "HOME": "/home/allianceserver",
            "USER": AA_USER, "LOGNAME": AA_USER, "LANG": "C.UTF-8", "PYTHONUNBUFFERED": "1",
            "BENCH_ESI_URL": "http://127.0.0.1:%d" % STUB_PORT}


def start_workers(config, logdir):
    procs, logs = [], []
    for num in range(config["numprocs"]):
        expansions = {"program_name": "worker", "group_name": "myauth", "process_num": num,
                      "host_node_name": os.uname().nodename}
        argv = [arg % expansions for arg in config["argv"]]
        path = os.path.join(logdir, "%s-%02d.log" % (config["key"], num))
        with open(path, "w", encoding="utf-8") as fh:
            os.chown(path, 0, 0)
            procs.append(subprocess.Popen(argv, cwd=PROJECT, env=worker_env(), stdout=fh, stderr=subprocess.STDOUT,
                                          user=AA_USER, group=AA_USER, extra_groups=[], start_new_session=True))
        logs.append(path)
    started = time.monotonic()
    while len(app.control.ping(timeout=0.5)) < len(procs):
        dead = [p for p in procs if p.poll() is not None]
        if dead or time.monotonic() - started > 180:
            stop_workers(procs)
            with open(logs[0], encoding="utf-8") as fh:
                text = fh.read()[-3000:]
            raise RuntimeError("%s: workers %s:\n%s" % (config["label"], "exited" if dead else "silent for 180 s", text))
    return procs, logs, time.monotonic() - started


def stop_workers(procs):
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return [p.returncode for p in procs]


def consume(on, count):
    """As bench.py: workers stop consuming while the backlog is queued; a pause is confirmed."""
    control = app.control.add_consumer if on else app.control.cancel_consumer
    replies = control("celery", reply=True, timeout=10.0, limit=count)
    if len(replies) < count:
        raise RuntimeError("%s: %d of %d workers replied" % (control.__name__, len(replies), count))
    deadline = time.monotonic() + 15
    while not on:
        queues = app.control.inspect(timeout=1.0).active_queues() or {}
        if len(queues) >= count and not any(q.get("name") == "celery" for qs in queues.values() for q in qs):
            return
        if time.monotonic() > deadline:
            raise RuntimeError("the workers did not stop consuming within 15 s: %s" % queues)
        time.sleep(0.1)


def queue_updates(universe_ids):
    """Auth's update tasks, as run_model_update queues them (same tasks, args, priority; no countdown)."""
    chars, corps, alliances = universe_ids
    for corp in corps:
        eve_tasks.update_corp.apply_async(args=(corp,), priority=TASK_PRIORITY)
    for alliance in alliances:
        eve_tasks.update_alliance.apply_async(args=(alliance,), priority=TASK_PRIORITY)
    for char in chars:
        eve_tasks.update_character.apply_async(args=(char,), priority=TASK_PRIORITY)


def parse_logs(paths):
    """(succeeded [(end epoch, runtime s, task name)], failed count) from the workers' info logs."""
    done, failed, retried = [], 0, 0
    for path in paths:
        with open(path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                match = LOG_LINE.match(line)
                if not match:
                    continue
                if match.group(5):
                    end = datetime.datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f").replace(
                        tzinfo=datetime.timezone.utc).timestamp()  # the container's local time is UTC
                    done.append((end, float(match.group(5)), match.group(2).rsplit(".", 1)[-1]))
                elif "retry" in match.group(4):
                    retried += 1
                else:
                    failed += 1
    return done, failed, retried


def run_once(config, universe_ids, marker, logdir):
    total = sum(len(ids) for ids in universe_ids)
    sh("redis-cli", "-n", "0", "FLUSHDB")
    stub("/_bench/marker", {"marker": marker})
    load_before = os.getloadavg()[0]
    procs, logs, startup = start_workers(config, logdir)
    roots = [p.pid for p in procs]
    try:
        consume(False, len(procs))
        queued_at = time.time()
        queue_updates(universe_ids)
        queue_seconds = time.time() - queued_at
        mysql("FLUSH STATUS")
        sampler = Sampler(roots)
        sampler.start()
        cpu0, host0 = cpu_seconds(tree(roots)), host_cpu_ticks()
        resumed = time.time()
        consume(True, len(procs))
        seen, last_change, last = 0, time.monotonic(), (0, 0, 0)
        while seen < total and time.monotonic() - last_change < 60:
            time.sleep(0.25)
            last = effects(universe_ids, marker)
            if sum(last) != seen:
                seen, last_change = sum(last), time.monotonic()
        polled_end = time.time()
        time.sleep(0.5)  # the last "succeeded" lines reach the logs
        cpu1, host1 = cpu_seconds(tree(roots)), host_cpu_ticks()
        peak = sampler.finish()
        status = mysql("SHOW GLOBAL STATUS WHERE Variable_name IN ('Max_used_connections', 'Threads_connected')")
    finally:
        codes = stop_workers(procs)
    done, failed, retried = parse_logs(logs)
    stats = stub("/_bench/stats")
    starts = [end - runtime for end, runtime, _name in done]
    first = min(starts) if starts else (stats["first"] or resumed)
    end = max(e for e, _r, _n in done) if done else polled_end
    drain = end - first
    runtimes = {}
    for _end, runtime, name in done:
        runtimes.setdefault(name, []).append(runtime)
    all_runtimes = [r for rs in runtimes.values() for r in rs]
    row = {
        "tasks": total, "characters": len(universe_ids[0]), "corporations": len(universe_ids[1]),
        "alliances": len(universe_ids[2]), "drain_s": round(drain, 3), "tasks_per_s": round(total / drain, 2),
        "peak_rss_mib": round(peak / MIB, 1), "rss_samples": sampler.samples,
        # the status client (mysql -u root) is one of the connections counted
        "db_connections": int(status["Max_used_connections"]) - 1,
        "effects_seen": {"characters": last[0], "corporations": last[1], "alliances": last[2]},
        "lost": total - sum(last), "succeeded_logged": len(done), "failed_logged": failed, "retried_logged": retried,
        "cpu_s": round(cpu1 - cpu0, 2), "cpu_ms_per_task": round(1000 * (cpu1 - cpu0) / total, 2),
        "task_ms_mean": round(1000 * statistics.mean(all_runtimes), 1) if all_runtimes else None,
        "task_ms_median": round(1000 * statistics.median(all_runtimes), 1) if all_runtimes else None,
        "task_ms_by_name": {k: round(1000 * statistics.mean(v), 1) for k, v in runtimes.items()},
        "esi_requests": stats["requests"], "queue_seconds": round(queue_seconds, 2),
        "startup_seconds": round(startup, 2), "poll_end_minus_log_end_s": round(polled_end - end, 2),
        "exit_codes": codes, "loadavg_1m_before": round(load_before, 2),
        "loadavg_1m_after": round(os.getloadavg()[0], 2),
        "steal_pct": round(100.0 * (host1[0] - host0[0]) / max(1, host1[1] - host0[1]), 1),
    }
    log("%-28s %6.1f tasks/s in %6.1f s, task %s ms, CPU %.1f ms/task, RSS %.0f MiB, DB conns %d, lost %d, "
        "failed %d, load %.1f, steal %.1f %%" % (
            config["label"], row["tasks_per_s"], drain, row["task_ms_mean"], row["cpu_ms_per_task"],
            row["peak_rss_mib"], row["db_connections"], row["lost"], failed, row["loadavg_1m_after"], row["steal_pct"]))
    return row


def auth_workers():
    """Auth's own worker processes in supervisor (``myauth:worker_00``, ...; not worker_services)."""
    out = subprocess.run(["supervisorctl", "status"], capture_output=True, text=True, check=False).stdout
    return [line.split()[0] for line in out.splitlines() if re.match(r"myauth:worker_\d+\s", line)]


def observe(universe_ids, marker, done_file, timeout):
    """Auth's own worker program, as its supervisor.conf has it, drains the burst while the host runs the
    collection's worker_profile module against it (celery_workers_profile: observe); the host creates
    ``done_file`` when the module has returned. The figures of this phase are the program's own, from /proc."""
    names = auth_workers()
    if not names:
        raise RuntimeError("observe: no myauth:worker_NN program in supervisor")
    sh("redis-cli", "-n", "0", "FLUSHDB")
    stub("/_bench/marker", {"marker": marker})
    if os.path.exists(done_file):
        os.unlink(done_file)
    queue_updates(universe_ids)  # the backlog is there before the program starts, as after beat's burst
    sh("supervisorctl", "start", *names)
    pids = [int(sh("supervisorctl", "pid", name).strip()) for name in names]
    with open("/proc/%d/cmdline" % pids[0], "rb") as fh:
        argv = [a.decode() for a in fh.read().split(b"\0") if a]
    began, cpu0 = time.monotonic(), cpu_seconds(tree(pids))
    seen0 = sum(effects(universe_ids, marker))
    log("observe: Auth's %s (pid %s) drains the burst: worker_profile now" % (", ".join(names), pids))
    deadline = time.monotonic() + timeout
    while not os.path.exists(done_file) and time.monotonic() < deadline:
        time.sleep(0.5)
    seconds, cpu = time.monotonic() - began, cpu_seconds(tree(pids)) - cpu0
    done = sum(effects(universe_ids, marker)) - seen0
    sh("supervisorctl", "stop", *names)
    sh("redis-cli", "-n", "0", "FLUSHDB")
    result = {"programs": names, "argv": argv, "seconds": round(seconds, 1), "tasks_done": done,
              "tasks_per_s": round(done / seconds, 2) if seconds else None,
              "cpu_ms_per_task": round(1000 * cpu / done, 2) if done else None, "module_returned": os.path.exists(done_file)}
    log("observe: %d tasks in %.0f s (%s tasks/s), CPU %s ms/task"
        % (done, seconds, result["tasks_per_s"], result["cpu_ms_per_task"]))
    return result


class Sweep:
    """The runs of the configurations. A run shorter than round_seconds during which the hypervisor took more than
    max_steal_pct of the host's CPU time (steal: another guest ran on our CPUs; such runs lose up to half their
    speed, whatever their configuration) is set aside and runs again at the end of its round, at most ``repeats``
    times per configuration; the runs set aside stay in the report (``runs_set_aside``)."""

    def __init__(self, spec, ids, logdir):
        self.spec, self.ids, self.logdir = spec, ids, logdir
        self.marker = 1893456000  # 2030-01-01; one second more per run
        self.runs, self.set_aside = {}, {}

    def stolen(self, config, run):
        limit = self.spec.get("max_steal_pct")
        return limit is not None and run["steal_pct"] > limit \
            and run["drain_s"] < self.spec.get("round_seconds", 60) \
            and len(self.set_aside.get(config["key"], [])) < self.spec.get("repeats", 5)

    def round(self, order, number):
        place, pending = 0, list(order)
        while pending:
            again = []
            for config in pending:
                place += 1
                self.marker += 1
                run = dict(run_once(config, self.ids, self.marker, self.logdir), round=number, place=place)
                if self.stolen(config, run):
                    log("  set aside (steal %.1f %% > %s %%): %s runs again at the end of round %d"
                        % (run["steal_pct"], self.spec["max_steal_pct"], config["key"], number))
                    self.set_aside.setdefault(config["key"], []).append(run)
                    again.append(config)
                else:
                    self.runs.setdefault(config["key"], []).append(run)
            pending = again


def summarize(config, runs, set_aside=()):
    """One row: the single run, or the median of the repeats with the spread (min, max) of tasks/s; from 5 runs on
    also the band of the middle runs (without the slowest and the fastest), which spreads.overlaps compares."""
    if len(runs) == 1:
        row = dict(runs[0])
    else:
        ordered = sorted(runs, key=lambda r: r["tasks_per_s"])
        row = dict(ordered[len(ordered) // 2])
        for key in ("drain_s", "tasks_per_s", "peak_rss_mib", "cpu_ms_per_task", "task_ms_mean"):
            row[key] = round(statistics.median(r[key] for r in runs), 2)
        row["db_connections"] = max(r["db_connections"] for r in runs)
    every = list(runs) + list(set_aside)  # a task lost or failed in any run counts, also in a run set aside for steal
    row["lost"] = sum(r["lost"] for r in every)
    row["failed_logged"] = sum(r["failed_logged"] for r in every)
    row["repeats"] = len(runs)
    speeds = sorted(r["tasks_per_s"] for r in runs)
    row["tasks_per_s_spread"] = [speeds[0], speeds[-1]]
    if len(speeds) >= 5:
        row["tasks_per_s_band"] = [speeds[1], speeds[-2]]
    keys = ("drain_s", "tasks_per_s", "lost", "failed_logged", "cpu_ms_per_task", "task_ms_mean", "loadavg_1m_after",
            "steal_pct", "round", "place")
    for key in ("steal_pct", "round", "place"):  # one run's, in runs; not the row's
        row.pop(key, None)
    row["runs"] = [{k: r.get(k) for k in keys} for r in runs]
    row["runs_set_aside"] = [{k: r.get(k) for k in keys} for r in set_aside]
    row.update({k: config[k] for k in ("key", "kind", "label", "pool", "concurrency", "numprocs", "argv")})
    return row


def main():
    spec = json.load(open(sys.argv[1], encoding="utf-8"))
    out = sys.argv[2]
    logdir = os.path.join(HERE, "logs")
    os.makedirs(logdir, exist_ok=True)
    answered, gunicorn = 0, {}
    if spec.get("services", True):  # the first driver run of a container: Auth's programs still run
        answered = warm_website()
        gunicorn = services_rss(["gunicorn"])
        log("Auth's gunicorn after %d requests to the website: %.0f MiB (master and workers)"
            % (answered, gunicorn["gunicorn"]))
    sh("supervisorctl", "stop", "myauth:*")  # Auth's own beat, workers and gunicorn stay out of the figures
    began = time.time()
    ids = load(spec["n"])
    log("loaded %d characters, %d corporations, %d alliances in %.1f s"
        % (len(ids[0]), len(ids[1]), len(ids[2]), time.time() - began))
    stub_proc = subprocess.Popen([sys.executable, os.path.join(HERE, "esi_stub.py"), "--port", str(STUB_PORT)],
                                 user=AA_USER, group=AA_USER, extra_groups=[], start_new_session=True)
    try:
        for _try in range(50):
            try:
                stub("/_bench/stats")
                break
            except OSError:
                time.sleep(0.1)
        sweep = Sweep(spec, ids, logdir)
        if spec.get("rounds"):
            # rounds: every row that drained in under round_seconds runs `repeats` times in all, one run of each row
            # per round, so that a noisy minute of the machine falls on one run of several rows, not on one row's
            # runs; the order changes from round to round (round_order), so that no row always runs at the same
            # place in a round or after the same row
            sweep.round(spec["configs"], 1)
            fast = [c for c in spec["configs"] if sweep.runs[c["key"]][0]["drain_s"] < spec.get("round_seconds", 60)]
            for index in range(1, spec.get("repeats", 5)):
                order = round_order(fast, index)
                log("round %d: %s" % (index + 1, ", ".join(c["key"] for c in order)))
                sweep.round(order, index + 1)
        else:
            for config in spec["configs"]:
                while not sweep.runs.get(config["key"]) or (
                        sweep.runs[config["key"]][-1]["drain_s"] < spec.get("min_seconds", 15)
                        and len(sweep.runs[config["key"]]) < spec.get("repeats", 5)):
                    sweep.round([config], len(sweep.runs.get(config["key"], [])) + 1)
        rows = [summarize(config, sweep.runs[config["key"]], sweep.set_aside.get(config["key"], ()))
                for config in spec["configs"]]
        observed = None
        if spec.get("observe"):
            observed = observe(ids, sweep.marker + 1, spec["observe"]["done_file"], spec["observe"]["timeout"])
    finally:
        os.killpg(stub_proc.pid, signal.SIGTERM)
        stub_proc.wait(timeout=10)
    services = services_rss(["mariadbd", "redis-server"])
    services.update(gunicorn, website_requests_answered=answered)
    log("after the runs: MariaDB %.0f MiB, Redis %.0f MiB" % (services["mariadbd"], services["redis-server"]))
    versions = {}
    for dist in ("allianceauth", "django-esi", "celery", "kombu", "django", "mysqlclient", "httpx2"):
        try:
            from importlib.metadata import version  # pylint: disable=import-outside-toplevel
            versions[dist] = version(dist)
        except Exception:  # pylint: disable=broad-except
            versions[dist] = None
    versions["mariadb"] = mysql("SELECT 'v', VERSION()").get("v")
    versions["redis-server"] = sh("redis-server", "--version").split()[2].replace("v=", "")
    with open(out, "w", encoding="utf-8") as fh:
        json.dump({"rows": rows, "versions": versions, "observe": observed, "driver_seconds": round(time.time() - began, 1),
                   "services_rss_mib": services,
                   "max_connections": int(mysql("SHOW VARIABLES LIKE 'max_connections'")["max_connections"])}, fh)


if __name__ == "__main__":
    main()
