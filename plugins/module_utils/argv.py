# -*- coding: utf-8 -*-
# Copyright: authops.celery_tuning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The argv of a planned worker: Celery's command line built from the option table, and the rendered plan
entry of one worker."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.authops.celery_tuning.plugins.module_utils.budgets import (
    db_connections,
    memory_estimate,
)
from ansible_collections.authops.celery_tuning.plugins.module_utils.sizes import (
    format_size,
    size_to_kib,
)
from ansible_collections.authops.celery_tuning.plugins.module_utils.sizing import (
    POOL_PACKAGES,
)
from ansible_collections.authops.celery_tuning.plugins.module_utils.supervisor_format import (
    build_command,
)
from ansible_collections.authops.celery_tuning.plugins.module_utils.worker_options import WORKER_OPTIONS


#: How a flag's value is written (WORKER_OPTIONS' ``written``).
_WRITTEN = {
    "str": str,
    "int": lambda value: "%d" % value,
    "list": ",".join,
    "kib": lambda value: "%d" % size_to_kib(value),
}


def build_argv(p):
    """argv for one resolved worker (see :func:`worker_plan.plan_workers`): every flag of the option table,
    in the table's order, with the value the plan resolved; then the extra arguments."""
    argv = [p["celery_bin"], "-A", p["app"], "beat" if p["beat"] else "worker"]
    for name, spec in WORKER_OPTIONS.items():
        flag, value = spec.get("flag"), p.get(name)
        if (not flag or flag == "-A" or value is None or value in ("", []) or (p["beat"] and not spec.get("beat"))
                or p["pool"] in spec.get("not_for_pools", ())):
            continue
        argv.append("%s=%s" % (flag, _WRITTEN[spec.get("written", "str")](value)))
    return argv + list(p["extra_argv"])


def render(p):
    argv = build_argv(p)
    memmon_limits = {}
    if p["memmon_limit"] is not None:
        for proc in p["process_names"]:
            memmon_limits[proc] = format_size(p["memmon_limit"])
    if p["prefetch_multiplier"] == 0:
        p["warnings"].append("prefetch_multiplier 0 lets the worker prefetch without limit")
    if p["pool"] == "eventlet":
        p["warnings"].append("eventlet is no longer actively developed; prefer pool gevent")
    packages = list(POOL_PACKAGES.get(p["pool"], []))
    if packages:
        p["explain"].append("packages %s: pool %s needs them installed in the Celery venv"
                            % (", ".join(packages), p["pool"]))
    return {
        "name": p["name"],
        "argv": argv,
        "command": build_command(argv),
        "beat": p["beat"],
        "pool": p["pool"],
        "concurrency": p["concurrency"],
        "loglevel": p["loglevel"],
        "queues": p["queues"],
        "node_name": p["node_name"],
        "single_threaded": p["single_threaded"],
        "process_names": p["process_names"],
        "process_name": p["process_name"],
        "numprocs_start": p["numprocs_start"],
        "max_memory_per_child_kib": (size_to_kib(p["max_memory_per_child"])
                                     if p["max_memory_per_child"] is not None else None),
        "max_tasks_per_child": p["max_tasks_per_child"],
        "prefetch_multiplier": p["prefetch_multiplier"],
        "time_limit": p["time_limit"],
        "soft_time_limit": p["soft_time_limit"],
        "stopwaitsecs": p["stopwaitsecs"],
        "stopwaitsecs_recommended": p["stopwaitsecs_recommended"],
        "memmon_limits": memmon_limits,
        "packages": packages,
        "memory_estimate_bytes": memory_estimate(p, p["concurrency"]),
        "db_connections": db_connections(p, p["concurrency"]),
        "warnings": list(p["warnings"]),
        "explain": list(p["explain"]),
    }
