#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: authops.celery_tuning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: file_snapshot
short_description: Keep what a file was before the first run, and put it back (rollback.yml)
version_added: "0.3.0"
description:
  - V(saved) takes a snapshot of O(path) once, just before the collection first changes it - absent, a
    symbolic link and its target, a regular file with its content, mode and owner, or a directory. While the
    snapshot exists it is never taken again, so later runs, and a run after one that died, keep the state from
    before the first change.
  - V(restored) puts O(path) back as its snapshot says - the link made again, the file rewritten (a temporary
    file renamed over it), or the path removed when it did not exist before. An existing directory is left as it is.
    Without a snapshot, a path that is absent, or (with O(managed_marker)) a link or a file without the marker, was
    never changed by the collection or is back already, and is left as it is; any other path without a snapshot
    is refused (a version that kept no snapshots changed it).
  - V(absent) removes the snapshot, so the next run takes a new one (after a rollback).
  - Snapshots are 0600 files of root under O(directory)/pristine, a directory of root with mode 0700. A snapshot
    that is not root's and 0600 is not trusted and is refused, and so is a path whose parent directory anyone
    but root can change.
author:
  - authops maintainers (@authops)
extends_documentation_fragment:
  - authops.celery_tuning.attributes
attributes:
  check_mode:
    support: full
    details:
      - In check mode nothing is written; the snapshot is read and checked, and what would change is reported.
  diff_mode:
    support: partial
    details:
      - With O(state=restored) the diff shows what the path is and what it becomes (kind, link target, owner, mode,
        checksum), never a file's content, which may hold secrets.
  idempotent:
    support: full
options:
  path:
    description:
      - The file, link or directory. An absolute path without C(..), C(.), C(//) or a trailing C(/).
    type: path
    required: true
  state:
    description:
      - V(saved) takes the snapshot unless one exists; V(restored) puts the path back; V(absent) removes the snapshot.
    type: str
    choices: [saved, restored, absent]
    default: saved
  directory:
    description:
      - Where the snapshots live (in its C(pristine) subdirectory). Made root's, 0700, when missing.
    type: path
    default: /var/lib/authops-celery-tuning
  managed_marker:
    description:
      - A line that only files written by this collection hold. A file that holds it when the snapshot is taken was
        already written by an earlier run of a version that kept no snapshots; its snapshot is marked, and
        V(restored) refuses it instead of putting back a tuned file. With V(restored), a path without a snapshot
        that does not hold the marker needs no restore.
    type: str
  remove_tree:
    description:
      - With O(state=restored), a path that did not exist before and is a directory now is removed with all it
        holds (the memmon virtualenv the collection made). Without it only an empty directory is removed; one that
        holds files is left, with a warning.
    type: bool
    default: false
  remove_backups:
    description:
      - With O(state=restored), also remove the backups Ansible made of O(path) beside it (C(NAME.PID.DATE@TIME~),
        from C(backup=true)) since the snapshot was taken. Older backups, an admin's own, stay.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Keep Auth's link before the group file replaces it
  authops.celery_tuning.file_snapshot:
    path: /etc/supervisor/conf.d/myauth.conf
    managed_marker: authops.celery_tuning.celery_workers

- name: Put it back (rollback.yml)
  authops.celery_tuning.file_snapshot:
    path: /etc/supervisor/conf.d/myauth.conf
    state: restored

- name: Remove the memmon virtualenv the first run made
  authops.celery_tuning.file_snapshot:
    path: /opt/authops-celery-tuning/memmon
    state: restored
    remove_tree: true
"""

RETURN = r"""
snapshot:
  description:
    - The snapshot, without a file's content - C(path), C(kind) (V(absent), V(link), V(file) or V(directory)),
      C(target), C(owner), C(group), C(uid), C(gid), C(mode), C(sha1), C(size), C(taken_at), and C(managed) when
      the file was already the collection's. Null when there was none (V(absent), or V(restored) of a path the
      collection never changed).
  returned: always
  type: dict
  sample: {"path": "/etc/supervisor/conf.d/myauth.conf", "kind": "link",
           "target": "/home/allianceserver/myauth/supervisor.conf", "taken_at": "2026-12-03 06:30:00 UTC"}
record_file:
  description: The snapshot's file on the host.
  returned: always
  type: str
  sample: /var/lib/authops-celery-tuning/pristine/%2Fetc%2Fsupervisor%2Fconf.d%2Fmyauth.conf.json
backups:
  description: With O(remove_backups), the backups removed (in check mode, those that would be).
  returned: when O(state=restored)
  type: list
  elements: str
  sample: ["/etc/supervisor/supervisord.conf.4711.2026-12-03@06:30:00~"]
msg:
  description: What was done, in words.
  returned: always
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.authops.celery_tuning.plugins.module_utils.file_snapshot import (
    DEFAULT_DIRECTORY,
    SnapshotError,
    run_file_snapshot,
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type='path', required=True),
            state=dict(type='str', default='saved', choices=['saved', 'restored', 'absent']),
            directory=dict(type='path', default=DEFAULT_DIRECTORY),
            managed_marker=dict(type='str'),
            remove_tree=dict(type='bool', default=False),
            remove_backups=dict(type='bool', default=False),
        ),
        supports_check_mode=True,
    )
    try:
        result = run_file_snapshot(module.params, check_mode=module.check_mode)
    except SnapshotError as exc:
        module.fail_json(msg=str(exc))
    warning = result.pop('warning', None)
    if warning:
        module.warn(warning)
    diff = result.pop('diff', None)
    if diff is not None and module._diff:
        result['diff'] = diff
    module.exit_json(**result)


if __name__ == '__main__':
    main()
