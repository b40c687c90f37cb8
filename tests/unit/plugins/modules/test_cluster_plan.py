# -*- coding: utf-8 -*-
# Copyright: authops.celery_tuning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import json

import pytest

from ansible.module_utils import basic
from ansible.module_utils.common.text.converters import to_bytes

from ansible_collections.authops.celery_tuning.plugins.modules import cluster_plan
from ansible_collections.authops.celery_tuning.plugins.module_utils.programs import plan_group

try:  # ansible-core >= 2.19
    from ansible.module_utils.testing import patch_module_args
except ImportError:  # pragma: no cover - older ansible-core
    patch_module_args = None


class AnsibleExitJson(Exception):
    pass


class AnsibleFailJson(Exception):
    pass


def exit_json(self, **kwargs):
    kwargs.setdefault("changed", False)
    kwargs["warnings_emitted"] = list(self._test_warnings)
    kwargs["check_mode_seen"] = self.check_mode
    raise AnsibleExitJson(kwargs)


def fail_json(self, **kwargs):
    kwargs["failed"] = True
    raise AnsibleFailJson(kwargs)


def warn(self, warning):
    self._test_warnings.append(warning)


@contextlib.contextmanager
def module_args(args):
    if patch_module_args is not None:
        with patch_module_args(args):
            yield
        return
    old = basic._ANSIBLE_ARGS  # pragma: no cover
    basic._ANSIBLE_ARGS = to_bytes(json.dumps({"ANSIBLE_MODULE_ARGS": args}))  # pragma: no cover
    try:  # pragma: no cover
        yield
    finally:  # pragma: no cover
        basic._ANSIBLE_ARGS = old


@pytest.fixture(autouse=True)
def patched_module(monkeypatch):
    monkeypatch.setattr(basic.AnsibleModule, "exit_json", exit_json)
    monkeypatch.setattr(basic.AnsibleModule, "fail_json", fail_json)
    monkeypatch.setattr(basic.AnsibleModule, "warn", warn)
    monkeypatch.setattr(basic.AnsibleModule, "_test_warnings", [], raising=False)
    yield


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
