# -*- coding: utf-8 -*-
# Copyright: authops.celery_tuning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Filters for values that may be secrets (the programs' environment): they go through the same gate as
everything else, on the controller, so that no module ever receives them (a no_log value would be masked
wherever it appears in a module's result)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.authops.celery_tuning.plugins.module_utils.gate import GateError, check_env


def supervisor_env_problems(environment, option="celery_workers_environment"):
    """What the gate refuses in ``environment``: messages that name variables, never values."""
    if not isinstance(environment, dict):
        return ["%s must be a dict of NAME: value" % option]
    problems = []
    for name in sorted(environment, key=str):
        try:
            check_env(option, name, environment[name])
        except GateError as exc:
            problems.append(str(exc))
    return problems


def supervisor_env_line(environment, option="celery_workers_environment"):
    """``NAME="value",...`` for supervisor's ``environment=`` (``%`` escaped), after the gate."""
    problems = supervisor_env_problems(environment, option)
    if problems:
        raise AnsibleFilterError("; ".join(problems))
    return ",".join('%s="%s"' % (name, str(environment[name]).replace("%", "%%"))
                    for name in sorted(environment))


class FilterModule(object):
    def filters(self):
        return {
            "supervisor_env_problems": supervisor_env_problems,
            "supervisor_env_line": supervisor_env_line,
        }
