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


def read_environ_names(pid, proc='/proc'):
    """The names of a process's environment variables (never their values), or None when unreadable."""
    try:
        with open(os.path.join(proc, str(pid), 'environ'), 'rb') as handle:
            raw = handle.read()
    except (IOError, OSError):
        return None
    return sorted(set(item.split(b'=', 1)[0].decode('utf-8', 'replace') for item in raw.split(b'\0') if b'=' in item))


def _is_supervisord(argv):
    return any(os.path.basename(arg) == 'supervisord' for arg in argv[:2])


def supervisord_environ_names(proc='/proc', config=None):
    """The environment names every running supervisord has (what ``%(ENV_X)s`` expands from), and where they
    come from: ``(names, source)``; ``(None, reason)`` when no supervisord runs or none can be read.

    With ``config``, a daemon started with that ``-c``/``--configuration`` is preferred. Several daemons:
    only the names all of them have count.
    """
    found = []
    for entry in sorted(os.listdir(proc)):
        if not entry.isdigit():
            continue
        argv = read_cmdline(entry, proc)
        if argv and _is_supervisord(argv):
            found.append((int(entry), argv))
    if config:
        own = [(pid, argv) for pid, argv in found if config in argv or '--configuration=%s' % config in argv]
        found = own or found
    names = None
    pids = []
    for pid, argv in found:
        have = read_environ_names(pid, proc)
        if have is None:
            continue
        pids.append(str(pid))
        names = set(have) if names is None else names & set(have)
    if names is None:
        return None, 'no running supervisord whose environment can be read'
    return sorted(names), 'the environment of supervisord (pid %s)' % ', '.join(pids)
