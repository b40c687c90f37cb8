# -*- coding: utf-8 -*-
# Copyright: authops.celery_tuning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The worker option table: every option of a worker spec, with its type, default, choices, minimum and the
Celery flag it becomes. The module's argument spec, the defaults, the managed flags and the argv are built
from it; the docs and the role's argument_specs are checked against it (tests/unit/roles)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


POOLS = ("auto", "prefork", "threads", "gevent", "eventlet", "solo")
WORKLOADS = ("io", "cpu", "mixed")
LOGLEVELS = ("debug", "info", "warning", "error", "critical", "fatal")

#: The one default of process and node names: supervisor expands it to worker_00, worker_01...
DEFAULT_NAME = "%(program_name)s_%(process_num)02d"
DEFAULT_NODE_NAME = DEFAULT_PROCESS_NAME = DEFAULT_NAME

#: The one table of worker options, in the order of the argv. Per option:
#:
#: * ``type``, ``elements``, ``required``, ``choices``: as in an Ansible argument spec (the module's is built
#:   from them); ``default``: the value when neither the worker nor ``worker_defaults`` sets it;
#: * ``minimum``: the least integer accepted; ``size``: the value is a size (``sizes.parse_size``);
#: * ``flag``: the Celery flag the option becomes (managed: ``extra_args`` must not repeat it), ``written``:
#:   how its value is written (``str``, ``int``, ``list`` joined by commas, ``kib``: a size in KiB),
#:   ``beat``: beat takes it too, ``not_for_pools``: pools that take no such flag; ``resolved_as``: the
#:   key of the value given, when the plan resolves it into another (concurrency ``auto`` is sized);
#: * ``description``: the module documentation's lines (``scripts/module-docs.py`` writes them into
#:   ``worker_flags``' DOCUMENTATION, with the default; a test checks they agree).
#:
#: A new option is one row here; ``argv.build_argv`` writes its flag and ``worker_spec`` converts it.
WORKER_OPTIONS = {
    "name": dict(
        type="str",
        required=True,
        description=[
            "Supervisor program name (C([program:<name>])).",
        ]),
    "app": dict(
        type="str",
        default="myauth",
        flag="-A",
        description=[
            "Celery app passed as C(-A).",
        ]),
    "celery_bin": dict(
        type="str",
        default="celery",
        description=[
            "Celery executable, normally C(<venv>/bin/celery).",
        ]),
    "beat": dict(
        type="bool",
        default=False,
        description=[
            "The program runs C(celery -A <app> beat) instead of a worker. Pool, concurrency, queues, Celery "
            "memory flags, prefetch and time limits must not be set; numprocs must be 1.",
        ]),
    "loglevel": dict(
        type="str",
        choices=list(LOGLEVELS),
        default="info",
        flag="--loglevel",
        beat=True,
        description=[
            "Celery log level, emitted as C(--loglevel=<level>). The guide uses C(info).",
        ]),
    "pool": dict(
        type="str",
        choices=list(POOLS),
        default="auto",
        flag="--pool",
        description=[
            "Celery execution pool. V(auto) applies the rules in the description.",
            "C(gevent) and C(eventlet) need the package of that name in the virtualenv (see RV(packages)).",
        ]),
    "concurrency": dict(
        type="raw",
        default="auto",
        minimum=1,
        flag="--concurrency",
        written="int",
        not_for_pools=("solo",),
        resolved_as="concurrency_given",
        description=[
            "V(auto) or an integer >= 1.",
        ]),
    "node_name": dict(
        type="str",
        default=DEFAULT_NAME,
        flag="--hostname",
        description=[
            "Celery node name, emitted as C(--hostname=<node_name>) and left unescaped for supervisor's "
            "expansion. An empty string omits the flag.",
        ]),
    "queues": dict(
        type="list",
        elements="str",
        flag="--queues",
        written="list",
        description=[
            "Queues to consume (C(--queues=a,b)). Omit for Celery's default queue.",
        ]),
    "prefetch_multiplier": dict(
        type="int",
        minimum=0,
        flag="--prefetch-multiplier",
        written="int",
        description=[
            "Emitted as C(--prefetch-multiplier=N). C(0) means unlimited (warning).",
        ]),
    "time_limit": dict(
        type="int",
        minimum=1,
        flag="--time-limit",
        written="int",
        description=[
            "Hard task time limit in seconds (C(--time-limit=N)). Enforced by C(prefork), C(gevent) and "
            "C(eventlet) only; with C(threads) or C(solo) a warning, or an error with O(strict=true).",
        ]),
    "soft_time_limit": dict(
        type="int",
        minimum=1,
        flag="--soft-time-limit",
        written="int",
        description=[
            "Soft task time limit in seconds (C(--soft-time-limit=N)); must be lower than "
            "O(workers[].time_limit). Enforced by C(prefork) only; with other pools a warning, or an error "
            "with O(strict=true).",
        ]),
    "max_memory_per_child": dict(
        type="str",
        size=True,
        flag="--max-memory-per-child",
        written="kib",
        resolved_as="max_mem",
        description=[
            "Size such as C(256MB), C(262144KB) or C(1GB) (supervisor C(byte_size) rules; KB/MB/GB are 1024 "
            "multiples, case-insensitive, plain integers are bytes; KiB/MiB/GiB and K/M/G are accepted too).",
            "C(prefork) pool: emitted as C(--max-memory-per-child=<KiB>) (256MB -> 262144).",
            "Other pools ignore it; with O(strict=true) that is an error, otherwise a warning and the size "
            "becomes the memmon limit (unless O(workers[].memory_limit) is set).",
        ]),
    "max_tasks_per_child": dict(
        type="int",
        minimum=1,
        flag="--max-tasks-per-child",
        written="int",
        resolved_as="max_tasks",
        description=[
            "Emitted as C(--max-tasks-per-child=N) for the C(prefork) pool. Other pools ignore it (error with"
            " O(strict=true), otherwise a warning and it is dropped).",
        ]),
    "workload": dict(
        type="str",
        choices=list(WORKLOADS),
        default="io",
        description=[
            "What the tasks mostly do; used when O(workers[].pool=auto). Auth's tasks are mostly I/O (ESI "
            "HTTP calls and database updates).",
        ]),
    "memory_limit": dict(
        type="str",
        size=True,
        description=[
            "Memmon limit (a size) for every process of this program, returned in RV(memmon_limits). The way "
            "to protect C(threads), C(gevent), C(eventlet) and C(solo) workers; with C(prefork) memmon only "
            "measures the main process unless run with C(--cumulative); with it (the memmon role default) the"
            " limit covers the parent and all children, and a limit below (concurrency + 1) x baseline plus "
            "headroom gives a warning.",
        ]),
    "memory_baseline": dict(
        type="str",
        size=True,
        description=[
            "Measured RSS of an idle worker process (a size). Memory limits below baseline + max(25%, 64 MiB)"
            " are refused (see O(baseline_headroom_action)). Also used for the memory estimate.",
        ]),
    "single_threaded": dict(
        type="bool",
        default=False,
        description=[
            "Run one task at a time, as C(worker_services) on queue C(services) must (Discord role sync "
            "breaks otherwise). With V(auto) pool this is C(prefork) with concurrency 1. A concurrency or "
            "numprocs above 1 is an error.",
        ]),
    "only_if_in_auth_file": dict(
        type="bool",
        default=False,
        description=[
            "Plan this worker only when Auth's own file (the source of intent) has a program of this name, or "
            "when there is none to compare with. The role's C(worker_services) has it: Auth 5.x ships that "
            "program and Auth 4.x does not.",
        ]),
    "numprocs": dict(
        type="raw",
        default="auto",
        minimum=1,
        description=[
            "Supervisor C(numprocs) of the program, V(auto) or an integer >= 1. V(auto) is sized by the model"
            " in the description (threads, gevent and eventlet with auto concurrency get up to one process "
            "per CPU; other workers 1).",
        ]),
    "numprocs_start": dict(
        type="int",
        default=0,
        minimum=0,
        description=[
            "Supervisor C(numprocs_start) of the program.",
        ]),
    "process_name": dict(
        type="str",
        default=DEFAULT_NAME,
        description=[
            "Supervisor C(process_name) expression, expanded with C(program_name), C(process_num), "
            "C(group_name) and C(numprocs) into the real process names used for memmon.",
        ]),
    "group_name": dict(
        type="str",
        description=[
            "Value of the C(group_name) expansion in O(workers[].process_name). Supervisor uses the name of "
            "the C([group:x]) section the program belongs to (C(myauth) in Auth), else the program name (the "
            "default).",
        ]),
    "stopwaitsecs": dict(
        type="int",
        default=600,
        minimum=0,
        description=[
            "Supervisor C(stopwaitsecs) of the program (Auth uses 600), checked against "
            "O(workers[].time_limit).",
        ]),
    "extra_args": dict(
        type="list",
        elements="str",
        description=[
            "Further Celery worker arguments appended to the argv. Each item is split like a shell would "
            "(C(--without-mingle --without-gossip) gives two arguments).",
            "C(-B)/C(--beat) (a second beat) and C(-D)/C(--detach) (a process supervisor loses) are refused.",
            "Flags the module manages are refused in both C(--x=v) and C(--x v) forms - C(-A)/C(--app), "
            "C(-P)/C(--pool), C(-c)/C(--concurrency), C(--autoscale), C(-Q)/C(--queues), C(-l)/C(--loglevel),"
            " C(-n)/C(--hostname), C(--max-memory-per-child), C(--max-tasks-per-child), "
            "C(--prefetch-multiplier), C(--time-limit), C(--soft-time-limit). Use O(workers[].concurrency) "
            "instead of C(--autoscale), which Auth's supervisor programs do not need (a fixed pool, sized by "
            "the model, keeps the DB connection budget predictable).",
            "Example: C([\"--without-mingle --without-gossip\"]).",
        ]),
    "supervisor": dict(
        type="dict",
        description=[
            "Further C([program:x]) options of this program (for example C(startsecs) or C(priority)), over "
            "O(program_defaults). Options written from the plan (command, directory, user, numprocs, "
            "process_name, stopwaitsecs, logs, environment) are refused.",
        ]),
}

WORKER_DEFAULTS = dict((key, spec.get("default")) for key, spec in WORKER_OPTIONS.items())

#: Short forms and aliases of the flags in WORKER_OPTIONS.
_FLAG_ALIASES = {"-P": "--pool", "-c": "--concurrency", "--autoscale": "--concurrency", "-Q": "--queues",
                 "-l": "--loglevel", "-n": "--hostname", "--app": "-A"}


def managed_flags(beat=False):
    """Flags the module manages itself, by every spelling: ``{flag: option name}``. ``extra_args`` must not
    repeat them. A beat program manages only the flags beat takes (app, loglevel)."""
    flags = dict((spec["flag"], name) for name, spec in WORKER_OPTIONS.items()
                 if "flag" in spec and (not beat or spec.get("beat") or name == "app"))
    flags.update((alias, flags[flag]) for alias, flag in _FLAG_ALIASES.items() if flag in flags)
    return flags


def worker_argument_spec():
    """The module's suboptions of ``workers``, from :data:`WORKER_OPTIONS`.

    Without defaults: a worker option left out takes O(worker_defaults), then the table's default.
    """
    keys = ("type", "elements", "choices", "required")
    return dict((name, dict((k, v) for k, v in spec.items() if k in keys))
                for name, spec in WORKER_OPTIONS.items())


def worker_suboptions_doc():
    """The DOCUMENTATION suboptions of ``workers`` (what ``scripts/module-docs.py`` writes)."""
    doc = {}
    for name, spec in WORKER_OPTIONS.items():
        entry = dict(description=list(spec["description"]))
        if spec.get("default") is not None:
            shown = str(spec["default"]).lower() if isinstance(spec["default"], bool) else spec["default"]
            entry["description"].append("Default: C(%s), or the O(worker_defaults) value." % shown)
        for key in ("type", "elements", "required", "choices"):
            if key in spec:
                entry[key] = spec[key]
        doc[name] = entry
    return doc
