# -*- coding: utf-8 -*-
# Copyright: authops.celery_tuning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The worker plan: every worker spec resolved, checked together (one beat, unique names) and sized within
the budgets; the entry point of ``worker_flags``."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.authops.celery_tuning.plugins.module_utils.argv import (
    render,
)
from ansible_collections.authops.celery_tuning.plugins.module_utils.budgets import (
    DEFAULT_DB_CONNECTION_BUDGET,
    DEFAULT_MEMORY_BUDGET_PERCENT,
    check_fixed,
    check_totals,
    db_share_of,
    size_auto,
    with_measured_baseline,
)
from ansible_collections.authops.celery_tuning.plugins.module_utils.memory_limits import (
    HEADROOM_ACTIONS,
    check_prefork_memmon,
)
from ansible_collections.authops.celery_tuning.plugins.module_utils.memory_fit import (
    carried_estimate,
    reserve_bytes,
    workers_budget,
)
from ansible_collections.authops.celery_tuning.plugins.module_utils.plan_errors import (
    WorkerFlagsError,
)
from ansible_collections.authops.celery_tuning.plugins.module_utils.sizes import (
    MIB,
    human_size,
    parse_size,
)
from ansible_collections.authops.celery_tuning.plugins.module_utils.sizing import (
    DB_DRIVERS,
    DEFAULT_DB_DRIVER,
)
from ansible_collections.authops.celery_tuning.plugins.module_utils.worker_spec import (
    normalize_worker,
)


def plan_workers(workers, cpu_count, memory_total, memory_budget_percent=DEFAULT_MEMORY_BUDGET_PERCENT,
                 db_connection_budget=DEFAULT_DB_CONNECTION_BUDGET, allow_small_memory_limit=False,
                 baseline_headroom_action="error", strict=False, cpu_source="parameter",
                 memory_source="parameter", measured_rss=None, profile=None, db_driver=None, memory_reserve=None,
                 carried=None, db_connection_hosts=1):
    """Compute flags for all workers.  Raises WorkerFlagsError before returning anything.

    ``profile``: a ``worker_profile`` result (its ``workers`` by program name and its ``db_driver``);
    ``db_driver``: the tasks' database driver, over the profile's (default mysqlclient, Auth's).
    ``memory_reserve``: memory kept for MariaDB, Redis and the OS (a size; default memory_fit's);
    ``carried``: the programs carried over from Auth's file (gunicorn), whose RSS the host holds besides;
    ``db_connection_hosts``: the hosts sharing ``db_connection_budget`` (one database): the auto values are sized
    within this host's even share of it, given values are checked against the whole budget (the cluster check
    adds the hosts up).
    Steps: check the inputs, resolve each worker, check names are unique, check the fixed values
    against the budgets, size the auto values, check the totals.
    """
    workers = _check_plan_inputs(workers, cpu_count, memory_budget_percent, db_connection_budget,
                                 baseline_headroom_action)
    db_share = db_share_of(db_connection_budget, db_connection_hosts)
    memory_total = parse_size(memory_total, "memory_total")
    if memory_total < MIB:
        raise WorkerFlagsError("memory_total %r is implausibly small; give it with a unit, e.g. 8GB"
                               % (memory_total,))
    carried_bytes, carried_explain = carried_estimate(carried)
    fit = workers_budget(memory_total, memory_budget_percent, reserve_bytes(memory_reserve), carried_bytes,
                         carried_explain)
    budget = dict(cpu_count=cpu_count, memory_total=memory_total, percent=memory_budget_percent,
                  memory=fit["memory"], memory_why=fit["why"], fit=fit, db=db_connection_budget, **db_share)
    context = _sizing_context(profile, db_driver, cpu_count, budget["memory"])
    context["memory_why"] = fit["why"]
    plans = [normalize_worker(with_measured_baseline(w, measured_rss), strict, allow_small_memory_limit,
                              baseline_headroom_action, context) for w in workers]
    _check_unique(plans)
    fixed = [p for p in plans if p["fixed_concurrency"] is not None]
    for p in fixed:
        p["concurrency"] = p["fixed_concurrency"]
    used = check_fixed(fixed, budget)
    size_auto([p for p in plans if p["fixed_concurrency"] is None], used, budget)
    totals = check_totals(plans, bool(fixed), budget)
    for p in plans:
        check_prefork_memmon(p)
    budget["memory_source"] = memory_source
    return _summary([render(p) for p in plans], budget, totals, cpu_source, memory_source)


def _sizing_context(profile, db_driver, cpu_count, memory):
    """cpu_count, the DB driver and where it came from, and the measured profiles by program name."""
    profile = profile or {}
    if not isinstance(profile, dict):
        raise WorkerFlagsError("profile must be the result of authops.celery_tuning.worker_profile (a dict), "
                               "got %r" % (profile,))
    profiles = {}
    for item in profile.get("workers") or []:
        if not isinstance(item, dict) or not item.get("name"):
            raise WorkerFlagsError("profile.workers items must be dicts with a name, as worker_profile returns "
                                   "them; got %r" % (item,))
        profiles[item["name"]] = item
    source = "given"
    if not db_driver:
        db_driver, source = profile.get("db_driver"), "measured in the venv"
    if not db_driver or db_driver == "unknown" and source != "given":
        db_driver, source = DEFAULT_DB_DRIVER, "default: Auth's driver"
    if db_driver not in DB_DRIVERS:
        raise WorkerFlagsError("db_driver %r is not known; use one of %s" % (db_driver, ", ".join(DB_DRIVERS)))
    return dict(cpu_count=cpu_count, db_driver=db_driver, db_driver_source=source, profiles=profiles,
                memory=memory)


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _check_plan_inputs(workers, cpu_count, memory_budget_percent, db_connection_budget, headroom_action):
    if isinstance(workers, dict):
        workers = [workers]
    if not workers:
        raise WorkerFlagsError("workers is empty; give at least one worker program")
    if not _is_int(cpu_count) or cpu_count < 1:
        raise WorkerFlagsError("cpu_count must be an integer >= 1, got %r" % (cpu_count,))
    if not _is_int(memory_budget_percent) or not 1 <= memory_budget_percent <= 100:
        raise WorkerFlagsError("memory_budget_percent must be an integer from 1 to 100, got %r"
                               % (memory_budget_percent,))
    if not _is_int(db_connection_budget) or db_connection_budget < 1:
        raise WorkerFlagsError("db_connection_budget must be an integer >= 1, got %r"
                               % (db_connection_budget,))
    if headroom_action not in HEADROOM_ACTIONS:
        raise WorkerFlagsError("baseline_headroom_action must be one of %s, got %r"
                               % (", ".join(HEADROOM_ACTIONS), headroom_action))
    return workers


def _check_unique(plans):
    """One beat, unique program names, and no process name made by two programs."""
    beats = [p["name"] for p in plans if p["beat"]]
    if len(beats) > 1:
        raise WorkerFlagsError(
            "%d beat programs (%s): every periodic task would be sent %d times; keep exactly one beat"
            % (len(beats), ", ".join(beats), len(beats)))
    seen = set()
    owners = {}
    for p in plans:
        if p["name"] in seen:
            raise WorkerFlagsError("worker name %s is given twice; program names must be unique"
                                   % p["name"])
        seen.add(p["name"])
        for proc in p["process_names"]:
            if proc in owners:
                raise WorkerFlagsError(
                    "process name %s is produced by both %s and %s; change process_name, "
                    "group_name or numprocs_start" % (proc, owners[proc], p["name"]))
            owners[proc] = p["name"]


def _summary(results, budget, totals, cpu_source, memory_source):
    fit = budget["fit"]
    memmon_limits = {}
    for r in results:
        memmon_limits.update(r["memmon_limits"])
    return {
        "workers": results,
        "packages": sorted(set(pkg for r in results for pkg in r["packages"])),
        "memmon_limits": memmon_limits,
        "host": {
            "cpu_count": budget["cpu_count"],
            "cpu_count_source": cpu_source,
            "memory_bytes": budget["memory_total"],
            "memory_source": memory_source,
        },
        "budget": {
            "memory_budget_percent": budget["percent"],
            "memory_budget_bytes": budget["memory"],
            "memory_estimate_bytes": totals["memory"],
            "memory_reserve_bytes": fit["reserve"],
            "memory_carried_bytes": fit["carried"],
            "memory_host_estimate_bytes": totals["memory"] + fit["carried"] + fit["reserve"],
            "db_connection_budget": budget["db"],
            "db_connection_hosts": budget["db_hosts"],
            "db_connection_share": budget["db_share"],
            "db_connections": totals["conns"],
            "explain": fit["explain"] + budget["db_explain"] + [
                "memory: the workers about %s + carried-over programs %s + reserve %s = %s of %s (%s)"
                % (human_size(totals["memory"]), human_size(fit["carried"]), human_size(fit["reserve"]),
                   human_size(totals["memory"] + fit["carried"] + fit["reserve"]), human_size(budget["memory_total"]),
                   budget["memory_source"])],
        },
        "warnings": ["%s: %s" % (r["name"], w) for r in results for w in r["warnings"]],
    }
