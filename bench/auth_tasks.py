"""The auth_tasks set: Alliance Auth 5.5's own update tasks under worker configurations, in the real Auth image.

`make bench` runs it after bench.py (`make bench-auth` alone; `make bench-auth BENCH_AUTH_ARGS="-n 300"`), with
.venv's Python (stdlib and the collection only). It starts one container from the real Auth 5.5 image
(CELERY_TUNING_IMAGE_AUTH55, default authops/allianceauth55-debian12, built by `make images`) as
bench-auth-<pid>, with systemd, Auth's MariaDB and Redis; copies bench/auth_bench into it; adds the bench
app ``benchesi`` to the project (one INSTALLED_APPS line in this throwaway container's local.py) and runs
auth_bench/driver.py there, which does the measuring (see its docstring). The container is removed at
the end, also on error or interrupt.

ESI is offline: auth_bench/esi_stub.py answers the seven operations Auth's provider uses after 100 to
300 ms, and ``benchesi`` replaces the client of Auth's provider object (``open_api_provider._client``)
in the workers with one that asks the stub over HTTP. Why the seam and not a setting: django-esi 10
builds its client from the OpenAPI spec at ``ESI_API_URL + "meta/openapi.json"``, and the only spec it
ships (esi/tests/test_openapi.json) has four operations (assets, notifications, universe types, status),
none of the seven Auth calls; pointing ESI_API_URL at the stub would mean writing our own ESI spec.

Configurations (flags from the collection's planner, ``plan_workers``, as bench.py): Auth's shipped threads
5, the guide's default prefork x cores, the automatic plan for ``workload: io`` and a sweep around it
(the plan's concurrency in one process; threads 18/25/32/38/50 x one process per CPU). Each row carries the
plan's RSS estimate of the worker program next to the measured peak; the report checks issue 23's targets
(``thresholds``: auto against Auth's shipped and the fastest row of the sweep, the built-in profile against the measured
one, worker_profile on Auth's own worker program against the bench (observe), the RSS estimate against the
measured, the default plan on a 2 GB host). Output: a Markdown table on
stdout and ``auth_tasks`` in results/bench.json (merged into the file bench.py writes; other keys are kept).
Exit status 1 when a task was lost or failed; 0 otherwise, also when docker or the image is missing (the
set is skipped).
"""

import argparse
import datetime
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

import spreads

ROOT = pathlib.Path(__file__).resolve().parents[1]
COLLECTIONS = ROOT / ".cache" / "collections"
IMAGE = os.environ.get("CELERY_TUNING_IMAGE_AUTH55", "authops/allianceauth55-debian12")
RUN_FLAGS = ["--cap-add", "SYS_ADMIN", "--cgroupns=host", "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw",
             "--tmpfs", "/run", "--tmpfs", "/run/lock"]
AUTH_CELERY = "/home/allianceserver/venv/auth/bin/celery"
AUTH_PYTHON = "/home/allianceserver/venv/auth/bin/python"
PROJECT = "/home/allianceserver/myauth"
INSIDE = "/opt/bench-auth"
MIB = 1024 * 1024
#: The sweep's threads per process (numprocs = the CPUs), besides the automatic plan and its one-process row.
SWEEP_THREADS = (18, 25, 32, 38, 50)
#: Auth 5.5's gunicorn program as its generated supervisor.conf has it (for the 2 GB check of the default plan).
AUTH_GUNICORN = {"name": "gunicorn", "options": {
    "command": "/home/allianceserver/venv/auth/bin/gunicorn myauth.wsgi --workers=3 --timeout 120 --bind 127.0.0.1:8000",
    "directory": PROJECT, "user": "allianceserver"}}
APP_LINE = ("INSTALLED_APPS += ['benchesi']; BENCH_ESI_URL = 'http://127.0.0.1:8091'  "
            "# authops bench only (bench/auth_bench), never on a real server")
#: celery_workers_profile: observe, as the role runs it: the worker_profile module against Auth's running worker
#: program, over the docker connection, while that program drains the burst (after the rows).
OBSERVE_WINDOW = 60
OBSERVE_DONE = INSIDE + "/observe.done"
ANSIBLE = pathlib.Path(sys.executable).with_name("ansible")

sys.path.insert(0, str(COLLECTIONS))
try:
    from ansible_collections.authops.celery_tuning.plugins.module_utils import memory_fit, programs, sizing, worker_plan
    from ansible_collections.authops.celery_tuning.plugins.module_utils.host_facts import host_facts
except ImportError as exc:  # pragma: no cover - setup problem
    sys.exit("cannot import the collection from %s (%s); run `make link` first" % (COLLECTIONS, exc))


def log(msg):
    print("auth_tasks: %s" % msg, file=sys.stderr, flush=True)


def docker(*args, check=True, capture=True, timeout=None):
    return subprocess.run(["docker"] + list(args), check=check, capture_output=capture, text=True, timeout=timeout)


def plan(facts, profile=None, **worker):
    """One worker's plan from the collection's planner (the worker_flags module's defaults), for Auth's
    program ``worker`` in the image: Auth's celery, app myauth, node names worker_00, worker_01, ..."""
    spec = {"name": "worker", "app": "myauth", "celery_bin": AUTH_CELERY,
            "node_name": "%(program_name)s_%(process_num)02d"}
    spec.update(worker)
    result = worker_plan.plan_workers(
        [spec], cpu_count=facts["cpu_count"], memory_total=facts["memory_bytes"],
        cpu_source=facts["cpu_count_source"], memory_source=facts["memory_source"], profile=profile)
    return result["workers"][0]


def configs(facts):
    """(key, kind, label, plan) of the set; kinds as bench.py's other sets."""
    cores = facts["cpu_count"]
    auto = plan(facts, workload="io")
    out = [("b", "auth_shipped", "Auth 5.x default: threads 5", plan(facts, pool="threads", concurrency=5)),
           ("a", "guide_default", "guide default: prefork x %d" % cores,
            plan(facts, pool="prefork", concurrency=cores)),
           ("d", "auto", "worker_flags workload=io", auto)]
    auto_key = (auto["pool"], auto["concurrency"], len(auto["process_names"]))
    # around the automatic plan: the one-process row at its concurrency, then threads 18, 25, 32, 38 (the plan
    # while the built-in profile had 10 ms CPU per task) and 50 with one process per CPU
    sweep = [(auto["concurrency"], 1)] + [(threads, cores) for threads in SWEEP_THREADS]
    for threads, procs in sweep:
        if ("threads", threads, procs) != auto_key:
            out.append(("s%d-%d" % (threads, procs), "other", "sweep: threads %d x %d" % (threads, procs),
                        plan(facts, pool="threads", concurrency=threads, numprocs=procs)))
    return [config_of(key, kind, label, p) for key, kind, label, p in out]


def config_of(key, kind, label, p):
    """A configuration for the driver, with the plan's RSS estimate of the worker program."""
    return {"key": key, "kind": kind, "label": label, "pool": p["pool"], "concurrency": p["concurrency"],
            "numprocs": len(p["process_names"]), "argv": p["argv"],
            "rss_estimate_mib": round(p["memory_estimate_bytes"] / MIB, 1),
            **({"explain": p["explain"]} if kind == "auto" else {})}


def wait_booted(name):
    state = ""
    for _index in range(120):
        state = docker("exec", name, "systemctl", "is-system-running", check=False).stdout.strip()
        if state in ("running", "degraded"):
            break
        time.sleep(1)
    for _index in range(60):  # Auth's services: MariaDB, Redis, supervisor (it starts Auth's programs)
        if docker("exec", name, "systemctl", "is-active", "mariadb", "redis-server", "supervisor",
                  check=False).returncode == 0:
            return
        time.sleep(1)
    raise RuntimeError("%s: systemd %s, and mariadb/redis-server/supervisor not all active after 60 s" % (name, state))


def install(name):
    """Copy the bench in and add benchesi to the project."""
    docker("cp", str(ROOT / "bench" / "auth_bench"), "%s:%s" % (name, INSIDE))
    setup = ("set -e; rm -rf {p}/benchesi; cp -r {i}/benchesi {p}/benchesi; "
             "find {p}/benchesi -name __pycache__ -prune -exec rm -rf {{}} +; chown -R allianceserver: {p}/benchesi; "
             "printf '\\n%s\\n' \"$APP_LINE\" >>{p}/myauth/settings/local.py").format(p=PROJECT, i=INSIDE)
    docker("exec", "-e", "APP_LINE=" + APP_LINE, name, "bash", "-c", setup)


def worker_profile(name, cpu_count):
    """The collection's worker_profile module, as the role's celery_workers_profile: observe runs it (app, group,
    project_dir, python, window), against the container over community.docker.docker: its result."""
    args = {"app": "myauth", "group": "myauth", "project_dir": PROJECT, "python": AUTH_PYTHON,
            "window": OBSERVE_WINDOW, "cpu_count": cpu_count, "programs": ["worker"]}
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS), ANSIBLE_STDOUT_CALLBACK="json",
               ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_INVENTORY_UNPARSED_WARNING="False", ANSIBLE_NOCOLOR="1",
               ANSIBLE_PYTHON_INTERPRETER="/usr/bin/python3")
    cmd = [str(ANSIBLE), "all", "-i", name + ",", "-c", "community.docker.docker", "-m",
           "authops.celery_tuning.worker_profile", "-a", json.dumps(args)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=OBSERVE_WINDOW + 300, check=False)
    try:
        result = json.loads(out.stdout)["plays"][0]["tasks"][0]["hosts"][name]
    except (ValueError, KeyError, IndexError):
        raise RuntimeError("worker_profile: cannot read its result (rc %d): %s %s"
                           % (out.returncode, out.stdout[-2000:], out.stderr[-2000:]))
    if out.returncode or result.get("failed"):
        raise RuntimeError("worker_profile failed: %s" % result.get("msg"))
    return result


def run_in_container(name, spec, keep_logs, cpu_count=None):
    """Run the driver on spec; its result. When the driver's observe phase starts, worker_profile runs in a thread;
    its result goes into the driver's ``observe``."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        json.dump(spec, fh)
    docker("cp", fh.name, "%s:%s/spec.json" % (name, INSIDE))
    os.unlink(fh.name)
    proc = subprocess.Popen(["docker", "exec", "-w", PROJECT, name, AUTH_PYTHON, INSIDE + "/driver.py",
                             INSIDE + "/spec.json", INSIDE + "/result.json"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    other, observed, threads = [], {}, []

    def observe():
        try:
            time.sleep(5)  # the program is past its first prefetch
            observed["worker_profile"] = worker_profile(name, cpu_count or host_facts()["cpu_count"])
        except Exception as exc:  # pylint: disable=broad-except  # reported, and the driver is released
            observed["error"] = str(exc)
            log("observe: %s" % exc)
        finally:
            docker("exec", name, "touch", OBSERVE_DONE, check=False)
    for line in proc.stderr:  # the driver's progress lines as they come; the rest (Auth's DEBUG lines) on failure
        if line.startswith("auth_tasks:"):
            print(line, end="", file=sys.stderr, flush=True)
            if line.startswith("auth_tasks: observe:") and "worker_profile now" in line:
                threads.append(threading.Thread(target=observe, daemon=True))
                threads[-1].start()
        else:
            other = (other + [line])[-200:]
    proc.wait()
    for thread in threads:
        thread.join(timeout=OBSERVE_WINDOW + 300)
    if proc.returncode:
        print("".join(other), file=sys.stderr)
    if keep_logs:
        docker("cp", "%s:%s/logs" % (name, INSIDE), str(keep_logs), check=False)
    if proc.returncode:
        raise RuntimeError("the driver failed (rc %d)" % proc.returncode)
    result = json.loads(docker("exec", name, "cat", INSIDE + "/result.json").stdout)
    if result.get("observe"):
        result["observe"].update(observed)
    return result


def replan(facts, row):
    """What the planner gives for workload io with this row's measurement as worker_profile would report it
    (the backlog never emptied during the drain)."""
    measured = {"workers": [{"name": "worker", "task_seconds": row["task_ms_mean"] / 1000,
                             "cpu_seconds_per_task": row["cpu_ms_per_task"] / 1000, "tasks": row["tasks"],
                             "backlog_min": 1, "in_flight_mean": row["concurrency"] * row["numprocs"]}],
                "db_driver": "mysqlclient"}
    p = plan(facts, profile=measured, workload="io")
    return {"pool": p["pool"], "concurrency": p["concurrency"], "numprocs": len(p["process_names"]),
            "explain": p["explain"]}


def profile(rows, facts=None):
    """The measured task time and CPU per task against the planner's built-in profile (sizing.py)."""
    builtin = {"task_ms": 1000 * sizing.DEFAULT_TASK_SECONDS, "cpu_ms": 1000 * sizing.DEFAULT_TASK_CPU_SECONDS}
    shipped = next(r for r in rows if r["kind"] == "auth_shipped")

    def one(row):
        return {"key": row["key"], "label": row["label"], "task_ms": row["task_ms_mean"],
                "cpu_ms_per_task": row["cpu_ms_per_task"],
                "task_ratio": round(row["task_ms_mean"] / builtin["task_ms"], 2) if row["task_ms_mean"] else None,
                "cpu_ratio": round(row["cpu_ms_per_task"] / builtin["cpu_ms"], 2),
                "wall_over_cpu": round(row["task_ms_mean"] / row["cpu_ms_per_task"], 1) if row["task_ms_mean"] else None}
    cpus = sorted(r["cpu_ms_per_task"] for r in rows)
    replanned = replan(facts or host_facts(), shipped) if shipped["task_ms_mean"] else None
    # The model's two figures, each where it is defined: the task's wall time without contention (threads 5, the
    # CPU far from busy), and the CPU a task costs at the plan's throughput (the automatic row). Under threads 5 a
    # worker is idle most of each second, and its fixed overhead per second (heartbeats, the broker's polling)
    # falls on few tasks: that CPU per task is reported beside it (cpu_ratio_threads_5), not compared.
    auto = next((r for r in rows if r["kind"] == "auto"), shipped)
    measured, at_plan = one(shipped), one(auto)
    agree = {"task_ratio": measured["task_ratio"], "cpu_ratio": at_plan["cpu_ratio"],
             "cpu_ms_per_task_at_plan": auto["cpu_ms_per_task"], "cpu_ratio_threads_5": measured["cpu_ratio"],
             "within_20pct": bool(measured["task_ratio"] and abs(measured["task_ratio"] - 1) <= 0.2
                                  and abs(at_plan["cpu_ratio"] - 1) <= 0.2)}
    return {"plan_with_measured_profile": replanned, "agree": agree,
            "builtin": dict(builtin, wall_over_cpu=round(builtin["task_ms"] / builtin["cpu_ms"], 1),
                            source="plugins/module_utils/sizing.py DEFAULT_TASK_SECONDS, DEFAULT_TASK_CPU_SECONDS"),
            "auth_shipped": one(shipped), "per_row": [one(r) for r in rows],
            "cpu_ms_per_task_range": [cpus[0], cpus[-1]],
            "how": "task_ms: mean of Celery's own 'succeeded in Xs' (worker --loglevel=info) over all tasks of the "
                   "row; cpu_ms_per_task: utime+stime of all worker processes (/proc/<pid>/stat) from the resume to the "
                   "last effect, over the tasks; agree: the task time of threads 5 and the CPU per task of the "
                   "automatic row against the built-in profile"}


def observe_agreement(observed, rows):
    """worker_profile's figures on Auth's running worker (celery_workers_profile: observe) against the bench's
    measurement of the same configuration (Auth's shipped threads 5, row b): ratios, and within 20 %."""
    module = (observed or {}).get("worker_profile")
    if not module:
        return None
    shipped = next(r for r in rows if r["kind"] == "auth_shipped")
    worker = next(w for w in module["workers"] if w["name"] == "worker")
    task_ms = 1000 * (worker["task_seconds"] or 0)
    cpu_ms = 1000 * (worker["cpu_seconds_per_task"] or 0)
    out = {"program": "%s %s x %s" % (worker["pool"], worker["concurrency"], worker["numprocs"]),
           "window_s": worker["window_seconds"], "tasks": worker["tasks"], "task_ms": round(task_ms, 1),
           "cpu_ms_per_task": round(cpu_ms, 2), "in_flight_mean": worker["in_flight_mean"],
           "backlog_min": worker["backlog_min"], "recommended": worker["recommended"],
           "task_ratio": round(task_ms / shipped["task_ms_mean"], 2) if shipped["task_ms_mean"] else None,
           "cpu_ratio": round(cpu_ms / shipped["cpu_ms_per_task"], 2) if shipped["cpu_ms_per_task"] else None}
    out["within_20pct"] = bool(out["task_ratio"] and out["cpu_ratio"] and abs(out["task_ratio"] - 1) <= 0.2
                               and abs(out["cpu_ratio"] - 1) <= 0.2)
    return out


def two_gb_plan(facts):
    """The role's default plan (beat, worker, worker_services, Auth's gunicorn carried over) on this host's CPUs
    with celery_workers_memory_total: 2GB: the plan's figures and whether they fit."""
    layout = {"directory": PROJECT, "user": "allianceserver", "log_dir": "/var/log/supervisor/myauth",
              "group_name": "myauth", "app": "myauth", "celery_bin": AUTH_CELERY}
    workers = [{"name": "worker", "workload": "io"},
               {"name": "worker_services", "queues": ["services"], "single_threaded": True}]
    result = programs.plan_group([{"name": "beat", "beat": True}] + workers, layout, carry_over=[AUTH_GUNICORN],
                                 cpu_count=facts["cpu_count"], memory_total="2GB")
    budget = result["budget"]
    worker = next(w for w in result["workers"] if w["name"] == "worker")
    shape = "%s %d x %d" % (worker["pool"], worker["concurrency"], len(worker["process_names"]))
    return {"memory_total_mib": 2048, "worker": shape,
            "workers_estimate_mib": round(budget["memory_estimate_bytes"] / MIB, 1),
            "carried_estimate_mib": round(budget["memory_carried_bytes"] / MIB, 1),
            "reserve_mib": round(budget["memory_reserve_bytes"] / MIB, 1),
            "host_estimate_mib": round(budget["memory_host_estimate_bytes"] / MIB, 1),
            "fits": budget["memory_host_estimate_bytes"] <= 2048 * MIB, "explain": budget["explain"]}


def sweep(rows):
    """The rows that ran together, in the rounds: every row but (p), the planner with the measured profile, which
    runs once in a second driver run after a fresh load of the burst, under other conditions than the rounds."""
    return [r for r in rows if r["key"] != "p"]


def ranked(report):
    """The automatic plan against the fastest row of the sweep."""
    return spreads.ranking(sweep(report["rows"]))


def sweep_best(report):
    """The sweep's fastest row, as the report's ranking names it."""
    return next(r for r in report["rows"] if r["key"] == report["ranking"]["best"])


def thresholds(report):
    """Issue 23's "done when", for this run: reported, never asserted (the exit status does not depend on them)."""
    rows = report["rows"]
    shipped = next(r for r in rows if r["kind"] == "auth_shipped")
    auto = next(r for r in rows if r["kind"] == "auto")
    best = sweep_best(report)
    agree = report["profile"]["agree"]
    fit = report.get("two_gb") or {}
    out = [("no task lost, in any row", sum(r["lost"] for r in rows), "0", sum(r["lost"] for r in rows) == 0),
           ("auto >= 4x Auth's shipped threads 5", round(auto["tasks_per_s"] / shipped["tasks_per_s"], 2), ">= 4",
            auto["tasks_per_s"] >= 4 * shipped["tasks_per_s"]),
           ("auto within 10%% of the fastest row of the sweep (%s, %s)" % (best["key"], best["label"].split(": ", 1)[-1]),
            round(auto["tasks_per_s"] / best["tasks_per_s"], 3), ">= 0.9", auto["tasks_per_s"] >= 0.9 * best["tasks_per_s"]),
           ("built-in profile within 20% of the measured (task: threads 5; CPU: the automatic row)",
            "%.2f, %.2f" % (agree["task_ratio"] or 0, agree["cpu_ratio"]), "0.8-1.2", agree["within_20pct"]),
           ("auto's peak RSS within 25%% of the plan's estimate (%.0f of %.0f MiB)"
            % (auto["peak_rss_mib"], auto.get("rss_estimate_mib") or 0),
            auto.get("rss_over_estimate"), "0.75-1.25",
            bool(auto.get("rss_over_estimate")) and abs(auto["rss_over_estimate"] - 1) <= 0.25)]
    seen = report.get("observe_agreement")
    if seen:
        out.append(("celery_workers_profile: observe (worker_profile on Auth's running worker) against the bench's "
                    "threads 5 (task, CPU)", "%.2f, %.2f" % (seen["task_ratio"] or 0, seen["cpu_ratio"] or 0),
                    "0.8-1.2", seen["within_20pct"]))
    if fit:
        out.append(("memory_total 2GB: the default plan's estimate + gunicorn + reserve (MiB)",
                    fit["host_estimate_mib"], "<= 2048", fit["fits"]))
    best_runs = [k for pair in report.get("within_spread", []) if best["key"] in pair for k in pair if k != best["key"]]
    again = next((r for r in rows if r["key"] == "p"), None)
    extra = [{"what": "(p) the planner with the measured profile (%d x %d, %d run, after a fresh load) over the fastest "
                      "row of the sweep" % (again["concurrency"], again["numprocs"], again.get("repeats", 1)),
              "value": round(again["tasks_per_s"] / best["tasks_per_s"], 2), "target": "", "met": None}] if again else []
    return [{"what": w, "value": v, "target": t, "met": bool(m)} for w, v, t, m in out] + extra + [
        {"what": "rows within the spread of the sweep's fastest row", "value": ", ".join(best_runs) or "none", "target": "",
         "met": None},
        {"what": "the automatic plan against the sweep's fastest row (compare between runs)",
         "value": report["ranking"]["relation"],
         "target": "", "met": None}]


def derive(rows):
    """Per row: ratio to Auth's shipped threads 5, and the ideal (every slot busy for a mean task time)."""
    shipped = next(r for r in rows if r["kind"] == "auth_shipped")["tasks_per_s"]
    for row in rows:
        row["ratio_to_auth"] = round(row["tasks_per_s"] / shipped, 2)
        slots = row["concurrency"] * row["numprocs"]
        row["ideal_tasks_per_s"] = round(slots / (row["task_ms_mean"] / 1000), 1) if row["task_ms_mean"] else None
        row["pct_of_ideal"] = round(100 * row["tasks_per_s"] / row["ideal_tasks_per_s"], 1) \
            if row["ideal_tasks_per_s"] else None
        row["rss_over_estimate"] = round(row["peak_rss_mib"] / row["rss_estimate_mib"], 2) \
            if row.get("rss_estimate_mib") else None
    return rows


KIND_COLOURS = {"auth_shipped": "#d62728", "guide_default": "#7f7f7f", "auto": "#2ca02c", "other": "#1f77b4"}


def whiskers(rows):
    """The chart's legend of the whiskers, as the rows have them."""
    most = max(r["repeats"] for r in rows)
    if most < 2:
        return ""
    return "whiskers: min-max of up to %d runs%s; " % (
        most, ", thick: the middle ones" if any(r.get("tasks_per_s_band") for r in rows) else "")


def svg_chart(report):
    """tasks/s of every row as horizontal bars (colour by kind), the spread of repeated rows as a whisker, and
    90 % of the sweep's fastest row marked: an SVG of its own (no plotting library in .venv)."""
    rows = report["rows"]
    top = max(max(r["tasks_per_s_spread"][1], r["tasks_per_s"]) for r in rows)
    best = sweep_best(report)["tasks_per_s"]
    left, width, bar_h, gap, head = 230, 460, 18, 8, 46
    scale = width / (top * 1.08)
    height = head + len(rows) * (bar_h + gap) + 40
    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">'
           % (left + width + 90, height),
           '<rect width="100%" height="100%" fill="white"/>',
           '<text x="10" y="18" font-size="14">auth_tasks: Auth %s\'s update tasks, %d characters (%d tasks), tasks/s</text>'
           % (report["versions"].get("allianceauth"), report["n"], rows[0]["tasks"]),
           '<text x="10" y="36" fill="#555">%s; %d CPUs; load %.1f -> %.1f; %sdashed: 90 %% of the fastest sweep '
           'row</text>' % (report["date"][:10], report["host"]["cpu_count"], report["loadavg_1m_start"],
                           report["loadavg_1m_end"], whiskers(rows))]
    for index, r in enumerate(rows):
        y = head + index * (bar_h + gap)
        label = "%s %d x %d (%s)" % (r["pool"], r["concurrency"], r["numprocs"], r["kind"])
        out.append('<text x="%d" y="%d" text-anchor="end">%s</text>' % (left - 6, y + bar_h - 5, label))
        out.append('<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"/>'
                   % (left, y, r["tasks_per_s"] * scale, bar_h, KIND_COLOURS.get(r["kind"], "#1f77b4")))
        if r["repeats"] > 1:
            lo, hi = r["tasks_per_s_spread"]
            out.append('<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="black"/>'
                       % (left + lo * scale, left + hi * scale, y + bar_h // 2, y + bar_h // 2))
            if r.get("tasks_per_s_band"):
                lo, hi = r["tasks_per_s_band"]
                out.append('<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="black" stroke-width="5"/>'
                           % (left + lo * scale, left + hi * scale, y + bar_h // 2, y + bar_h // 2))
        end = left + max(r["tasks_per_s"], r["tasks_per_s_spread"][1]) * scale + 4
        out.append('<text x="%.1f" y="%d">%.1f</text>' % (end, y + bar_h - 5, r["tasks_per_s"]))
    x90 = left + 0.9 * best * scale
    out.append('<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="#555" stroke-dasharray="4,3"/>'
               % (x90, x90, head - 4, height - 30))
    out.append("</svg>")
    return "\n".join(out) + "\n"


def write_chart(report, out_dir):
    path = pathlib.Path(out_dir) / "auth_tasks.svg"
    path.write_text(svg_chart(report), encoding="utf-8")
    return path


def markdown(report):
    rows = report["rows"]
    shipped = next(r for r in rows if r["kind"] == "auth_shipped")["tasks_per_s"]
    out = ["### auth_tasks: Auth %s's update tasks, %d characters (%d tasks: %d update_character, %d update_corp, "
           "%d update_alliance), ESI stub 100-300 ms\n" % (
               report["versions"].get("allianceauth"), report["n"], rows[0]["tasks"], rows[0]["characters"],
               rows[0]["corporations"], rows[0]["alliances"]),
           "| | config | kind | pool | conc. x procs | drain s | tasks/s | spread | x Auth | % ideal | task ms "
           "| CPU ms/task | peak RSS MiB | est. RSS MiB | DB conns | lost | failed | load |",
           "|---|---|---|---|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        spread = spreads.describe(r)
        out.append("| %s | %s | %s | %s | %d x %d | %.1f | %.1f | %s | %.2f | %.0f | %.0f | %.1f | %.0f | %s | %d | %d "
                   "| %d | %.1f |" % (
                       r["key"], r["label"].split(": ", 1)[-1], r["kind"], r["pool"], r["concurrency"], r["numprocs"],
                       r["drain_s"], r["tasks_per_s"], spread, r["tasks_per_s"] / shipped, r["pct_of_ideal"] or 0,
                       r["task_ms_mean"] or 0, r["cpu_ms_per_task"], r["peak_rss_mib"],
                       "%.0f (x%.2f)" % (r["rss_estimate_mib"], r["rss_over_estimate"]) if r.get("rss_estimate_mib") else "-",
                       r["db_connections"], r["lost"], r["failed_logged"], r["loadavg_1m_after"]))
    if report["within_spread"]:
        out.append("\nwithin each other's spread (tasks/s; the middle runs of 5 or more, else min-max): "
                   + ", ".join("%s ~ %s" % tuple(p) for p in report["within_spread"]))
    if any(r["repeats"] > 1 or r.get("runs_set_aside") for r in rows):
        out.append("\nruns of the repeated rows (round.place: tasks/s (the share of the host's CPU time the hypervisor "
                   "took while it ran: steal)); set aside: runs over the steal limit, run again at the end of their round:")

    def runs_text(runs):
        return ", ".join("%s%.1f (%s)" % ("%s.%s: " % (x["round"], x["place"]) if x.get("round") else "",
                                          x["tasks_per_s"], "-" if x.get("steal_pct") is None else "%.1f %%" % x["steal_pct"])
                         for x in runs)
    for r in rows:
        if r["repeats"] > 1 or r.get("runs_set_aside"):
            out.append("- %s: %s%s" % (r["key"], runs_text(r["runs"]), "; set aside: %s" % runs_text(r["runs_set_aside"])
                                       if r.get("runs_set_aside") else ""))
    prof = report["profile"]
    b, s = prof["builtin"], prof["auth_shipped"]
    out.append("\nprofile: task %.0f ms under threads 5 (built-in %.0f ms, x%.2f); CPU %.1f ms per task at the plan's "
               "throughput (the automatic row; built-in %.1f ms, x%.2f), %.1f ms under threads 5 (x%.2f); CPU ms per "
               "task over all rows %.1f-%.1f"
               % (s["task_ms"], b["task_ms"], s["task_ratio"], prof["agree"]["cpu_ms_per_task_at_plan"], b["cpu_ms"],
                  prof["agree"]["cpu_ratio"], s["cpu_ms_per_task"], s["cpu_ratio"], prof["cpu_ms_per_task_range"][0],
                  prof["cpu_ms_per_task_range"][1]))
    again = prof.get("plan_with_measured_profile")
    if again:
        out.append("\nthe planner with this measurement (as worker_profile would give it): %s %d x %d: %s"
                   % (again["pool"], again["concurrency"], again["numprocs"], "; ".join(again["explain"][-2:])))
    auto = next(r for r in rows if r["kind"] == "auto")
    out.append("\n(d) worker_flags argv: `%s`" % " ".join(auto["argv"][1:]))
    seen, observed = report.get("observe_agreement"), report.get("observe") or {}
    if seen:
        out.append("\ncelery_workers_profile: observe: worker_profile (%d s window) on Auth's own `myauth:worker` (%s, "
                   "supervisor, as Auth ships it) draining the burst: %d tasks, task %.0f ms (x%.2f of row b), CPU %.1f "
                   "ms per task (x%.2f), %.1f in flight, backlog min %s; recommends %s %d x %d. The program alone: %s "
                   "tasks/s, CPU %s ms per task over %.0f s" % (
                       seen["window_s"], seen["program"], seen["tasks"], seen["task_ms"], seen["task_ratio"] or 0,
                       seen["cpu_ms_per_task"], seen["cpu_ratio"] or 0, seen["in_flight_mean"], seen["backlog_min"],
                       seen["recommended"]["pool"], seen["recommended"]["concurrency"], seen["recommended"]["numprocs"],
                       observed.get("tasks_per_s"), observed.get("cpu_ms_per_task"), observed.get("seconds") or 0))
    elif observed.get("error"):
        out.append("\ncelery_workers_profile: observe: failed: %s" % observed["error"])
    services = report.get("services_rss_mib")
    if services:
        out.append("\nRSS of what runs beside the workers: Auth's gunicorn %.0f MiB (after %d requests to the website; "
                   "the plan estimates %.0f), MariaDB %.0f MiB and Redis %.0f MiB after the runs (the plan's reserve: "
                   "%.0f MiB, with the OS)" % (services.get("gunicorn", 0), services.get("website_requests_answered", 0),
                                               memory_fit.carried_estimate([AUTH_GUNICORN])[0] / MIB,
                                               services.get("mariadbd", 0), services.get("redis-server", 0),
                                               memory_fit.DEFAULT_MEMORY_RESERVE / MIB))
    fit = report.get("two_gb")
    if fit:
        out.append("\nthe default plan with memory_total 2GB (%d CPUs): worker %s; workers %.0f + gunicorn %.0f + reserve "
                   "%.0f = %.0f MiB of 2048: %s" % (
                       report["host"]["cpu_count"], fit["worker"], fit["workers_estimate_mib"], fit["carried_estimate_mib"],
                       fit["reserve_mib"], fit["host_estimate_mib"], "fits" if fit["fits"] else "does NOT fit"))
    if report.get("thresholds"):
        out.append("\n| issue 23 | this run | target | met |\n|---|---:|---|---|")
        for t in report["thresholds"]:
            met = "" if t["met"] is None else "yes" if t["met"] else "**no**"
            out.append("| %s | %s | %s | %s |" % (t["what"], t["value"], t["target"], met))
    out.append("\nhost: %d CPUs, load average (1 min) %.2f before, %.2f after; set took %.0f s; %s" % (
        report["host"]["cpu_count"], report["loadavg_1m_start"], report["loadavg_1m_end"], report["seconds"],
        ", ".join("%s %s" % kv for kv in report["versions"].items() if kv[1])))
    return "\n".join(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("-n", type=int, default=2000, help="characters (default 2000; +1/10 corporations, +1/50 alliances)")
    parser.add_argument("--only", help="comma-separated config keys (b,a,d,s10-1,...) to run")
    parser.add_argument("--min-seconds", type=float, default=20, help="a shorter drain is repeated (default 20)")
    parser.add_argument("--repeats", type=int, default=5,
                        help="runs in all of a row that drains in under 60 s (in rounds; with --only: under --min-seconds)")
    parser.add_argument("--max-steal", type=float, default=5.0,
                        help="a run under 60 s during which the hypervisor took more than this %% of the host's CPU "
                             "(steal) runs again at the end of its round, at most --repeats times per row (default 5; "
                             "-1: never)")
    parser.add_argument("--out", default=str(ROOT / "results"), help="where bench.json is (auth_tasks merged in)")
    parser.add_argument("--no-observe", action="store_true",
                        help="skip worker_profile on Auth's own worker program (celery_workers_profile: observe)")
    parser.add_argument("--keep-logs", help="copy the worker logs into this directory")
    parser.add_argument("--render", action="store_true",
                        help="no run: recompute the derived figures of OUT/bench.json's auth_tasks and print its table")
    opts = parser.parse_args()
    if opts.render:
        path = pathlib.Path(opts.out) / "bench.json"
        data = json.loads(path.read_text(encoding="utf-8"))
        report = data["auth_tasks"]
        report.update(rows=derive(report["rows"]), within_spread=spreads.overlaps(report["rows"]), profile=profile(report["rows"]),
                      two_gb=two_gb_plan(report["host"]),
                      observe_agreement=observe_agreement(report.get("observe"), report["rows"]))
        report["ranking"] = ranked(report)
        report["thresholds"] = thresholds(report)
        path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        print(markdown(report))
        print("\nchart: %s" % write_chart(report, opts.out))
        return 0
    if not shutil.which("docker") or docker("image", "inspect", IMAGE, check=False).returncode != 0:
        print("auth_tasks: skipped: docker or the image %s is missing (make images builds it)" % IMAGE)
        return 0

    def on_signal(signum, frame):
        raise SystemExit(128 + signum)
    for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(signum, on_signal)

    began, load_start = time.monotonic(), os.getloadavg()[0]
    facts = host_facts()
    sets = configs(facts)
    if opts.only:
        sets = [c for c in sets if c["key"] in opts.only.split(",") or c["kind"] == "auth_shipped"]
    spec = {"n": opts.n, "configs": sets, "min_seconds": opts.min_seconds, "repeats": opts.repeats,
            "rounds": not opts.only, "round_seconds": 60, "max_steal_pct": None if opts.max_steal < 0 else opts.max_steal,
            "observe": None if opts.only or opts.no_observe
            else {"done_file": OBSERVE_DONE, "timeout": OBSERVE_WINDOW + 300}}
    name = "bench-auth-%d" % os.getpid()
    try:
        docker("run", "-d", "--name", name, *RUN_FLAGS, IMAGE, "/lib/systemd/systemd")
        wait_booted(name)
        log("container %s from %s booted" % (name, IMAGE))
        install(name)
        result = run_in_container(name, spec, opts.keep_logs, facts["cpu_count"])
        # (p): the planner again, with the threads 5 row's measurement (when that gives a configuration not run yet)
        shipped = next(r for r in result["rows"] if r["kind"] == "auth_shipped")
        again = replan(facts, shipped) if shipped["task_ms_mean"] and not opts.only else None
        wanted = (again["pool"], again["concurrency"], again["numprocs"]) if again else None
        # (not when a row of the set has its pool and processes and within 10 % of its threads: that row stands for it)
        if wanted and all((c["pool"], c["numprocs"]) != (wanted[0], wanted[2])
                          or abs(c["concurrency"] - wanted[1]) > 0.1 * wanted[1] for c in sets):
            p = plan(facts, pool=again["pool"], concurrency=again["concurrency"], numprocs=again["numprocs"])
            config = config_of("p", "other", "planner with the measured profile", p)
            log("planner with threads 5's measurement: %s %d x %d" % (p["pool"], p["concurrency"], config["numprocs"]))
            result["rows"] += run_in_container(name, dict(spec, configs=[config], services=False, rounds=False,
                                                          repeats=1, observe=None), opts.keep_logs)["rows"]
            sets.append(config)
    finally:
        docker("rm", "-f", name, check=False)
    estimates = dict((c["key"], c["rss_estimate_mib"]) for c in sets)
    for row in result["rows"]:
        row["rss_estimate_mib"] = estimates.get(row["key"])
    rows = derive(result["rows"])
    report = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "image": IMAGE, "n": opts.n, "host": facts, "rows": rows,
        "esi": {"how": "provider seam", "latency_ms": [100, 300],
                "seam": "allianceauth.eveonline.providers.open_api_provider._client = benchesi.client.StubEsiClient "
                        "(real HTTP to bench/auth_bench/esi_stub.py through httpx2)",
                "why": "django-esi 10 builds its client from the OpenAPI spec at ESI_API_URL + meta/openapi.json; the "
                       "only spec it ships (esi/tests/test_openapi.json) has 4 operations, none of the 7 in Auth's "
                       "OPEN_API_OPERATIONS, so ESI_API_URL alone cannot drive Auth's client offline",
                "not_emulated": "django-esi's ETag/response cache round-trips to Redis, its retry wrapper and signals, "
                                "aiopenapi3's request building and response models"},
        "tasks_queued": "as run_model_update: update_corp per corporation, update_alliance per alliance, then "
                        "update_character per character (what update_character_chunk queues for changed characters), "
                        "priority 7, no countdown",
        "within_spread": spreads.overlaps(rows), "profile": profile(rows, facts), "versions": result["versions"],
        "services_rss_mib": result.get("services_rss_mib"), "two_gb": two_gb_plan(facts),
        "observe": result.get("observe"), "observe_agreement": observe_agreement(result.get("observe"), rows),
        "max_connections": result["max_connections"], "kinds": ["guide_default", "auth_shipped", "auto", "other"],
        "loadavg_1m_start": round(load_start, 2), "loadavg_1m_end": round(os.getloadavg()[0], 2),
        "seconds": round(time.monotonic() - began, 1),
    }
    report["ranking"] = ranked(report)
    report["thresholds"] = thresholds(report)
    out = pathlib.Path(opts.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "bench.json"
    data = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    data["auth_tasks"] = report
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    print(markdown(report))
    chart = write_chart(report, out)
    print("\nauth_tasks took %.0f s; wrote auth_tasks into %s and the chart %s" % (report["seconds"], path, chart))
    bad = [r["key"] for r in rows if r["lost"] or r["failed_logged"]]
    if bad:
        print("FAILED: tasks lost or failed in %s" % ", ".join(bad))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
