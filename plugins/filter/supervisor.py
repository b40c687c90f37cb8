# -*- coding: utf-8 -*-
# Copyright: authops.celery_tuning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Filters for values that may be secrets (the programs' environment): they go through the same gate as
everything else, on the controller, so that no module ever receives them (a no_log value would be masked
wherever it appears in a module's result)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.authops.celery_tuning.plugins.module_utils.memmon_listener import memmon_listener as build_listener
from ansible_collections.authops.celery_tuning.plugins.module_utils.memmon_listener import memmon_size as memmon_listener_size
from ansible_collections.authops.celery_tuning.plugins.module_utils.supervisor_format import build_command, env_line
from ansible_collections.authops.celery_tuning.plugins.module_utils.gate import (
    GateError,
    check_arg,
    check_env,
    check_line,
    env_value,
    check_name,
    check_path,
    is_root_user,
)
from ansible_collections.authops.celery_tuning.plugins.module_utils.in_place import is_in_place
from ansible_collections.authops.celery_tuning.plugins.module_utils import supervisor_layout as layout_contract

_KINDS = {
    "line": check_line,
    "name": check_name,
    "path": check_path,
    "arg": check_arg,
}


def supervisor_env_problems(environment, option="celery_workers_environment", root=False):
    """What the gate refuses in ``environment``: messages that name variables, never values.

    YAML booleans are written ``true``/``false`` (``gate.env_value``). With ``root`` (the programs may run as
    root: ``celery_workers_allow_root``) loader variables such as LD_PRELOAD or PYTHONPATH are refused too.
    """
    if not isinstance(environment, dict):
        return ["%s must be a dict of NAME: value" % option]
    problems = []
    for name in sorted(environment, key=str):
        try:
            check_env(option, name, environment[name], loaders=not root)
        except GateError as exc:
            problems.append(str(exc))
    return problems


def supervisor_env_line(environment, option="celery_workers_environment", root=False):
    """``NAME="value",...`` for supervisor's ``environment=`` (``%`` escaped), after the gate."""
    problems = supervisor_env_problems(environment, option, root)
    if problems:
        raise AnsibleFilterError("; ".join(problems))
    return env_line((name, env_value(name, environment[name])) for name in sorted(environment))


def memmon_size(value, what="memmon limit", allow_small=True):
    """A size in the collection's one grammar, written as memmon reads it (``memmon_listener.memmon_size``)."""
    try:
        return memmon_listener_size(value, what, allow_small)
    except GateError as exc:
        raise AnsibleFilterError(str(exc))


def memmon_listener(inputs):
    """The memmon role's listener (``memmon_listener.memmon_listener``): argv and section, every value checked."""
    try:
        return build_listener(inputs)
    except GateError as exc:
        raise AnsibleFilterError(str(exc))


def supervisor_safe(value, option, kind="line"):
    """``value`` when the gate lets it into a supervisor file as ``kind``; fails naming ``option`` otherwise.

    Kinds: ``line`` (one line, no inline comment), ``name``, ``path`` (absolute, no ``..``), ``arg``
    (a command-line argument) and ``command`` (a list of arguments, returned as a quoted command line).
    """
    try:
        if kind == "command":
            if not isinstance(value, (list, tuple)):
                raise GateError("%s must be a list of arguments" % option)
            return build_command([check_arg(option, str(arg)) for arg in value])
        if kind not in _KINDS:
            raise AnsibleFilterError("supervisor_safe: unknown kind %r (use %s or command)" % (kind, ", ".join(_KINDS)))
        return _KINDS[kind](option, value)
    except GateError as exc:
        raise AnsibleFilterError(str(exc))


def supervisor_root_user(user):
    """Whether supervisord runs a program with this ``user=`` as root (``root``, none, or uid 0 in any spelling
    ``int()`` reads: ``0``, ``00``, ``+0``)."""
    return is_root_user(None if user is None else str(user), getpwnam=_no_user)


def _no_user(name):
    """Names are looked up on the target (worker_flags); on the controller only the spelling counts."""
    raise KeyError(name)


def in_place(state, mode, checksum=None, directory=False):
    return is_in_place(state, mode, checksum=checksum, directory=directory)


def supervisor_layout(facts, overrides=None):
    """Where supervisor lives on the host of ``facts`` (Ansible's distribution facts), with ``overrides``
    (non-empty values win): the supervisor location contract (module_utils/supervisor_layout.py)."""
    try:
        return layout_contract.resolve(facts, overrides)
    except layout_contract.LayoutError as exc:
        raise AnsibleFilterError(str(exc))


def supervisor_platform(facts):
    """``{supported, name, family, supported_list, message}`` for the host of ``facts``."""
    return layout_contract.platform(facts)


def supervisor_install_steps(layout, missing):
    """The ordered package steps (``{manager, names, purpose}``) that install what ``missing`` names."""
    try:
        return layout_contract.install_steps(layout, missing)
    except layout_contract.LayoutError as exc:
        raise AnsibleFilterError(str(exc))


class FilterModule(object):
    def filters(self):
        return {
            "supervisor_env_problems": supervisor_env_problems,
            "supervisor_env_line": supervisor_env_line,
            "memmon_size": memmon_size,
            "memmon_listener": memmon_listener,
            "supervisor_safe": supervisor_safe,
            "in_place": in_place,
            "supervisor_layout": supervisor_layout,
            "supervisor_platform": supervisor_platform,
            "supervisor_install_steps": supervisor_install_steps,
            "supervisor_root_user": supervisor_root_user,
        }
