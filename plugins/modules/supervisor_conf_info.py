#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: authops.celery_tuning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: supervisor_conf_info
short_description: Read what an Alliance Auth supervisor file runs, for adoption
version_added: "0.2.0"
description:
  - Parses the group file at O(path) with supervisor's own parser (continuation lines, inline
    comments). Once the file is managed by the celery_workers role, it parses Auth's own file instead,
    the one Auth's link pointed to when the role adopted it (named in O(record)), so that an edit of
    C(myauth/supervisor.conf), as Auth's upgrade notes ask for, is followed.
  - Auth's file belongs to the Auth user. It is read as untrusted input. A FIFO, a device or a file only
    root can read is refused, and what it asks for is checked again by M(authops.celery_tuning.worker_flags).
  - RV(changes) says what changed in it since the text recorded by the last run, a line per section and
    option, with the environment's values masked. With C(--diff), the same as a diff.
  - "Returns what the role carries over: every program the plan does not write itself (Auth's
    gunicorn first), with C(%(ENV_X\\)s) references resolved from the file's own
    C([supervisord] environment=); that environment; and the limits of Auth's memmon listener."
  - Anything that cannot be carried over (an unknown C(%(ENV_X\)s), a section other than a program,
    the group or memmon, a program outside the group, a memmon argument the role does not know)
    fails with the file and line, before anything changes.
  - The module never changes anything on the target.
author:
  - authops maintainers (@authops)
extends_documentation_fragment:
  - authops.celery_tuning.attributes.INFO_MODULE
options:
  path:
    description:
      - The group file (Auth's guide symlinks the project's C(supervisor.conf) there).
    type: path
    required: true
  adopted_path:
    description:
      - The copy the role keeps of the file it adopted. Default O(path) with C(.adopted) appended.
    type: path
  record:
    description:
      - The record of the source of intent, a JSON file only the running user (root) reads and writes.
      - It names Auth's file and holds the text the last run followed. The role writes it from
        RV(record_content) before it replaces Auth's link, so that the link's target is never lost.
      - Without it the module reads O(adopted_path) once the file is managed, as earlier releases did.
    type: path
  auth_file:
    description:
      - Auth's file, when O(record) names none (a server tuned before the record existed). Read only
        when it exists.
    type: path
  tuned:
    description:
      - Program names the plan writes itself (beat and the workers); every other program is carried over.
    type: list
    elements: str
    default: []
  marker:
    description:
      - Text that marks a file written by the role.
    type: str
    default: authops.celery_tuning.celery_workers
  paths:
    description:
      - Files and directories to report on in RV(paths) in this same run, read-only.
      - Absolute paths, used as given (no C(~) or variable expansion), so that they are the keys of RV(paths).
      - The celery_workers role passes its group file and log directory, so a re-run skips writing what is
        already in place.
    type: list
    elements: str
    default: []
"""

EXAMPLES = r"""
- name: Read what Auth's group file runs
  authops.celery_tuning.supervisor_conf_info:
    path: /etc/supervisor/conf.d/myauth.conf
    tuned: [beat, worker, worker_services]
  register: adoption

- name: Follow Auth's own file once the group file is managed
  authops.celery_tuning.supervisor_conf_info:
    path: /etc/supervisor/conf.d/myauth.conf
    record: /var/lib/authops-celery-tuning/myauth.conf.source.json
    auth_file: /home/allianceserver/myauth/supervisor.conf
    tuned: [beat, worker, worker_services]
  register: adoption
"""

RETURN = r"""
paths:
  description:
    - For each of O(paths), what is there now (C(exists), C(isdir), C(islnk), C(mode), C(uid), C(gid), and the
      SHA-1 C(checksum) of a regular file), as M(authops.celery_tuning.supervisor_info) reports it.
  returned: always
  type: dict
exists:
  description: Whether something is at O(path).
  returned: always
  type: bool
  sample: true
link:
  description: Whether O(path) is a symbolic link (Auth's guide makes one).
  returned: always
  type: bool
  sample: true
link_target:
  description: Where the link points, or null.
  returned: always
  type: str
  sample: /home/allianceserver/myauth/supervisor.conf
managed:
  description: Whether O(path) is a regular file written by the role.
  returned: always
  type: bool
  sample: false
adopting:
  description: Whether O(path) holds a file the role has not written (a link, or no marker).
  returned: always
  type: bool
  sample: true
source:
  description: The file that was read (O(path), Auth's file, O(adopted_path) or O(record)), or null when there is none.
  returned: always
  type: str
  sample: /etc/supervisor/conf.d/myauth.conf
auth_file:
  description: Auth's file, followed as the source of intent, or null (none known, or gone).
  returned: always
  type: str
  sample: /home/allianceserver/myauth/supervisor.conf
changes:
  description: What changed in the source since the text recorded by the last run, a line each (empty on the first run).
  returned: always
  type: list
  elements: str
  sample: ["[program:pingbot] added", "[group:myauth] programs= changed to: beat,worker,pingbot,gunicorn"]
record_content:
  description: The record this run follows (JSON, with the source's text), for the role to write; null when there is no source.
  returned: always
  type: str
record_current:
  description: Whether the record on the host already holds RV(record_content).
  returned: always
  type: bool
  sample: true
source_programs:
  description: Every program name of the source, the tuned ones too (the plan adds a worker only Auth's file has, when told so).
  returned: always
  type: list
  elements: str
  sample: [beat, gunicorn, worker, worker_services]
parser:
  description: The parser used (C(supervisor) when supervisor is importable on the target).
  returned: always
  type: str
  sample: supervisor
environment:
  description: The file's C([supervisord] environment=), name to value.
  returned: always
  type: dict
  sample: {"AA_USER": "allianceserver"}
carry_over:
  description: The programs to carry over, each with C(name), C(options) (as written, references resolved) and C(source).
  returned: always
  type: list
  elements: dict
  sample: [{"name": "gunicorn", "options": {"command": "/home/allianceserver/venv/auth/bin/gunicorn myauth.wsgi"},
            "source": "/etc/supervisor/conf.d/myauth.conf line 66"}]
memmon:
  description:
    - The memmon listener's limits (C(process), C(group), C(any)), C(cumulative), C(listener) and C(source), or null.
  returned: always
  type: dict
  sample: {"process": {"worker": "256MB"}, "group": {}, "any": null, "cumulative": false, "listener": "memmon"}
group:
  description: The file's C([group:x]) with C(name) and C(programs), or null.
  returned: always
  type: dict
  sample: {"name": "myauth", "programs": ["beat", "worker", "worker_services", "gunicorn"]}
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.authops.celery_tuning.plugins.module_utils.auth_file import intent
from ansible_collections.authops.celery_tuning.plugins.module_utils.in_place import path_states
from ansible_collections.authops.celery_tuning.plugins.module_utils.supervisor_conf import (
    AdoptionError,
    read_conf,
    read_conf_file,
)

EMPTY = dict(parser=None, environment={}, carry_over=[], memmon=None, group=None, source_programs=[])


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            adopted_path=dict(type="path"),
            record=dict(type="path"),
            auth_file=dict(type="path"),
            tuned=dict(type="list", elements="str", default=[]),
            marker=dict(type="str", default="authops.celery_tuning.celery_workers"),
            paths=dict(type="list", elements="str", default=[]),
        ),
        supports_check_mode=True,
    )
    path = module.params["path"]
    adopted_path = module.params["adopted_path"] or path + ".adopted"
    exists = os.path.lexists(path)
    link = os.path.islink(path)
    result = dict(exists=exists, link=link, link_target=os.readlink(path) if link else None, managed=False,
                  adopting=exists, source=None, auth_file=None, changes=[], record_content=None,
                  record_current=True, paths=path_states(module.params["paths"]))
    try:
        text = read_conf_file(path) if exists and os.path.exists(path) else ""
        managed = exists and not link and module.params["marker"] in text
        result.update(managed=managed, adopting=exists and not managed)
        if not exists:
            module.exit_json(changed=False, **dict(result, **EMPTY))
        found = intent(path, adopted_path, module.params["record"], module.params["auth_file"], managed)
        for warning in found["warnings"]:
            module.warn(warning)
        result.update(source=found["source"], auth_file=found["auth_file"], changes=found["changes"],
                      record_content=found["record_content"], record_current=found["record_current"])
        if found["source"] is None:
            module.exit_json(changed=False, **dict(result, **EMPTY))
        conf = read_conf(found["source"], found["text"], set(module.params["tuned"]))
    except AdoptionError as exc:
        module.fail_json(msg=str(exc), **result)
    conf.pop("managed", None)
    result.update(conf, source_programs=conf.pop("programs", []))
    if found["diff"]:
        result["diff"] = found["diff"]
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
