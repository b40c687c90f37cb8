# -*- coding: utf-8 -*-
# Copyright: authops.celery_tuning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import shlex

import pytest

from ansible_collections.authops.celery_tuning.plugins.module_utils.celery_cli import check_extra_args
from ansible_collections.authops.celery_tuning.plugins.module_utils.memory_limits import (
    DEFAULT_BASELINE,
    baseline_headroom,
)
from ansible_collections.authops.celery_tuning.plugins.module_utils.plan_errors import WorkerFlagsError
from ansible_collections.authops.celery_tuning.plugins.module_utils.sizes import (
    GIB,
    MIB,
    format_size,
    parse_size,
    size_to_kib,
)
from ansible_collections.authops.celery_tuning.plugins.module_utils.supervisor_format import (
    build_command,
    supervisor_escape,
)
from ansible_collections.authops.celery_tuning.plugins.module_utils.worker_plan import plan_workers
from ansible_collections.authops.celery_tuning.plugins.module_utils.worker_spec import (
    expand_process_names,
    parse_concurrency,
)

NODE = "%(program_name)s_%(process_num)02d"


def plan(workers, **kwargs):
    kwargs.setdefault("cpu_count", 4)
    kwargs.setdefault("memory_total", "16GB")
    return plan_workers(workers, **kwargs)


def one(worker, **kwargs):
    return plan([worker], **kwargs)["workers"][0]


# --------------------------------------------------------------------------- sizes

@pytest.mark.parametrize("text,expected", [
    ("256MB", 256 * MIB),
    ("256mb", 256 * MIB),
    ("262144KB", 256 * MIB),
    ("1GB", GIB),
    ("1gb", GIB),
    ("512MiB", 512 * MIB),
    ("512M", 512 * MIB),
    ("2G", 2 * GIB),
    ("64k", 64 * 1024),
    ("1024", 1024),
    ("1024B", 1024),
    (" 128 MB ", 128 * MIB),
    ("1.5GB", 3 * GIB // 2),
    (4096, 4096),
])
def test_parse_size(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "abc", "12XB", "MB", "-5MB", "1.2.3GB", None, True])
def test_parse_size_errors(text):
    with pytest.raises(WorkerFlagsError) as exc:
        parse_size(text, "worker x: max_memory_per_child")
    assert "256MB" in str(exc.value)


@pytest.mark.parametrize("nbytes,expected", [
    (512 * MIB, "512MB"), (GIB, "1GB"), (1536 * 1024, "1536KB"), (1000, "1000"), (2 * GIB, "2GB"),
])
def test_format_size(nbytes, expected):
    assert format_size(nbytes) == expected
    assert parse_size(expected) == nbytes


def test_size_to_kib_guide_example():
    assert size_to_kib(parse_size("256MB")) == 262144


def test_headroom_is_max_of_quarter_and_64mib():
    assert baseline_headroom(100 * MIB) == 64 * MIB
    assert baseline_headroom(400 * MIB) == 100 * MIB


# --------------------------------------------------------------------------- escaping / names

def test_supervisor_escape_keeps_expansions():
    assert supervisor_escape(NODE) == NODE
    assert supervisor_escape("celery@%h") == "celery@%%h"
    assert supervisor_escape("%(ENV_HOME)s/x%") == "%(ENV_HOME)s/x%%"
    assert supervisor_escape("50%") == "50%%"


def test_build_command_round_trip():
    argv = ["/venv/bin/celery", "-A", "myauth", "worker", "--hostname=" + NODE, "--x=a b"]
    command = build_command(argv)
    assert "%(program_name)s_%(process_num)02d" in command
    expanded = command % {"program_name": "worker", "process_num": 0}
    assert shlex.split(expanded) == argv[:4] + ["--hostname=worker_00", "--x=a b"]


def test_build_command_escapes_percent():
    command = build_command(["celery", "--hostname=w@%h"])
    assert command == "celery --hostname=w@%%h"
    assert command % {} == "celery --hostname=w@%h"


def test_expand_process_names():
    assert expand_process_names("worker") == ["worker_00"]
    assert expand_process_names("worker", numprocs=3, numprocs_start=1) == [
        "worker_01", "worker_02", "worker_03"]
    assert expand_process_names("worker", "%(group_name)s_%(process_num)d", 2,
                                group_name="myauth") == ["myauth_0", "myauth_1"]
    assert expand_process_names("worker", "%(program_name)s") == ["worker"]


def test_expand_process_names_errors():
    with pytest.raises(WorkerFlagsError, match="process_num"):
        expand_process_names("worker", "%(program_name)s", numprocs=2)
    # supervisor offers host_node_name; a name it gives must still be a clean process name
    assert expand_process_names("worker", "%(program_name)s_%(host_node_name)s")[0].startswith("worker_")
    with pytest.raises(WorkerFlagsError, match="must be a non-empty name"):
        expand_process_names("worker", "a:b")


# --------------------------------------------------------------------------- concurrency / extra args

def test_parse_concurrency():
    assert parse_concurrency("auto") is None
    assert parse_concurrency("AUTO") is None
    assert parse_concurrency("7") == 7
    assert parse_concurrency(3) == 3
    for bad in (0, "0", -1, "x", True):
        with pytest.raises(WorkerFlagsError):
            parse_concurrency(bad)


@pytest.mark.parametrize("arg", [
    "--concurrency=5", "--concurrency 5", "-c 5", "-c5", "--pool=threads", "-P threads",
    "-Q services", "--queues=a", "-l debug", "--loglevel debug", "-n x", "--hostname=x",
    "--max-memory-per-child=1", "--max-tasks-per-child 3", "-A other", "--app=other",
    "--prefetch-multiplier=4", "--time-limit=300", "--soft-time-limit 200", "--autoscale=10,3",
])
def test_extra_args_refuse_managed_flags(arg):
    with pytest.raises(WorkerFlagsError) as exc:
        check_extra_args([arg], "worker")
    assert "managed by the module" in str(exc.value)


def test_extra_args_split_and_kept():
    assert check_extra_args(["--without-gossip", "--exclude-queues x", "-O fair"]) == [
        "--without-gossip", "--exclude-queues", "x", "-O", "fair"]
    with pytest.raises(WorkerFlagsError, match="quoting"):
        check_extra_args(["--x 'unterminated"])


# --------------------------------------------------------------------------- guide checks

def test_guide_prefork_256mb():
    w = one({"name": "worker", "pool": "prefork", "max_memory_per_child": "256MB", "concurrency": 2})
    assert "--max-memory-per-child=262144" in w["argv"]
    assert "--pool=prefork" in w["argv"]
    assert w["memmon_limits"] == {}


def test_guide_gevent_concurrency_10():
    w = one({"name": "worker", "pool": "gevent", "concurrency": 10})
    assert "--pool=gevent" in w["argv"]
    assert "--concurrency=10" in w["argv"]
    assert w["packages"] == ["gevent"]


def test_guide_gevent_memory_goes_to_memmon():
    result = plan([{"name": "worker", "pool": "gevent", "concurrency": 10,
                    "max_memory_per_child": "512MB"}])
    w = result["workers"][0]
    assert not any(a.startswith("--max-memory-per-child") for a in w["argv"])
    assert result["memmon_limits"] == {"worker_00": "512MB"}
    assert any("max_memory_per_child ignored" in x for x in result["warnings"])
    assert result["warnings"][0].startswith("worker: ")


def test_guide_loglevel_form():
    w = one({"name": "worker"})
    assert "--loglevel=info" in w["argv"]
    assert "-l" not in w["argv"]


def test_default_argv_shape():
    w = one({"name": "worker", "celery_bin": "/venv/bin/celery", "pool": "threads", "concurrency": 5})
    assert w["argv"] == ["/venv/bin/celery", "-A", "myauth", "worker", "--loglevel=info",
                         "--pool=threads", "--concurrency=5", "--hostname=" + NODE]
    assert w["command"] == ("/venv/bin/celery -A myauth worker --loglevel=info --pool=threads "
                            "--concurrency=5 '--hostname=%(program_name)s_%(process_num)02d'")
    assert w["process_names"] == ["worker_00"]


def test_all_flags_rendered():
    w = one({"name": "worker", "pool": "prefork", "concurrency": 2, "queues": ["a", "b"],
             "prefetch_multiplier": 1, "time_limit": 300, "soft_time_limit": 240,
             "max_memory_per_child": "300MB", "max_tasks_per_child": 100,
             "extra_args": ["--without-mingle"], "loglevel": "warning"})
    assert w["argv"][4:] == [
        "--loglevel=warning", "--pool=prefork", "--concurrency=2", "--hostname=" + NODE,
        "--queues=a,b", "--prefetch-multiplier=1", "--time-limit=300", "--soft-time-limit=240",
        "--max-memory-per-child=307200", "--max-tasks-per-child=100", "--without-mingle"]
    assert w["max_memory_per_child_kib"] == 307200


def test_empty_node_name_omits_flag():
    w = one({"name": "worker", "node_name": "", "pool": "threads"})
    assert not any(a.startswith("--hostname") for a in w["argv"])


# --------------------------------------------------------------------------- auto rules

@pytest.mark.parametrize("workload,pool", [("io", "threads"), ("cpu", "prefork"), ("mixed", "threads")])
def test_auto_pool_from_workload(workload, pool):
    w = one({"name": "worker", "workload": workload})
    assert w["pool"] == pool
    assert any(line.startswith("pool=%s: auto" % pool) for line in w["explain"])


def test_auto_concurrency_defaults():
    assert one({"name": "w", "workload": "cpu"}, cpu_count=6)["concurrency"] == 6
    # Auth's update tasks as the bench measured them: 0.8 x 480 ms / 12 ms = 32 slots (2 CPUs: 2 x 32 fit the budget)
    assert one({"name": "w", "workload": "io"}, cpu_count=2)["concurrency"] == 32
    assert one({"name": "w", "pool": "gevent"}, cpu_count=2)["concurrency"] == 32
    assert one({"name": "w", "pool": "eventlet"}, cpu_count=2)["concurrency"] == 32
    assert one({"name": "w", "workload": "mixed"})["concurrency"] == 5


def test_single_threaded_auto_is_prefork_one():
    w = one({"name": "worker_services", "queues": ["services"], "single_threaded": True,
             "max_memory_per_child": "256MB"})
    assert w["pool"] == "prefork"
    assert w["concurrency"] == 1
    assert "--concurrency=1" in w["argv"]
    assert "--max-memory-per-child=262144" in w["argv"]
    assert "--queues=services" in w["argv"]


def test_single_threaded_with_gevent_forces_one():
    w = one({"name": "w", "pool": "gevent", "single_threaded": True})
    assert w["concurrency"] == 1


def test_single_threaded_concurrency_error():
    with pytest.raises(WorkerFlagsError, match="single_threaded needs concurrency 1"):
        one({"name": "w", "single_threaded": True, "concurrency": 2})


def test_single_threaded_numprocs_error():
    with pytest.raises(WorkerFlagsError, match="single_threaded needs numprocs 1"):
        one({"name": "w", "single_threaded": True, "numprocs": 2})


def test_services_queue_without_single_threaded_warns():
    result = plan([{"name": "worker_services", "queues": ["services"], "pool": "threads"}])
    assert any("single_threaded" in x for x in result["warnings"])


def test_solo_pool():
    w = one({"name": "w", "pool": "solo", "max_memory_per_child": "256MB"})
    assert w["concurrency"] == 1
    assert not any(a.startswith("--concurrency") for a in w["argv"])
    assert w["memmon_limits"] == {"w_00": "256MB"}
    with pytest.raises(WorkerFlagsError, match="solo"):
        one({"name": "w", "pool": "solo", "concurrency": 3})


def test_prefork_auto_capped_by_memory():
    # 2GB * 50% = 1GiB budget; parent 128MiB; per child 256MiB -> (1024-128)/256 = 3 children
    w = one({"name": "w", "pool": "prefork", "max_memory_per_child": "256MB"},
            cpu_count=8, memory_total="2GB")
    assert w["concurrency"] == 3
    assert any("fits the memory budget" in line for line in w["explain"])
    assert w["memory_estimate_bytes"] <= GIB


def test_gevent_auto_capped_by_db_budget():
    result = plan([{"name": "a", "pool": "gevent"}, {"name": "b", "pool": "gevent"},
                   {"name": "c", "pool": "prefork", "concurrency": 2}],
                  db_connection_budget=12)
    a, b, c = result["workers"]
    assert c["concurrency"] == 2
    assert a["concurrency"] == b["concurrency"] == 5
    assert a["process_names"] == ["a_00"] and b["process_names"] == ["b_00"]  # fewer processes first
    assert any("numprocs capped from 4 to 1" in line for line in a["explain"])
    assert result["budget"]["db_connections"] <= 12
    assert any("DB connection budget" in line for line in a["explain"])


def test_threads_capped_by_db_budget_with_numprocs():
    w = one({"name": "w", "pool": "threads", "numprocs": 2}, db_connection_budget=6)
    assert w["concurrency"] == 3
    assert w["db_connections"] == 6
    assert w["process_names"] == ["w_00", "w_01"]


WEB_HOST = [{"name": "beat", "beat": True}, {"name": "worker", "workload": "io"},
            {"name": "worker_services", "queues": ["services"], "single_threaded": True}]


@pytest.mark.parametrize("workers, hosts, expected", [
    # a host alone: the model's threads 32 x 2 (66 connections with beat and worker_services)
    (WEB_HOST, 1, (32, ["worker_00", "worker_01"], 66)),
    # two hosts share the budget of 100: each sizes its auto values within 50
    (WEB_HOST, 2, (24, ["worker_00", "worker_01"], 50)),
    ([{"name": "worker", "workload": "io"}], 2, (25, ["worker_00", "worker_01"], 50)),
    # three hosts: 33 each, numprocs shrinks first (as few processes as hold the share at the model's size: 2 of 32
    # slots), then concurrency
    ([{"name": "worker", "workload": "io"}], 3, (16, ["worker_00", "worker_01"], 32)),
])
def test_db_connection_hosts_share_the_budget(workers, hosts, expected):
    result = plan(workers, cpu_count=2, db_connection_hosts=hosts)
    w = [item for item in result["workers"] if item["name"] == "worker"][0]
    assert (w["concurrency"], w["process_names"], result["budget"]["db_connections"]) == expected
    # the plan keeps the whole budget, so that the cluster check compares and adds up the hosts
    assert result["budget"]["db_connection_budget"] == 100
    assert result["budget"]["db_connection_hosts"] == hosts
    assert result["budget"]["db_connection_share"] == 100 // hosts
    if hosts > 1:
        assert any("this host's share of the cluster's DB budget: 100 / %d hosts" % hosts in line
                   for line in w["explain"])
        assert any("sized within this host's share" in line for line in result["budget"]["explain"])
    else:
        assert not any("share of the cluster" in line for line in w["explain"] + result["budget"]["explain"])


def test_db_connection_hosts_never_change_given_concurrency():
    # 60 is over this host's share (50) but within the cluster's budget: kept; the auto worker gets what is left
    result = plan([{"name": "a", "pool": "threads", "concurrency": 60}, {"name": "b", "workload": "io"}],
                  cpu_count=1, db_connection_hosts=2)
    a, b = result["workers"]
    assert a["concurrency"] == 60
    assert b["concurrency"] == 1
    assert result["budget"]["db_connections"] == 61
    with pytest.raises(WorkerFlagsError, match="db_connection_budget is 100"):
        plan([{"name": "a", "pool": "threads", "concurrency": 101}], db_connection_hosts=2)


@pytest.mark.parametrize("hosts, budget, message", [
    (0, 100, "db_connection_hosts must be an integer >= 1"),
    (True, 100, "db_connection_hosts must be an integer >= 1"),
    ("2", 100, "db_connection_hosts must be an integer >= 1"),
    (3, 2, "cannot be shared by 3 hosts"),
])
def test_db_connection_hosts_refused(hosts, budget, message):
    with pytest.raises(WorkerFlagsError, match=message):
        plan([{"name": "w"}], db_connection_hosts=hosts, db_connection_budget=budget)


def test_explicit_concurrency_over_db_budget_errors():
    with pytest.raises(WorkerFlagsError, match="db_connection_budget"):
        one({"name": "w", "pool": "gevent", "concurrency": 200})


def test_explicit_concurrency_over_memory_budget_errors():
    with pytest.raises(WorkerFlagsError, match="memory_budget_percent"):
        one({"name": "w", "pool": "prefork", "concurrency": 8, "max_memory_per_child": "512MB"},
            memory_total="2GB")


def test_auto_cannot_fit_errors():
    with pytest.raises(WorkerFlagsError, match="DB connections"):
        plan([{"name": "a", "pool": "gevent", "concurrency": 5}, {"name": "b", "pool": "gevent"}],
             db_connection_budget=5)


def test_budget_block():
    result = plan([{"name": "w", "pool": "gevent", "concurrency": 10, "memory_limit": "512MB"}],
                  memory_total="8GB", memory_budget_percent=25)
    explain = result["budget"].pop("explain")
    # the estimate is what a gevent process of 10 slots uses (128 MiB + 10 x 0.25 MiB), not its memmon limit
    assert result["budget"] == {
        "memory_budget_percent": 25,
        "memory_budget_bytes": 2 * GIB,
        "memory_estimate_bytes": 128 * MIB + 10 * MIB // 4,
        "memory_reserve_bytes": 512 * MIB,
        "memory_carried_bytes": 0,
        "memory_host_estimate_bytes": 640 * MIB + 10 * MIB // 4,
        "db_connection_budget": 100,
        "db_connection_hosts": 1,
        "db_connection_share": 100,
        "db_connections": 10,
    }
    assert explain[0].startswith("memory budget 2.0 GiB: 25% of 8.0 GiB")
    assert result["host"]["memory_bytes"] == 8 * GIB
    assert result["host"]["cpu_count_source"] == "parameter"


# --------------------------------------------------------------------------- memory protection

def test_strict_refuses_memory_flags_on_gevent():
    with pytest.raises(WorkerFlagsError, match="memory_limit"):
        one({"name": "w", "pool": "gevent", "max_memory_per_child": "512MB"}, strict=True)
    with pytest.raises(WorkerFlagsError, match="max_tasks_per_child"):
        one({"name": "w", "pool": "threads", "max_tasks_per_child": 10}, strict=True)


def test_max_tasks_on_threads_dropped_with_warning():
    result = plan([{"name": "w", "pool": "threads", "max_tasks_per_child": 10}])
    w = result["workers"][0]
    assert not any("max-tasks" in a for a in w["argv"])
    assert w["memmon_limits"] == {}
    assert any("max_tasks_per_child ignored" in x for x in result["warnings"])


def test_memory_limit_preferred_over_max_memory_for_memmon():
    result = plan([{"name": "w", "pool": "gevent", "memory_limit": "600MB",
                    "max_memory_per_child": "512MB", "numprocs": 2}])
    assert result["memmon_limits"] == {"w_00": "600MB", "w_01": "600MB"}


def test_prefork_with_memory_limit_feeds_memmon_too():
    result = plan([{"name": "w", "pool": "prefork", "concurrency": 1, "memory_limit": "1GB",
                    "max_memory_per_child": "256MB"}])
    assert result["memmon_limits"] == {"w_00": "1GB"}
    assert "--max-memory-per-child=262144" in result["workers"][0]["argv"]


def test_small_limit_errors_unless_allowed():
    with pytest.raises(WorkerFlagsError, match="allow_small_memory_limit"):
        one({"name": "w", "pool": "prefork", "max_memory_per_child": "100MB"})
    result = plan([{"name": "w", "pool": "prefork", "concurrency": 1,
                    "max_memory_per_child": "100MB"}], allow_small_memory_limit=True)
    assert "--max-memory-per-child=102400" in result["workers"][0]["argv"]
    assert any("below 128MB" in x for x in result["warnings"])


def test_limit_below_baseline_headroom_errors():
    # baseline 121 MiB + 64 MiB headroom = 185 MiB > 160 MiB
    with pytest.raises(WorkerFlagsError) as exc:
        one({"name": "w", "pool": "prefork", "max_memory_per_child": "160MB",
             "memory_baseline": "121MiB"})
    assert "185MB" in str(exc.value)
    assert "baseline_headroom_action" in str(exc.value)


def test_limit_below_baseline_headroom_warn():
    result = plan([{"name": "w", "pool": "gevent", "memory_limit": "160MB",
                    "memory_baseline": "121MiB"}], baseline_headroom_action="warn")
    assert result["memmon_limits"]["w_00"] == "160MB"
    assert any("memory_baseline" in x for x in result["warnings"])


def test_limit_above_baseline_headroom_ok():
    result = plan([{"name": "w", "pool": "prefork", "concurrency": 1, "max_memory_per_child": "256MB",
                    "memory_baseline": "121MiB"}])
    assert result["warnings"] == []


def test_limit_close_to_stock_baseline_warns_without_baseline():
    result = plan([{"name": "w", "pool": "prefork", "concurrency": 1, "max_memory_per_child": "150MB"}])
    assert any("stock Auth 5.5" in x for x in result["warnings"])


def test_memory_estimate_defaults():
    w = one({"name": "w", "pool": "prefork", "concurrency": 2})
    assert w["memory_estimate_bytes"] == 3 * DEFAULT_BASELINE


# --------------------------------------------------------------------------- stop safety

def test_stopwaitsecs_recommended():
    w = one({"name": "w", "pool": "threads", "time_limit": 900, "soft_time_limit": 800})
    assert w["stopwaitsecs"] == 600
    assert w["stopwaitsecs_recommended"] == 930


def test_stopwaitsecs_warning():
    result = plan([{"name": "w", "pool": "prefork", "time_limit": 900}])
    assert any(x.startswith("w: stopwaitsecs 600") for x in result["warnings"])
    result = plan([{"name": "w", "pool": "prefork", "time_limit": 300}])
    assert result["warnings"] == []
    assert result["workers"][0]["stopwaitsecs_recommended"] == 600


def test_soft_limit_must_be_below_hard():
    with pytest.raises(WorkerFlagsError, match="soft_time_limit"):
        one({"name": "w", "time_limit": 100, "soft_time_limit": 100})


# --------------------------------------------------------------------------- validation

@pytest.mark.parametrize("worker,fragment", [
    ({"name": "w", "pool": "bogus"}, "unknown pool"),
    ({"name": "w", "workload": "gpu"}, "unknown workload"),
    ({"name": "w", "loglevel": "loud"}, "unknown loglevel"),
    ({"name": "w", "concurrency": 0}, "at least 1"),
    ({"name": "w", "concurrency": "many"}, "'auto' or an integer"),
    ({"name": "w", "numprocs": 0}, "numprocs must be at least 1"),
    ({"name": "w", "max_tasks_per_child": 0, "pool": "prefork"}, "max_tasks_per_child"),
    ({"name": "w", "max_memory_per_child": "lots"}, "cannot parse"),
    ({"name": "w", "extra_args": ["-c 4"]}, "set the worker option concurrency"),
    ({"name": "w", "queues": ["a,b"]}, "queue"),
    ({"name": "bad name"}, "name"),
    ({"name": ""}, "needs a name"),
    ({"name": "w", "bogus": 1}, "unknown option"),
    ({"name": "w", "numprocs": 2, "process_name": "%(program_name)s"}, "process_num"),
])
def test_bad_worker_input(worker, fragment):
    with pytest.raises(WorkerFlagsError, match=fragment):
        plan([worker])


def test_bad_top_level_input():
    with pytest.raises(WorkerFlagsError, match="empty"):
        plan([])
    with pytest.raises(WorkerFlagsError, match="cpu_count"):
        plan([{"name": "w"}], cpu_count=0)
    with pytest.raises(WorkerFlagsError, match="memory_budget_percent"):
        plan([{"name": "w"}], memory_budget_percent=0)
    with pytest.raises(WorkerFlagsError, match="db_connection_budget"):
        plan([{"name": "w"}], db_connection_budget=0)
    with pytest.raises(WorkerFlagsError, match="memory_total"):
        plan([{"name": "w"}], memory_total="huge")
    with pytest.raises(WorkerFlagsError, match="baseline_headroom_action"):
        plan([{"name": "w"}], baseline_headroom_action="ignore")


def test_duplicate_names_and_processes():
    with pytest.raises(WorkerFlagsError, match="given twice"):
        plan([{"name": "w"}, {"name": "w"}])
    with pytest.raises(WorkerFlagsError, match="process name myauth"):
        plan([{"name": "a", "process_name": "%(group_name)s", "group_name": "myauth"},
              {"name": "b", "process_name": "%(group_name)s", "group_name": "myauth"}])


def test_single_dict_accepted():
    assert plan({"name": "w"})["workers"][0]["name"] == "w"


# --------------------------------------------------------------------------- full plan

def test_stock_auth_plan():
    result = plan([
        {"name": "beat", "beat": True, "celery_bin": "/v/bin/celery"},
        {"name": "worker", "celery_bin": "/v/bin/celery", "memory_limit": "512MB"},
        {"name": "worker_services", "celery_bin": "/v/bin/celery", "queues": ["services"],
         "single_threaded": True, "max_memory_per_child": "256MB"},
    ])
    beat, worker, services = result["workers"]
    assert beat["argv"] == ["/v/bin/celery", "-A", "myauth", "beat", "--loglevel=info"]
    assert worker["pool"] == "threads" and worker["concurrency"] == 24
    assert services["pool"] == "prefork" and services["concurrency"] == 1
    assert result["packages"] == []
    # no measurement: one process per CPU (4 here) of 32 threads would need 128 DB connections; the 98 the
    # budget leaves are shared by the 4 processes (24 each): 4 processes of up to 32 are needed to hold them
    assert worker["process_names"] == ["worker_00", "worker_01", "worker_02", "worker_03"]
    assert result["memmon_limits"] == dict(("worker_%02d" % n, "512MB") for n in range(4))
    assert result["budget"]["db_connections"] == 1 + 4 * 24 + 1
    assert any(line.startswith("concurrency capped from 32 to 24 by the DB connection budget") for line in worker["explain"])
    assert any(line.startswith("concurrency=24: auto, ") and line.endswith("(model: 32)") for line in worker["explain"])
    assert [w["name"] for w in result["workers"]] == ["beat", "worker", "worker_services"]


def test_beat_validation():
    with pytest.raises(WorkerFlagsError, match="beat"):
        plan([{"name": "beat", "beat": True, "queues": ["x"]}])
    with pytest.raises(WorkerFlagsError, match="beat"):
        plan([{"name": "beat", "beat": True, "pool": "gevent"}])
    with pytest.raises(WorkerFlagsError, match="exactly one process"):
        plan([{"name": "beat", "beat": True, "numprocs": 2}])


def test_explain_covers_choices():
    w = one({"name": "w", "workload": "cpu", "max_memory_per_child": "256MB"})
    text = "\n".join(w["explain"])
    assert "pool=prefork" in text
    assert "concurrency=4: auto" in text
    assert "--max-memory-per-child=262144" in text


def test_prefork_memmon_limit_below_idle_tree_warns():
    # memmon -c sums parent + children: 4 slots of a 128 MiB baseline already hold ~640 MiB.
    result = plan([{"name": "w", "pool": "prefork", "concurrency": 4, "memory_limit": "512MB"}])
    assert any("measured over its whole tree" in x for x in result["warnings"])


def test_prefork_memmon_limit_above_idle_tree_is_explained():
    result = plan([{"name": "w", "pool": "prefork", "concurrency": 2, "memory_limit": "1GB"}])
    w = result["workers"][0]
    assert not any("whole tree" in x for x in result["warnings"])
    assert any("covers the prefork tree" in x for x in w["explain"])


# --------------------------------------------------------------------------- sizing model (issue 11)

from ansible_collections.authops.celery_tuning.plugins.module_utils.sizing import auto_pool, size_pool  # noqa: E402


def measured(name="worker", tasks=400, task_seconds=0.125, cpu=0.005, backlog_min=0, in_flight=5.0):
    return {"name": name, "tasks": tasks, "task_seconds": task_seconds, "cpu_seconds_per_task": cpu,
            "backlog_min": backlog_min, "in_flight_mean": in_flight}


@pytest.mark.parametrize("wall,cpu,expected", [
    (0.125, 0.005, 20),   # the bench's DB task: the documented default
    (0.100, 0.010, 8),
    (1.0, 0.004, 200),
    (0.05, 0.05, 1),      # CPU-bound on threads: one slot already fills the core
    (0.01, 1.0, 1),       # never below one
])
def test_size_pool_slots_follow_wall_over_cpu(wall, cpu, expected):
    size = size_pool("threads", "io", 2, measured(task_seconds=wall, cpu=cpu))
    assert size["concurrency"] == expected
    assert size["measured"]


def test_size_pool_without_measurement_uses_bench_defaults():
    size = size_pool("threads", "io", 8)
    assert (size["concurrency"], size["numprocs"], size["measured"]) == (32, 8, False)
    assert size_pool("threads", "io", 1)["explain"][-1].startswith("numprocs=1: one CPU")
    assert size_pool("threads", "io", 1)["numprocs"] == 1
    assert size_pool("threads", "mixed", 8)["numprocs"] == 1
    assert any("no measurement" in line for line in size["explain"])
    assert size_pool("threads", "mixed", 8)["concurrency"] == 5
    assert size_pool("prefork", "cpu", 6) == dict(
        concurrency=6, numprocs=1, measured=False, explain=["concurrency=6: one prefork child per CPU (6 CPUs)"])
    assert size_pool("solo", "io", 6)["concurrency"] == 1


def test_numprocs_grows_to_the_cpus_only_when_work_waits():
    assert size_pool("threads", "io", 4, measured(backlog_min=30))["numprocs"] == 4
    # no backlog: what the measured tasks in flight need, at 80 % utilisation, 20 per process
    assert size_pool("threads", "io", 4, measured(in_flight=5))["numprocs"] == 1
    assert size_pool("threads", "io", 4, measured(in_flight=30))["numprocs"] == 2
    assert size_pool("threads", "io", 4, measured(in_flight=500))["numprocs"] == 4


def test_a_thin_profile_is_not_used():
    assert not size_pool("threads", "io", 4, measured(tasks=3, backlog_min=9))["measured"]
    w = one({"name": "worker"}, profile={"workers": [measured(tasks=3, backlog_min=9)]}, cpu_count=2)
    assert (w["concurrency"], len(w["process_names"])) == (32, 2)
    assert any("profile not used" in line for line in w["explain"])


def test_plan_from_a_profile_grows_numprocs_and_keeps_single_slot_workers():
    profile = {"db_driver": "mysqlclient", "workers": [
        measured("worker", task_seconds=0.2, cpu=0.004, backlog_min=50),
        measured("worker_services", task_seconds=0.2, cpu=0.004, backlog_min=50)]}
    result = plan([{"name": "worker"}, {"name": "worker_services", "queues": ["services"], "single_threaded": True}],
                  cpu_count=2, profile=profile)
    worker, services = result["workers"]
    assert (worker["pool"], worker["concurrency"], worker["process_names"]) == ("threads", 40, ["worker_00", "worker_01"])
    assert (services["pool"], services["concurrency"], services["process_names"]) == ("prefork", 1, ["worker_services_00"])
    assert result["budget"]["db_connections"] == 81


def test_auto_numprocs_bounded_by_the_db_budget():
    profile = {"workers": [measured(task_seconds=1.0, cpu=0.002, backlog_min=5)]}
    # 400 slots per process would fill a core; 100 connections fit one process at a quarter of that
    w = plan([{"name": "worker"}], cpu_count=4, profile=profile, db_connection_budget=100)["workers"][0]
    assert (len(w["process_names"]), w["concurrency"]) == (1, 100)
    assert any("numprocs capped from 4 to 1" in line for line in w["explain"])
    assert any("(model: 400)" in line for line in w["explain"])
    # 1000 connections: 3 processes hold them (rounded up), each of 333 slots, a core each at two thirds
    w = plan([{"name": "worker"}], cpu_count=4, profile=profile, db_connection_budget=1000)["workers"][0]
    assert (len(w["process_names"]), w["concurrency"]) == (3, 333)
    assert any("numprocs capped from 4 to 3 by the DB connection budget" in line for line in w["explain"])


def test_given_numprocs_and_concurrency_are_kept():
    profile = {"workers": [measured(backlog_min=50)]}
    w = one({"name": "worker", "numprocs": 3}, cpu_count=2, profile=profile)
    assert len(w["process_names"]) == 3
    w = one({"name": "worker", "concurrency": 7}, cpu_count=2, profile=profile)
    assert (w["concurrency"], len(w["process_names"])) == (7, 1)


def test_auto_numprocs_needs_process_num_in_the_name():
    profile = {"workers": [measured(backlog_min=50)]}
    w = one({"name": "worker", "process_name": "%(program_name)s"}, cpu_count=2, profile=profile)
    assert w["process_names"] == ["worker"]


@pytest.mark.parametrize("workload,driver,pool", [
    ("io", "mysqlclient", "threads"),
    ("io", "psycopg2", "threads"),
    ("io", "unknown", "threads"),
    ("io", "pymysql", "gevent"),
    ("io", "none", "gevent"),
    ("mixed", "pymysql", "threads"),
    ("cpu", "pymysql", "prefork"),
])
def test_auto_pool_from_driver(workload, driver, pool):
    assert auto_pool(workload, driver)[0] == pool
    assert one({"name": "w", "workload": workload}, db_driver=driver)["pool"] == pool


def test_driver_from_the_profile_unless_given():
    assert one({"name": "w"}, profile={"db_driver": "pymysql", "workers": []})["pool"] == "gevent"
    assert one({"name": "w"}, profile={"db_driver": "pymysql"}, db_driver="mysqlclient")["pool"] == "threads"
    with pytest.raises(WorkerFlagsError, match="db_driver"):
        one({"name": "w"}, db_driver="oracle")


def test_gevent_with_mysqlclient_warns():
    result = plan([{"name": "w", "pool": "gevent"}])
    assert any("blocks every greenlet" in x for x in result["warnings"])


@pytest.mark.parametrize("pool,limits,ignored", [
    ("threads", {"time_limit": 300}, "--time-limit"),
    ("threads", {"soft_time_limit": 200}, "--soft-time-limit"),
    ("solo", {"time_limit": 300}, "--time-limit"),
    ("gevent", {"time_limit": 300, "soft_time_limit": 200}, "--soft-time-limit"),
    ("eventlet", {"soft_time_limit": 200}, "--soft-time-limit"),
])
def test_time_limits_the_pool_ignores(pool, limits, ignored):
    worker = dict({"name": "w", "pool": pool}, **limits)
    result = plan([worker])
    warning = next(x for x in result["warnings"] if "silently" in x)
    assert ignored in warning
    with pytest.raises(WorkerFlagsError, match="strict: false"):
        plan([worker], strict=True)


def test_time_limits_enforced_give_no_warning():
    assert not [x for x in plan([{"name": "w", "pool": "prefork", "time_limit": 300, "soft_time_limit": 200}])["warnings"]
                if "silently" in x]
    assert not [x for x in plan([{"name": "w", "pool": "gevent", "time_limit": 300}])["warnings"] if "silently" in x]


@pytest.mark.parametrize("value", [0, -1, "many", True])
def test_bad_numprocs_refused(value):
    with pytest.raises(WorkerFlagsError, match="numprocs"):
        one({"name": "w", "numprocs": value})
