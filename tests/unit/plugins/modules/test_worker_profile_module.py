# -*- coding: utf-8 -*-
# Copyright: authops.celery_tuning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

import pytest

from ansible.module_utils import basic

from ansible_collections.authops.celery_tuning.plugins.modules import worker_profile

from ansible_collections.authops.celery_tuning.tests.unit.plugins.modules.module_harness import AnsibleExitJson, AnsibleFailJson, module_args


import sys  # noqa: E402

sys.path.insert(0, __import__("os").path.join(__import__("os").path.dirname(__file__), "..", "module_utils"))
from test_worker_profile import doc  # noqa: E402  pylint: disable=wrong-import-position

WORKER = {"pid": 200, "uid": 1000, "argv": ["/venv/bin/python3", "/venv/bin/celery", "-A", "myauth", "worker"],
          "python": "/venv/bin/python3", "cwd": "/tmp"}


@pytest.fixture
def fake_target(monkeypatch):
    calls = []
    state = {"workers": [WORKER], "rc": 0, "out": json.dumps(doc()), "err": ""}

    def run_command(self, cmd, cwd=None, environ_update=None, **kwargs):
        calls.append(dict(cmd=cmd, cwd=cwd, env=environ_update))
        return state["rc"], state["out"], state["err"]

    monkeypatch.setattr(basic.AnsibleModule, "run_command", run_command)
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", lambda self, name, required=False: "/usr/sbin/" + name)
    state["infos"] = [dict(group="myauth", name="worker_00", pid=200, statename="RUNNING"),
                      dict(group="myauth", name="gunicorn", pid=150, statename="RUNNING"),
                      dict(group="myauth", name="worker_01", pid=0, statename="STOPPED"),
                      dict(group="other", name="worker_00", pid=300, statename="RUNNING")]

    def find_workers(app, project_dir=None, pids=None):
        state["pids"] = pids
        return list(state["workers"])

    class Client(object):
        def get_all_process_info(self):
            if state["infos"] is None:
                raise worker_profile.SupervisorError("Connection refused")
            return state["infos"]

    monkeypatch.setattr(worker_profile, "find_workers", find_workers)
    monkeypatch.setattr(worker_profile, "HAS_SUPERVISOR", True)
    monkeypatch.setattr(worker_profile, "connect_from_module_params", lambda params: Client())
    monkeypatch.setattr(worker_profile, "host_facts", lambda: {"cpu_count": 2})
    monkeypatch.setattr(worker_profile.os, "access", lambda path, mode: True)
    monkeypatch.setattr(worker_profile.os, "geteuid", lambda: 0)
    monkeypatch.setattr(worker_profile.pwd, "getpwuid", lambda uid: type("pw", (), {"pw_name": "allianceserver", "pw_gid": 1000}))
    state["calls"] = calls
    return state


def run(args):
    with module_args(args):
        with pytest.raises((AnsibleExitJson, AnsibleFailJson)) as exc:
            worker_profile.main()
    return exc.type, exc.value.args[0]


def test_measures_as_the_workers_user_with_their_environment(fake_target):
    kind, result = run({"window": 10, "_ansible_check_mode": True})
    assert kind is AnsibleExitJson, result
    assert result["changed"] is False
    call = fake_target["calls"][0]
    assert call["cmd"][:4] == ["/usr/sbin/runuser", "-u", "allianceserver", "--"]
    assert call["cmd"][4] == "/venv/bin/python3" and call["cmd"][5] == "-c"
    assert json.loads(call["cmd"][7]) == {"app": "myauth", "window": 10, "interval": 2.0, "timeout": 1.0, "pid": 200}
    assert call["cwd"] == "/tmp" and call["env"] == {"PYTHONDONTWRITEBYTECODE": "1"}
    assert [w["name"] for w in result["workers"]] == ["worker", "worker_services"]
    assert result["workers"][0]["recommended"]["numprocs"] == 2
    assert result["processes"] == [{"pid": 200, "uid": 1000}]


def test_no_workers(fake_target):
    fake_target["workers"] = []
    kind, result = run({})
    assert kind is AnsibleFailJson and "no Celery worker process of app myauth" in result["msg"]
    kind, result = run({"missing_ok": True})
    assert kind is AnsibleExitJson and result["workers"] == []
    assert fake_target["calls"] == []


def test_probe_failure_is_reported(fake_target):
    fake_target.update(rc=1, out="", err="ModuleNotFoundError: No module named 'myauth'")
    kind, result = run({})
    assert kind is AnsibleFailJson and "No module named 'myauth'" in result["msg"]


def test_bad_window_refused_before_anything_runs(fake_target):
    kind, result = run({"window": 2})
    assert kind is AnsibleFailJson and "window" in result["msg"]
    assert fake_target["calls"] == []


def test_the_workers_are_the_groups_processes(fake_target):
    kind, result = run({"window": 10})
    assert kind is AnsibleExitJson, result
    assert fake_target["pids"] == [150, 200]  # the group's running processes only, from getAllProcessInfo


def test_without_supervisord_the_workers_are_looked_for_in_proc(fake_target, monkeypatch):
    warnings = []
    monkeypatch.setattr(basic.AnsibleModule, "warn", lambda self, msg: warnings.append(msg))
    fake_target["infos"] = None
    kind, result = run({"window": 10})
    assert kind is AnsibleExitJson, result
    assert fake_target["pids"] is None
    assert any("supervisord not reached" in w for w in warnings)
