#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: authops.celery_tuning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: run_lock
short_description: One tuning run at a time on a host (a lease in a root-only file under /run)
version_added: "0.3.0"
description:
  - Takes, gives back or reads the run lock of one group on the host, so that two runs against the same
    server never interleave (one restarting gunicorn under the other's graceful stop).
  - A second run waits for the lock up to O(wait) seconds, then fails with a message that names the run that
    holds it, since when, and when its lease ends.
  - A run that dies (its controller killed) cannot give the lock back. A re-run from the same controller takes
    it over at once (O(break_owner), once the controller has seen that the dead run's process is gone);
    otherwise the lock ends with its O(lease), counted from the run's last step on the host, or a run with
    O(break_lock=true) takes it over. The record lives under C(/run), so a reboot clears it.
  - While a step of M(authops.celery_tuning.supervisor_group) changes the group, it holds the group's busy file
    (C(<name>.busy)) and renews the lease. No run takes over a lock (by lease, O(break_owner) or O(break_lock))
    while the group is busy, so a dead run's step that still works on the host is never interleaved with.
  - The lock is the runs' own bookkeeping, not a setting of the host, so the module never reports a change.
author:
  - authops maintainers (@authops)
extends_documentation_fragment:
  - authops.celery_tuning.attributes
attributes:
  check_mode:
    support: full
    details:
      - In check mode the lock is only read; a run holding it is reported as a warning.
  diff_mode:
    support: none
  idempotent:
    support: full
options:
  name:
    description:
      - The lock's name, the Auth group's (C(myauth)). Letters, digits, C(.), C(_) and C(-).
    type: str
    required: true
  state:
    description:
      - V(acquired) takes the lock (or renews it, when O(owner) holds it already); V(released) gives it back
        when O(owner) holds it; V(query) only reads it.
    type: str
    choices: [acquired, released, query]
    default: acquired
  owner:
    description:
      - A token unique to the run (the playbooks make one per run). Needed to take or give back the lock.
    type: str
  description:
    description:
      - Who the run is, for the other run's message (controller user and host, start time).
    type: str
  wait:
    description:
      - Seconds to wait for another run's lock before failing.
    type: int
    default: 300
  lease:
    description:
      - Seconds the lock lasts from its last renewal unless given back (at least 60). The playbooks renew it
        before each role's changes, and M(authops.celery_tuning.supervisor_group) while it replaces the group,
        so it needs to outlast only the longest other step (a package install).
    type: int
    default: 300
  controller_run:
    description:
      - The controller process of the run (the playbooks pass boot id, pid and start time of their
        C(ansible-playbook) process and the controller's host name), kept in the record, so that a re-run from
        the same controller can tell that this run is dead.
    type: str
    version_added: 0.3.0
  break_owner:
    description:
      - Take the lock over when this run (an O(owner) token) holds it, as when the controller has seen that
        the run's process is gone. Another holder is waited for as usual.
    type: str
    version_added: 0.3.0
  break_lock:
    description:
      - Take the lock even when another run holds it (that run is known to be dead).
    type: bool
    default: false
  directory:
    description:
      - Where the lock files live. Made root's, mode 0700, when missing; refused when anyone else can write to it.
    type: path
    default: /run/authops-celery-tuning
"""

EXAMPLES = r"""
- name: Take the host's run lock before the first change
  authops.celery_tuning.run_lock:
    name: myauth
    owner: "{{ run_id }}"
    description: "admin@laptop, started 2026-12-02 10:00"

- name: Give it back at the end
  authops.celery_tuning.run_lock:
    name: myauth
    owner: "{{ run_id }}"
    state: released
"""

RETURN = r"""
held:
  description: Whether a live lock exists after the call (this run's after V(acquired)).
  returned: always
  type: bool
  sample: true
holder:
  description:
    - The run that holds the lock, with C(owner), C(description), C(acquired) and C(expires) (epoch seconds),
      C(lease) and C(run) (its O(controller_run)) where known.
    - Also when the module fails because another run holds the lock (after O(wait)), or, with C(owner) null and
      C(busy_pid), because a step of another run still changes the group.
  returned: always
  type: dict
  sample: {"owner": "k3j2h1", "description": "admin@laptop"}
waited:
  description: Seconds this run waited for another run's lock.
  returned: with O(state=acquired)
  type: float
  sample: 12.0
waited_for:
  description: The run this one waited for (its description), else null.
  returned: with O(state=acquired)
  type: str
  sample: "admin@laptop, started 2026-12-02 10:00:00 UTC"
broken:
  description: The live lock of another run that O(break_lock) or O(break_owner) took over, else null.
  returned: with O(state=acquired)
  type: dict
released:
  description: Whether this run's lock was given back.
  returned: with O(state=released)
  type: bool
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.authops.celery_tuning.plugins.module_utils.run_lock import DEFAULT_DIRECTORY, LockError, run_lock


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type='str', required=True),
            state=dict(type='str', default='acquired', choices=['acquired', 'released', 'query']),
            owner=dict(type='str'),
            description=dict(type='str'),
            wait=dict(type='int', default=300),
            lease=dict(type='int', default=300),
            controller_run=dict(type='str'),
            break_owner=dict(type='str'),
            break_lock=dict(type='bool', default=False),
            directory=dict(type='path', default=DEFAULT_DIRECTORY),
        ),
        supports_check_mode=True,
    )
    try:
        result = run_lock(module.params, check_mode=module.check_mode)
    except LockError as exc:
        if exc.holder:
            module.fail_json(msg=str(exc), held=True, holder=exc.holder)
        module.fail_json(msg=str(exc))
    warning = result.pop('warning', None)
    if warning:
        module.warn(warning)
    module.exit_json(changed=False, **result)


if __name__ == '__main__':
    main()
