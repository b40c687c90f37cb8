# -*- coding: utf-8 -*-
# Copyright: authops.celery_tuning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""One worker spec, read and resolved on its own (before any budget): options converted and checked
against the table, beat rules, fixed concurrency, stop safety, ignored time limits and the process names."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import platform

from ansible_collections.authops.celery_tuning.plugins.module_utils.celery_cli import (
    check_extra_args,
)
from ansible_collections.authops.celery_tuning.plugins.module_utils.memory_limits import (
    check_limit,
    memory_protection,
)
from ansible_collections.authops.celery_tuning.plugins.module_utils.plan_errors import (
    WorkerFlagsError,
    check_worker_name,
    checked,
)
from ansible_collections.authops.celery_tuning.plugins.module_utils.sizes import (
    parse_size,
)
from ansible_collections.authops.celery_tuning.plugins.module_utils.sizing import (
    DEFAULT_DB_DRIVER,
    choose_pool,
    desired_size,
)
from ansible_collections.authops.celery_tuning.plugins.module_utils.worker_options import (
    DEFAULT_PROCESS_NAME,
    WORKER_OPTIONS,
)
from ansible_collections.authops.celery_tuning.plugins.module_utils.gate import (
    PROCESS_NAME_MAX,
    check_app,
    check_arg,
    check_expansions,
    check_name,
    check_path,
    check_queue,
)


#: Time limits each pool ignores: the threads and solo pools enforce none, gevent and eventlet
#: enforce the hard limit only (Celery's pool implementations).
IGNORED_TIME_LIMITS = {
    "threads": ("time_limit", "soft_time_limit"),
    "solo": ("time_limit", "soft_time_limit"),
    "gevent": ("soft_time_limit",),
    "eventlet": ("soft_time_limit",),
}


#: Seconds added to the hard time limit for the recommended supervisor stopwaitsecs.
STOPWAITSECS_MARGIN = 30


def expand_process_names(program_name, process_name=DEFAULT_PROCESS_NAME, numprocs=1,
                         numprocs_start=0, group_name=None):
    """Real supervisor process names, e.g. ``['worker_00']``.

    Supervisor expands ``process_name`` with program_name, process_num, group_name (the
    ``[group:x]`` name when the program belongs to a heterogeneous group, else the program name)
    and numprocs; process_num runs from numprocs_start.
    """
    if numprocs > 1 and "%(process_num)" not in process_name:
        raise WorkerFlagsError(
            "worker %s: process_name %r must contain %%(process_num) when numprocs > 1 "
            "(supervisor refuses it otherwise); use e.g. %s"
            % (program_name, process_name, DEFAULT_PROCESS_NAME))
    names = []
    for num in range(numprocs_start, numprocs_start + numprocs):
        expansions = {
            "program_name": program_name,
            "process_num": num,
            "group_name": group_name or program_name,
            "numprocs": numprocs,
            "host_node_name": platform.node(),
        }
        try:
            names.append(checked(check_name, "worker %s: process_name %r gives" % (program_name, process_name),
                                 process_name % expansions, PROCESS_NAME_MAX))
        except KeyError as exc:
            raise WorkerFlagsError(
                "worker %s: process_name %r uses %%(%s)s which cannot be expanded here; "
                "only program_name, process_num, group_name, numprocs and host_node_name are supported"
                % (program_name, process_name, exc.args[0]))
        except (ValueError, TypeError) as exc:
            raise WorkerFlagsError(
                "worker %s: process_name %r is not a valid supervisor expression (%s); "
                "use e.g. %s" % (program_name, process_name, exc, DEFAULT_PROCESS_NAME))
    return names


def _int_option(worker, key, minimum, name):
    value = worker.get(key)
    if value is None:
        return None
    if isinstance(value, bool):
        raise WorkerFlagsError("worker %s: %s must be an integer, got %r" % (name, key, value))
    try:
        value = int(value)
    except (TypeError, ValueError):
        raise WorkerFlagsError("worker %s: %s must be an integer, got %r" % (name, key, value))
    if value < minimum:
        raise WorkerFlagsError(
            "worker %s: %s must be at least %d, got %d" % (name, key, minimum, value))
    return value


def parse_numprocs(value, name="worker"):
    """Return ``None`` for auto, else an int >= 1."""
    if isinstance(value, str) and value.strip().lower() == "auto":
        return None
    if value is None or isinstance(value, bool):
        raise WorkerFlagsError("worker %s: numprocs must be 'auto' or an integer >= 1, got %r" % (name, value))
    try:
        number = int(str(value).strip())
    except ValueError:
        raise WorkerFlagsError("worker %s: numprocs must be 'auto' or an integer >= 1, got %r" % (name, value))
    if number < 1:
        raise WorkerFlagsError("worker %s: numprocs must be at least 1, got %d" % (name, number))
    return number


def parse_concurrency(value, name="worker"):
    """Return ``None`` for auto, else a positive int."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise WorkerFlagsError(
            "worker %s: concurrency must be 'auto' or an integer >= 1, got %r" % (name, value))
    if isinstance(value, str) and value.strip().lower() == "auto":
        return None
    try:
        number = int(str(value).strip())
    except ValueError:
        raise WorkerFlagsError(
            "worker %s: concurrency must be 'auto' or an integer >= 1, got %r" % (name, value))
    if number < 1:
        raise WorkerFlagsError(
            "worker %s: concurrency must be at least 1, got %d; use 'auto' or a positive number"
            % (name, number))
    return number


def normalize_worker(raw, strict=False, allow_small_memory_limit=False,
                     baseline_headroom_action="error", context=None):
    """Validate one worker dict and resolve everything that does not depend on other workers.

    The steps run in order, each on the dict the previous ones filled: read and check the options,
    the beat rules, the pool, a fixed concurrency, stop safety, time limits the pool ignores, memory
    protection, the size the model wants (before budgets) and the names.
    ``context``: ``cpu_count``, ``db_driver`` (and its source), ``profiles`` (measured task profiles
    by program name) and the ``memory`` budget in bytes.
    Returns a dict with private keys used by :func:`plan_workers`.
    """
    context = dict(dict(cpu_count=1, db_driver=DEFAULT_DB_DRIVER, db_driver_source="default", profiles={},
                        memory=None), **(context or {}))
    worker = _read_worker(raw)
    p = _resolve_options(worker)
    _check_beat(p, raw)
    choose_pool(p, context["db_driver"], context["db_driver_source"])
    _fix_concurrency(p)
    _stop_safety(p)
    _ignored_time_limits(p, strict)
    memory_protection(p, strict)
    for label, limit in (("max_memory_per_child", p["max_memory_per_child"]), ("memory limit", p["memmon_limit"])):
        if limit is not None:
            check_limit(p["name"], label, limit, p["memory_baseline"], allow_small_memory_limit,
                        baseline_headroom_action, p["warnings"], p["explain"])
    desired_size(p, worker, context)
    _names(p, worker)
    return p


def _read_worker(raw):
    """The worker's options over the table's defaults, with the names and paths through the gate."""
    if not isinstance(raw, dict):
        raise WorkerFlagsError("each item of workers must be a dict, got %r" % (raw,))
    worker = dict((key, spec.get("default")) for key, spec in WORKER_OPTIONS.items())
    worker.update(dict((k, v) for k, v in raw.items() if v is not None))
    unknown = sorted(set(raw) - set(WORKER_OPTIONS))
    if unknown:
        raise WorkerFlagsError(
            "worker %s: unknown option(s) %s; valid options are %s"
            % (raw.get("name"), ", ".join(unknown), ", ".join(sorted(WORKER_OPTIONS))))
    name = worker["name"]
    if not name:
        raise WorkerFlagsError("every worker needs a name (the supervisor program name)")
    checked(check_name, "worker name", name)
    checked(check_app, "worker %s: app" % name, worker["app"])
    if worker["group_name"] is not None:
        check_worker_name(worker["group_name"], "group_name", name)
    if not worker["celery_bin"] or not isinstance(worker["celery_bin"], str):
        raise WorkerFlagsError("worker %s: celery_bin must be a path such as "
                               "/home/allianceserver/venv/auth/bin/celery" % name)
    if worker["celery_bin"] != "celery":
        checked(check_path, "worker %s: celery_bin" % name, worker["celery_bin"])
    # process_name is written as it is (supervisor expands it); node_name is an argument of the
    # command, whose '%' the command line escapes (Celery's own %h, %n stay usable).
    what = "worker %s: process_name" % name
    checked(check_expansions, what, checked(check_arg, what, str(worker["process_name"])))
    if worker["node_name"]:
        checked(check_arg, "worker %s: node_name" % name, str(worker["node_name"]))
    return worker


def _choice(worker, key, choices, hint=""):
    value = str(worker[key]).lower()
    if value not in choices:
        raise WorkerFlagsError("worker %s: unknown %s %r; use one of %s%s"
                               % (worker["name"], key, worker[key], ", ".join(choices), hint))
    return value


def _queues(worker):
    queues = worker["queues"] or []
    if isinstance(queues, str):
        queues = [q.strip() for q in queues.split(",")]
    for queue in queues:
        if not isinstance(queue, str) or not queue or "," in queue or " " in queue:
            raise WorkerFlagsError(
                "worker %s: queue %r is invalid; give queues as a list of names without "
                "commas or spaces" % (worker["name"], queue))
        checked(check_queue, "worker %s: queue" % worker["name"], queue)
    return list(queues)


def _resolve_options(worker):
    """Every option of the table converted and range-checked (choices, minimums, sizes), under its
    ``resolved_as`` key; the options with a grammar of their own through their converter."""
    name = worker["name"]
    p = dict(warnings=[], explain=[])
    for key, spec in WORKER_OPTIONS.items():
        p[spec.get("resolved_as", key)] = _convert(worker, key, spec, name)
    p["extra_argv"] = p.pop("extra_args")
    return p


#: Options with a grammar of their own (``auto``, comma lists, Celery's command line).
_CONVERTERS = {
    "concurrency": lambda worker, name: parse_concurrency(worker["concurrency"], name),
    "numprocs": lambda worker, name: parse_numprocs(worker["numprocs"], name),
    "queues": lambda worker, name: _queues(worker),
    "extra_args": lambda worker, name: check_extra_args(worker["extra_args"], name, bool(worker["beat"])),
}


def _convert(worker, key, spec, name):
    """One option's value, by what the table says of it."""
    if key in _CONVERTERS:
        return _CONVERTERS[key](worker, name)
    value = worker[key]
    if "choices" in spec:
        return _choice(worker, key, spec["choices"], " (the guide uses info)" if key == "loglevel" else "")
    if spec.get("size"):
        return None if value is None else parse_size(value, "worker %s: %s" % (name, key))
    if spec["type"] == "int":
        return _int_option(worker, key, spec.get("minimum", 0), name)
    if spec["type"] == "bool":
        return bool(value)
    return value


def _check_beat(p, raw):
    """A beat program has no pool, queues or limits, and runs exactly one process."""
    if not p["beat"]:
        return
    name = p["name"]
    for key in ("queues", "max_memory_per_child", "max_tasks_per_child", "prefetch_multiplier",
                "time_limit", "soft_time_limit"):
        if raw.get(key) not in (None, [], ""):
            raise WorkerFlagsError(
                "worker %s: %s does not apply to a beat program; remove it or set beat: false"
                % (name, key))
    if p["pool"] != "auto" or p["concurrency_given"] is not None or p["single_threaded"]:
        raise WorkerFlagsError(
            "worker %s: pool, concurrency and single_threaded do not apply to a beat "
            "program; leave them at their defaults or set beat: false" % name)
    if p["numprocs"] is None:
        p["numprocs"] = 1
    if p["numprocs"] != 1:
        raise WorkerFlagsError(
            "worker %s: a beat program must run exactly one process (numprocs: 1), "
            "otherwise every periodic task is sent several times" % name)


def _fix_concurrency(p):
    """Concurrency that no budget may change: given, beat, single-threaded or solo."""
    name, concurrency = p["name"], p["concurrency_given"]
    fixed = concurrency
    if p["beat"]:
        fixed = 1
    elif p["single_threaded"]:
        if concurrency is not None and concurrency > 1:
            raise WorkerFlagsError(
                "worker %s: single_threaded needs concurrency 1 (or auto), got %d; the services "
                "queue breaks (Discord role sync) with more than one task at a time"
                % (name, concurrency))
        if (p["numprocs"] or 1) > 1:
            raise WorkerFlagsError(
                "worker %s: single_threaded needs numprocs 1, got %d; %d processes would run %d tasks "
                "of the services queue at a time" % (name, p["numprocs"], p["numprocs"], p["numprocs"]))
        fixed = 1
        p["explain"].append("concurrency=1: single_threaded runs one task at a time")
    elif p["pool"] == "solo":
        if concurrency is not None and concurrency > 1:
            raise WorkerFlagsError(
                "worker %s: the solo pool always runs one task at a time; remove concurrency %d "
                "or choose another pool" % (name, concurrency))
        fixed = 1
        p["explain"].append("concurrency=1: the solo pool runs one task at a time in the main process")
    elif concurrency is not None:
        p["explain"].append("concurrency=%d: given" % concurrency)
    p["fixed_concurrency"] = fixed
    if not p["beat"] and not p["single_threaded"] and "services" in p["queues"]:
        p["warnings"].append(
            "queue services must run one task at a time (Discord role sync breaks otherwise); "
            "set single_threaded: true")


def _ignored_time_limits(p, strict):
    """Time limits the pool does not enforce: a warning (the flag is still passed), or an error if strict."""
    ignored = [key for key in IGNORED_TIME_LIMITS.get(p["pool"], ()) if p[key] is not None]
    if not ignored:
        return
    flags = " and ".join("--" + key.replace("_", "-") for key in ignored)
    what = ("enforces no time limit" if len(IGNORED_TIME_LIMITS[p["pool"]]) == 2
            else "enforces the hard --time-limit only, no soft limit")
    if strict:
        raise WorkerFlagsError(
            "worker %s: %s do(es) nothing with pool %s (it %s); remove %s, switch to pool prefork, "
            "or set strict: false" % (p["name"], flags, p["pool"], what, " and ".join(ignored)))
    p["warnings"].append("%s silently do(es) nothing with pool %s: it %s; a stuck task is not stopped "
                         "(use pool prefork for enforced limits)" % (flags, p["pool"], what))


def _stop_safety(p):
    """stopwaitsecs above the hard time limit, so a graceful stop never kills a running task."""
    time_limit, soft, stopwaitsecs = p["time_limit"], p["soft_time_limit"], p["stopwaitsecs"]
    if time_limit is not None and soft is not None and soft >= time_limit:
        raise WorkerFlagsError(
            "worker %s: soft_time_limit (%d) must be lower than time_limit (%d) so tasks get "
            "SoftTimeLimitExceeded before they are killed" % (p["name"], soft, time_limit))
    p["stopwaitsecs_recommended"] = stopwaitsecs
    if p["beat"]:
        return
    if time_limit is None:
        p["explain"].append(
            "no hard time_limit: a task running longer than stopwaitsecs=%d is lost when "
            "supervisor stops the worker" % stopwaitsecs)
        return
    needed = time_limit + STOPWAITSECS_MARGIN
    p["stopwaitsecs_recommended"] = max(stopwaitsecs, needed)
    if stopwaitsecs < needed:
        p["warnings"].append(
            "stopwaitsecs %d is not above the hard time_limit %d (+%ds margin): supervisor "
            "kills the worker while tasks may still run and they are lost; set "
            "stopwaitsecs to at least %d" % (stopwaitsecs, time_limit, STOPWAITSECS_MARGIN, needed))
        p["explain"].append(
            "stopwaitsecs_recommended=%d: time_limit %d + %ds so running tasks finish or "
            "hit the hard limit before supervisor sends SIGKILL" % (needed, time_limit, STOPWAITSECS_MARGIN))
    else:
        p["explain"].append(
            "stopwaitsecs=%d is above time_limit %d + %ds: a stop waits for running tasks"
            % (stopwaitsecs, time_limit, STOPWAITSECS_MARGIN))


def _names(p, worker):
    """Real process names, and a warning when several processes would share one node name."""
    p["process_name"], p["group_name"] = worker["process_name"], worker["group_name"]
    p["process_names"] = expand_process_names(
        p["name"], worker["process_name"], p["numprocs"], p["numprocs_start"], worker["group_name"])
    node_name = p["node_name"] = worker["node_name"]
    if node_name and p["numprocs"] > 1 and not any(token in node_name for token in ("%(process_num)", "%i", "%I")):
        p["warnings"].append(
            "node_name %r is the same for all %d processes; Celery warns about duplicate node "
            "names; include %%(process_num)02d" % (node_name, p["numprocs"]))
