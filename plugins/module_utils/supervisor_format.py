# -*- coding: utf-8 -*-
# Copyright: authops.celery_tuning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Supervisor's file format: ``%(name)s`` expansions and ``%`` quoting of ``command=`` values. The one
expansion regex, shared by the gate and the cluster checks."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re
import shlex


#: One supervisor (Python) %-expansion, such as %(program_name)s or %(process_num)02d: group 1 is the name,
#: group 2 the conversion. The gate and the cluster checks use this one pattern.
EXPANSION = r"%\((\w+)\)([#0 +-]*\d*(?:\.\d+)?[sdiouxXeEfFgGcr])"
EXPANSION_RE = re.compile(EXPANSION)
#: A '%' as supervisor reads it: '%%' (a literal '%'), or an expansion (group 1 its name).
PERCENT_RE = re.compile("%%|" + EXPANSION)


def supervisor_escape(arg):
    """Escape ``%`` for supervisor's command expansion, keeping ``%(name)s``-style expansions."""
    out = []
    pos = 0
    for match in EXPANSION_RE.finditer(arg):
        out.append(arg[pos:match.start()].replace("%", "%%"))
        out.append(match.group(0))
        pos = match.end()
    out.append(arg[pos:].replace("%", "%%"))
    return "".join(out)


def build_command(argv):
    """Supervisor-ready ``command=`` value: %-escaped, then shell-quoted (supervisor shlex-splits)."""
    return " ".join(shlex.quote(supervisor_escape(a)) for a in argv)


def env_line(pairs):
    """supervisor's ``environment=`` value from checked ``(name, text)`` pairs: ``NAME="value",...`` with ``%``
    escaped (the gate's ``check_env`` has refused what the line cannot carry)."""
    return ",".join('%s="%s"' % (name, value.replace("%", "%%")) for name, value in pairs)
