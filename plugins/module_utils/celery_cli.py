# -*- coding: utf-8 -*-
# Copyright: authops.celery_tuning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Celery's own command line: the options of ``celery worker`` and ``celery beat``, read the way click
reads them, for ``extra_args``."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import difflib
import shlex

from ansible_collections.authops.celery_tuning.plugins.module_utils.plan_errors import (
    WorkerFlagsError,
    checked,
)
from ansible_collections.authops.celery_tuning.plugins.module_utils.worker_options import (
    managed_flags,
)
from ansible_collections.authops.celery_tuning.plugins.module_utils.gate import (
    check_arg,
)


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
        checked(check_arg, "worker %s: extra_args item" % name, item)
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
    managed = managed_flags(beat)
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
