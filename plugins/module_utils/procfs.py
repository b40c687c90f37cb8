# -*- coding: utf-8 -*-
# Copyright: authops.celery_tuning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read processes from /proc: resident memory of a process and its descendants, command lines.

Every reader takes ``proc`` (the /proc mount) so tests can point it at a fake tree.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re

_PROCESS_NUM_RE = re.compile(r'^(?P<program>.+?)_\d+$')


def read_rss_bytes(pid, proc='/proc'):
    """VmRSS of one process in bytes, or None when it is gone or has no memory (a zombie)."""
    try:
        with open(os.path.join(proc, str(pid), 'status')) as handle:
            for line in handle:
                if line.startswith('VmRSS:'):
                    return int(line.split()[1]) * 1024
    except (IOError, OSError, ValueError, IndexError):
        return None
    return None


def read_cmdline(pid, proc='/proc'):
    """The argv of a process as a list, or None when it is gone."""
    try:
        with open(os.path.join(proc, str(pid), 'cmdline'), 'rb') as handle:
            raw = handle.read()
    except (IOError, OSError):
        return None
    return [part.decode('utf-8', 'replace') for part in raw.split(b'\0') if part]


def read_ppid(pid, proc='/proc'):
    """The parent pid of a process, or None."""
    try:
        with open(os.path.join(proc, str(pid), 'stat')) as handle:
            data = handle.read()
    except (IOError, OSError):
        return None
    # The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    try:
        return int(data[data.rindex(')') + 2:].split()[1])
    except (ValueError, IndexError):
        return None


def children_map(proc='/proc'):
    """{ppid: [pid, ...]} for every process visible in ``proc``."""
    tree = {}
    for entry in os.listdir(proc):
        if entry.isdigit():
            ppid = read_ppid(entry, proc)
            if ppid is not None:
                tree.setdefault(ppid, []).append(int(entry))
    return tree


def descendants(pid, tree):
    """All descendants of ``pid`` in ``tree`` (as made by children_map), depth first."""
    found, stack = [], list(tree.get(pid, []))
    while stack:
        child = stack.pop()
        found.append(child)
        stack.extend(tree.get(child, []))
    return found


def process_memory(pid, tree=None, proc='/proc'):
    """RSS of a process alone and of its whole tree, with the children's pids and RSS."""
    if tree is None:
        tree = children_map(proc)
    rss = read_rss_bytes(pid, proc) or 0
    children = []
    for child in descendants(pid, tree):
        child_rss = read_rss_bytes(child, proc)
        if child_rss is not None:
            children.append(dict(pid=child, rss_bytes=child_rss))
    return dict(rss_bytes=rss, tree_rss_bytes=rss + sum(c['rss_bytes'] for c in children), children=children)


def program_of(process_name):
    """The program a supervisor process belongs to, for process names like Auth's ``worker_00``.

    Supervisor does not report the program name; with Auth's ``%(program_name)s_%(process_num)02d``
    it is the process name without its trailing ``_NN``. A name without one is its own program.
    """
    match = _PROCESS_NUM_RE.match(process_name)
    return match.group('program') if match else process_name
