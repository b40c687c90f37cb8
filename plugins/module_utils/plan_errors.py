# -*- coding: utf-8 -*-
# Copyright: authops.celery_tuning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The planner's error: bad input for the worker plan, with a message that says what to change; and the
gate's refusals turned into it."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.authops.celery_tuning.plugins.module_utils.gate import (
    GateError,
    check_name,
)


class WorkerFlagsError(Exception):
    """Bad input for the worker flag planner; the message says what to change."""


def checked(check, what, *args):
    """Run one of the gate's checkers, turning its refusal into a WorkerFlagsError."""
    try:
        return check(what, *args)
    except GateError as exc:
        raise WorkerFlagsError(str(exc))


def check_worker_name(value, what, name):
    checked(check_name, "worker %s: %s" % (name, what), value)
