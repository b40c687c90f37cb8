# -*- coding: utf-8 -*-
# Copyright: authops.celery_tuning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy

import pytest

from ansible_collections.authops.celery_tuning.plugins.module_utils.cluster import (
    ClusterError,
    expand_node_name,
    plan_cluster,
    worker_nodes,
    check_member,
    host_nodes,
)
from ansible_collections.authops.celery_tuning.plugins.module_utils.programs import plan_group

CLUSTER_NODE = "%(program_name)s_%(process_num)02d@%h"
LAYOUT = dict(directory="/home/allianceserver/myauth", user="allianceserver", log_dir="/var/log/supervisor/myauth",
              group_name="myauth", app="myauth", celery_bin="/home/allianceserver/venv/auth/bin/celery")
WEB_WORKERS = [{"name": "beat", "beat": True}, {"name": "worker", "workload": "io"},
               {"name": "worker_services", "queues": ["services"], "single_threaded": True}]


def real_plan(workers, node_name=CLUSTER_NODE, budget=100, cpu_count=1, hosts=1):
    """What worker_flags returns on a host with 1 CPU and 4 GiB (one process per worker; the planner itself)."""
    defaults = {"node_name": node_name} if node_name else {}
    return plan_group(workers, LAYOUT, worker_defaults=defaults, cpu_count=cpu_count, memory_total="4GB",
                      db_connection_budget=budget, db_connection_hosts=hosts)


def member(role, workers, **kwargs):
    return dict(role=role, nodename=kwargs.pop("nodename", None), group_name="myauth", plan=real_plan(workers, **kwargs))


def web_and_worker(**kwargs):
    return {"auth1": member("web", WEB_WORKERS, nodename="auth1", **kwargs),
            "auth2": member("worker", [{"name": "worker", "workload": "io"}], nodename="auth2", **kwargs)}


# -- node names --------------------------------------------------------------------------------

@pytest.mark.parametrize("template, expected", [
    ("%(program_name)s_%(process_num)02d", "celery@worker_03"),
    ("%(program_name)s_%(process_num)02d@%h", "worker_03@auth2.example.org"),
    ("%(program_name)s@%n", "worker@auth2"),
    ("x@%d", "x@example.org"),
    ("%(group_name)s-%(process_num)d@%h", "myauth-3@auth2.example.org"),
    ("100%%@%h", "100%@auth2.example.org"),
])
def test_expand_node_name(template, expected):
    assert expand_node_name(template, "worker", 3, "auth2.example.org", group_name="myauth") == expected


def test_expand_node_name_refuses_what_it_cannot_know():
    with pytest.raises(ClusterError, match="ENV_HOST"):
        expand_node_name("%(ENV_HOST)s", "worker", 0, "auth2")


def test_worker_nodes_skip_beat_and_count_processes():
    m = check_member("auth1", member("web", WEB_WORKERS + [{"name": "bulk", "numprocs": 2, "queues": ["bulk"]}],
                                     nodename="auth1"))
    nodes = worker_nodes(m)
    assert [n["node"] for n in nodes] == ["worker_00@auth1", "worker_services_00@auth1", "bulk_00@auth1",
                                          "bulk_01@auth1"]
    assert nodes[0]["queues"] == ["celery"] and nodes[1]["queues"] == ["services"]
    assert nodes[1]["slots"] == 1 and nodes[1]["pool"] == "prefork"


def test_host_nodes_of_a_single_server_are_auth_s_names():
    """One server (no cluster): the nodes its workers register, as Auth 5.x names them; beat is none."""
    nodes = host_nodes("auth1.example.org", real_plan(WEB_WORKERS, node_name=None), "web-01", "myauth")
    assert [(n["node"], n["queues"]) for n in nodes] == [("celery@worker_00", ["celery"]),
                                                         ("celery@worker_services_00", ["services"])]


def test_host_nodes_expand_h_to_the_host_s_own_name_not_the_inventory_s():
    nodes = host_nodes("auth1.example.org", real_plan(WEB_WORKERS), "web-01", "myauth")
    assert [n["node"] for n in nodes] == ["worker_00@web-01", "worker_services_00@web-01"]


def test_host_nodes_refuse_a_plan_that_is_none():
    with pytest.raises(ClusterError, match="celery_workers_plan"):
        host_nodes("auth1", None, "auth1")


# -- a good cluster ------------------------------------------------------------------------------

def test_web_and_worker_host():
    result = plan_cluster(web_and_worker())
    assert result["beat_host"] == "auth1"
    assert result["hosts"]["auth1"]["nodes"] == ["worker_00@auth1", "worker_services_00@auth1"]
    assert result["hosts"]["auth2"]["nodes"] == ["worker_00@auth2"]
    assert result["hosts"]["auth2"]["beat"] is False
    per_host = [result["hosts"][h]["db_connections"] for h in ("auth1", "auth2")]
    assert result["db_connections"] == sum(per_host) and result["db_connection_budget"] == 100
    assert result["hosts"]["auth2"]["db_share_percent"] == per_host[1]
    assert [c["host"] for c in result["queues"]["celery"]] == ["auth1", "auth2"]
    assert [c["node"] for c in result["queues"]["services"]] == ["worker_services_00@auth1"]
    assert any(line.startswith("auth2 (worker): worker_00@auth2 threads x") for line in result["explain"])
    assert any("pauses while auth1 is applied" in line for line in result["explain"])
    assert result["warnings"] == []


def test_default_plans_of_two_2_cpu_hosts_fit_one_budget_when_each_plans_its_share():
    # alone, each host plans threads 32 x 2: 66 + 64 connections, over the cluster's 100
    alone = web_and_worker(cpu_count=2)
    with pytest.raises(ClusterError, match=r"hold 130 DB connections together \(auth1 66, auth2 64\)"):
        plan_cluster(alone)
    # the role's default in a cluster (celery_workers_db_connection_hosts: the hosts of the cluster)
    result = plan_cluster(web_and_worker(cpu_count=2, hosts=2))
    assert result["db_connection_budget"] == 100
    assert [result["hosts"][h]["db_connections"] for h in ("auth1", "auth2")] == [50, 50]
    assert any(line.startswith("auth2 (worker): worker_00@auth2 threads x25, worker_01@auth2 threads x25")
               for line in result["explain"])


def test_queue_on_one_host_only_is_reported():
    hosts = web_and_worker(budget=50)
    hosts["auth1"]["plan"] = real_plan(WEB_WORKERS + [{"name": "bulk", "queues": ["bulk"]}], budget=50)
    # three auto workers of 32 slots: each host plans within its share of the cluster's 100
    result = plan_cluster(hosts, 100)
    assert result["warnings"] == ["queue bulk is consumed on auth1 only: it pauses while auth1 is applied; "
                                  "give it a worker on another host to keep it consumed"]


def test_nodename_defaults_to_the_inventory_name():
    hosts = web_and_worker()
    hosts["auth2"]["nodename"] = None
    assert plan_cluster(hosts)["hosts"]["auth2"]["nodes"] == ["worker_00@auth2"]


# -- refusals --------------------------------------------------------------------------------------

def test_two_beats_are_refused_naming_the_hosts():
    hosts = web_and_worker()
    hosts["auth2"] = member("web", [{"name": "beat", "beat": True}, {"name": "worker"}], nodename="auth2")
    with pytest.raises(ClusterError, match=r"2 hosts run beat \(auth1, auth2\).*sent 2 times"):
        plan_cluster(hosts)


def test_no_beat_is_refused_naming_the_hosts():
    hosts = web_and_worker()
    hosts["auth1"] = member("worker", [{"name": "worker"}], nodename="auth1")
    with pytest.raises(ClusterError, match=r"no host of the cluster runs beat \(auth1, auth2\)"):
        plan_cluster(hosts)


def test_a_beat_outside_the_play_counts():
    hosts = {"auth2": web_and_worker()["auth2"]}
    result = plan_cluster(hosts, outside={"auth1": "web"})
    assert result["beat_host"] == "auth1"
    assert "count for beat only" in result["warnings"][0]
    with pytest.raises(ClusterError, match=r"2 hosts run beat \(auth1, auth3\)"):
        plan_cluster(web_and_worker(), outside={"auth3": "web", "auth4": "worker"})


def test_same_node_names_on_two_hosts_are_refused():
    hosts = web_and_worker(node_name=None)  # stock Auth names: worker_00 everywhere
    with pytest.raises(ClusterError, match=r"node name celery@worker_00 is used by worker_00 on auth1 and by "
                                           r"worker_00 on auth2.*@%h"):
        plan_cluster(hosts)


def test_two_services_workers_are_refused():
    hosts = web_and_worker()
    hosts["auth2"]["plan"] = real_plan(WEB_WORKERS[1:])
    with pytest.raises(ClusterError, match=r"queue services must run one task at a time in the whole cluster.*"
                                           r"worker_services_00@auth1 on auth1 \(1 slot\), "
                                           r"worker_services_00@auth2 on auth2 \(1 slot\)"):
        plan_cluster(hosts)


def test_services_with_two_slots_on_one_host_is_refused():
    hosts = web_and_worker()
    hosts["auth2"]["plan"] = real_plan([{"name": "worker", "queues": ["celery", "services"], "concurrency": 2}])
    with pytest.raises(ClusterError, match=r"worker_00@auth2 on auth2 \(2 slots\)"):
        plan_cluster(hosts)


def test_budget_that_fails_only_summed_over_the_cluster():
    hosts = web_and_worker(budget=30)
    each = [hosts[h]["plan"]["budget"]["db_connections"] for h in ("auth1", "auth2")]
    assert max(each) <= 30 < sum(each)  # every host alone is within its budget
    with pytest.raises(ClusterError, match=r"may hold %d DB connections together \(auth1 %d, auth2 %d\) but the "
                                           r"database's budget is 30" % (sum(each), each[0], each[1])):
        plan_cluster(hosts)


def test_the_cluster_budget_given_once():
    hosts = web_and_worker()
    total = plan_cluster(hosts)["db_connections"]
    assert plan_cluster(hosts, db_connection_budget=total)["db_connection_budget"] == total
    with pytest.raises(ClusterError, match="celery_tuning_db_connection_budget"):
        plan_cluster(hosts, db_connection_budget=total - 1)
    with pytest.raises(ClusterError, match="at least 1"):
        plan_cluster(hosts, db_connection_budget=0)


def test_different_per_host_budgets_need_the_cluster_budget():
    hosts = web_and_worker()
    hosts["auth2"]["plan"] = real_plan([{"name": "worker"}], budget=50)
    with pytest.raises(ClusterError, match=r"different celery_workers_db_connection_budget values "
                                           r"\(auth1=100, auth2=50\)"):
        plan_cluster(hosts)
    assert plan_cluster(hosts, db_connection_budget=100)["db_connection_budget"] == 100


# -- input -------------------------------------------------------------------------------------

@pytest.mark.parametrize("change, message", [
    (lambda h: h["auth2"].update(role="db"), "celery_workers_host_role 'db' is not one of web, worker"),
    (lambda h: h["auth2"].update(plan=None), "no plan of its workers"),
    (lambda h: h.update(auth3="x"), "host auth3: expected a dict"),
    (lambda h: h["auth2"].update(nodename="auth2\n[program:x]"), "nodename"),
    (lambda h: h.update({"auth3\n[program:x]": h["auth2"]}), "host"),
    (lambda h: h["auth2"]["plan"]["budget"].update(db_connections="many"), "must be an integer"),
])
def test_bad_input_is_refused(change, message):
    hosts = copy.deepcopy(web_and_worker())
    change(hosts)
    with pytest.raises(ClusterError, match=message):
        plan_cluster(hosts)


def test_bad_role_outside_the_play():
    with pytest.raises(ClusterError, match="host auth3: celery_workers_host_role 'db'"):
        plan_cluster(web_and_worker(), outside={"auth3": "db"})


def test_no_hosts():
    with pytest.raises(ClusterError, match="hosts is empty"):
        plan_cluster({})


def test_cluster_node_name_reaches_the_command_escaped():
    """supervisor expands %(...)s and turns %% into %: Celery gets --hostname=worker_00@%h."""
    worker = [w for w in real_plan(WEB_WORKERS)["workers"] if w["name"] == "worker"][0]
    assert "--hostname=%(program_name)s_%(process_num)02d@%h" in worker["argv"]
    assert "--hostname=%(program_name)s_%(process_num)02d@%%h" in worker["command"]
