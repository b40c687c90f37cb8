# -*- coding: utf-8 -*-
# Copyright: authops.celery_tuning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Sizes: the grammar of memory sizes (supervisor's ``byte_size`` plus the documented extras) and their
formatting for supervisor, memmon and Celery."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

try:  # supervisor's own reader of sizes, where supervisor is installed (the target; not every controller)
    from supervisor.datatypes import byte_size as supervisor_byte_size
except ImportError:
    supervisor_byte_size = None

from ansible_collections.authops.celery_tuning.plugins.module_utils.plan_errors import (
    WorkerFlagsError,
)


KIB = 1024
MIB = 1024 * 1024
GIB = 1024 * 1024 * 1024

#: The sizes supervisor's byte_size reads itself: a whole number, with KB, MB or GB (any case).
_SUPERVISOR_SIZE_RE = re.compile(r"^\s*\d+\s*(kb|mb|gb)?\s*$", re.IGNORECASE)
#: The documented extras as well: B, K/M/G, KiB/MiB/GiB and decimals (read here when supervisor is absent).
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$", re.IGNORECASE)
_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "k": KIB, "kb": KIB, "kib": KIB,
    "m": MIB, "mb": MIB, "mib": MIB,
    "g": GIB, "gb": GIB, "gib": GIB,
}


def parse_size(value, what="size"):
    """Parse a size into bytes: supervisor's ``byte_size`` reads it when supervisor is installed, and the
    documented extras are read here.

    ``KB``/``MB``/``GB`` are 1024 multiples and case-insensitive, plain integers are bytes (supervisor's
    rules). ``KiB``/``MiB``/``GiB``, ``K``/``M``/``G`` and ``B`` are accepted too, as are decimals
    (``1.5GB``); the result is rounded down to whole bytes.
    """
    if isinstance(value, bool) or value is None:
        raise WorkerFlagsError(
            "%s: %r is not a size; write it like 256MB, 262144KB or 1GB" % (what, value))
    if isinstance(value, int):
        if value < 0:
            raise WorkerFlagsError("%s: %r must not be negative" % (what, value))
        return value
    if supervisor_byte_size is not None and _SUPERVISOR_SIZE_RE.match(str(value)):
        return supervisor_byte_size(re.sub(r"\s+", "", str(value)))
    match = _SIZE_RE.match(str(value))
    if not match or match.group(2).lower() not in _SIZE_UNITS:
        raise WorkerFlagsError(
            "%s: cannot parse %r as a size; write a number with an optional unit "
            "B, KB, MB, GB (1024 multiples; KiB/MiB/GiB and K/M/G also accepted), e.g. 256MB"
            % (what, value))
    number, unit = match.group(1), match.group(2).lower()
    mult = _SIZE_UNITS[unit]
    nbytes = int(float(number) * mult) if "." in number else int(number) * mult
    if nbytes == 0 and float(number) != 0:
        raise WorkerFlagsError(
            "%s: %r rounds down to 0 bytes, which turns the limit off; write it like 256MB" % (what, value))
    return nbytes


def format_size(nbytes):
    """Format bytes the way supervisor/memmon read them back: ``512MB``, ``1GB``, ``1536KB``."""
    nbytes = int(nbytes)
    for unit, mult in (("GB", GIB), ("MB", MIB), ("KB", KIB)):
        if nbytes and nbytes % mult == 0:
            return "%d%s" % (nbytes // mult, unit)
    return str(nbytes)


def human_size(nbytes):
    """Readable (approximate) size for messages, e.g. ``121.0 MiB``."""
    nbytes = float(nbytes)
    if nbytes >= GIB:
        return "%.1f GiB" % (nbytes / GIB)
    return "%.1f MiB" % (nbytes / MIB)


def size_to_kib(nbytes):
    """Celery's --max-memory-per-child takes KiB."""
    return int(nbytes) // KIB
