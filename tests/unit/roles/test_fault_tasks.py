# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The roles' answers to a host in a bad state (README, "Faults"), evaluated with Ansible's own templating:
the supervisor role's refusal of a supervisord that is down (supervisor_start_stopped) and the celery_workers
role's report of the programs that were not running before the run."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

import pytest
import yaml
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar

try:  # ansible-core 2.19 and later template only text marked as trusted
    from ansible.template import trust_as_template
except ImportError:  # 2.18 and earlier trust every string
    def trust_as_template(text):
        return text

ROLES = os.path.join(os.path.dirname(__file__), "..", "..", "..", "roles")


def task(role, tasks_file, name_start):
    with open(os.path.join(ROLES, role, "tasks", tasks_file)) as handle:
        tasks = yaml.safe_load(handle)
    return next(t for t in tasks if t["name"].startswith(name_start))


def template(text, variables):
    return Templar(loader=DataLoader(), variables=variables).template(trust_as_template(text))


def holds(expression, variables):
    return template("{{ 'yes' if (%s) else 'no' }}" % expression, variables) == "yes"


def test_the_default_starts_a_stopped_supervisord():
    with open(os.path.join(ROLES, "supervisor", "defaults", "main.yml")) as handle:
        assert yaml.safe_load(handle)["supervisor_start_stopped"] is True


@pytest.mark.parametrize("start_stopped, found, missing, passes", [
    (True, False, [], True),            # down, the default: run.yml starts it
    (False, False, [], False),          # down, told to refuse
    (False, True, [], True),            # running: nothing to refuse
    (False, False, ["supervisor"], True),  # not installed yet: the install starts it
])
def test_refusal_of_a_stopped_supervisord(start_stopped, found, missing, passes):
    refuse = task("supervisor", "preflight.yml", "Refuse to start a supervisord that is down")
    assert refuse["when"] == "supervisor_install_method == 'package'"
    variables = dict(supervisor_start_stopped=start_stopped,
                     __supervisor_live=dict(found=found, packages_missing=missing))
    assert all(holds(that, variables) for that in refuse["ansible.builtin.assert"]["that"]) is passes


def test_the_refusal_names_the_service_and_what_to_do():
    refuse = task("supervisor", "preflight.yml", "Refuse to start a supervisord that is down")
    msg = template(refuse["ansible.builtin.assert"]["fail_msg"], dict(
        _supervisor_layout=dict(service_name="supervisor", socket="/run/supervisor.sock"),
        _supervisor_systemd=True))
    assert "supervisord is not running (supervisor is inactive)" in msg
    assert "systemctl start supervisor" in msg and "supervisor_start_stopped: true" in msg


def test_the_report_of_programs_not_running_before_the_run():
    report = task("celery_workers", "configure.yml", "Say which of the group's programs were not running")
    apply_result = dict(processes=[
        dict(name="myauth:gunicorn", state_before="RUNNING"),
        dict(name="myauth:worker_services_00", state_before="FATAL"),
        dict(name="myauth:worker_00", state_before="STOPPED"),
        dict(name="myauth:worker_01", state_before=None),  # a program the new file adds
    ])
    items = template(report["loop"], dict(__celery_workers_apply=apply_result))
    assert [i["name"] for i in items] == ["myauth:worker_services_00", "myauth:worker_00"]
    assert template(report["ansible.builtin.debug"]["msg"], dict(item=items[0], ansible_check_mode=False)) == \
        "myauth:worker_services_00 was FATAL before this run; started"
    assert template(report["ansible.builtin.debug"]["msg"], dict(item=items[1], ansible_check_mode=True)) == \
        "myauth:worker_00 was STOPPED before this run; would be started"
