# -*- coding: utf-8 -*-
# Copyright: authops.celery_tuning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The host's memory as a budget (memory_fit) and the default plan it gives on stock Auth hosts (issue 23)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.authops.celery_tuning.plugins.module_utils.memory_fit import (
    DEFAULT_MEMORY_RESERVE,
    GUNICORN_MASTER,
    GUNICORN_WORKER,
    SLOT_MEMORY,
    carried_estimate,
    process_estimate,
    reserve_bytes,
    workers_budget,
)
from ansible_collections.authops.celery_tuning.plugins.module_utils.memory_limits import DEFAULT_BASELINE
from ansible_collections.authops.celery_tuning.plugins.module_utils.plan_errors import WorkerFlagsError
from ansible_collections.authops.celery_tuning.plugins.module_utils.programs import plan_group
from ansible_collections.authops.celery_tuning.plugins.module_utils.sizes import GIB, MIB
from ansible_collections.authops.celery_tuning.plugins.module_utils.sizing import (
    DEFAULT_TASK_CPU_SECONDS,
    DEFAULT_TASK_SECONDS,
)

LAYOUT = dict(directory="/home/allianceserver/myauth", user="allianceserver", log_dir="/var/log/supervisor/myauth",
              group_name="myauth", app="myauth", celery_bin="/home/allianceserver/venv/auth/bin/celery")
# What the role plans with no variables (defaults/main.yml), and Auth 5.5's gunicorn as its file has it.
DEFAULT_WORKERS = [{"name": "beat", "beat": True}, {"name": "worker", "workload": "io"},
                   {"name": "worker_services", "queues": ["services"], "single_threaded": True}]
AUTH_GUNICORN = {"name": "gunicorn", "source": "myauth/supervisor.conf", "options": {
    "command": "/home/allianceserver/venv/auth/bin/gunicorn myauth.wsgi --workers=3 --timeout 120 --bind 127.0.0.1:8000",
    "directory": "/home/allianceserver/myauth", "user": "allianceserver"}}


def default_plan(cpu_count, memory_total="8GB", **kwargs):
    return plan_group(DEFAULT_WORKERS, LAYOUT, carry_over=[AUTH_GUNICORN], cpu_count=cpu_count,
                      memory_total=memory_total, db_connection_budget=100, **kwargs)


def worker(result):
    return next(w for w in result["workers"] if w["name"] == "worker")


# --------------------------------------------------------------------------- pure functions

def test_the_default_profile_is_auth_tasks_measurement():
    # bench auth_tasks (2026-12-06): 480 ms per task under threads 5; 12 ms CPU per task at the plan's throughput
    assert DEFAULT_TASK_SECONDS == pytest.approx(0.48)
    assert DEFAULT_TASK_CPU_SECONDS == pytest.approx(0.012)


@pytest.mark.parametrize("pool,concurrency,expected", [
    ("threads", 5, DEFAULT_BASELINE + 5 * SLOT_MEMORY),
    ("threads", 38, DEFAULT_BASELINE + 38 * SLOT_MEMORY),
    ("gevent", 100, DEFAULT_BASELINE + 100 * SLOT_MEMORY),
    ("eventlet", 1, DEFAULT_BASELINE + SLOT_MEMORY),
    ("solo", 1, DEFAULT_BASELINE),
    (None, 1, DEFAULT_BASELINE),  # beat
])
def test_process_estimate(pool, concurrency, expected):
    assert process_estimate(pool, concurrency) == expected


def test_process_estimate_is_near_the_measured_rss_of_auths_threads_workers():
    # make bench-auth: 121 MiB at threads 5, 126 MiB at 25, 129-130 MiB a process at 32 and 35 (within 25 %)
    for concurrency, measured_mib in ((5, 121), (25, 126), (32, 129), (35, 130)):
        estimate = process_estimate("threads", concurrency) / MIB
        assert abs(estimate - measured_mib) / measured_mib < 0.25


def test_a_given_baseline_is_used():
    assert process_estimate("threads", 4, 200 * MIB) == 201 * MIB


def test_gunicorn_is_its_master_and_its_workers():
    size, explain = carried_estimate([AUTH_GUNICORN])
    assert size == GUNICORN_MASTER + 3 * GUNICORN_WORKER
    assert explain[0].startswith("gunicorn: about ")
    two = dict(AUTH_GUNICORN, options=dict(AUTH_GUNICORN["options"], command="gunicorn myauth.wsgi -w 5"))
    assert carried_estimate([two])[0] == GUNICORN_MASTER + 5 * GUNICORN_WORKER
    # gunicorn's own default is one worker
    one = dict(AUTH_GUNICORN, options={"command": "gunicorn myauth.wsgi"})
    assert carried_estimate([one])[0] == GUNICORN_MASTER + GUNICORN_WORKER


def test_other_carried_programs_count_a_baseline_per_process():
    other = {"name": "discordbot", "options": [["command", "/venv/bin/python bot.py"], ["numprocs", "2"]]}
    assert carried_estimate([other])[0] == 2 * DEFAULT_BASELINE
    assert carried_estimate([])[0] == 0
    assert carried_estimate(None) == (0, [])


@pytest.mark.parametrize("value,expected", [
    (None, DEFAULT_MEMORY_RESERVE), ("", DEFAULT_MEMORY_RESERVE), ("1GB", GIB), ("0", 0), (0, 0), ("256MiB", 256 * MIB)])
def test_reserve_bytes(value, expected):
    assert reserve_bytes(value) == expected


def test_reserve_must_be_a_size():
    with pytest.raises(WorkerFlagsError, match="memory_reserve"):
        reserve_bytes("lots")


def test_budget_is_the_share_when_the_host_has_room():
    fit = workers_budget(8 * GIB, 50, 512 * MIB, 416 * MIB)
    assert fit["memory"] == 4 * GIB and fit["share"] == 4 * GIB
    assert fit["why"].startswith("50% of 8.0 GiB")


def test_budget_is_what_the_reserve_and_gunicorn_leave_on_a_small_host():
    fit = workers_budget(1536 * MIB, 50, 512 * MIB, 416 * MIB)
    assert fit["memory"] == 608 * MIB
    assert "leaves after the reserve 512.0 MiB" in fit["why"] and "50% would be 768.0 MiB" in fit["why"]


def test_a_host_with_no_room_for_one_worker_is_refused_with_figures():
    with pytest.raises(WorkerFlagsError, match=r"1\.0 GiB .*memory_reserve 512\.0 MiB.*416\.0 MiB.*leaves 96\.0 MiB"):
        workers_budget(GIB, 50, 512 * MIB, 416 * MIB, ["gunicorn: about 416.0 MiB"])


# --------------------------------------------------------------------------- the default plan (issue 23)

@pytest.mark.parametrize("cpus,concurrency,numprocs,db_capped", [
    (1, 32, 1, False),
    (2, 32, 2, False),
    (4, 24, 4, False),
    (8, 24, 4, True),
])
def test_default_plan_by_cpus_with_the_db_budget_of_100(cpus, concurrency, numprocs, db_capped):
    result = default_plan(cpus)
    w = worker(result)
    assert (w["pool"], w["concurrency"], len(w["process_names"])) == ("threads", concurrency, numprocs)
    assert result["budget"]["db_connections"] <= 100
    capped = [line for line in w["explain"] if line.startswith("numprocs capped from %d to %d by the DB" % (cpus, numprocs))]
    assert bool(capped) == db_capped
    if db_capped:
        # the explain says what limits the plan and what to change
        assert "raise db_connection_budget together with MariaDB's max_connections" in capped[0]
        assert any(line.startswith("numprocs=%d: auto, " % numprocs) and "(model: %d)" % cpus in line
                   for line in w["explain"])
    if cpus > 2:
        # 4 processes of the model's 32 would hold 128: concurrency shrinks to share the 98 connections left
        assert any(line.startswith("concurrency=24: auto, ") and line.endswith("(model: 32)") for line in w["explain"])


@pytest.mark.parametrize("cpus", [1, 2, 4, 8])
def test_default_plan_fits_a_2gb_host(cpus):
    result = default_plan(cpus, memory_total="2GB")
    budget = result["budget"]
    assert budget["memory_host_estimate_bytes"] <= 2 * GIB
    assert budget["memory_host_estimate_bytes"] == (
        budget["memory_estimate_bytes"] + budget["memory_carried_bytes"] + budget["memory_reserve_bytes"])
    assert budget["memory_carried_bytes"] == GUNICORN_MASTER + 3 * GUNICORN_WORKER
    assert budget["memory_estimate_bytes"] <= budget["memory_budget_bytes"]
    assert budget["explain"][-1].startswith("memory: the workers about ")
    assert "of 2.0 GiB" in budget["explain"][-1]


def test_the_worker_estimate_is_its_rss_not_its_memmon_limit():
    result = plan_group([{"name": "worker", "workload": "io", "memory_limit": "1GB"}], LAYOUT, cpu_count=2,
                        memory_total="8GB")
    w = result["workers"][0]
    assert w["memmon_limits"] == {"worker_00": "1GB", "worker_01": "1GB"}
    assert w["memory_estimate_bytes"] == 2 * (DEFAULT_BASELINE + 32 * SLOT_MEMORY)


def test_a_small_host_shrinks_numprocs_and_says_why():
    result = default_plan(2, memory_total="1.5GB")
    w = worker(result)
    assert len(w["process_names"]) == 1
    assert any(line.startswith("numprocs capped from 2 to 1 so the workers' estimate") and "608.0 MiB" in line
               for line in w["explain"])
    assert result["budget"]["memory_host_estimate_bytes"] <= 1536 * MIB


def test_a_host_too_small_for_the_plan_is_refused_with_figures():
    with pytest.raises(WorkerFlagsError, match=r"memory_reserve 512\.0 MiB.*gunicorn.*leaves 96\.0 MiB"):
        default_plan(2, memory_total="1GB")
    # without the reserve (MariaDB and Redis elsewhere) and with a larger share the same host plans
    result = default_plan(2, memory_total="1GB", memory_reserve="0", memory_budget_percent=60)
    assert result["budget"]["memory_host_estimate_bytes"] <= GIB


def test_given_values_over_the_memory_left_are_refused_with_figures():
    with pytest.raises(WorkerFlagsError, match=r"need about 1\.3 GiB of memory \(worker=1\.3 GiB\) but the workers' "
                                               r"memory budget is 1\.0 GiB \(50% of 2\.0 GiB; the host keeps the reserve"):
        plan_group([{"name": "worker", "pool": "threads", "concurrency": 10, "numprocs": 10}], LAYOUT,
                   carry_over=[AUTH_GUNICORN], cpu_count=8, memory_total="2GB")
