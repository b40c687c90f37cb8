# -*- coding: utf-8 -*-
# Copyright: authops.celery_tuning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Root-safe paths: places from which root may run code, or in which root may create files.

A path is root-safe when nobody but root can change what it names: every component from ``/`` down
to the end, with every symbolic link on the way followed (and the link itself checked, without
following it), is owned by root and writable by neither its group nor others. A component that does
not exist yet is fine when the last one that exists is safe: root creates the rest there.

Used on the host (modules): memmon's virtualenv (memmon runs as root from it and pip installs into it
as root), the programs' log directory (supervisord opens the files as root), the interpreter a probe
runs as root, ``PATH`` entries in ``[supervisord] environment=``. Only ``lstat`` and ``readlink`` are
used: nothing is opened, nothing is changed.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import stat

#: Links followed before giving up (the kernel's own limit is 40).
MAX_LINKS = 40
#: Entries of a tree looked at before giving up (memmon's venv holds a few thousand).
MAX_TREE_ENTRIES = 50000


def _owner_problem(path, st, sticky_ok=False):
    if stat.S_ISLNK(st.st_mode):
        if st.st_uid != 0:
            return "%s is a link owned by uid %d, not root" % (path, st.st_uid)
        return None
    if st.st_uid != 0:
        return "%s is owned by uid %d, not root" % (path, st.st_uid)
    if sticky_ok and stat.S_ISDIR(st.st_mode) and st.st_mode & stat.S_ISVTX:
        return None  # /tmp: others cannot rename or remove root's entries in it
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return "%s is writable by its group or others (mode %04o)" % (path, stat.S_IMODE(st.st_mode))
    return None


def root_safe_problems(path, lstat=os.lstat, readlink=os.readlink):
    """Why root must not trust ``path``; ``[]`` when it is root-safe (see the module's docstring).

    ``path`` must be absolute. The first problem ends the walk (what lies below an unsafe component
    can be anything), so the list holds at most one entry, or a refusal of the path itself.
    A sticky directory that others may write (``/tmp``) is passed through only to an entry that exists and
    is root's (others cannot rename or remove it there); a missing entry in it others could create first.
    """
    if not isinstance(path, str) or not path.startswith("/"):
        return ["%r is not an absolute path" % (path,)]
    pending = [part for part in path.split("/") if part]
    current = "/"
    links = 0
    sticky = None
    try:
        problem = _owner_problem("/", lstat("/"))
    except OSError as exc:
        return ["/ cannot be read (%s)" % exc.strerror]
    if problem:
        return [problem]
    while pending:
        part = pending.pop(0)
        if part == ".":
            continue
        if part == "..":
            current = os.path.dirname(current) or "/"
            continue
        candidate = os.path.join(current, part)
        try:
            st = lstat(candidate)
        except OSError:
            if sticky == current:
                return ["%s does not exist, and others can create it first in %s (mode %04o)"
                        % (candidate, current, stat.S_IMODE(lstat(current).st_mode))]
            return []  # root creates it (and what follows) in ``current``, which is safe
        problem = _owner_problem(candidate, st, sticky_ok=bool(pending))
        if problem:
            return [problem + ("" if candidate == path else " (on the way to %s)" % path)]
        if stat.S_ISLNK(st.st_mode):
            links += 1
            if links > MAX_LINKS:
                return ["%s: more than %d symbolic links" % (path, MAX_LINKS)]
            target = readlink(candidate)
            if target.startswith("/"):
                current = "/"
            pending = [p for p in target.split("/") if p] + pending
            continue
        if pending and not stat.S_ISDIR(st.st_mode):
            return ["%s is not a directory (on the way to %s)" % (candidate, path)]
        current = candidate
        sticky = candidate if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH) else None
    return []


def root_safe_tree_problems(path, lstat=os.lstat, readlink=os.readlink, walk=os.walk, limit=5):
    """:func:`root_safe_problems` of ``path``, and of every entry below it (a virtualenv root runs code
    from: its ``bin``, ``lib`` and every package in it). Links inside are followed to where they point.
    At most ``limit`` problems."""
    problems = root_safe_problems(path, lstat, readlink)
    if problems:
        return problems
    try:
        if not stat.S_ISDIR(os.stat(path).st_mode):
            return problems
    except OSError:
        return problems
    seen = 0
    for top, dirs, files in walk(path):
        for name in sorted(dirs) + sorted(files):
            seen += 1
            if seen > MAX_TREE_ENTRIES:
                return problems + ["%s holds more than %d entries; not checked further" % (path, MAX_TREE_ENTRIES)]
            entry = os.path.join(top, name)
            try:
                st = lstat(entry)
            except OSError:
                continue
            problem = _owner_problem(entry, st)
            if problem is None and stat.S_ISLNK(st.st_mode):
                found = root_safe_problems(entry, lstat, readlink)
                problem = found[0] if found else None
            if problem:
                problems.append(problem)
                if len(problems) >= limit:
                    return problems
    return problems
