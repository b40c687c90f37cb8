# -*- coding: utf-8 -*-
# Copyright: authops.celery_tuning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""CPU count and memory of the host, cgroup and CPU-affinity aware.

Every reader takes ``root`` (the filesystem root, ``/`` on a real host) so tests can point it at
a temporary directory.  Limits are looked up for a cgroup (by default this process's own; the
module passes the cgroup of the unit that runs supervisord, where the workers run) and each of its
ancestors (the effective limit is the smallest one on the path), for cgroup v2
(``cpu.max``, ``memory.max``) and v1 (``cpu.cfs_quota_us``/``cpu.cfs_period_us``,
``memory.limit_in_bytes``).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import math
import os
import stat

from ansible_collections.authops.celery_tuning.plugins.module_utils.root_safe import root_safe_problems

CGROUP_MOUNT = "sys/fs/cgroup"
V1_CPU_DIRS = ("cpu,cpuacct", "cpu", "cpuacct,cpu")
V1_MEMORY_DIRS = ("memory",)


def _path(root, *parts):
    return os.path.join(root, *[p.lstrip("/") for p in parts])


def _read(path):
    try:
        with open(path) as handle:
            return handle.read().strip()
    except (IOError, OSError):
        return None


def read_self_cgroups(root="/"):
    """Parse ``/proc/self/cgroup`` into ``{controller: path}``; cgroup v2's entry is key ``''``."""
    text = _read(_path(root, "proc/self/cgroup"))
    result = {}
    if not text:
        return result
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        controllers, path = parts[1], parts[2]
        if controllers == "":
            result[""] = path
        for controller in controllers.split(","):
            if controller:
                result[controller] = path
    return result


def _candidate_dirs(base, cgroup_path):
    """``base/cgroup_path`` and each ancestor up to ``base`` itself (deepest first)."""
    dirs = []
    path = (cgroup_path or "/").strip("/")
    while True:
        candidate = os.path.join(base, path) if path else base
        if candidate not in dirs:
            dirs.append(candidate)
        if not path:
            break
        path = os.path.dirname(path)
    return dirs


def is_cgroup_v2(root="/"):
    return os.path.exists(_path(root, CGROUP_MOUNT, "cgroup.controllers"))


def unit_cgroups(control_group):
    """``{controller: path}`` for a systemd unit's ``ControlGroup`` (one path for every controller)."""
    if not control_group:
        return None
    return dict((key, control_group) for key in ("", "cpu", "memory"))


def _cgroup_min(root, v2_read, v1_dirs, v1_controller, v1_read, cgroups=None):
    """The smallest value ``read(directory)`` finds in this process's cgroup or its ancestors.

    cgroup v2: the unified hierarchy; v1: the first of ``v1_dirs`` (under the cgroup mount) where
    anything is found, following this process's ``v1_controller`` path. Readers return None for
    "no limit here". Returns ``(value, "v2" | "v1")`` or ``(None, None)``.
    """
    cgroups = cgroups or read_self_cgroups(root)
    mount = _path(root, CGROUP_MOUNT)
    if is_cgroup_v2(root):
        hierarchies = [(mount, cgroups.get(""), v2_read, "v2")]
    else:
        hierarchies = [(os.path.join(mount, sub), cgroups.get(v1_controller), v1_read, "v1")
                       for sub in v1_dirs if os.path.isdir(os.path.join(mount, sub))]
    for base, cgroup_path, read, version in hierarchies:
        values = [v for v in (read(d) for d in _candidate_dirs(base, cgroup_path)) if v is not None]
        if values:
            return min(values), version
    return None, None


def _v2_cpus(directory):
    fields = (_read(os.path.join(directory, "cpu.max")) or "").split()
    if not fields or fields[0] == "max":
        return None
    try:
        quota = int(fields[0])
        period = int(fields[1]) if len(fields) > 1 else 100000
    except ValueError:
        return None
    return quota / period if quota > 0 and period > 0 else None


def _v1_cpus(directory):
    try:
        quota = int(_read(os.path.join(directory, "cpu.cfs_quota_us")))
        period = int(_read(os.path.join(directory, "cpu.cfs_period_us")))
    except (TypeError, ValueError):
        return None
    return quota / period if quota > 0 and period > 0 else None


def cgroup_cpu_limit(root="/", cgroups=None):
    """CPU quota in (fractional) CPUs, or ``(None, None)`` when unlimited/unknown."""
    value, version = _cgroup_min(root, _v2_cpus, V1_CPU_DIRS, "cpu", _v1_cpus, cgroups)
    sources = {"v2": "cgroup v2 cpu.max", "v1": "cgroup v1 cpu.cfs_quota_us"}
    return (value, sources[version]) if version else (None, None)


def _default_affinity():
    getter = getattr(os, "sched_getaffinity", None)
    if getter is None:
        return None
    try:
        return getter(0)
    except OSError:
        return None


def cpuinfo_count(root="/"):
    text = _read(_path(root, "proc/cpuinfo"))
    if not text:
        return None
    count = sum(1 for line in text.splitlines() if line.split(":")[0].strip() == "processor")
    return count or None


def cpu_count(root="/", affinity=_default_affinity, cgroups=None):
    """Usable CPUs: affinity (or /proc/cpuinfo, or os.cpu_count) limited by the cgroup quota.

    ``affinity`` is a callable returning the CPU set (``os.sched_getaffinity(0)`` by default);
    pass ``None`` to skip it.  A fractional quota is rounded up (1.5 CPUs -> 2).
    Returns ``(count, source)``.
    """
    count, source = None, None
    cpus = affinity() if affinity is not None else None
    if cpus:
        count, source = len(cpus), "sched_getaffinity"
    if count is None:
        count = cpuinfo_count(root)
        source = "/proc/cpuinfo" if count else None
    if count is None:
        count, source = (os.cpu_count() or 1), "os.cpu_count"
    quota, quota_source = cgroup_cpu_limit(root, cgroups)
    if quota is not None:
        limit = max(1, int(math.ceil(quota)))
        if limit < count:
            return limit, quota_source
    return count, source


def meminfo_total(root="/"):
    """MemTotal from /proc/meminfo in bytes, or None."""
    text = _read(_path(root, "proc/meminfo"))
    if not text:
        return None
    for line in text.splitlines():
        if line.startswith("MemTotal:"):
            fields = line.split()
            try:
                value = int(fields[1])
            except (IndexError, ValueError):
                return None
            unit = fields[2].lower() if len(fields) > 2 else "b"
            return value * 1024 if unit == "kb" else value
    return None


def _v2_memory(directory):
    text = _read(os.path.join(directory, "memory.max"))
    if not text or text == "max":
        return None
    try:
        value = int(text)
    except ValueError:
        return None
    return value if value > 0 else None


def _v1_memory(directory):
    try:
        value = int(_read(os.path.join(directory, "memory.limit_in_bytes")))
    except (TypeError, ValueError):
        return None
    # v1 reports "unlimited" as a huge page-aligned number (e.g. 9223372036854771712)
    return value if 0 < value < (1 << 62) else None


def cgroup_memory_limit(root="/", cgroups=None):
    """Memory limit of the cgroup in bytes, or ``(None, None)`` when unlimited."""
    value, version = _cgroup_min(root, _v2_memory, V1_MEMORY_DIRS, "memory", _v1_memory, cgroups)
    sources = {"v2": "cgroup v2 memory.max", "v1": "cgroup v1 memory.limit_in_bytes"}
    return (value, sources[version]) if version else (None, None)


def memory_total(root="/", cgroups=None):
    """Usable memory in bytes: MemTotal limited by the cgroup memory limit.

    Returns ``(bytes, source)``; ``(None, None)`` when nothing could be read.
    """
    total = meminfo_total(root)
    limit, limit_source = cgroup_memory_limit(root, cgroups)
    if limit is not None and (total is None or limit < total):
        return limit, limit_source
    if total is not None:
        return total, "/proc/meminfo MemTotal"
    return None, None


def host_facts(root="/", affinity=_default_affinity, unit=None, control_group=None):
    """``{'cpu_count', 'cpu_count_source', 'memory_bytes', 'memory_source'}``.

    With a ``unit`` and its ``control_group`` the cgroup limits are the unit's (``from
    supervisor.service`` in the sources); without, this process's own.
    """
    cgroups = unit_cgroups(control_group) if unit else None
    cpus, cpu_source = cpu_count(root, affinity, cgroups)
    mem, mem_source = memory_total(root, cgroups)
    if cgroups:
        cpu_source = ("%s from %s" % (cpu_source, unit)) if cpu_source.startswith("cgroup") else cpu_source
        mem_source = ("%s from %s" % (mem_source, unit)) if (mem_source or "").startswith("cgroup") else mem_source
    return {
        "cpu_count": cpus,
        "cpu_count_source": cpu_source,
        "memory_bytes": mem,
        "memory_source": mem_source,
    }


def root_only_dir_problems(path):
    """Why ``path`` (and its parent) is not a directory that only root can change; [] when it is, or absent.

    supervisord (root) opens the programs' log files there: a user who can change the directory can
    replace a log file with a link to any file of root's. Beyond the directory and its parent, the whole
    path must be root-safe (``root_safe.root_safe_problems``: every component from / down, links followed,
    root's and not group/other writable; missing ones are created by root in a safe directory).
    """
    problems = []
    for candidate in (path, os.path.dirname(path.rstrip("/")) or "/"):
        try:
            st = os.lstat(candidate)
        except OSError:
            continue
        if not stat.S_ISDIR(st.st_mode):
            problems.append("%s is not a directory" % candidate)
        elif st.st_uid != 0 or st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            problems.append("%s is writable by someone other than root (owner uid %d, mode %04o)"
                            % (candidate, st.st_uid, stat.S_IMODE(st.st_mode)))
    if not problems:
        problems = root_safe_problems(path)
    return problems
