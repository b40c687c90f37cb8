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
from ansible_collections.authops.celery_tuning.plugins.module_utils.memory_fit import (
    process_estimate,
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
    """Estimated RSS of all processes of one program (the baseline is memory_baseline or 128 MiB).

    prefork: numprocs x (parent baseline + concurrency x (max_memory_per_child or baseline));
    threads, gevent, eventlet: numprocs x (baseline + concurrency x 0.25 MiB), what such a process of Auth's
    measures (memory_fit.process_estimate); solo and beat: numprocs x baseline. A memmon limit is a ceiling that
    restarts the process, not an estimate of it.
    """
    baseline = w["memory_baseline"] or DEFAULT_BASELINE
    if w["pool"] == "prefork":
        per_proc = baseline + concurrency * _per_slot_memory(w)
    else:
        per_proc = process_estimate(w["pool"], concurrency, baseline)
    return w["numprocs"] * per_proc


def db_connections(w, concurrency):
    """Every pool slot (prefork child, thread, greenlet) may hold one DB connection."""
    return w["numprocs"] * concurrency


def db_share_of(budget, hosts):
    """This host's even share of a DB connection budget that ``hosts`` hosts share (one MariaDB, one
    max_connections): the budget keys ``db_hosts``, ``db_share``, ``db_why`` (how the share came about, for the
    caps' explain) and ``db_explain`` (the budget's own explain lines)."""
    if not isinstance(hosts, int) or isinstance(hosts, bool) or hosts < 1:
        raise WorkerFlagsError("db_connection_hosts must be an integer >= 1 (the hosts sharing the database), "
                               "got %r" % (hosts,))
    if hosts == 1:
        return dict(db_hosts=1, db_share=budget, db_why="%d connections" % budget, db_explain=[])
    share = budget // hosts
    if share < 1:
        raise WorkerFlagsError("db_connection_budget %d cannot be shared by %d hosts (db_connection_hosts): each "
                               "needs at least one connection; raise db_connection_budget together with MariaDB's "
                               "max_connections" % (budget, hosts))
    why = "this host's share of the cluster's DB budget: %d / %d hosts = %d connections" % (budget, hosts, share)
    return dict(db_hosts=hosts, db_share=share, db_why=why,
                db_explain=["DB connections: the auto values are sized within %s (given concurrency is checked "
                            "against the whole %d; the cluster check adds up every host's)" % (why, budget)])


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
            "the given settings need about %s of memory (%s) but the workers' memory budget is %s (%s); "
            "lower concurrency, numprocs or the memory limits, or raise memory_budget_percent (or memory_total, "
            "or lower memory_reserve)" % (human_size(mem), detail, human_size(budget["memory"]), budget["memory_why"]))
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


def _fit_numprocs(auto, desired, available, why):
    """Auto numprocs lowered first when the model's slots exceed the DB connections left.

    Each such worker gets its proportional share of the connections left, in as few processes as hold the share
    at the model's concurrency (rounded up, so the share is used; concurrency then shrinks to fit, see size_auto).
    """
    total = sum(d * p["numprocs"] for d, p in zip(desired, auto))
    if total <= available:
        return
    for d, p in zip(desired, auto):
        if not p.get("numprocs_auto") or p["numprocs"] == 1:
            continue
        share = max(available, 0) * d * p["numprocs"] // total
        numprocs = max(1, min(p["numprocs"], -(-share // d)))
        if numprocs < p["numprocs"]:
            p["caps"].append(
                "numprocs capped from %d to %d by the DB connection budget (%s): %d connections are left for the "
                "auto workers, %d for this one, which %d processes of up to %d slots (the model) hold; more "
                "processes would only share them out thinner. To use more CPUs, raise db_connection_budget together "
                "with MariaDB's max_connections" % (p["numprocs"], numprocs, why, available, share, numprocs, d))
            p["numprocs_model"] = p["numprocs_model"] or p["numprocs"]
            p["numprocs"] = numprocs
            p["process_names"] = expand_process_names(p["name"], p["process_name"], numprocs, p["numprocs_start"],
                                                      p["group_name"])


def _fit_numprocs_memory(auto, desired, available, budget):
    """Auto numprocs of the in-process pools lowered, one process at a time from the largest, until the auto
    workers' estimate fits the memory the budget leaves them (a process holds its own baseline)."""
    def total():
        return sum(memory_estimate(p, d) for p, d in zip(auto, desired))
    start = dict((id(p), p["numprocs"]) for p in auto)
    while total() > available:
        shrinkable = [p for p in auto if p.get("numprocs_auto") and p["numprocs"] > 1 and p["pool"] != "prefork"]
        if not shrinkable:
            break
        p = max(shrinkable, key=lambda item: item["numprocs"])
        p["numprocs"] -= 1
    for p in auto:
        if p["numprocs"] < start[id(p)]:
            p["caps"].append(
                "numprocs capped from %d to %d so the workers' estimate (about %s with this one at %d process(es)) "
                "fits their memory budget %s (%s)"
                % (start[id(p)], p["numprocs"], human_size(total() + budget["memory"] - available), p["numprocs"],
                   human_size(budget["memory"]), budget["memory_why"]))
            p["numprocs_model"] = p["numprocs_model"] or start[id(p)]
            p["process_names"] = expand_process_names(p["name"], p["process_name"], p["numprocs"],
                                                      p["numprocs_start"], p["group_name"])


def _explain_auto(p, value, desired, db_cap, mem_cap, budget, used):
    """The model's lines with the values the budgets left, then why each was capped."""
    for line in p["desired_explain"]:
        if line.startswith("concurrency="):
            model = "" if value == desired else " (model: %d)" % desired
            line = "concurrency=%d: auto, %s%s" % (value, line.split(": ", 1)[1], model)
        elif line.startswith("numprocs=") and p.get("numprocs_model"):
            line = "numprocs=%d: auto, %s (model: %d)" % (p["numprocs"], line.split(": ", 1)[1], p["numprocs_model"])
        p["explain"].append(line)
    p["explain"].extend(p.get("caps") or ())
    if value < desired and db_cap == value:
        p["explain"].append(
            "concurrency capped from %d to %d by the DB connection budget (%s, "
            "%d used by workers with fixed concurrency, auto values scaled proportionally)"
            % (desired, value, budget["db_why"], used["conns"]))
    if value < desired and mem_cap == value:
        p["explain"].append(
            "concurrency capped from %d to %d so concurrency x %s per child fits the memory "
            "budget %s (%s)" % (desired, value, human_size(_per_slot_memory(p)), human_size(budget["memory"]),
                                budget["memory_why"]))


def size_auto(auto, used, budget):
    """Auto concurrency: what the sizing model wants, scaled down to the DB and memory budgets left.

    Auto numprocs shrinks first (fewer processes of the model's size), then concurrency. The DB budget of the
    auto values is this host's share (``db_share``: the whole budget on a host alone).
    """
    desired = [p["desired"] for p in auto]
    _fit_numprocs(auto, desired, budget["db_share"] - used["conns"], budget["db_why"])
    _fit_numprocs_memory(auto, desired, budget["memory"] - used["memory"], budget)
    db_caps = _scale(desired, [p["numprocs"] for p in auto], budget["db_share"] - used["conns"])
    mem_caps = _memory_caps(auto, desired, budget["memory"] - used["memory"])
    for i, p in enumerate(auto):
        value = p["concurrency"] = min(desired[i], db_caps[i], mem_caps[i])
        _explain_auto(p, value, desired[i], db_caps[i], mem_caps[i], budget, used)


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
        detail = ", ".join("%s %s" % (p["name"], human_size(memory_estimate(p, p["concurrency"]))) for p in plans)
        raise WorkerFlagsError(
            "even with the auto values reduced (numprocs, prefork concurrency) the workers need about %s (%s) but their memory "
            "budget is %s (%s); lower memory limits or numprocs, or raise memory_budget_percent (or memory_total, "
            "or lower memory_reserve)" % (human_size(mem), detail, human_size(budget["memory"]), budget["memory_why"]))
    return dict(conns=conns, memory=mem)
