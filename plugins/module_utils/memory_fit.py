# -*- coding: utf-8 -*-
# Copyright: authops.celery_tuning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Memory fit: what the host's memory holds besides the workers (the website, MariaDB, Redis, the OS), what a
worker process really uses (its RSS, not its memmon limit), and the workers' budget that leaves."""

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
    parse_size,
)
from ansible_collections.authops.celery_tuning.plugins.module_utils.supervisor_conf import (
    gunicorn_workers,
)

#: Pools whose slots are threads or greenlets of one process: each slot adds a little RSS (its stack pages, its DB
#: connection's buffers, the task in hand). Measured in `make bench-auth` on Auth 5.5's own tasks (peak RSS per
#: process): threads 5 121 MiB, 10 x 2 122, 18 x 2 124, 25 x 1 126, 32 x 2 129, 35 x 2 130: about 0.25 MiB a slot
#: above 120 MiB. The baseline (128 MiB, or memory_baseline) plus this per slot estimates a process.
SLOT_POOLS = ("threads", "gevent", "eventlet")
SLOT_MEMORY = MIB // 4
#: Auth's gunicorn (``myauth.wsgi``, no --preload): its master and each worker (Django and Auth loaded). Measured in
#: the real Auth 5.5 image (bench/auth_tasks.py, ``services_rss_mib``): 337 MiB for the master and 3 workers after 20
#: requests to the website (2026-12-06); the estimate (32 MiB + 3 x 128 MiB = 416 MiB) leaves the workers room to
#: grow with the pages they serve.
GUNICORN_MASTER = 32 * MIB
GUNICORN_WORKER = DEFAULT_BASELINE
#: Kept free of every planned or carried program: MariaDB (its default 128 MiB buffer pool, and a thread with its
#: buffers per connection: up to the DB budget's 100), Redis (broker and Auth's cache) and the OS. Measured in the
#: real Auth 5.5 image after a bench run (bench/auth_tasks.py, ``services_rss_mib``): MariaDB 125 MiB, Redis 13 MiB
#: (2026-12-06, 112 tasks); the rest is the OS's and MariaDB's growth under many connections.
DEFAULT_MEMORY_RESERVE = 512 * MIB


def process_estimate(pool, concurrency, baseline=None):
    """Realistic RSS of one process of a pool that runs its slots in-process (threads, gevent, eventlet), solo or
    beat: the baseline plus SLOT_MEMORY per slot. A memmon limit is the ceiling, not this estimate."""
    baseline = baseline or DEFAULT_BASELINE
    if pool in SLOT_POOLS:
        return baseline + max(1, int(concurrency)) * SLOT_MEMORY
    return baseline


def carried_estimate(programs):
    """``(bytes, [explain])``: the RSS of the programs carried over from Auth's file (gunicorn: its master and
    workers; any other: a baseline per process), as ``{"name", "options"}`` dicts (options as a dict or pairs)."""
    total, explain = 0, []
    for program in programs or []:
        if not isinstance(program, dict):
            continue
        opts = program.get("options") or {}
        opts = dict(opts) if not isinstance(opts, dict) else opts
        command = str(opts.get("command") or "")
        try:
            numprocs = max(1, int(opts.get("numprocs") or 1))
        except (TypeError, ValueError):
            numprocs = 1
        binary = command.split(None, 1)[0].rsplit("/", 1)[-1] if command.strip() else ""
        if binary == "gunicorn":
            workers = gunicorn_workers(command)
            size = numprocs * (GUNICORN_MASTER + workers * GUNICORN_WORKER)
            explain.append("%s: about %s (gunicorn: master %s + %d workers x %s)"
                           % (program.get("name"), human_size(size), human_size(GUNICORN_MASTER), workers,
                              human_size(GUNICORN_WORKER)))
        else:
            size = numprocs * DEFAULT_BASELINE
            explain.append("%s: about %s (%d process(es) x %s)" % (program.get("name"), human_size(size), numprocs,
                                                                   human_size(DEFAULT_BASELINE)))
        total += size
    return total, explain


def reserve_bytes(value):
    """The reserve as bytes (a size, or None for the default)."""
    if value is None or value == "":
        return DEFAULT_MEMORY_RESERVE
    return parse_size(value, "memory_reserve")


def workers_budget(memory_total, percent, reserve, carried, carried_explain=()):
    """The memory the planned programs may use together: the smaller of ``percent`` of the host's memory and what
    the host keeps after the reserve (MariaDB, Redis, the OS) and the carried-over programs (gunicorn).

    Returns ``{"memory", "why", "share", "fit", "reserve", "carried", "explain"}``; refuses a host whose reserve
    and carried programs leave nothing for the workers."""
    share = memory_total * percent // 100
    fit = memory_total - reserve - carried
    if fit < DEFAULT_BASELINE:
        raise WorkerFlagsError(
            "the host's memory %s holds the reserve for MariaDB, Redis and the OS (memory_reserve %s) and the "
            "carried-over programs (%s: %s), which leaves %s, less than one worker process (%s); give the host "
            "more memory, or lower memory_reserve if MariaDB and Redis run elsewhere"
            % (human_size(memory_total), human_size(reserve), human_size(carried),
               "; ".join(carried_explain) or "none", human_size(max(fit, 0)), human_size(DEFAULT_BASELINE)))
    if fit < share:
        why = ("what %s leaves after the reserve %s for MariaDB, Redis and the OS and %s for the carried-over "
               "programs; %d%% would be %s" % (human_size(memory_total), human_size(reserve), human_size(carried),
                                               percent, human_size(share)))
        memory = fit
    else:
        why = ("%d%% of %s; the host keeps the reserve %s for MariaDB, Redis and the OS and %s for the carried-over "
               "programs besides" % (percent, human_size(memory_total), human_size(reserve), human_size(carried)))
        memory = share
    explain = ["memory budget %s: %s" % (human_size(memory), why)] + list(carried_explain)
    return dict(memory=memory, why=why, share=share, fit=fit, reserve=reserve, carried=carried, explain=explain)
