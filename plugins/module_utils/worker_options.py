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

DEFAULT_NODE_NAME = "%(program_name)s_%(process_num)02d"
DEFAULT_PROCESS_NAME = "%(program_name)s_%(process_num)02d"

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
