# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The readiness wait's filters: a host's nodes by its own plan, and a refusal as a filter error."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.authops.celery_tuning.plugins.filter.readiness import FilterModule, celery_nodes
from ansible_collections.authops.celery_tuning.plugins.module_utils.programs import plan_group

LAYOUT = dict(directory="/home/allianceserver/myauth", user="allianceserver", log_dir="/var/log/supervisor/myauth",
              group_name="myauth", app="myauth", celery_bin="/home/allianceserver/venv/auth/bin/celery")


def test_celery_nodes_of_auth_s_default_plan():
    plan = plan_group([{"name": "beat", "beat": True}, {"name": "worker", "workload": "io"},
                       {"name": "worker_services", "queues": ["services"], "single_threaded": True}],
                      LAYOUT, cpu_count=2, memory_total="4GB")
    assert celery_nodes(plan, "auth1", "auth1", "myauth") == {
        "celery@worker_00": ["celery"], "celery@worker_01": ["celery"], "celery@worker_services_00": ["services"]}


def test_celery_nodes_refuses_what_it_cannot_expand():
    plan = {"workers": [{"name": "worker", "node_name": "%(ENV_X)s"}]}
    with pytest.raises(AnsibleFilterError, match="ENV_X"):
        celery_nodes(plan, "auth1", "auth1")


def test_filters_are_registered():
    assert sorted(FilterModule().filters()) == ["celery_nodes", "celery_ready_problems"]
