# -*- coding: utf-8 -*-
# Copyright: authops.celery_tuning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.authops.celery_tuning.plugins.modules import cluster_plan
from ansible_collections.authops.celery_tuning.plugins.module_utils.programs import plan_group

from ansible_collections.authops.celery_tuning.tests.unit.plugins.modules.module_harness import AnsibleExitJson, AnsibleFailJson, module_args


LAYOUT = dict(directory="/home/allianceserver/myauth", user="allianceserver", log_dir="/var/log/supervisor/myauth",
              group_name="myauth", app="myauth", celery_bin="/home/allianceserver/venv/auth/bin/celery")


def plan(workers, budget=100):
    return plan_group(workers, LAYOUT, worker_defaults={"node_name": "%(program_name)s_%(process_num)02d@%h"},
                      cpu_count=1, memory_total="4GB", db_connection_budget=budget)


def hosts(budget=100, web2=False):
    web = [{"name": "beat", "beat": True}, {"name": "worker"},
           {"name": "worker_services", "queues": ["services"], "single_threaded": True}]
    return {"auth1": {"role": "web", "plan": plan(web, budget)},
            "auth2": {"role": "web" if web2 else "worker", "plan": plan(web if web2 else [{"name": "worker"}], budget)}}


def run(args):
    with module_args(args):
        with pytest.raises((AnsibleExitJson, AnsibleFailJson)) as exc:
            cluster_plan.main()
    return exc.type, exc.value.args[0]


def test_a_good_cluster():
    kind, result = run({"hosts": hosts(), "_ansible_check_mode": True})
    assert kind is AnsibleExitJson
    assert result["changed"] is False and result["check_mode_seen"] is True
    assert result["beat_host"] == "auth1"
    assert result["hosts"]["auth2"]["nodes"] == ["worker_00@auth2"]
    assert "warnings" not in result


def test_two_beats_fail_naming_the_hosts():
    kind, result = run({"hosts": hosts(web2=True)})
    assert kind is AnsibleFailJson
    assert "2 hosts run beat (auth1, auth2)" in result["msg"]


def test_the_cluster_budget():
    kind, result = run({"hosts": hosts(budget=30)})
    assert kind is AnsibleFailJson and "but the database's budget is 30" in result["msg"]
    kind, result = run({"hosts": hosts(budget=30), "db_connection_budget": 100})
    assert kind is AnsibleExitJson and result["db_connection_budget"] == 100


def test_hosts_outside_the_play_warn():
    kind, result = run({"hosts": {"auth2": hosts()["auth2"]}, "outside": {"auth1": "web"}})
    assert kind is AnsibleExitJson
    assert result["beat_host"] == "auth1"
    assert any("count for beat only" in w for w in result["warnings_emitted"])
