# -*- coding: utf-8 -*-
# Copyright: authops.celery_tuning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Budgets: the memory and DB connection estimates of a planned worker, and auto values scaled to fit what
the host's budgets leave."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.authops.celery_tuning.plugins.module_utils.memory_limits import (
    DEFAULT_BASELINE,
)
from ansible_collections.authops.celery_tuning.plugins.module_utils.plan_errors import (
    WorkerFlagsError,
)
from ansible_collections.authops.celery_tuning.plugins.module_utils.sizes import (
    MIB,
    human_size,
)
from ansible_collections.authops.celery_tuning.plugins.module_utils.worker_options import (
    DEFAULT_PROCESS_NAME,
)
from ansible_collections.authops.celery_tuning.plugins.module_utils.worker_spec import (
    expand_process_names,
)


DEFAULT_MEMORY_BUDGET_PERCENT = 50
#: MariaDB's default max_connections is 151; 100 leaves room for gunicorn, cron jobs and admins.
DEFAULT_DB_CONNECTION_BUDGET = 100


def _per_slot_memory(w):
    """Memory one prefork child may use: its max-memory-per-child, else the baseline."""
    return w["max_memory_per_child"] or w["memory_baseline"] or DEFAULT_BASELINE


def memory_estimate(w, concurrency):
    """Estimated RSS of all processes of one program.

    prefork: numprocs x (parent baseline + concurrency x (max_memory_per_child or baseline));
    other pools and beat: numprocs x (memmon limit or baseline).  The baseline is memory_baseline
    or 128 MiB.
    """
    baseline = w["memory_baseline"] or DEFAULT_BASELINE
    if w["pool"] == "prefork":
        per_proc = baseline + concurrency * _per_slot_memory(w)
    else:
        per_proc = w["memmon_limit"] or baseline
    return w["numprocs"] * per_proc


def db_connections(w, concurrency):
    """Every pool slot (prefork child, thread, greenlet) may hold one DB connection."""
    return w["numprocs"] * concurrency


def _scale(desired, weights, available):
    """Scale desired values down proportionally so sum(c*weight) <= available (min 1 each)."""
    total = sum(d * wt for d, wt in zip(desired, weights))
    if total <= available:
        return list(desired)
    return [max(1, (d * max(available, 0)) // total) for d in desired]


#: A measured RSS is rounded up to this step, so that the plan does not follow every small change.
BASELINE_STEP = 32 * MIB


def with_measured_baseline(raw, measured_rss):
    """A worker with a memory limit and no memory_baseline gets its largest measured RSS (rounded up)."""
    if not measured_rss or not isinstance(raw, dict) or raw.get("beat"):
        return raw
    limited = raw.get("memory_limit") is not None or raw.get("max_memory_per_child") is not None
    if raw.get("memory_baseline") is not None or not limited:
        return raw
    numprocs = raw.get("numprocs")
    try:
        names = expand_process_names(
            raw.get("name"), raw.get("process_name") or DEFAULT_PROCESS_NAME,
            1 if numprocs in (None, "auto") else int(numprocs),
            int(raw.get("numprocs_start") or 0), raw.get("group_name"))
    except (WorkerFlagsError, TypeError, ValueError):
        return raw  # normalize_worker reports the bad input
    sizes = [int(measured_rss[n]) for n in names if n in measured_rss and int(measured_rss[n] or 0) > 0]
    if not sizes:
        return raw
    out = dict(raw)
    out["memory_baseline"] = -(-max(sizes) // BASELINE_STEP) * BASELINE_STEP
    return out


def check_fixed(fixed, budget):
    """Given values are never changed: exceeding a budget with them is an error. Returns what they use."""
    conns = sum(db_connections(p, p["concurrency"]) for p in fixed)
    if conns > budget["db"]:
        detail = ", ".join("%s=%d" % (p["name"], db_connections(p, p["concurrency"])) for p in fixed)
        raise WorkerFlagsError(
            "the given concurrency needs %d DB connections (%s) but db_connection_budget is %d "
            "(MariaDB's default max_connections is 151); lower concurrency or raise "
            "db_connection_budget together with max_connections" % (conns, detail, budget["db"]))
    mem = sum(memory_estimate(p, p["concurrency"]) for p in fixed)
    if mem > budget["memory"]:
        detail = ", ".join("%s=%s" % (p["name"], human_size(memory_estimate(p, p["concurrency"])))
                           for p in fixed)
        raise WorkerFlagsError(
            "the given settings need about %s of memory (%s) but the budget is %s (%d%% of %s); "
            "lower concurrency or the memory limits, or raise memory_budget_percent"
            % (human_size(mem), detail, human_size(budget["memory"]), budget["percent"],
               human_size(budget["memory_total"])))
    return dict(conns=conns, memory=mem)


def _memory_caps(auto, desired, available):
    """Prefork auto values scaled so concurrency x per-child memory fits what the budget leaves."""
    for i, p in enumerate(auto):
        if p["pool"] == "prefork":
            available -= p["numprocs"] * (p["memory_baseline"] or DEFAULT_BASELINE)
        else:
            available -= memory_estimate(p, desired[i])
    caps = list(desired)
    prefork = [i for i, p in enumerate(auto) if p["pool"] == "prefork"]
    if prefork:
        scaled = _scale([desired[i] for i in prefork],
                        [auto[i]["numprocs"] * _per_slot_memory(auto[i]) for i in prefork], available)
        for i, value in zip(prefork, scaled):
            caps[i] = value
    return caps


def _fit_numprocs(auto, desired, available):
    """Auto numprocs lowered first when the model's slots exceed the DB connections left (proportional shares)."""
    total = sum(d * p["numprocs"] for d, p in zip(desired, auto))
    if total <= available:
        return
    for d, p in zip(desired, auto):
        if not p.get("numprocs_auto") or p["numprocs"] == 1:
            continue
        share = max(available, 0) * d * p["numprocs"] // total
        numprocs = max(1, min(p["numprocs"], share // d))
        if numprocs < p["numprocs"]:
            p["explain"].append("numprocs capped from %d to %d by the DB connection budget (%d connections)"
                                % (p["numprocs"], numprocs, available))
            p["numprocs"] = numprocs
            p["process_names"] = expand_process_names(p["name"], p["process_name"], numprocs, p["numprocs_start"],
                                                      p["group_name"])


def size_auto(auto, used, budget):
    """Auto concurrency: what the sizing model wants, scaled down to the DB and memory budgets left.

    Auto numprocs shrinks first (fewer processes of the model's size), then concurrency.
    """
    desired = [p["desired"] for p in auto]
    _fit_numprocs(auto, desired, budget["db"] - used["conns"])
    db_caps = _scale(desired, [p["numprocs"] for p in auto], budget["db"] - used["conns"])
    mem_caps = _memory_caps(auto, desired, budget["memory"] - used["memory"])
    for i, p in enumerate(auto):
        value = p["concurrency"] = min(desired[i], db_caps[i], mem_caps[i])
        for line in p["desired_explain"]:
            if line.startswith("concurrency="):
                model = "" if value == desired[i] else " (model: %d)" % desired[i]
                line = "concurrency=%d: auto, %s%s" % (value, line.split(": ", 1)[1], model)
            p["explain"].append(line)
        if value < desired[i] and db_caps[i] == value:
            p["explain"].append(
                "concurrency capped from %d to %d by the DB connection budget (%d connections, "
                "%d used by workers with fixed concurrency, auto values scaled proportionally)"
                % (desired[i], value, budget["db"], used["conns"]))
        if value < desired[i] and mem_caps[i] == value:
            p["explain"].append(
                "concurrency capped from %d to %d so concurrency x %s per child fits the memory "
                "budget %s (%d%% of %s)"
                % (desired[i], value, human_size(_per_slot_memory(p)), human_size(budget["memory"]),
                   budget["percent"], human_size(budget["memory_total"])))


def check_totals(plans, any_fixed, budget):
    conns = sum(db_connections(p, p["concurrency"]) for p in plans)
    mem = sum(memory_estimate(p, p["concurrency"]) for p in plans)
    if conns > budget["db"]:
        raise WorkerFlagsError(
            "even with auto concurrency reduced to 1 the workers need %d DB connections but "
            "db_connection_budget is %d; %s or raise db_connection_budget"
            % (conns, budget["db"],
               "lower the fixed concurrency values" if any_fixed else "lower numprocs or the number of workers"))
    if mem > budget["memory"]:
        raise WorkerFlagsError(
            "even with auto concurrency reduced to 1 the workers need about %s but the memory "
            "budget is %s (%d%% of %s); lower memory limits or numprocs, or raise "
            "memory_budget_percent" % (human_size(mem), human_size(budget["memory"]),
                                       budget["percent"], human_size(budget["memory_total"])))
    return dict(conns=conns, memory=mem)
