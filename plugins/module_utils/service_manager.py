# -*- coding: utf-8 -*-
# Copyright: authops.celery_tuning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The service manager that runs supervisord (systemd, an init script, or supervisord's own RPC), probed
before anything changes, and its restart command."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re

from ansible_collections.authops.celery_tuning.plugins.module_utils.gate import (
    GateError,
    check_service_name,
)
from ansible_collections.authops.celery_tuning.plugins.module_utils.supervisor_ops import PHASE_VALIDATE
from ansible_collections.authops.celery_tuning.plugins.module_utils.supervisor_layout import LAYOUTS
from ansible_collections.authops.celery_tuning.plugins.module_utils.supervisor_errors import SupervisorError
from ansible_collections.authops.celery_tuning.plugins.module_utils.systemd_units import (
    unit_name,
)


#: The service names the module falls back to RPC for when no service manager knows them: the OS families'
#: own (the location contract's).
DEFAULT_SERVICE_NAMES = tuple(sorted(set(layout['service_name'] for layout in LAYOUTS.values())))


def _systemd_knows(unit, run_command, get_bin_path, path_exists):
    if not path_exists('/run/systemd/system'):
        return False
    systemctl = get_bin_path('systemctl') if get_bin_path else None
    if not (systemctl and run_command):
        return False
    rc, out, dummy = run_command([systemctl, 'show', '--property=LoadState', unit])
    return rc == 0 and bool(re.search(r'^LoadState=loaded\s*$', out or '', re.M))


def detect_service_manager(requested, service_name, run_command=None, get_bin_path=None,
                           path_exists=os.path.exists):
    """Pick how to restart the daemon: returns ``(manager, reason)``.

    Asked before anything is stopped: a service the chosen manager does not know (``service_name:
    nosuchsvc``) is refused here, not after the group is down. ``auto`` falls back to RPC only for the
    default name; a name given on purpose must name a unit or an init script.
    """
    try:
        check_service_name('service_name', service_name)
    except GateError as exc:
        raise SupervisorError(str(exc), phase=PHASE_VALIDATE)
    unit = unit_name(service_name)
    if requested == 'rpc':
        return requested, 'requested'
    if requested == 'systemd':
        if run_command is None or _systemd_knows(unit, run_command, get_bin_path, path_exists):
            return requested, 'requested'
        raise SupervisorError('service_manager=systemd, but systemd knows no unit %s; set service_name to the unit '
                              'that runs supervisord (Debian: supervisor), or use service_manager=rpc. Nothing was '
                              'stopped' % unit, phase=PHASE_VALIDATE)
    if requested == 'service':
        if path_exists('/etc/init.d/%s' % service_name) or (
                run_command is not None and _systemd_knows(unit, run_command, get_bin_path, path_exists)):
            return requested, 'requested'
        raise SupervisorError('service_manager=service, but there is no init script /etc/init.d/%s and no systemd unit '
                              '%s; set service_name to supervisord\'s service, or use service_manager=rpc. Nothing was '
                              'stopped' % (service_name, unit), phase=PHASE_VALIDATE)
    if _systemd_knows(unit, run_command, get_bin_path, path_exists):
        return 'systemd', 'systemd is running and knows %s' % unit
    if path_exists('/etc/init.d/%s' % service_name):
        return 'service', '/etc/init.d/%s exists' % service_name
    if service_name not in DEFAULT_SERVICE_NAMES:
        raise SupervisorError('service_name %s names no systemd unit and no init script; set it to the service that '
                              'runs supervisord, or use service_manager=rpc. Nothing was stopped' % service_name,
                              phase=PHASE_VALIDATE)
    return 'rpc', 'no systemd unit or init script named %s' % service_name


def restart_command(manager, service_name, get_bin_path=None):
    """argv that restarts the daemon through a service manager."""
    if manager == 'systemd':
        systemctl = (get_bin_path('systemctl') if get_bin_path else None) or 'systemctl'
        return [systemctl, 'restart', service_name]
    service = (get_bin_path('service') if get_bin_path else None)
    if service:
        return [service, service_name, 'restart']
    return ['/etc/init.d/%s' % service_name, 'restart']


# --------------------------------------------------------------------------------------------
