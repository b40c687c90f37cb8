# -*- coding: utf-8 -*-
# Copyright: authops.celery_tuning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Filters for tune.yml's readiness wait after a change: the nodes a host's plan runs, and what to tell the user
when they, the broker or the database did not answer (logic in module_utils: cluster, readiness)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.authops.celery_tuning.plugins.module_utils.cluster import ClusterError, host_nodes
from ansible_collections.authops.celery_tuning.plugins.module_utils.readiness import expected_queues, ready_problems


def celery_nodes(plan, host, nodename, group_name=None):
    """``{node: [queues]}`` of the Celery nodes a host runs by its plan (the readiness script's EXPECT_JSON)."""
    try:
        return expected_queues(host_nodes(host, plan, nodename, group_name))
    except ClusterError as exc:
        raise AnsibleFilterError(str(exc))


def celery_ready_problems(result, wait, group_name="myauth", runner="the Auth user"):
    """One message per thing that did not answer within ``wait`` seconds; [] when the host serves again."""
    return ready_problems(result, wait, group_name, runner)


class FilterModule(object):
    def filters(self):
        return {
            "celery_nodes": celery_nodes,
            "celery_ready_problems": celery_ready_problems,
        }
