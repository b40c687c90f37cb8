# -*- coding: utf-8 -*-
# Copyright: authops.celery_tuning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

import pytest

from ansible_collections.authops.celery_tuning.plugins.module_utils.sizing import size_pool
from ansible_collections.authops.celery_tuning.plugins.module_utils.worker_profile import (
    PROBE,
    ProfileError,
    find_workers,
    node_program,
    probe_args,
    summarize,
    worker_app,
)

VENV = "/home/allianceserver/venv/auth/bin/"


@pytest.mark.parametrize("argv,app", [
    # a script's interpreter comes first in /proc/<pid>/cmdline
    ([VENV + "python3", VENV + "celery", "-A", "myauth", "worker", "--pool=threads"], "myauth"),
    ([VENV + "celery", "-A", "myauth", "worker"], "myauth"),
    ([VENV + "celery", "--app=myauth", "worker"], "myauth"),
    ([VENV + "celery", "-Amyauth", "worker"], "myauth"),
    (["python3", "-m", "celery", "-A", "other", "worker"], "other"),
    ([VENV + "celery", "-A", "myauth", "beat"], None),
    ([VENV + "gunicorn", "myauth.wsgi"], None),
    ([VENV + "python3", "manage.py", "runserver"], None),
    ([], None),
    # Celery's process title (setproctitle installed, as in Auth's venv)
    (["[celeryd: celery@worker_00:MainProcess] -active- (-A myauth worker --pool=threads --hostname=worker_00)"],
     "myauth"),
    (["[celeryd: celery@worker_services_00:ForkPoolWorker-1]"], None),
    (["[celeryd: celery@w:MainProcess] -idle- (--app=other worker"], "other"),
    (["[celerybeat]"], None),
])
def test_worker_app(argv, app):
    assert worker_app(argv) == app


def fake_proc(tmp_path, procs):
    """procs: pid -> (ppid, argv, uid)."""
    for pid, (ppid, argv, uid) in procs.items():
        base = tmp_path / str(pid)
        base.mkdir()
        (base / "cmdline").write_bytes(b"\0".join(a.encode() for a in argv) + b"\0")
        (base / "stat").write_text("%d (py thon) S %d 1 1 0 -1 0 0 0 0 0 5 6 7 8 20 0 1 0\n" % (pid, ppid))
        (base / "status").write_text("Name:\tpython\nUid:\t%d\t%d\t%d\t%d\n" % (uid, uid, uid, uid))
        (base / "environ").write_bytes(b"AA_DB_NAME=alliance_auth\0HOME=/home/allianceserver\0")
        os.symlink(str(tmp_path), str(base / "cwd"))
        (base / "ns").mkdir()
        os.symlink("pid:[4026531836]", str(base / "ns" / "pid"))
    (tmp_path / "self").mkdir()
    (tmp_path / "self" / "ns").mkdir()
    os.symlink("pid:[4026531836]", str(tmp_path / "self" / "ns" / "pid"))
    return str(tmp_path)


def test_find_workers_skips_prefork_children_and_other_apps(tmp_path):
    worker = [VENV + "python3", VENV + "celery", "-A", "myauth", "worker", "-n", "worker_00"]
    proc = fake_proc(tmp_path, {
        100: (1, ["/usr/bin/python3", "/usr/bin/supervisord"], 0),
        200: (100, worker, 1000),
        201: (100, [VENV + "python3", VENV + "celery", "-A", "myauth", "worker", "-n", "worker_services_00"], 1000),
        202: (201, [VENV + "python3", VENV + "celery", "-A", "myauth", "worker", "-n", "worker_services_00"], 1000),
        300: (100, [VENV + "python3", VENV + "celery", "-A", "other", "worker"], 1000),
        400: (100, [VENV + "python3", VENV + "celery", "-A", "myauth", "beat"], 1000),
        500: (100, [VENV + "python3", VENV + "celery", "-A", "myauth", "worker"], 1000),
    })
    os.remove(os.path.join(proc, "500", "ns", "pid"))
    os.symlink("pid:[4026532999]", os.path.join(proc, "500", "ns", "pid"))  # a container's worker
    found = find_workers("myauth", proc=proc)
    assert [w["pid"] for w in found] == [200, 201]
    assert found[0]["uid"] == 1000
    assert found[0]["python"] == VENV + "python3"
    assert found[0]["cwd"] == proc
    assert [w["pid"] for w in find_workers("myauth", proc=proc, project_dir=proc + "/")] == [200, 201]
    assert find_workers("myauth", proc=proc, project_dir="/elsewhere") == []


def test_python_next_to_celery(tmp_path):
    proc = fake_proc(tmp_path, {10: (1, [VENV + "celery", "-A", "myauth", "worker"], 0)})
    assert find_workers("myauth", proc=proc)[0]["python"] == VENV + "python"


def test_python_of_a_titled_process_from_its_maps(tmp_path):
    title = "[celeryd: celery@worker_00:MainProcess] -active- (-A myauth worker --pool=threads)"
    proc = fake_proc(tmp_path, {10: (1, [title], 1000), 11: (1, [title.replace("myauth", "other")], 1000)})
    (tmp_path / "10" / "maps").write_text(
        "7f00-7f01 r-xp 00000000 08:01 1 /usr/lib/x86_64-linux-gnu/libc.so.6\n"
        "7f02-7f03 r-xp 00000000 08:01 2 /home/allianceserver/venv/auth/lib/python3.11/site-packages/"
        "MySQLdb/_mysql.cpython-311-x86_64-linux-gnu.so\n")
    found = find_workers("myauth", proc=proc)
    assert [w["pid"] for w in found] == [10]
    assert found[0]["python"] == VENV + "python"


@pytest.mark.parametrize("window,interval,timeout", [(4, 1, 1), (30, 0.1, 1), (30, 31, 1), (30, 2, 0), ("30", 2, 1)])
def test_probe_args_refused(window, interval, timeout):
    with pytest.raises(ProfileError):
        probe_args("myauth", window, interval, timeout)


def test_probe_compiles():
    compile(PROBE, "probe", "exec")


def test_node_program():
    assert node_program("celery@worker_00") == "worker"
    assert node_program("celery@worker_services_00") == "worker_services"
    assert node_program("celery@bench01") == "bench01"


def doc(backlog=(40, 35, 30), active=(5, 5, 5), total=(100, 500), cpu=(10.0, 12.0), window=10.0,
        services=True):
    """A probe document: worker_00 (threads 5) busy on celery, worker_services_00 idle on services."""
    first = {"celery@worker_00": {"pid": 200, "total": total[0], "pool": "celery.concurrency.thread:TaskPool",
                                  "max_concurrency": 5, "cpu_seconds": cpu[0]}}
    last = {"celery@worker_00": {"pid": 200, "total": total[1], "pool": "celery.concurrency.thread:TaskPool",
                                 "max_concurrency": 5, "cpu_seconds": cpu[1]}}
    queues = {"celery@worker_00": ["celery"]}
    if services:
        for snap, count in ((first, 3), (last, 4)):
            snap["celery@worker_services_00"] = {
                "pid": 201, "total": count, "max_concurrency": 1, "pool": "celery.concurrency.prefork:TaskPool",
                "cpu_seconds": 5.0}
        queues["celery@worker_services_00"] = ["services"]
    samples = [{"t": i, "active": {"celery@worker_00": a, "celery@worker_services_00": 0},
                "backlog": {"celery": b, "services": 0}} for i, (a, b) in enumerate(zip(active, backlog))]
    return {"window": window, "first": first, "last": last, "queues": queues, "samples": samples,
            "engine": "django.db.backends.mysql", "db_driver": "mysqlclient"}


def test_summarize_figures():
    result = summarize(doc(), "io", 2)
    worker, services = result["workers"]
    assert (worker["name"], worker["pool"], worker["concurrency"], worker["numprocs"]) == ("worker", "threads", 5, 1)
    assert worker["tasks"] == 400
    assert worker["completions_per_s"] == 40.0
    assert worker["in_flight_mean"] == 5.0
    assert worker["task_seconds"] == 0.125            # Little's law: 5 / 40
    assert worker["cpu_seconds_per_task"] == 0.005    # 2 CPU seconds / 400 tasks
    assert worker["cpu_cores_per_process"] == 0.2
    assert worker["slot_utilization"] == 1.0
    assert (worker["backlog_min"], worker["backlog_last"]) == (30, 30)
    assert result["db_driver"] == "mysqlclient"
    assert result["queues"] == ["celery", "services"]
    rec = worker["recommended"]
    # the planner's own model: work waited all the time -> one process per CPU
    expected = size_pool("threads", "io", 2, worker)
    assert (rec["pool"], rec["concurrency"], rec["numprocs"]) == ("threads", expected["concurrency"], 2)
    assert rec["concurrency"] == 20 and rec["measured"]
    assert services["recommended"]["concurrency"] == 1
    assert "kept as it is" in services["recommended"]["explain"][0]


def test_summarize_without_backlog_keeps_one_process():
    worker = summarize(doc(backlog=(0, 3, 0)), "io", 2)["workers"][0]
    assert worker["recommended"]["numprocs"] == 1


def test_summarize_too_few_tasks_says_so():
    worker = summarize(doc(total=(100, 105)), "io", 2)["workers"][0]
    assert not worker["recommended"]["measured"]
    assert any("only 5 tasks" in line for line in worker["recommended"]["explain"])


def test_summarize_driver_decides_the_pool():
    raw = dict(doc(), db_driver="pymysql")
    assert summarize(raw, "io", 2)["workers"][0]["recommended"]["pool"] == "gevent"
    assert summarize(raw, "cpu", 2)["workers"][0]["recommended"]["pool"] == "prefork"


def test_summarize_program_filter_and_errors():
    assert [w["name"] for w in summarize(doc(), "io", 2, ["worker"])["workers"]] == ["worker"]
    with pytest.raises(ProfileError, match="worker_x"):
        summarize(doc(), "io", 2, ["worker_x"])
    with pytest.raises(ProfileError, match="no worker"):
        summarize(dict(doc(), first={}, last={}), "io", 2)
    with pytest.raises(ProfileError, match="workload"):
        summarize(doc(), "web", 2)
    with pytest.raises(ProfileError, match="window"):
        summarize({"first": {}}, "io", 2)
