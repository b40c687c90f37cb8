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
  paths:
    description:
      - Files and directories to report on in RV(paths), read-only, in this same run.
      - Absolute paths, used as given (no C(~) or variable expansion), so that they are the keys of RV(paths).
      - The supervisor role passes its own files, so that a re-run skips the tasks that would write what is
        already in place (see the filter P(authops.celery_tuning.in_place#filter)).
    type: list
    elements: str
    default: []
  packages:
    description:
      - OS package specs to look up in the package database of O(package_manager); the ones not installed are
        in RV(packages_missing).
      - apt's C(name) or C(name=version) (looked up with C(dpkg-query)), or dnf's C(name) or C(name-version)
        (looked up with C(rpm -q)); the version may hold a glob.
    type: list
    elements: str
    default: []
  package_manager:
    description:
      - The package manager whose database O(packages) are looked up in.
    type: str
    choices: [apt, dnf]
    default: apt
    version_added: "0.2.0"
  venv:
    description:
      - A virtualenv to check O(venv_requirements) against.
    type: path
  venv_requirements:
    description:
      - Requirements (C(name==version) pins) to look up in O(venv); the ones not installed as pinned are in
        RV(venv_missing). Anything but a plain pin counts as missing.
    type: list
    elements: str
    default: []
  service:
    description:
      - A systemd unit (C(supervisor)) whose enabled and active state to report in RV(service).
    type: str
  settle_timeout:
    description:
      - Seconds to wait while supervisord is in the middle of a shutdown or restart (it answers C(SHUTDOWN_STATE),
        or it does not answer while the unit O(service) is deactivating or activating), as a run killed while
        it restarted the daemon leaves it. Then it is asked once more, and its answer counts.
      - V(0) asks once.
    type: int
    default: 0
    version_added: 0.3.0
  root_safe:
    description:
      - Paths root runs code from or writes to (memmon's virtualenv); for each, RV(root_safe) lists why root must
        not trust it, with every entry below a directory checked too.
      - A path is root-safe when every component from C(/) down, symbolic links followed (and each link checked
        without following it), is owned by root and writable by neither group nor others; one that does not exist
        yet counts as safe when root creates it in a safe directory.
    type: list
    version_added: "0.2.0"
    elements: str
    default: []
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
paths:
  description: For each of O(paths), what is there now.
  returned: success
  type: dict
  sample:
    /etc/supervisor/supervisord.conf:
      exists: true
      isdir: false
      islnk: false
      mode: "0644"
      uid: 0
      gid: 0
      checksum: 5b0c1e0b3c7a8d7e4f0c2a1b9e8d7c6b5a4f3e2d
packages_missing:
  description: The specs of O(packages) that the package database does not have installed (in the asked version).
  returned: success
  type: list
  elements: str
venv_missing:
  description: The requirements of O(venv_requirements) that O(venv) does not have as pinned.
  returned: success
  type: list
  elements: str
root_safe:
  description: For each of O(root_safe), the reasons root must not trust it (empty when it is root-safe).
  returned: success
  type: dict
  sample: {"/opt/authops-celery-tuning/memmon": []}
service:
  description:
    - The unit of O(service), with C(enabled), C(active) and C(active_state) (systemd's ActiveState), and
      C(need_daemon_reload) (systemd must re-read the unit's files, a drop-in changed); each null when systemctl
      cannot say. Read after the wait of O(settle_timeout).
  returned: when O(service) is set
  type: dict
  sample: {name: supervisor, enabled: true, active: true, active_state: active, need_daemon_reload: false}
settled_after:
  description: Seconds waited for a shutdown or restart of supervisord that was under way (O(settle_timeout)).
  returned: when supervisord answered
  type: float
  sample: 0.0
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.authops.celery_tuning.plugins.module_utils.supervisor_rpc import connection_argument_spec
from ansible_collections.authops.celery_tuning.plugins.module_utils.root_safe import root_safe_tree_problems
from ansible_collections.authops.celery_tuning.plugins.module_utils.supervisor_status import read_daemon
from ansible_collections.authops.celery_tuning.plugins.module_utils.host_packages import packages_missing
from ansible_collections.authops.celery_tuning.plugins.module_utils.in_place import path_states
from ansible_collections.authops.celery_tuning.plugins.module_utils.systemd_units import service_state
from ansible_collections.authops.celery_tuning.plugins.module_utils.venv_state import (
    venv_requirements_missing,
)


def main():
    spec = connection_argument_spec()
    spec.update(
        name=dict(type='str'),
        missing_ok=dict(type='bool', default=False),
        paths=dict(type='list', elements='str', default=[]),
        packages=dict(type='list', elements='str', default=[]),
        package_manager=dict(type='str', choices=['apt', 'dnf'], default='apt'),
        venv=dict(type='path'),
        venv_requirements=dict(type='list', elements='str', default=[]),
        service=dict(type='str'),
        root_safe=dict(type='list', elements='str', default=[]),
        settle_timeout=dict(type='int', default=0),
    )
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    p = module.params
    host = dict(paths=path_states(p['paths']),
                packages_missing=packages_missing(module.run_command, module.get_bin_path, p['packages'],
                                                  p['package_manager']),
                venv_missing=venv_requirements_missing(p['venv'], p['venv_requirements']),
                root_safe=dict((path, root_safe_tree_problems(path)) for path in p['root_safe']))
    found, failure = read_daemon(p, lambda: service_state(module.run_command, module.get_bin_path, p['service']))
    if p['service']:  # read after the wait: the unit may have moved on
        host['service'] = service_state(module.run_command, module.get_bin_path, p['service'])
    if failure:
        failure.update(host)
        module.fail_json(**failure)
    host.update(found)
    module.exit_json(changed=False, **host)


if __name__ == '__main__':
    main()
