# -*- coding: utf-8 -*-
# Copyright: authops.celery_tuning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Finished ``[program:x]`` sections for the Auth group file.

The celery_workers role's template only writes what these functions return: every key and value
has been through the gate (``gate.py``) and nothing is merged or looked up in Jinja.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.authops.celery_tuning.plugins.module_utils.celery_flags import (
    WorkerFlagsError,
    expand_process_names,
    plan_workers,
)
from ansible_collections.authops.celery_tuning.plugins.module_utils.supervisor_conf import (
    gunicorn_workers,
    translate_memmon,
)
from ansible_collections.authops.celery_tuning.plugins.module_utils.gate import (
    GateError,
    check_env,
    check_name,
    check_path,
    check_value,
)

#: [program:x] options a worker's ``supervisor`` dict (or the program defaults) may set.
USER_PROGRAM_OPTIONS = (
    "autorestart", "autostart", "exitcodes", "killasgroup", "priority", "startretries", "startsecs",
    "stdout_capture_maxbytes", "stdout_events_enabled", "stdout_logfile_backups",
    "stdout_logfile_maxbytes", "stdout_syslog", "stopasgroup", "stopsignal", "umask",
)
#: Options written from the plan and the role's layout; nobody else may set them.
MANAGED_PROGRAM_OPTIONS = (
    "command", "directory", "user", "numprocs", "numprocs_start", "process_name", "stopwaitsecs",
    "stdout_logfile", "stderr_logfile", "redirect_stderr", "environment",
)
#: Options of an adopted program that are carried over as written (after the gate).
CARRIED_OPTIONS = USER_PROGRAM_OPTIONS + (
    "command", "directory", "user", "numprocs", "numprocs_start", "process_name", "stopwaitsecs",
)
GROUP_PRIORITY = 999


def _value(key, value):
    if isinstance(value, bool):
        return "true" if value else "false"
    return check_value(key, value)


def program_options(what, options, allowed=USER_PROGRAM_OPTIONS):
    """Check a dict of [program:x] options; returns sorted ``[key, value]`` pairs."""
    if options is None:
        return []
    if not isinstance(options, dict):
        raise GateError("%s must be a dict of [program:x] options, got %r" % (what, options))
    out = []
    for key in sorted(options):
        if key in MANAGED_PROGRAM_OPTIONS:
            raise GateError("%s sets %s, which the role writes from the plan (numprocs, process_name and "
                            "stopwaitsecs are worker options; environment is celery_workers_environment; "
                            "logs go to celery_workers_log_dir)" % (what, key))
        if key not in allowed:
            raise GateError("%s: %r is not a [program:x] option this role writes; use one of %s"
                            % (what, key, ", ".join(allowed)))
        out.append([key, _value("%s.%s" % (what, key), options[key])])
    return out


def check_user(what, user, allow_root):
    """The user a program runs as; root (or no user, which is root) only when allowed."""
    if user in (None, ""):
        if allow_root:
            return None
        raise GateError("%s has no user=, so supervisord would run it as root; give it a user "
                        "(or set allow_root to run it as root on purpose)" % what)
    check_name("%s user" % what, str(user))
    if str(user) in ("root", "0") and not allow_root:
        raise GateError("%s would run as root; run it as the Auth user (or set allow_root to run it as "
                        "root on purpose)" % what)
    return str(user)


def _merge(defaults, own):
    merged = dict(defaults)
    merged.update(own)
    return merged


def worker_program(rendered, layout, defaults, own):
    """The [program:x] section of a planned worker or beat (``rendered`` from celery_flags)."""
    name = rendered["name"]
    options = [["command", rendered["command"]],
               ["directory", layout["directory"]],
               ["user", layout["user"]]]
    if not rendered["beat"]:
        options.append(["numprocs", str(len(rendered["process_names"]))])
        if rendered["numprocs_start"]:
            options.append(["numprocs_start", str(rendered["numprocs_start"])])
        options.append(["process_name", rendered["process_name"]])
        options.append(["stopwaitsecs", str(rendered["stopwaitsecs_recommended"])])
    else:
        options.append(["process_name", "%(program_name)s"])
    options += log_options(layout)
    options += program_options("worker %s: supervisor" % name, _merge(defaults, own or {}))
    return dict(name=name, kind="worker", options=options)


def log_options(layout):
    return [["stdout_logfile", "%s/%%(program_name)s.log" % layout["log_dir"]],
            ["redirect_stderr", "true"]]


def carried_program(program, layout, allow_root):
    """An adopted program that the role does not tune (gunicorn first): carried over as written.

    ``program`` is ``{"name", "options", "source"}`` from the adoption (``supervisor_conf``); the
    log files move to the role's log directory, everything else is kept after the gate.
    """
    name = check_name("adopted program name", program.get("name"))
    source = program.get("source") or "the adopted file"
    what = "[program:%s] (%s)" % (name, source)
    given = program.get("options") or {}
    unknown = sorted(k for k in given if k not in CARRIED_OPTIONS
                     and k not in ("stdout_logfile", "stderr_logfile", "redirect_stderr", "environment"))
    if unknown:
        raise GateError("%s sets %s, which the role cannot carry over; move that program to a file of its "
                        "own first" % (what, ", ".join(unknown)))
    if "command" not in given:
        raise GateError("%s has no command=" % what)
    options = [["command", check_value("%s command" % what, given["command"])]]
    if given.get("directory") is not None:
        options.append(["directory", check_path("%s directory" % what, given["directory"], expansions=True)])
    user = check_user(what, given.get("user"), allow_root)
    if user is not None:
        options.append(["user", user])
    for key in ("numprocs", "numprocs_start", "process_name", "stopwaitsecs"):
        if given.get(key) is not None:
            options.append([key, check_value("%s %s" % (what, key), given[key])])
    options += log_options(layout)
    options += program_options(what, dict((k, v) for k, v in given.items() if k in USER_PROGRAM_OPTIONS))
    if given.get("environment") is not None:
        options.append(["environment", check_value("%s environment" % what, given["environment"])])
    return dict(name=name, kind="carried", options=options)


def group_section(group_name, programs):
    check_name("group_name", group_name)
    return dict(name=group_name, programs=[p["name"] for p in programs], priority=GROUP_PRIORITY)


def expected_sections(programs, group):
    return ["program:%s" % p["name"] for p in programs] + ["group:%s" % group["name"]]


def _worker_items(workers, worker_defaults, common):
    """Each worker as the planner gets it: table defaults < common layout < worker_defaults < item.

    worker_defaults do not apply to beat (it has no pool, queues or limits); a beat without its own
    process_name is named after its program, as in Auth's file.
    """
    items = []
    for raw in workers:
        if not isinstance(raw, dict):
            raise GateError("each item of workers must be a dict, got %r" % (raw,))
        own = dict((k, v) for k, v in raw.items() if v is not None)
        merged = dict(common)
        if not own.get("beat"):
            merged.update((k, v) for k, v in (worker_defaults or {}).items() if v is not None)
        else:
            merged.setdefault("process_name", "%(program_name)s")
        merged.update(own)
        items.append(merged)
    return items


def _memmon_programs(result, carried):
    """Process names and memory-holding children of every program the group file runs."""
    out = {}
    for w in result["workers"]:
        children = w["concurrency"] if w["pool"] == "prefork" else 0
        out[w["name"]] = dict(process_names=w["process_names"], children=children)
    for program in carried:
        opts = dict(program["options"])
        try:
            names = expand_process_names(program["name"], opts.get("process_name", "%(program_name)s"),
                                         int(opts.get("numprocs", 1)), int(opts.get("numprocs_start", 0)))
        except (WorkerFlagsError, ValueError):
            names = [program["name"]]
        command = opts["command"].split(None, 1)[0].rsplit("/", 1)[-1]
        children = gunicorn_workers(opts["command"]) if command == "gunicorn" else 0
        out[program["name"]] = dict(process_names=names, children=children)
    return out


_NO_PROTECTION = "no memory protection set"


def _explain_adopted_limits(workers, adopted, explain):
    """A worker whose memmon limit comes from the adopted file says so (and is not 'unprotected')."""
    for worker in workers:
        lines = [line for line in explain if any(" for %s" % proc in line for proc in worker["process_names"]
                                                 if proc in adopted)]
        if not lines:
            continue
        worker["explain"] = [line for line in worker["explain"] if not line.startswith(_NO_PROTECTION)]
        worker["explain"] += ["memmon limit kept from the adopted file: %s" % line for line in lines]


def plan_group(workers, layout, worker_defaults=None, program_defaults=None, carry_over=None,
               environment=None, allow_root=False, supervisord_environment=None, adopted_memmon=None,
               **plan_kwargs):
    """The whole Auth group: the workers' plan plus finished [program:x] and [group:x] sections.

    ``layout``: ``directory``, ``user``, ``log_dir``, ``group_name`` and the workers' common
    ``app`` and ``celery_bin``. Every value is checked before anything is returned.
    """
    layout = dict(layout)
    layout["directory"] = check_path("project_dir", layout["directory"])
    layout["log_dir"] = check_path("log_dir", layout["log_dir"])
    layout["user"] = check_user("the programs", layout.get("user"), allow_root)
    check_name("group_name", layout["group_name"])
    for key, value in sorted((environment or {}).items()):
        check_env("environment", key, value)
    program_options("program_defaults", program_defaults or {})
    common = dict((k, layout[k]) for k in ("app", "celery_bin", "group_name") if layout.get(k) is not None)
    items = _worker_items(workers, worker_defaults, common)
    for item in items:
        program_options("worker %s: supervisor" % item.get("name"), item.get("supervisor"))
    result = plan_workers(items, **plan_kwargs)
    own = dict((item["name"], item.get("supervisor") or {}) for item in items)
    programs = [worker_program(w, layout, program_defaults or {}, own[w["name"]]) for w in result["workers"]]
    planned = set(p["name"] for p in programs)
    for program in carry_over or []:
        if program.get("name") in planned:
            raise GateError("[program:%s] is both a planned worker and a program to carry over; "
                            "keep it in one place" % program.get("name"))
        programs.append(carried_program(program, layout, allow_root))
    group = group_section(layout["group_name"], programs)
    sections = expected_sections(programs, group)
    supervisord_env = []
    for key, value in sorted((supervisord_environment or {}).items()):
        supervisord_env.append([key, check_env("supervisord environment", key, value)])
    if supervisord_env:
        sections.insert(0, "supervisord")
    adopted, explain, unmatched = translate_memmon(
        adopted_memmon, _memmon_programs(result, [p for p in programs if p["kind"] == "carried"]))
    for proc, size in adopted.items():
        result["memmon_limits"].setdefault(proc, size)
    _explain_adopted_limits(result["workers"], adopted, explain)
    result["warnings"] += ["adopted memmon %s names no process the group runs; dropped" % item for item in unmatched]
    result.update(programs=programs, group=group, sections=sections, supervisord_environment=supervisord_env,
                  adopted_memmon=dict(limits=adopted, explain=explain, dropped=unmatched))
    return result
