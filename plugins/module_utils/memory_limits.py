# -*- coding: utf-8 -*-
# Copyright: authops.celery_tuning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Memory protection of one worker: Celery's memory flags where the pool honours them (prefork), memmon's
limit elsewhere, and the floors and headroom every limit must respect."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.authops.celery_tuning.plugins.module_utils.plan_errors import (
    WorkerFlagsError,
)
from ansible_collections.authops.celery_tuning.plugins.module_utils.sizes import (
    MIB,
    format_size,
    human_size,
    size_to_kib,
)


HEADROOM_ACTIONS = ("error", "warn")

#: Pools for which Celery honours --max-memory-per-child / --max-tasks-per-child.
MEMORY_FLAG_POOLS = ("prefork",)

#: Smallest memory limit accepted without allow_small_memory_limit (the guide: not below ~128 MB).
MIN_MEMORY_LIMIT = 128 * MIB
#: Smallest memory limit accepted at all, allow_small_memory_limit or not: a Python process does not start
#: in less, so a smaller limit restarts it in a loop (and 0 KiB turns Celery's limit off).
HARD_MIN_MEMORY_LIMIT = 16 * MIB
#: Per-process RSS assumed when no memory_baseline is given (stock Auth 5.5 measured 103-121 MiB).
DEFAULT_BASELINE = 128 * MIB
#: Highest RSS measured for a stock Auth 5.5 worker; used for a warning when no baseline is given.
STOCK_BASELINE = 121 * MIB
#: Headroom above the baseline: the larger of 25 % of the baseline and 64 MiB.
HEADROOM_FRACTION = 0.25
HEADROOM_MIN = 64 * MIB


def baseline_headroom(baseline):
    """Headroom required above a measured baseline: max(25 %, 64 MiB)."""
    return max(int(baseline * HEADROOM_FRACTION), HEADROOM_MIN)


def memory_protection(p, strict):
    """Celery's memory flags where the pool honours them (prefork), memmon's limit elsewhere."""
    max_mem, max_tasks, memory_limit = p["max_mem"], p["max_tasks"], p["memory_limit"]
    explain, pool = p["explain"], p["pool"]
    p["max_memory_per_child"] = p["max_tasks_per_child"] = p["memmon_limit"] = None
    if pool in MEMORY_FLAG_POOLS:
        p["max_memory_per_child"], p["max_tasks_per_child"] = max_mem, max_tasks
        if max_mem is not None:
            explain.append(
                "--max-memory-per-child=%d: %s in KiB (Celery replaces a child after the task "
                "that crossed it)" % (size_to_kib(max_mem), format_size(max_mem)))
        if max_tasks is not None:
            explain.append("--max-tasks-per-child=%d: given" % max_tasks)
        if memory_limit is not None:
            p["memmon_limit"] = memory_limit
            explain.append(
                "memmon limit %s: memory_limit given; memmon measures the main process only "
                "unless run with --cumulative" % format_size(memory_limit))
    elif not p["beat"]:
        _memory_without_celery_flags(p, strict)
    elif memory_limit is not None:
        p["memmon_limit"] = memory_limit
        explain.append("memmon limit %s: memory_limit given" % format_size(memory_limit))
    if max_mem is None and p["memmon_limit"] is None and max_tasks is None and not p["beat"]:
        explain.append("no memory protection set: consider max_memory_per_child (prefork) or "
                       "memory_limit (memmon)")


def _memory_without_celery_flags(p, strict):
    """threads, gevent, eventlet, solo: Celery ignores its memory flags; memmon guards instead."""
    max_mem, max_tasks, memory_limit, pool = p["max_mem"], p["max_tasks"], p["memory_limit"], p["pool"]
    ignored = [key for key, value in (("max_memory_per_child", max_mem), ("max_tasks_per_child", max_tasks))
               if value is not None]
    if ignored:
        if strict:
            raise WorkerFlagsError(
                "worker %s: %s do(es) nothing with pool %s (Celery honours them for prefork "
                "only); use memory_limit (a memmon limit) instead, switch to pool prefork, or "
                "set strict: false" % (p["name"], " and ".join(ignored), pool))
        p["warnings"].append(
            "%s ignored by Celery with pool %s: not passed to Celery%s"
            % (" and ".join(ignored), pool,
               "; used as the memmon limit instead" if max_mem is not None and memory_limit is None else ""))
    if memory_limit is not None:
        p["memmon_limit"] = memory_limit
        p["explain"].append("memmon limit %s: memory_limit given (pool %s ignores Celery's memory "
                            "flags)" % (format_size(memory_limit), pool))
        if max_mem is not None and max_mem != memory_limit:
            p["warnings"].append("both memory_limit and max_memory_per_child given; memmon uses "
                                 "memory_limit %s" % format_size(memory_limit))
    elif max_mem is not None:
        p["memmon_limit"] = max_mem
        p["explain"].append("memmon limit %s: from max_memory_per_child (pool %s ignores Celery's "
                            "memory flags)" % (format_size(max_mem), pool))


def check_limit_floor(what, limit, allow_small=False):
    """The floors of every memory limit (a worker's, memmon's, an adopted one): 128MB, or 16MB with
    ``allow_small``; anything below restarts the process in a loop or turns the limit off."""
    if limit < HARD_MIN_MEMORY_LIMIT:
        raise WorkerFlagsError(
            "%s %s is below %s, the least a Python process runs in (0 or a few KB turns the limit off or restarts "
            "the process on every check); raise it, e.g. to 256MB"
            % (what, format_size(limit), format_size(HARD_MIN_MEMORY_LIMIT)))
    if limit < MIN_MEMORY_LIMIT and not allow_small:
        raise WorkerFlagsError(
            "%s %s is below 128MB; a fresh Auth worker already uses about 100-120 MiB so it would restart in a "
            "loop. Raise it (e.g. 256MB) or set allow_small_memory_limit: true" % (what, format_size(limit)))


def check_limit(name, label, limit, baseline, allow_small, headroom_action, warnings, explain):
    if limit < HARD_MIN_MEMORY_LIMIT:
        check_limit_floor("worker %s: %s" % (name, label), limit, allow_small)
    if limit < MIN_MEMORY_LIMIT:
        if not allow_small:
            raise WorkerFlagsError(
                "worker %s: %s %s is below 128MB; a fresh Auth worker already uses about "
                "100-120 MiB so it would restart in a loop. Raise it (e.g. 256MB) or set "
                "allow_small_memory_limit: true" % (name, label, format_size(limit)))
        warnings.append("%s %s is below 128MB (allowed by allow_small_memory_limit)"
                        % (label, format_size(limit)))
    if baseline is not None:
        headroom = baseline_headroom(baseline)
        needed = baseline + headroom
        if limit < needed:
            msg = ("%s %s is below memory_baseline %s plus headroom %s (max of 25%% and 64 MiB) "
                   "= %s; the worker would restart in a loop. Raise the limit to at least %s"
                   % (label, format_size(limit), human_size(baseline), human_size(headroom),
                      human_size(needed), format_size(_round_up_mib(needed))))
            if headroom_action == "error":
                raise WorkerFlagsError("worker %s: %s, or set baseline_headroom_action: warn"
                                       % (name, msg))
            warnings.append(msg)
        else:
            explain.append("%s %s leaves at least %s above memory_baseline %s"
                           % (label, format_size(limit), human_size(headroom),
                              human_size(baseline)))
    elif limit < STOCK_BASELINE + HEADROOM_MIN:
        warnings.append(
            "%s %s is close to a stock Auth 5.5 worker's RSS (up to ~121 MiB) and may restart in "
            "a loop; measure the worker and set memory_baseline, or raise the limit"
            % (label, format_size(limit)))


def check_prefork_memmon(p):
    """A memmon limit on a prefork worker is measured over the whole tree (memmon -c).

    At idle the tree is the parent plus one child per slot, each about a baseline: a limit below
    that (plus headroom) restarts the worker on every tick.
    """
    if p["pool"] != "prefork" or not p["memmon_limit"]:
        return
    baseline = p["memory_baseline"] or DEFAULT_BASELINE
    idle_tree = (p["concurrency"] + 1) * baseline
    needed = idle_tree + baseline_headroom(idle_tree)
    if p["memmon_limit"] < needed:
        p["warnings"].append(
            "memmon limit %s on a prefork worker is measured over its whole tree (memmon -c): the "
            "parent and %d children already hold about %s at idle, so it would restart in a loop; "
            "raise it to at least %s, or use max_memory_per_child (per child) instead"
            % (format_size(p["memmon_limit"]), p["concurrency"], human_size(idle_tree),
               format_size(_round_up_mib(needed))))
    else:
        p["explain"].append(
            "memmon limit %s covers the prefork tree (parent + %d children, about %s at idle)"
            % (format_size(p["memmon_limit"]), p["concurrency"], human_size(idle_tree)))


def _round_up_mib(nbytes):
    return -(-int(nbytes) // MIB) * MIB
