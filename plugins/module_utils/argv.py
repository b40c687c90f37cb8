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


def build_argv(p):
    """argv for one resolved worker (see :func:`plan_workers`)."""
    argv = [p["celery_bin"], "-A", p["app"]]
    if p["beat"]:
        argv += ["beat", "--loglevel=%s" % p["loglevel"]]
        return argv + list(p["extra_argv"])
    argv += ["worker", "--loglevel=%s" % p["loglevel"], "--pool=%s" % p["pool"]]
    if p["pool"] != "solo":
        argv.append("--concurrency=%d" % p["concurrency"])
    if p["node_name"]:
        argv.append("--hostname=%s" % p["node_name"])
    if p["queues"]:
        argv.append("--queues=%s" % ",".join(p["queues"]))
    if p["prefetch_multiplier"] is not None:
        argv.append("--prefetch-multiplier=%d" % p["prefetch_multiplier"])
    if p["time_limit"] is not None:
        argv.append("--time-limit=%d" % p["time_limit"])
    if p["soft_time_limit"] is not None:
        argv.append("--soft-time-limit=%d" % p["soft_time_limit"])
    if p["max_memory_per_child"] is not None:
        argv.append("--max-memory-per-child=%d" % size_to_kib(p["max_memory_per_child"]))
    if p["max_tasks_per_child"] is not None:
        argv.append("--max-tasks-per-child=%d" % p["max_tasks_per_child"])
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
