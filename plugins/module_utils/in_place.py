# -*- coding: utf-8 -*-
# Copyright: authops.celery_tuning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Whether a file is already in place on the host (type, owner, mode, content), read in one module run so a
re-run can skip its tasks.

A no-change re-run of ``tune.yml`` costs one remote Python per task, and Ansible's ``template`` and
``copy`` cost two each (a stat, then ``file`` for the attributes) even when nothing changes. The
supervisor role asks ``supervisor_info`` once for the state of its own files, packages and service;
the tasks that would write them run only when ``in_place`` says they are not as wanted yet. A skip is
never a guess: anything missing, of another type, owner, mode or content runs the task as before.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import os
import stat


def path_state(path):
    """exists, isdir, mode ('0644'), uid, gid and the SHA-1 of a regular file (None otherwise)."""
    try:
        st = os.lstat(path)
    except OSError:
        return dict(exists=False, isdir=False, islnk=False, mode=None, uid=None, gid=None, checksum=None)
    checksum = None
    if stat.S_ISREG(st.st_mode):
        digest = hashlib.sha1()
        try:
            with open(path, "rb") as handle:
                for block in iter(lambda: handle.read(65536), b""):
                    digest.update(block)
            checksum = digest.hexdigest()
        except (IOError, OSError):
            checksum = None
    return dict(exists=True, isdir=stat.S_ISDIR(st.st_mode), islnk=stat.S_ISLNK(st.st_mode),
                mode="%04o" % stat.S_IMODE(st.st_mode), uid=st.st_uid, gid=st.st_gid, checksum=checksum)


def path_states(paths):
    return dict((path, path_state(path)) for path in paths)


def is_in_place(state, mode, checksum=None, directory=False):
    """True when ``state`` (from path_state) is a root-owned file or directory with ``mode`` (and content).

    ``mode`` is an octal string as the roles write it ("0644"); ``checksum`` the SHA-1 of the wanted
    content (a file only). Anything else, or no state at all, is False: the task runs.
    """
    if not isinstance(state, dict) or not state.get("exists") or state.get("islnk"):
        return False
    if bool(state.get("isdir")) != bool(directory):
        return False
    if state.get("uid") != 0 or state.get("gid") != 0:
        return False
    try:
        if int(str(state.get("mode")), 8) != int(str(mode), 8):
            return False
    except ValueError:
        return False
    if not directory and checksum is not None and state.get("checksum") != checksum:
        return False
    return True
