# -*- coding: utf-8 -*-
# Copyright: authops.celery_tuning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Pure logic behind the ``authops.celery_tuning.worker_flags`` module.

Nothing in here touches the host: host facts come in as plain numbers (see ``host_facts``) and a
measured task profile as a dict (see ``worker_profile``). Every bad input raises
:class:`WorkerFlagsError` with a message that tells the user what to change. The auto rules (all
documented in the module's DOCUMENTATION as well):

* pool ``auto``: ``single_threaded`` -> ``prefork`` with concurrency 1 (so
  ``--max-memory-per-child`` keeps working); otherwise by workload and database driver: ``cpu``
  -> ``prefork``; ``io`` -> ``threads``, or ``gevent`` when every blocking library is cooperative
  (a pure-Python driver such as PyMySQL, or no database); ``mixed`` -> ``threads``.
  Auth's driver, mysqlclient, is a C extension that blocks a gevent hub on every query.
* concurrency and numprocs ``auto``: one sizing model, :func:`size_pool`, used by the planner and by
  ``worker_profile``'s recommendation alike. Per process, slots = target utilisation x task wall
  time / task CPU time (the point where the process, bound to one core by the GIL, is that busy);
  past that ceiling numprocs grows towards the CPU count. Without a measurement the task profile is
  the bench's DB task. Prefork runs one child per CPU. Auto values are then bounded by the DB
  connection budget and the memory budget. Explicit values are never changed: exceeding a budget
  with them is an error.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import difflib
import platform
import re
import shlex

from ansible_collections.authops.celery_tuning.plugins.module_utils.gate import (
    GateError,
    check_app,
    check_arg,
    check_expansions,
    PROCESS_NAME_MAX,
    check_name,
    check_path,
    check_queue,
)

KIB = 1024
MIB = 1024 * 1024
GIB = 1024 * 1024 * 1024

POOLS = ("auto", "prefork", "threads", "gevent", "eventlet", "solo")
WORKLOADS = ("io", "cpu", "mixed")
LOGLEVELS = ("debug", "info", "warning", "error", "critical", "fatal")
HEADROOM_ACTIONS = ("error", "warn")

#: Pools for which Celery honours --max-memory-per-child / --max-tasks-per-child.
MEMORY_FLAG_POOLS = ("prefork",)
#: Python packages a pool needs inside the virtualenv.
POOL_PACKAGES = {"gevent": ["gevent"], "eventlet": ["eventlet"]}

WORKLOAD_POOLS = {"io": "threads", "cpu": "prefork", "mixed": "threads"}
#: Pools whose process runs Python in one thread at a time (the GIL): one core per process.
ONE_CORE_POOLS = ("threads", "gevent", "eventlet")
#: Auth 5.x's stock threads concurrency: the auto value of workload mixed without a measurement.
DEFAULT_THREADS_CONCURRENCY = 5

#: Database drivers the pool rule knows. Auth's driver is mysqlclient (a C extension: each query
#: blocks a gevent hub). ``none``: the tasks use no database.
DB_DRIVERS = ("mysqlclient", "pymysql", "psycopg2", "psycopg", "sqlite3", "none", "unknown")
DEFAULT_DB_DRIVER = "mysqlclient"
#: Drivers under which every blocking library of an Auth task is cooperative with gevent's
#: patching (pure-Python sockets, like requests/urllib for ESI).
COOPERATIVE_DRIVERS = ("pymysql", "none")

#: The sizing model (size_pool). Target share of one core a process should use: below 1 so the
#: host keeps room for gunicorn, MariaDB and Redis, and a slot is free when a burst arrives.
TARGET_UTILIZATION = 0.8
#: Task profile assumed without a measurement: the bench's DB task (a 100 ms ESI call, then 4 short
#: queries through mysqlclient) as worker_profile measured it in `make bench` under Auth's threads 5
#: (2 CPUs, load average 8.3 -> 7.5, 2026-11-28): 156 ms per task (Little's law), 6.8 ms of worker CPU
#: per task. 0.8 x 0.156 / 0.0068 = 18 threads per process (bench/README.md).
DEFAULT_TASK_SECONDS = 0.156
DEFAULT_TASK_CPU_SECONDS = 0.0068
#: A profile with fewer completed tasks than this in its window is not used for sizing.
MIN_PROFILE_TASKS = 20

#: Time limits each pool ignores: the threads and solo pools enforce none, gevent and eventlet
#: enforce the hard limit only (Celery's pool implementations).
IGNORED_TIME_LIMITS = {
    "threads": ("time_limit", "soft_time_limit"),
    "solo": ("time_limit", "soft_time_limit"),
    "gevent": ("soft_time_limit",),
    "eventlet": ("soft_time_limit",),
}

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
#: Seconds added to the hard time limit for the recommended supervisor stopwaitsecs.
STOPWAITSECS_MARGIN = 30

DEFAULT_NODE_NAME = "%(program_name)s_%(process_num)02d"
DEFAULT_PROCESS_NAME = "%(program_name)s_%(process_num)02d"

DEFAULT_MEMORY_BUDGET_PERCENT = 50
#: MariaDB's default max_connections is 151; 100 leaves room for gunicorn, cron jobs and admins.
DEFAULT_DB_CONNECTION_BUDGET = 100

#: The one table of worker options: type (as in an Ansible argument spec), default, and for the
#: options that become a Celery flag, the flag. The module's argument spec, the defaults and the
#: managed flags are built from it; the docs and the role's argument_specs are checked against it.
WORKER_OPTIONS = {
    "name": dict(type="str", required=True),
    "app": dict(type="str", default="myauth", flag="-A"),
    "celery_bin": dict(type="str", default="celery"),
    "beat": dict(type="bool", default=False),
    "queues": dict(type="list", elements="str", flag="--queues"),
    "workload": dict(type="str", choices=list(WORKLOADS), default="io"),
    "pool": dict(type="str", choices=list(POOLS), default="auto", flag="--pool"),
    "concurrency": dict(type="raw", default="auto", flag="--concurrency"),
    "loglevel": dict(type="str", default="info", flag="--loglevel"),
    "max_memory_per_child": dict(type="str", flag="--max-memory-per-child"),
    "max_tasks_per_child": dict(type="int", flag="--max-tasks-per-child"),
    "memory_limit": dict(type="str"),
    "memory_baseline": dict(type="str"),
    "single_threaded": dict(type="bool", default=False),
    "numprocs": dict(type="raw", default="auto"),
    "numprocs_start": dict(type="int", default=0),
    "process_name": dict(type="str", default="%(program_name)s_%(process_num)02d"),
    "group_name": dict(type="str"),
    "node_name": dict(type="str", default="%(program_name)s_%(process_num)02d", flag="--hostname"),
    "prefetch_multiplier": dict(type="int", flag="--prefetch-multiplier"),
    "time_limit": dict(type="int", flag="--time-limit"),
    "soft_time_limit": dict(type="int", flag="--soft-time-limit"),
    "stopwaitsecs": dict(type="int", default=600),
    "extra_args": dict(type="list", elements="str"),
    "supervisor": dict(type="dict"),
}

WORKER_DEFAULTS = dict((key, spec.get("default")) for key, spec in WORKER_OPTIONS.items())


def worker_argument_spec():
    """The module's suboptions of ``workers``, from :data:`WORKER_OPTIONS`.

    Without defaults: a worker option left out takes O(worker_defaults), then the table's default.
    """
    keys = ("type", "elements", "choices", "required")
    return dict((name, dict((k, v) for k, v in spec.items() if k in keys))
                for name, spec in WORKER_OPTIONS.items())


#: Short forms and aliases of the flags in WORKER_OPTIONS.
_FLAG_ALIASES = {"-P": "--pool", "-c": "--concurrency", "--autoscale": "--concurrency", "-Q": "--queues",
                 "-l": "--loglevel", "-n": "--hostname", "--app": "-A"}
#: Flags the module manages itself; extra_args must not repeat them (long and short forms).
MANAGED_FLAGS = dict((spec["flag"], name) for name, spec in WORKER_OPTIONS.items() if "flag" in spec)
MANAGED_FLAGS.update((alias, MANAGED_FLAGS[flag]) for alias, flag in _FLAG_ALIASES.items())
#: Managed flags of a beat program (it has no pool, queues or node name of the plan's).
BEAT_MANAGED_FLAGS = dict((flag, name) for flag, name in MANAGED_FLAGS.items() if name in ("app", "loglevel"))


def _options(value_taking, flags):
    """``{spelling: (canonical long name, takes a value)}`` from lists of space-separated spellings."""
    table = {}
    for spellings, takes in ((value_taking, True), (flags, False)):
        for item in spellings:
            names = item.split()
            for spelling in names:
                table[spelling] = (names[0], takes)
    return table


#: Options of Celery's daemon commands (celery/bin/base.py CeleryDaemonCommand, Celery 5.x).
_DAEMON_OPTIONS = ("--logfile -f", "--pidfile", "--uid", "--gid", "--umask", "--executable")
#: ``celery worker``'s options (celery/bin/worker.py, Celery 5.0 to 5.7): the value-taking ones and the
#: booleans. Short booleans combine (``-EB`` is ``-E -B``); a short option that takes a value takes the
#: rest of its token (``-c2``) or the next one.
CELERY_WORKER_OPTIONS = _options(
    ("--hostname -n", "--statedb -S", "--loglevel -l", "--optimization -O", "--prefetch-multiplier",
     "--concurrency -c", "--pool -P", "--time-limit", "--soft-time-limit", "--max-tasks-per-child",
     "--pool-start-method", "--max-memory-per-child", "--queues -Q", "--exclude-queues -X", "--include -I",
     "--heartbeat-interval", "--autoscale", "--schedule-filename --schedule -s", "--scheduler") + _DAEMON_OPTIONS,
    ("--detach -D", "--disable-prefetch", "--task-events --events -E", "--purge --discard", "--without-gossip",
     "--without-mingle", "--without-heartbeat", "--beat -B", "--help"))
#: ``celery beat``'s options (celery/bin/beat.py, Celery 5.x).
CELERY_BEAT_OPTIONS = _options(
    ("--schedule -s", "--scheduler -S", "--max-interval", "--hostname -n", "--loglevel -l") + _DAEMON_OPTIONS,
    ("--detach", "--enable-remote-control", "--no-enable-remote-control", "--help"))
#: Values Celery accepts for its choice options.
CELERY_CHOICES = {"--optimization": ("default", "fair"), "--pool-start-method": ("fork", "spawn")}
CELERY_INT_OPTIONS = ("--heartbeat-interval",)
CELERY_NUMBER_OPTIONS = ("--max-interval",)
#: Options that would start a second scheduler, leave supervisor without its process, change who the
#: program runs as, throw the queued tasks away or never start (by their canonical name).
_BEAT_REASON = "runs an embedded beat: Auth needs exactly one beat (celery_workers_beat_enabled)"
_DETACH_REASON = "detaches from supervisor, which then restarts it in a loop"
_ID_REASON = "changes the user the program runs as; that is supervisor's user= (celery_workers_user)"
FORBIDDEN_OPTIONS = {
    "--beat": _BEAT_REASON,
    "--detach": _DETACH_REASON,
    "--uid": _ID_REASON,
    "--gid": _ID_REASON,
    "--purge": "deletes every task waiting in the queues each time the worker starts",
    "--help": "prints the help and exits, so supervisor restarts it in a loop",
}
#: The forbidden flags by every spelling (``-B``, ``--beat``, ``-D``, ``--detach``...).
FORBIDDEN_FLAGS = dict((spelling, FORBIDDEN_OPTIONS[canonical])
                       for table in (CELERY_WORKER_OPTIONS, CELERY_BEAT_OPTIONS)
                       for spelling, (canonical, takes) in table.items() if canonical in FORBIDDEN_OPTIONS)

_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$", re.IGNORECASE)
_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "k": KIB, "kb": KIB, "kib": KIB,
    "m": MIB, "mb": MIB, "mib": MIB,
    "g": GIB, "gb": GIB, "gib": GIB,
}
# A supervisor/Python %-expansion such as %(program_name)s or %(process_num)02d.
_EXPANSION_RE = re.compile(r"%\((\w+)\)([#0 +-]*\d*(?:\.\d+)?[sdiouxXeEfFgGcr])")


class WorkerFlagsError(Exception):
    """Bad input for the worker flag planner; the message says what to change."""


# ---------------------------------------------------------------------------------------------
# sizes
# ---------------------------------------------------------------------------------------------

def parse_size(value, what="size"):
    """Parse a size like supervisor's ``byte_size`` into bytes.

    ``KB``/``MB``/``GB`` are 1024 multiples and case-insensitive, plain integers are bytes.
    ``KiB``/``MiB``/``GiB``, ``K``/``M``/``G`` and ``B`` are accepted too, as are decimals
    (``1.5GB``); the result is rounded down to whole bytes.
    """
    if isinstance(value, bool) or value is None:
        raise WorkerFlagsError(
            "%s: %r is not a size; write it like 256MB, 262144KB or 1GB" % (what, value))
    if isinstance(value, int):
        if value < 0:
            raise WorkerFlagsError("%s: %r must not be negative" % (what, value))
        return value
    match = _SIZE_RE.match(str(value))
    if not match or match.group(2).lower() not in _SIZE_UNITS:
        raise WorkerFlagsError(
            "%s: cannot parse %r as a size; write a number with an optional unit "
            "B, KB, MB, GB (1024 multiples; KiB/MiB/GiB and K/M/G also accepted), e.g. 256MB"
            % (what, value))
    number, unit = match.group(1), match.group(2).lower()
    mult = _SIZE_UNITS[unit]
    nbytes = int(float(number) * mult) if "." in number else int(number) * mult
    if nbytes == 0 and float(number) != 0:
        raise WorkerFlagsError(
            "%s: %r rounds down to 0 bytes, which turns the limit off; write it like 256MB" % (what, value))
    return nbytes


def format_size(nbytes):
    """Format bytes the way supervisor/memmon read them back: ``512MB``, ``1GB``, ``1536KB``."""
    nbytes = int(nbytes)
    for unit, mult in (("GB", GIB), ("MB", MIB), ("KB", KIB)):
        if nbytes and nbytes % mult == 0:
            return "%d%s" % (nbytes // mult, unit)
    return str(nbytes)


def human_size(nbytes):
    """Readable (approximate) size for messages, e.g. ``121.0 MiB``."""
    nbytes = float(nbytes)
    if nbytes >= GIB:
        return "%.1f GiB" % (nbytes / GIB)
    return "%.1f MiB" % (nbytes / MIB)


def size_to_kib(nbytes):
    """Celery's --max-memory-per-child takes KiB."""
    return int(nbytes) // KIB


def baseline_headroom(baseline):
    """Headroom required above a measured baseline: max(25 %, 64 MiB)."""
    return max(int(baseline * HEADROOM_FRACTION), HEADROOM_MIN)


# ---------------------------------------------------------------------------------------------
# supervisor expansions / quoting
# ---------------------------------------------------------------------------------------------

def supervisor_escape(arg):
    """Escape ``%`` for supervisor's command expansion, keeping ``%(name)s``-style expansions."""
    out = []
    pos = 0
    for match in _EXPANSION_RE.finditer(arg):
        out.append(arg[pos:match.start()].replace("%", "%%"))
        out.append(match.group(0))
        pos = match.end()
    out.append(arg[pos:].replace("%", "%%"))
    return "".join(out)


def build_command(argv):
    """Supervisor-ready ``command=`` value: %-escaped, then shell-quoted (supervisor shlex-splits)."""
    return " ".join(shlex.quote(supervisor_escape(a)) for a in argv)


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
            names.append(_checked(check_name, "worker %s: process_name %r gives" % (program_name, process_name),
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


# ---------------------------------------------------------------------------------------------
# validation helpers
# ---------------------------------------------------------------------------------------------

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


def check_extra_args(extra_args, name="worker", beat=False):
    """Split extra_args (each item shell-split) and read them as Celery does (click, Celery's own option
    table for ``celery worker`` or ``celery beat``): unknown options, positional arguments, flags the module
    manages and flags that must not run under supervisor are refused, however they are spelled (``-EB`` is
    ``-E -B``)."""
    argv = []
    for item in extra_args or []:
        if not isinstance(item, str):
            raise WorkerFlagsError(
                "worker %s: extra_args items must be strings, got %r" % (name, item))
        _checked(check_arg, "worker %s: extra_args item" % name, item)
        try:
            tokens = shlex.split(item)
        except ValueError as exc:
            raise WorkerFlagsError(
                "worker %s: extra_args item %r cannot be split (%s); fix the quoting"
                % (name, item, exc))
        argv.extend(tokens)
    _read_celery_args(argv, name, beat)
    return argv


def _celery_option(flag, name, beat, origin):
    """The (canonical name, takes a value) of ``flag``, or a refusal that says what to do instead."""
    managed = BEAT_MANAGED_FLAGS if beat else MANAGED_FLAGS
    table = CELERY_BEAT_OPTIONS if beat else CELERY_WORKER_OPTIONS
    command = "celery beat" if beat else "celery worker"
    if flag in managed:
        raise WorkerFlagsError(
            "worker %s: extra_args must not contain %s (from %r); it is managed by the "
            "module: set the worker option %s instead" % (name, flag, origin, managed[flag]))
    if flag not in table:
        close = difflib.get_close_matches(flag, [f for f in table if f.startswith("--")], n=1)
        raise WorkerFlagsError(
            "worker %s: extra_args: %s has no option %s (from %r), so the program would not start%s; "
            "see '%s --help' for its options" % (name, command, flag, origin,
                                                 "; did you mean %s?" % close[0] if close else "", command))
    canonical, takes = table[flag]
    if canonical in FORBIDDEN_OPTIONS:
        raise WorkerFlagsError("worker %s: extra_args must not contain %s (from %r): it %s"
                               % (name, flag, origin, FORBIDDEN_OPTIONS[canonical]))
    return canonical, takes


def _celery_value(canonical, value, name, origin):
    choices = CELERY_CHOICES.get(canonical)
    if choices and value not in choices:
        raise WorkerFlagsError("worker %s: extra_args: %s takes one of %s, got %r (from %r)"
                               % (name, canonical, ", ".join(choices), value, origin))
    try:
        if canonical in CELERY_INT_OPTIONS:
            int(value)
        elif canonical in CELERY_NUMBER_OPTIONS:
            float(value)
    except ValueError:
        raise WorkerFlagsError("worker %s: extra_args: %s takes a number, got %r (from %r)"
                               % (name, canonical, value, origin))


def _read_celery_args(tokens, name, beat):
    """Walk ``tokens`` the way click parses Celery's command line."""
    command = "celery beat" if beat else "celery worker"
    pending = list(tokens)
    while pending:
        token = pending.pop(0)
        if token.startswith("--") and len(token) > 2:
            flag, eq, value = token.partition("=")
            canonical, takes = _celery_option(flag, name, beat, token)
            if takes and not eq:
                if not pending:
                    raise WorkerFlagsError("worker %s: extra_args: %s needs a value" % (name, flag))
                value = pending.pop(0)
            elif eq and not takes:
                raise WorkerFlagsError("worker %s: extra_args: %s takes no value (from %r)" % (name, flag, token))
            if takes:
                _celery_value(canonical, value, name, token)
        elif token.startswith("-") and len(token) > 1 and token != "--":
            pos = 1
            while pos < len(token):
                canonical, takes = _celery_option("-" + token[pos], name, beat, token)
                if takes:
                    value = token[pos + 1:]
                    if not value:
                        if not pending:
                            raise WorkerFlagsError("worker %s: extra_args: -%s needs a value (from %r)"
                                                   % (name, token[pos], token))
                        value = pending.pop(0)
                    _celery_value(canonical, value, name, token)
                    break
                pos += 1
        else:
            raise WorkerFlagsError(
                "worker %s: extra_args: %r is not an option; %s takes options only (a value belongs right "
                "after its option, as in '--statedb /path')" % (name, token, command))


def _checked(check, what, *args):
    """Run one of the gate's checkers, turning its refusal into a WorkerFlagsError."""
    try:
        return check(what, *args)
    except GateError as exc:
        raise WorkerFlagsError(str(exc))


def _check_name(value, what, name):
    _checked(check_name, "worker %s: %s" % (name, what), value)


# ---------------------------------------------------------------------------------------------
# per-worker resolution (before budgets)
# ---------------------------------------------------------------------------------------------

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
    _choose_pool(p, context["db_driver"], context["db_driver_source"])
    _fix_concurrency(p)
    _stop_safety(p)
    _ignored_time_limits(p, strict)
    _memory_protection(p, strict)
    for label, limit in (("max_memory_per_child", p["max_memory_per_child"]), ("memory limit", p["memmon_limit"])):
        if limit is not None:
            _check_limit(p["name"], label, limit, p["memory_baseline"], allow_small_memory_limit,
                         baseline_headroom_action, p["warnings"], p["explain"])
    _desired_size(p, worker, context)
    _names(p, worker)
    return p


def _read_worker(raw):
    """The worker's options over the table's defaults, with the names and paths through the gate."""
    if not isinstance(raw, dict):
        raise WorkerFlagsError("each item of workers must be a dict, got %r" % (raw,))
    worker = dict(WORKER_DEFAULTS)
    worker.update(dict((k, v) for k, v in raw.items() if v is not None))
    unknown = sorted(set(raw) - set(WORKER_DEFAULTS))
    if unknown:
        raise WorkerFlagsError(
            "worker %s: unknown option(s) %s; valid options are %s"
            % (raw.get("name"), ", ".join(unknown), ", ".join(sorted(WORKER_DEFAULTS))))
    name = worker["name"]
    if not name:
        raise WorkerFlagsError("every worker needs a name (the supervisor program name)")
    _checked(check_name, "worker name", name)
    _checked(check_app, "worker %s: app" % name, worker["app"])
    if worker["group_name"] is not None:
        _check_name(worker["group_name"], "group_name", name)
    if not worker["celery_bin"] or not isinstance(worker["celery_bin"], str):
        raise WorkerFlagsError("worker %s: celery_bin must be a path such as "
                               "/home/allianceserver/venv/auth/bin/celery" % name)
    if worker["celery_bin"] != "celery":
        _checked(check_path, "worker %s: celery_bin" % name, worker["celery_bin"])
    # process_name is written as it is (supervisor expands it); node_name is an argument of the
    # command, whose '%' the command line escapes (Celery's own %h, %n stay usable).
    what = "worker %s: process_name" % name
    _checked(check_expansions, what, _checked(check_arg, what, str(worker["process_name"])))
    if worker["node_name"]:
        _checked(check_arg, "worker %s: node_name" % name, str(worker["node_name"]))
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
        _checked(check_queue, "worker %s: queue" % worker["name"], queue)
    return list(queues)


def _resolve_options(worker):
    """Every option converted and range-checked: choices, integers, queues, sizes, extra args."""
    name = worker["name"]

    def size(key):
        return None if worker[key] is None else parse_size(worker[key], "worker %s: %s" % (name, key))

    p = dict(
        name=name, app=worker["app"], celery_bin=worker["celery_bin"],
        pool=_choice(worker, "pool", POOLS), workload=_choice(worker, "workload", WORKLOADS),
        loglevel=_choice(worker, "loglevel", LOGLEVELS, " (the guide uses info)"),
        concurrency_given=parse_concurrency(worker["concurrency"], name),
        single_threaded=bool(worker["single_threaded"]), beat=bool(worker["beat"]),
        numprocs=parse_numprocs(worker["numprocs"], name),
        numprocs_start=_int_option(worker, "numprocs_start", 0, name),
        max_tasks=_int_option(worker, "max_tasks_per_child", 1, name),
        prefetch_multiplier=_int_option(worker, "prefetch_multiplier", 0, name),
        time_limit=_int_option(worker, "time_limit", 1, name),
        soft_time_limit=_int_option(worker, "soft_time_limit", 1, name),
        stopwaitsecs=_int_option(worker, "stopwaitsecs", 0, name),
        queues=_queues(worker), extra_argv=check_extra_args(worker["extra_args"], name, bool(worker["beat"])),
        max_mem=size("max_memory_per_child"), memory_limit=size("memory_limit"),
        memory_baseline=size("memory_baseline"), warnings=[], explain=[])
    return p


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


def auto_pool(workload, db_driver=DEFAULT_DB_DRIVER):
    """The pool for ``pool: auto`` (not single-threaded) and the reason, from workload and DB driver."""
    if workload == "cpu":
        return "prefork", "workload cpu: prefork runs one process per core, free of the GIL"
    if workload == "io" and db_driver in COOPERATIVE_DRIVERS:
        return "gevent", (
            "workload io with %s: every blocking call (HTTP to ESI, %s) is cooperative under gevent's "
            "patching, so greenlets overlap all the waits" % (
                "no database" if db_driver == "none" else "database driver " + db_driver,
                "no database" if db_driver == "none" else db_driver + "'s pure-Python socket"))
    if workload == "io":
        return "threads", (
            "workload io (ESI HTTP calls, then DB updates) on database driver %s: threads overlap the "
            "waits and release the GIL in the driver; %s; ask for pool gevent only with a cooperative "
            "driver such as PyMySQL" % (db_driver, "mysqlclient is a C extension that gevent cannot make "
                                        "cooperative (each query would block every greenlet)"
                                        if db_driver == "mysqlclient" else
                                        "gevent cannot make it cooperative" if db_driver != "unknown" else
                                        "the driver is not known to be cooperative"))
    return "threads", "workload mixed: threads (Auth 5.x's stock pool) overlap I/O without extra packages"


def _choose_pool(p, db_driver=DEFAULT_DB_DRIVER, db_driver_source="default"):
    explain = p["explain"]
    if p["beat"]:
        p["pool"] = None
        explain.append("beat program: runs the Celery beat scheduler, no pool or concurrency")
    elif p["pool"] != "auto":
        explain.append("pool=%s: given" % p["pool"])
        if p["pool"] in ("gevent", "eventlet") and db_driver not in COOPERATIVE_DRIVERS and p["workload"] != "cpu":
            p["warnings"].append(
                "pool %s with database driver %s (%s): each query blocks every %s of the process; "
                "pool threads (or pool auto) overlaps them"
                % (p["pool"], db_driver, db_driver_source, "greenlet" if p["pool"] == "gevent" else "green thread"))
    elif p["single_threaded"]:
        p["pool"] = "prefork"
        explain.append(
            "pool=prefork: auto with single_threaded runs prefork with one child so "
            "--max-memory-per-child and --max-tasks-per-child keep working")
    else:
        p["pool"], reason = auto_pool(p["workload"], db_driver)
        explain.append("pool=%s: auto from %s (driver: %s)" % (p["pool"], reason, db_driver_source))


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


def _memory_protection(p, strict):
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


def size_pool(pool, workload, cpu_count, profile=None, utilization=TARGET_UTILIZATION):
    """The one sizing model: concurrency and numprocs for an auto-sized worker, with the reasons.

    ``profile`` (optional) is a measured task profile as ``worker_profile`` returns it for a program:
    ``task_seconds`` (mean wall time by Little's law), ``cpu_seconds_per_task``, ``in_flight_mean``,
    ``backlog_min`` (tasks that waited in the queue through the whole window) and ``tasks``.

    * prefork: one child per CPU, one process.
    * threads, gevent, eventlet (one core per process): slots = utilisation x wall / CPU per task,
      at least 1; the process is then ``utilization`` busy. Past that ceiling numprocs grows towards
      ``cpu_count``. Without a usable measurement, workload io takes the bench's DB task
      (DEFAULT_TASK_SECONDS / DEFAULT_TASK_CPU_SECONDS) and Auth's bursts (periodic updates of every
      character and corporation queue far more tasks than one process clears): one process per CPU;
      mixed takes Auth's stock 5 in one process. With a measurement: all CPUs when work waited in the
      queue through the window, else what the measured tasks in flight need at the target utilisation.
    * solo: 1.
    """
    cpu_count = max(1, int(cpu_count))
    if pool == "prefork":
        return dict(concurrency=cpu_count, numprocs=1, measured=False,
                    explain=["concurrency=%d: one prefork child per CPU (%d CPUs)" % (cpu_count, cpu_count)])
    if pool not in ONE_CORE_POOLS:
        return dict(concurrency=1, numprocs=1, measured=False, explain=["concurrency=1: pool %s" % pool])
    measured = _usable_profile(profile)
    if measured:
        wall, cpu = float(profile["task_seconds"]), float(profile["cpu_seconds_per_task"])
        source = "measured over %d tasks" % int(profile["tasks"])
    elif workload == "mixed":
        return dict(concurrency=DEFAULT_THREADS_CONCURRENCY, numprocs=1, measured=False, explain=[
            "concurrency=%d: workload mixed without a measurement: Auth 5.x's stock threads concurrency"
            % DEFAULT_THREADS_CONCURRENCY])
    else:
        wall, cpu = DEFAULT_TASK_SECONDS, DEFAULT_TASK_CPU_SECONDS
        source = "no measurement: the bench's DB task, an ESI call and 4 queries"
    slots = max(1, int(utilization * wall / cpu + 1e-9))
    explain = ["concurrency=%d: %d%% target utilisation x task time %.0f ms / CPU %.1f ms per task (%s): "
               "one process (one core, the GIL) is then %d%% busy"
               % (slots, round(utilization * 100), wall * 1000, cpu * 1000, source, round(utilization * 100))]
    numprocs = 1
    if not measured:
        numprocs = cpu_count
        explain.append("numprocs=%d: no measurement: Auth's periodic updates come in bursts that one process, capped "
                       "at one core, clears slower than %d would: one process per CPU (celery_workers_profile: "
                       "observe sizes it from the real load)" % (numprocs, numprocs))
    elif float(profile.get("backlog_min") or 0) > 0:
        numprocs = cpu_count
        explain.append("numprocs=%d: work waited in the queue through the whole window and one process "
                       "is capped at one core: one process per CPU (%d CPUs)" % (numprocs, cpu_count))
    else:
        needed = -(-float(profile.get("in_flight_mean") or 0) // utilization)
        numprocs = int(min(cpu_count, max(1, -(-needed // slots))))
        explain.append("numprocs=%d: no work waited; %.1f tasks in flight on average need %d slots at %d%% "
                       "utilisation (%d per process, up to %d CPUs)"
                       % (numprocs, float(profile.get("in_flight_mean") or 0), needed,
                          round(utilization * 100), slots, cpu_count))
    return dict(concurrency=slots, numprocs=numprocs, measured=bool(measured), explain=explain)


def _usable_profile(profile):
    """A profile with enough tasks and positive times; anything else is sized from the defaults."""
    if not isinstance(profile, dict):
        return False
    try:
        return (int(profile.get("tasks") or 0) >= MIN_PROFILE_TASKS
                and float(profile.get("task_seconds") or 0) > 0
                and float(profile.get("cpu_seconds_per_task") or 0) > 0)
    except (TypeError, ValueError):
        return False


def _desired_size(p, worker, context):
    """What the sizing model wants for an auto worker before the DB and memory budgets; numprocs auto."""
    numprocs_auto = p["numprocs_auto"] = p["numprocs"] is None
    if numprocs_auto:
        p["numprocs"] = 1
    p["desired"] = p["desired_explain"] = None
    if p["fixed_concurrency"] is not None:
        if numprocs_auto and not p["beat"] and not p["single_threaded"]:
            p["explain"].append("numprocs=1: auto with a fixed concurrency")
        return
    profile = context["profiles"].get(p["name"])
    if profile is not None and not _usable_profile(profile):
        p["explain"].append("measured profile not used: %s tasks in its window (at least %d needed)"
                            % (profile.get("tasks") if isinstance(profile, dict) else profile, MIN_PROFILE_TASKS))
    size = size_pool(p["pool"], p["workload"], context["cpu_count"], profile)
    p["desired"], p["desired_explain"] = size["concurrency"], size["explain"]
    if not numprocs_auto:
        p["explain"].append("numprocs=%d: given" % p["numprocs"])
        p["desired_explain"] = [line for line in size["explain"] if not line.startswith("numprocs=")]
        return
    numprocs = size["numprocs"]
    if numprocs > 1 and "%(process_num)" not in str(worker["process_name"]):
        numprocs = 1
        p["explain"].append("numprocs kept at 1: process_name %r has no %%(process_num)" % worker["process_name"])
    per_process = p["memmon_limit"] or p["memory_baseline"] or DEFAULT_BASELINE
    if numprocs > 1 and context["memory"] is not None:
        fits = max(1, int(context["memory"] // 2 // per_process))
        if fits < numprocs:
            p["explain"].append("numprocs capped from %d to %d: each process may use %s and one program gets at "
                                "most half the memory budget %s" % (numprocs, fits, human_size(per_process),
                                                                    human_size(context["memory"])))
            numprocs = fits
    p["numprocs"] = numprocs


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


def _check_limit(name, label, limit, baseline, allow_small, headroom_action, warnings, explain):
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


def _check_prefork_memmon(p):
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


# ---------------------------------------------------------------------------------------------
# budgets
# ---------------------------------------------------------------------------------------------

def default_concurrency(pool, cpu_count, workload="mixed"):
    """Concurrency used for ``auto`` before budgets are applied, without a measurement."""
    return size_pool(pool, workload, cpu_count)["concurrency"]


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


def _with_measured_baseline(raw, measured_rss):
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


def plan_workers(workers, cpu_count, memory_total, memory_budget_percent=DEFAULT_MEMORY_BUDGET_PERCENT,
                 db_connection_budget=DEFAULT_DB_CONNECTION_BUDGET, allow_small_memory_limit=False,
                 baseline_headroom_action="error", strict=False, cpu_source="parameter",
                 memory_source="parameter", measured_rss=None, profile=None, db_driver=None):
    """Compute flags for all workers.  Raises WorkerFlagsError before returning anything.

    ``profile``: a ``worker_profile`` result (its ``workers`` by program name and its ``db_driver``);
    ``db_driver``: the tasks' database driver, over the profile's (default mysqlclient, Auth's).
    Steps: check the inputs, resolve each worker, check names are unique, check the fixed values
    against the budgets, size the auto values, check the totals.
    """
    workers = _check_plan_inputs(workers, cpu_count, memory_budget_percent, db_connection_budget,
                                 baseline_headroom_action)
    memory_total = parse_size(memory_total, "memory_total")
    if memory_total < MIB:
        raise WorkerFlagsError("memory_total %r is implausibly small; give it with a unit, e.g. 8GB"
                               % (memory_total,))
    budget = dict(cpu_count=cpu_count, memory_total=memory_total, percent=memory_budget_percent,
                  memory=memory_total * memory_budget_percent // 100, db=db_connection_budget)
    context = _sizing_context(profile, db_driver, cpu_count, budget["memory"])
    plans = [normalize_worker(_with_measured_baseline(w, measured_rss), strict, allow_small_memory_limit,
                              baseline_headroom_action, context) for w in workers]
    _check_unique(plans)
    fixed = [p for p in plans if p["fixed_concurrency"] is not None]
    for p in fixed:
        p["concurrency"] = p["fixed_concurrency"]
    used = _check_fixed(fixed, budget)
    _size_auto([p for p in plans if p["fixed_concurrency"] is None], used, budget)
    totals = _check_totals(plans, bool(fixed), budget)
    for p in plans:
        _check_prefork_memmon(p)
    return _summary([_render(p) for p in plans], budget, totals, cpu_source, memory_source)


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


def _check_fixed(fixed, budget):
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


def _size_auto(auto, used, budget):
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


def _check_totals(plans, any_fixed, budget):
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


def _summary(results, budget, totals, cpu_source, memory_source):
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
            "db_connection_budget": budget["db"],
            "db_connections": totals["conns"],
        },
        "warnings": ["%s: %s" % (r["name"], w) for r in results for w in r["warnings"]],
    }


# ---------------------------------------------------------------------------------------------
# argv
# ---------------------------------------------------------------------------------------------

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


def _render(p):
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
