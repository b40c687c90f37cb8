# -*- coding: utf-8 -*-
# Copyright: authops.celery_tuning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Finished ``[program:x]`` sections for the Auth group file.

The celery_workers role's template only writes what these functions return: every key and value
has been through the gate (``gate.py``) and nothing is merged or looked up in Jinja.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.authops.celery_tuning.plugins.module_utils.plan_errors import WorkerFlagsError
from ansible_collections.authops.celery_tuning.plugins.module_utils.worker_plan import plan_workers
from ansible_collections.authops.celery_tuning.plugins.module_utils.supervisor_format import env_line
from ansible_collections.authops.celery_tuning.plugins.module_utils.worker_spec import expand_process_names
from ansible_collections.authops.celery_tuning.plugins.module_utils.supervisor_conf import (
    AdoptionError,
    env_pairs,
    gunicorn_workers,
    translate_memmon,
)
from ansible_collections.authops.celery_tuning.plugins.module_utils.gate import (
    PROCESS_NAME_MAX,
    GateError,
    check_env,
    check_name,
    check_path,
    check_value,
    env_references,
    is_loader_variable,
    is_root_user,
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
#: supervisor's own default process_name (one process named like its program): beat's, and a carried program's
#: without one.
SUPERVISOR_PROCESS_NAME = "%(program_name)s"
#: The [program:x] options of Auth's own programs: the default of every planned program.
AUTH_PROGRAM_DEFAULTS = dict(autostart=True, autorestart=True, startsecs=10, killasgroup=True, stopasgroup=False,
                             priority=998)
#: Process group names supervisord has besides the Auth group: the memmon listener (an event listener is a
#: process group of its own). A group or program of the same name replaces it, or is replaced, silently.
RESERVED_NAMES = ("memmon",)


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


def check_user(what, user, allow_root, getpwnam=None):
    """The user a program runs as; root (or no user, which is root) only when allowed.

    ``user=`` is resolved the way supervisord resolves it (``gate.supervisor_uid``: ``int()`` first, so ``00``
    and ``+0`` are root too, then the user database, where another name may have uid 0).
    """
    if user is None or (isinstance(user, str) and not user.strip()):
        if allow_root:
            return None
        raise GateError("%s has no user=, so supervisord would run it as root; give it a user "
                        "(or set allow_root to run it as root on purpose)" % what)
    if isinstance(user, bool) or not isinstance(user, (str, int)):
        raise GateError("%s: user %r is not a user name" % (what, user))
    if is_root_user(str(user), getpwnam) and not allow_root:
        raise GateError("%s would run as root (user=%s is uid 0 to supervisord, which reads a number first); run "
                        "it as the Auth user (or set allow_root to run it as root on purpose)" % (what, str(user)))
    check_name("%s user" % what, str(user), max_len=32)
    return str(user)


def _merge(defaults, own):
    merged = dict(defaults)
    merged.update(own)
    return merged


def worker_program(rendered, layout, defaults, own):
    """The [program:x] section of a planned worker or beat (``rendered`` by ``argv.render``)."""
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
        options.append(["process_name", SUPERVISOR_PROCESS_NAME])
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
    _carried_process_names(what, name, dict(options))
    options += log_options(layout)
    options += program_options(what, dict((k, v) for k, v in given.items() if k in USER_PROGRAM_OPTIONS))
    if given.get("environment") is not None:
        environment = check_value("%s environment" % what, given["environment"])
        if user is None or is_root_user(user):
            _no_loaders("%s environment" % what, environment)
        options.append(["environment", environment])
    return dict(name=name, kind="carried", options=options)


def _carried_process_names(what, name, opts):
    """The process names an adopted program gets, through the name grammar (a name is a log file's too)."""
    try:
        numprocs = int(opts.get("numprocs", 1))
        start = int(opts.get("numprocs_start", 0))
    except ValueError:
        raise GateError("%s: numprocs and numprocs_start must be whole numbers" % what)
    if not 1 <= numprocs <= 100:
        raise GateError("%s: numprocs %d is not between 1 and 100" % (what, numprocs))
    try:
        names = expand_process_names(name, opts.get("process_name", SUPERVISOR_PROCESS_NAME), numprocs, start)
    except WorkerFlagsError as exc:
        raise GateError("%s: %s" % (what, exc))
    for proc in names:
        check_name("%s process name" % what, proc, max_len=PROCESS_NAME_MAX)
    return names


def _no_loaders(what, environment):
    """No loader variable in an environment= line (given as supervisor's text)."""
    try:
        pairs = env_pairs(environment.replace("%%", "%"))
    except (ValueError, AdoptionError):
        raise GateError("%s cannot be read as NAME=value pairs" % what)
    for key in sorted(pairs):
        if is_loader_variable(key):
            raise GateError("%s sets %s, a variable that makes a process load code from where it points, for a "
                            "program that runs as root; remove it" % (what, key))


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
            merged.setdefault("process_name", SUPERVISOR_PROCESS_NAME)
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
            names = expand_process_names(program["name"], opts.get("process_name", SUPERVISOR_PROCESS_NAME),
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


def _check_names(layout, programs, reserved):
    """No name that supervisord would confuse: the group, the programs and the reserved process groups
    (memmon's listener) are all different."""
    group = layout["group_name"]
    reserved = set(reserved or ())
    if group in reserved:
        raise GateError("group_name %s is the name of the memmon listener (%s); a group of that name would drop "
                        "one of them silently. Choose another group name" % (group, ", ".join(sorted(reserved))))
    for program in programs:
        if program["name"] in reserved:
            raise GateError("program %s has the name of the memmon listener; supervisord would confuse the two. "
                            "Rename the program" % program["name"])
        if program["name"] == group:
            raise GateError("program %s has the name of its group; supervisorctl then cannot tell the group "
                            "from the program. Rename the program or set another group_name" % group)


def _supervisord_env(supervisord_environment, path_problems):
    """``[supervisord] environment=``: it reaches every process supervisord starts, memmon (root) too. No
    loader variable, and a PATH only of root-safe directories (``path_problems``: root_safe_problems)."""
    out = []
    for key, value in sorted((supervisord_environment or {}).items()):
        value = check_env("supervisord environment", key, value, loaders=False)
        if key == "PATH":
            for entry in value.split(":"):
                if not entry.startswith("/"):
                    raise GateError("supervisord environment.PATH: an entry is not an absolute path; supervisord "
                                    "(root) looks commands up there")
                problems = path_problems(entry) if path_problems else []
                if problems:
                    raise GateError("supervisord environment.PATH: %s; supervisord (root) looks commands up there. "
                                    "Remove the entry or make it root's" % problems[0])
        out.append([key, value])
    return out


def _check_env_references(programs, known, source):
    """Every ``%(ENV_X)s`` of the file names a variable supervisord has (its own environment, the
    ``[supervisord] environment=`` and the program's own environment=). ``known`` None: not checked."""
    if known is None:
        return
    for program in programs:
        own = set(known)
        opts = dict(program["options"])
        if opts.get("environment"):
            try:
                own.update(env_pairs(opts["environment"].replace("%%", "%")))
            except ValueError:
                pass
        own.update(program.get("environment_names") or ())
        for key, value in program["options"]:
            for name in env_references(value):
                if name not in own:
                    raise GateError("[program:%s] %s uses %%(ENV_%s)s, but supervisord has no %s (%s, and the "
                                    "[supervisord] environment=): supervisord would refuse the whole file when it "
                                    "re-reads it. Set it in celery_workers_environment or write the value"
                                    % (program["name"], key, name, name, source))


def plan_group(workers, layout, worker_defaults=None, program_defaults=None, carry_over=None,
               allow_root=False, supervisord_environment=None, adopted_memmon=None,
               reserved_names=RESERVED_NAMES, daemon_environment=None, environment_names=None,
               path_problems=None, **plan_kwargs):
    """The whole Auth group: the workers' plan plus finished [program:x] and [group:x] sections.

    ``layout``: ``directory``, ``user``, ``log_dir``, ``group_name`` and the workers' common
    ``app`` and ``celery_bin``. Every value is checked before anything is returned.
    ``reserved_names``: process groups of other files (memmon's listener). ``daemon_environment``: the
    names in supervisord's own environment (``procfs.supervisord_environ_names``), or None not to check
    ``%(ENV_X)s``; ``environment_names``: the names of the planned programs' environment= (the role's
    ``celery_workers_environment``, checked and written on the controller: its values may be secrets, which
    never reach a module); each planned worker says whether it gets that line (``environment``).
    ``path_problems``: a root-safe check for PATH in ``supervisord_environment`` (on the host).
    """
    layout = dict(layout)
    layout["directory"] = check_path("project_dir", layout["directory"])
    layout["log_dir"] = check_path("log_dir", layout["log_dir"])
    layout["user"] = check_user("the programs", layout.get("user"), allow_root)
    check_name("group_name", layout["group_name"])
    program_options("program_defaults", program_defaults or {})
    common = dict((k, layout[k]) for k in ("app", "celery_bin", "group_name") if layout.get(k) is not None)
    items = _worker_items(workers, worker_defaults, common)
    for item in items:
        program_options("worker %s: supervisor" % item.get("name"), item.get("supervisor"))
    result = plan_workers(items, carried=carry_over or [], **plan_kwargs)
    own = dict((item["name"], item.get("supervisor") or {}) for item in items)
    programs = [worker_program(w, layout, program_defaults or {}, own[w["name"]]) for w in result["workers"]]
    for program in programs:
        program["environment_names"] = list(environment_names or ())
        program["environment"] = bool(environment_names)
    planned = set(p["name"] for p in programs)
    for program in carry_over or []:
        if program.get("name") in planned:
            raise GateError("[program:%s] is both a planned worker and a program to carry over; "
                            "keep it in one place" % program.get("name"))
        programs.append(dict(carried_program(program, layout, allow_root), environment=False))
    _check_names(layout, programs, reserved_names)
    group = group_section(layout["group_name"], programs)
    sections = expected_sections(programs, group)
    supervisord_env = _supervisord_env(supervisord_environment, path_problems)
    if supervisord_env:
        sections.insert(0, "supervisord")
    if daemon_environment is not None:
        _check_env_references(programs, set(daemon_environment) | set(k for k, v in supervisord_env),
                              "its own environment has %d variables" % len(daemon_environment))
    for program in programs:
        program.pop("environment_names", None)
    adopted, explain, unmatched = translate_memmon(
        adopted_memmon, _memmon_programs(result, [p for p in programs if p["kind"] == "carried"]),
        allow_small=plan_kwargs.get("allow_small_memory_limit", False))
    for proc, size in adopted.items():
        result["memmon_limits"].setdefault(proc, size)
    _explain_adopted_limits(result["workers"], adopted, explain)
    result["warnings"] += ["adopted memmon %s names no process the group runs; dropped" % item for item in unmatched]
    result.update(programs=programs, group=group, sections=sections, supervisord_environment=supervisord_env,
                  supervisord_environment_line=env_line(supervisord_env),
                  adopted_memmon=dict(limits=adopted, explain=explain, dropped=unmatched))
    return result
