#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: authops.celery_tuning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: cluster_plan
short_description: Check the plans of several Alliance Auth hosts that share one broker and one database
version_added: "0.2.0"
description:
  - Takes the plan of every host (what M(authops.celery_tuning.worker_flags) returned there, published by the
    C(celery_workers) role as C(celery_workers_plan)) and checks what only the whole cluster can tell, before
    anything changes on any host. Run it once (C(run_once)) with every host of the play.
  - Exactly one host runs beat. None (periodic tasks never run) or several (each runs once per beat) is refused,
    naming the hosts.
  - The workers' node names, as supervisor and Celery expand them (C(%(program_name\)s), C(%(process_num\)02d),
    Celery's C(%h), C(%n), C(%d); C(celery@) added to a name without C(@)), are unique across the hosts.
  - The queue C(services) has one slot in the whole cluster (Auth's Discord role sync breaks with two tasks at a
    time).
  - The DB connections of all hosts' workers (every pool slot may hold one) fit the database's one budget,
    O(db_connection_budget), else the hosts' common C(budget.db_connection_budget) (hosts that disagree are
    refused).
  - Returns each host's share of the budget, its node names and queues, which nodes consume each queue, and
    the beat host. A queue consumed on one host only is reported (it pauses while that host is applied).
  - The module never changes anything on the target.
author:
  - authops maintainers (@authops)
extends_documentation_fragment:
  - authops.celery_tuning.attributes.INFO_MODULE
options:
  hosts:
    description:
      - Every host of the play, name to a dict with C(role) (C(web) or C(worker)), C(nodename) (the host name
        Celery's C(%h) expands to; default the key), C(group_name) (the supervisor group) and C(plan) (the host's
        C(celery_workers_plan), or at least its C(workers) and C(budget)).
    type: dict
    required: true
  db_connection_budget:
    description:
      - The connections the whole cluster's workers may hold in the shared database (MariaDB's
        C(max_connections) less what the website and admins need).
      - Default the hosts' common C(budget.db_connection_budget).
    type: int
  outside:
    description:
      - Hosts of the cluster that this play leaves out (C(--limit)), name to their role (C(web) or C(worker)).
        A web host among them runs beat; they count for the beat check only.
    type: dict
    default: {}
"""

EXAMPLES = r"""
- name: Check the cluster before anything changes
  authops.celery_tuning.cluster_plan:
    hosts: "{{ dict(ansible_play_hosts | zip(ansible_play_hosts | map('extract', hostvars, 'member'))) }}"
  run_once: true
  register: cluster
"""

RETURN = r"""
beat_host:
  description: The one host that runs beat.
  returned: success
  type: str
  sample: auth1
hosts:
  description: Per host its C(role), C(beat), C(db_connections), C(db_share_percent) (of the budget), C(nodes) and C(queues).
  returned: success
  type: dict
  sample: {"auth2": {"role": "worker", "beat": false, "db_connections": 20, "db_share_percent": 20,
                     "nodes": ["worker_00@auth2"], "queues": ["celery"]}}
nodes:
  description: Every Celery node of the cluster with C(node), C(host), C(worker), C(process), C(pool), C(slots) and C(queues).
  returned: success
  type: list
  elements: dict
queues:
  description: Queue name to the nodes consuming it, each with C(host), C(node) and C(slots).
  returned: success
  type: dict
  sample: {"services": [{"host": "auth1", "node": "worker_services_00@auth1", "slots": 1}]}
db_connections:
  description: The DB connections all hosts' workers may hold together.
  returned: success
  type: int
  sample: 41
db_connection_budget:
  description: The database's budget they were checked against.
  returned: success
  type: int
  sample: 100
explain:
  description: One line per host with its share, the total, and one line per queue.
  returned: success
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.authops.celery_tuning.plugins.module_utils.cluster import ClusterError, plan_cluster


def main():
    module = AnsibleModule(
        argument_spec=dict(
            hosts=dict(type='dict', required=True),
            db_connection_budget=dict(type='int'),
            outside=dict(type='dict', default={}),
        ),
        supports_check_mode=True,
    )
    try:
        result = plan_cluster(module.params['hosts'], module.params['db_connection_budget'],
                              module.params['outside'])
    except ClusterError as exc:
        module.fail_json(msg=str(exc))
    for warning in result.pop('warnings'):
        module.warn(warning)
    module.exit_json(changed=False, **result)


if __name__ == '__main__':
    main()
