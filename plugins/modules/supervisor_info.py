#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: authops.celery_tuning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: supervisor_info
short_description: Report supervisor processes with their live memory and command lines
version_added: "0.1.0"
description:
  - Asks supervisord over its XML-RPC socket which processes a group or program has, and adds what
    C(/proc) says about each one, the resident memory of the process and of its whole tree (prefork
    children included), and its command line.
  - The celery_workers role uses it to measure the workers' baseline memory before it sets limits;
    the status playbook uses it to show each process against its limit.
author:
  - authops maintainers (@authops)
extends_documentation_fragment:
  - authops.celery_tuning.connection
  - authops.celery_tuning.attributes.INFO_MODULE
options:
  name:
    description:
      - A group (Auth's C(myauth)), a program (C(worker)), or a process (C(worker_00) or C(myauth:worker_00)).
      - All processes when omitted.
    type: str
  missing_ok:
    description:
      - Return an empty list instead of failing when the socket does not exist, nothing listens on it
        (supervisord is down) or O(name) is unknown, for example on a host where the group is not
        installed yet.
      - Also when the C(supervisor) Python package is missing and neither the socket nor the config file
        exists (supervisor not installed yet).
    type: bool
    default: false
requirements:
  - The C(supervisor) Python package for the target's Python (Debian's and Ubuntu's C(supervisor) package
    installs it for C(/usr/bin/python3)).
notes:
  - The program of a process is its name without a trailing C(_NN), as Auth's
    C(process_name=%(program_name)s_%(process_num)02d) makes them; supervisor does not report it.
"""

EXAMPLES = r"""
- name: Show the Auth workers with their memory
  authops.celery_tuning.supervisor_info:
    name: myauth
  register: auth_processes

- name: Print each worker's resident memory
  ansible.builtin.debug:
    msg: "{{ item.name }}: {{ item.tree_rss_bytes | human_readable }}"
  loop: "{{ auth_processes.processes }}"
"""

RETURN = r"""
found:
  description: Whether supervisord answered and knew O(name).
  returned: success
  type: bool
processes:
  description: One entry per process.
  returned: success
  type: list
  elements: dict
  contains:
    name:
      description: Process name.
      type: str
      sample: worker_00
    group:
      description: Group name.
      type: str
      sample: myauth
    full_name:
      description: C(group:name), as supervisorctl takes it.
      type: str
    program:
      description: The program the process belongs to (see notes).
      type: str
      sample: worker
    state:
      description: supervisor state name (RUNNING, STOPPED, FATAL, ...).
      type: str
    pid:
      description: Process id, 0 when not running.
      type: int
    description:
      description: supervisor's description of the state.
      type: str
    uptime_seconds:
      description: Seconds since the process started, 0 when not running.
      type: int
    stopwaitsecs:
      description: The program's stopwaitsecs.
      type: int
    startsecs:
      description: The program's startsecs.
      type: int
    cmdline:
      description: The process's argv as read from /proc, null when not running.
      type: list
      elements: str
    rss_bytes:
      description: Resident memory of the process itself.
      type: int
    tree_rss_bytes:
      description: Resident memory of the process and all its descendants (prefork children).
      type: int
    children:
      description: Descendant processes with their pid and rss_bytes.
      type: list
      elements: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.authops.celery_tuning.plugins.module_utils.supervisor_rpc import (
    HAS_SUPERVISOR,
    SUPERVISOR_IMPORT_ERROR,
    missing_supervisor_message,
    KIND_BAD_NAME,
    KIND_REFUSED,
    KIND_SOCKET_MISSING,
    SupervisorError,
    connect_from_module_params,
    connection_argument_spec,
    visibly_absent,
)
from ansible_collections.authops.celery_tuning.plugins.module_utils.supervisor_status import collect


def main():
    spec = connection_argument_spec()
    spec.update(
        name=dict(type='str'),
        missing_ok=dict(type='bool', default=False),
    )
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    p = module.params
    if not HAS_SUPERVISOR:
        if p['missing_ok'] and visibly_absent(p['socket'], p['config_file']):
            module.exit_json(changed=False, found=False, processes=[])
        module.fail_json(msg=missing_supervisor_message(), exception=SUPERVISOR_IMPORT_ERROR)
    try:
        client = connect_from_module_params(p)
        processes = collect(client, p['name'])
    except SupervisorError as exc:
        if p['missing_ok'] and exc.kind in (KIND_BAD_NAME, KIND_REFUSED, KIND_SOCKET_MISSING):
            module.exit_json(changed=False, found=False, processes=[])
        module.fail_json(msg=exc.msg)
    module.exit_json(changed=False, found=True, processes=processes)


if __name__ == '__main__':
    main()
