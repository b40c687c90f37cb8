# -*- coding: utf-8 -*-
# Copyright: authops.celery_tuning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""memmon's listener: superlance's memmon command line and its ``[eventlistener:x]`` section, from the limits
(the plan's, and the memmon role's own) and the role's options, every value checked on the way."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.authops.celery_tuning.plugins.module_utils.gate import (
    GateError,
    check_arg,
    check_name,
    check_path,
)
from ansible_collections.authops.celery_tuning.plugins.module_utils.memory_limits import check_limit_floor
from ansible_collections.authops.celery_tuning.plugins.module_utils.plan_errors import WorkerFlagsError
from ansible_collections.authops.celery_tuning.plugins.module_utils.sizes import format_size, parse_size
from ansible_collections.authops.celery_tuning.plugins.module_utils.supervisor_format import build_command

#: The TICK events memmon can listen to.
TICKS = ("TICK_5", "TICK_60", "TICK_3600")
#: memmon's --uptime: seconds, or a number of minutes, hours or days.
_UPTIME_RE = re.compile(r"^[0-9]+[mhd]?\Z")


def memmon_size(value, what="memmon limit", allow_small=True):
    """A size in the collection's one grammar, written as memmon reads it. The floors of the worker limits
    apply (``memory_limits.check_limit_floor``): never below 16MB, and below 128MB only with ``allow_small``."""
    try:
        nbytes = parse_size(value, what)
        if nbytes < 1:
            raise GateError("%s: %r must be above 0" % (what, value))
        check_limit_floor(what, nbytes, allow_small)
    except WorkerFlagsError as exc:
        raise GateError(str(exc))
    return format_size(nbytes)


def _limits(flag, kind, limits, known, allow_small):
    """``-p name=size`` (or ``-g``) for every limit, names checked against what supervisord runs."""
    args = []
    if not isinstance(limits, dict):
        raise GateError("memmon %s limits must be a mapping of name to size, got %r" % (kind, limits))
    for name in sorted(limits):
        check_name("memmon %s limit name" % kind, name)
        if known is not None and name not in known:
            raise GateError(
                "memmon %s limit for '%s' names no %s: supervisor process names carry their number (Auth's worker "
                "runs as worker_00, not worker), and memmon compares them exactly, so this limit would never restart "
                "anything. Known: %s" % (kind, name, kind, ", ".join(sorted(set(known))) or "none"))
        args += [flag, "%s=%s" % (name, memmon_size(limits[name], "memmon limit %s" % name, allow_small))]
    return args


def memmon_argv(venv, process_limits=None, group_limits=None, any_limit="", cumulative=True, uptime="",
                email="", sendmail_program="", allow_small=False, known_processes=None, known_groups=None,
                prefork_workers=None):
    """memmon's argv. ``known_processes``/``known_groups``: what supervisord runs and the plan adds (None: not
    checked); ``prefork_workers``: the plan's prefork workers (``{name, process_names}``), whose children hold the
    memory, so a limit on them needs ``cumulative``."""
    process_limits, group_limits = process_limits or {}, group_limits or {}
    if not process_limits and not group_limits and not str(any_limit or ""):
        raise GateError("memmon needs at least one limit: memmon_process_limits, memmon_group_limits or memmon_any_limit "
                        "(sizes like 512MB or 512MiB)")
    for name in process_limits:
        if ":" in str(name):
            raise GateError("memmon limit '%s' uses the group:process form, which makes superlance 2.0.0's memmon raise "
                            "KeyError on every tick and protect nothing. Name the process alone (for example worker_00)."
                            % name)
    if not cumulative:
        for worker in prefork_workers or []:
            if set(worker.get("process_names") or ()) & set(process_limits):
                raise GateError(
                    "%s uses the prefork pool, whose children hold the memory: without memmon_cumulative memmon measures "
                    "only the parent and never restarts it. Set memmon_cumulative: true (or use the worker's "
                    "max_memory_per_child instead)." % worker.get("name"))
    argv = [check_path("memmon_venv", venv) + "/bin/memmon"] + (["-c"] if cumulative else [])
    argv += _limits("-p", "process", process_limits, known_processes, allow_small)
    argv += _limits("-g", "group", group_limits, known_groups, allow_small)
    if str(any_limit or ""):
        argv += ["-a", memmon_size(any_limit, "memmon_any_limit", allow_small)]
    if str(uptime or ""):
        if not _UPTIME_RE.match(str(uptime)):
            raise GateError("memmon_uptime must be seconds or 1m/1h/1d, got %r" % (uptime,))
        argv += ["-u", str(uptime)]
    for flag, option, value in (("-m", "memmon_email", email), ("-s", "memmon_sendmail_program", sendmail_program)):
        if value:
            argv += [flag, check_arg(option, value)]
    return argv


def listener(name, argv, tick, user, log_dir, reserved=()):
    """The ``[eventlistener:name]`` section as ``[key, value]`` pairs. ``reserved``: names of the Auth group and
    its programs, which the listener must not take (supervisord would drop one of them silently)."""
    check_name("memmon_listener_name", name)
    if name in set(reserved or ()):
        raise GateError("memmon_listener_name %s is also the name of the Auth group or one of its programs; supervisord "
                        "would drop one of them silently. Choose another name." % name)
    if tick not in TICKS:
        raise GateError("memmon_tick must be one of %s, got %r" % (", ".join(TICKS), tick))
    command = build_command([check_arg("memmon arguments", str(arg)) for arg in argv])
    return [["command", command], ["events", tick], ["user", check_name("memmon_user", user, max_len=32)],
            ["autostart", "true"], ["autorestart", "true"],
            ["stderr_logfile", "%s/%s.log" % (check_path("memmon_log_dir", log_dir), name)]]


def memmon_listener(inputs):
    """The memmon role's inputs (a dict of its variables, without the prefix) to ``{name, argv, options}``."""
    inputs = dict(inputs)
    argv = memmon_argv(
        inputs["venv"], inputs.get("process_limits"), inputs.get("group_limits"), inputs.get("any_limit"),
        inputs.get("cumulative", True), inputs.get("uptime"), inputs.get("email"), inputs.get("sendmail_program"),
        inputs.get("allow_small", False), inputs.get("known_processes"), inputs.get("known_groups"),
        inputs.get("prefork_workers"))
    options = listener(inputs["name"], argv, inputs["tick"], inputs["user"], inputs["log_dir"], inputs.get("reserved"))
    return dict(name=inputs["name"], argv=argv, options=options)
