# -*- coding: utf-8 -*-
# Copyright: authops.celery_tuning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Planning of a ``supervisor_group`` run, with no I/O: the target's processes, their timeouts, the steps
of a stop/start or daemon restart, and every option checked before the first call that changes state."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible_collections.authops.celery_tuning.plugins.module_utils.gate import (
    GateError,
    PROCESS_NAME_MAX,
    check_name,
    check_service_name,
)
from ansible_collections.authops.celery_tuning.plugins.module_utils.supervisor_layout import installed
from ansible_collections.authops.celery_tuning.plugins.module_utils.supervisor_errors import (
    KIND_BAD_NAME,
    SupervisorError,
)


STOPPED_STATES = ('STOPPED', 'EXITED', 'FATAL')
RUNNING_STATES = ('RUNNING', 'STARTING', 'BACKOFF')
STOPPING = 'STOPPING'

PHASE_CONNECT = 'connect'
PHASE_INSPECT = 'inspect'
PHASE_VALIDATE = 'validate'
PHASE_STOP = 'stop'
PHASE_DAEMON = 'daemon_restart'
PHASE_START = 'start'

DEFAULT_STOPWAITSECS = 10
DEFAULT_STARTSECS = 1
#: Seconds added to the largest stopwaitsecs / startsecs for the module's own waits.
STOP_WAIT_MARGIN = 10
START_MARGIN = 10
DAEMON_MARGIN = 30
# How long a new group's autostart may take to show (supervisord acts on it on its next tick).
AUTOSTART_WAIT = 5
# How long to wait for a daemon that is starting or restarting (for example right after the
# service manager restarted it) before the first call.
CONNECT_WAIT = 30
STDERR_TAIL_BYTES = 1600
MAIN_LOG_TAIL_BYTES = 65536


def namespec(group, name):
    """supervisorctl's name for a process: ``name`` when it is alone in its group of the same name."""
    return name if group == name else '%s:%s' % (group, name)


# --------------------------------------------------------------------------------------------
# Pure helpers
# --------------------------------------------------------------------------------------------

def resolve_target(name, process_infos):
    """Find what ``name`` designates among ``getAllProcessInfo()`` entries.

    Returns ``(kind, key, infos)`` with ``kind`` ``'group'`` (``key`` = group name, for
    ``stopProcessGroup``) or ``'process'`` (``key`` = ``group:name``).  Raises SupervisorError
    (BAD_NAME) listing the known groups.
    """
    clean = name.strip()
    if clean.endswith(':*'):
        clean = clean[:-2]
    clean = clean.rstrip(':')
    groups = {}
    for info in process_infos:
        groups.setdefault(info['group'], []).append(info)
    if clean in groups:
        return 'group', clean, sorted(groups[clean], key=lambda i: i['name'])
    if ':' in clean:
        group, proc = clean.split(':', 1)
        for info in groups.get(group, []):
            if info['name'] == proc:
                return 'process', '%s:%s' % (group, proc), [info]
    else:
        matches = [i for i in process_infos if i['name'] == clean]
        if len(matches) == 1:
            info = matches[0]
            return 'process', '%s:%s' % (info['group'], info['name']), matches
    known = ', '.join(sorted(groups)) or '(none)'
    raise SupervisorError(
        "Unknown group or program %r: supervisord knows the groups %s. Check the name; if it was just "
        "added to the config run 'supervisorctl reread && supervisorctl update' (or restart the daemon)."
        % (name, known), phase=PHASE_INSPECT, kind=KIND_BAD_NAME)


def config_index(config_infos):
    """Map ``(group, name)`` to its ``getAllConfigInfo()`` entry (entries in use win)."""
    index = {}
    for cfg in config_infos or []:
        key = (cfg.get('group'), cfg.get('name'))
        if key not in index or cfg.get('inuse'):
            index[key] = cfg
    return index


def cfg_num(cfg, key, default):
    value = (cfg or {}).get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return default
    return value


def compute_timeouts(target_infos, cfg_index, all_infos, params):
    """Effective stop/start/daemon timeouts (seconds); options win over the computed defaults."""
    stopwaits = [cfg_num(cfg_index.get((i['group'], i['name'])), 'stopwaitsecs', DEFAULT_STOPWAITSECS)
                 for i in target_infos] or [DEFAULT_STOPWAITSECS]
    startsecs = [cfg_num(cfg_index.get((i['group'], i['name'])), 'startsecs', DEFAULT_STARTSECS)
                 for i in target_infos] or [DEFAULT_STARTSECS]
    running_all = [i for i in all_infos if i.get('statename') not in STOPPED_STATES]
    daemon_waits = [cfg_num(cfg_index.get((i['group'], i['name'])), 'stopwaitsecs', DEFAULT_STOPWAITSECS)
                    for i in running_all] or [0]
    timeouts = dict(
        stop=max(stopwaits) + STOP_WAIT_MARGIN,
        start=max(startsecs) + START_MARGIN,
        daemon=max(daemon_waits) + DAEMON_MARGIN,
    )
    for key in ('stop', 'start', 'daemon'):
        if params.get('%s_timeout' % key) is not None:
            timeouts[key] = params['%s_timeout' % key]
    return timeouts


def plan_actions(state, daemon, rolling, before):
    """Decide what to do.

    ``before`` maps namespec -> statename.  Returns a dict with ``steps`` (ordered list of
    ``'stop'``, ``'daemon_restart'``, ``'start'``, ``'rolling'``), ``changed``, ``to_stop``,
    ``to_start`` (namespecs that will be signalled), ``expected`` (namespec -> state after).
    """
    if rolling and daemon == 'restarted':
        raise SupervisorError('rolling=true restarts processes one at a time and cannot be combined with '
                              'daemon=restarted (a daemon restart stops every process at once); use '
                              'daemon=unchanged or rolling=false.', phase=PHASE_VALIDATE)
    running = sorted(n for n, s in before.items() if s in RUNNING_STATES)
    stopping = sorted(n for n, s in before.items() if s == STOPPING)
    not_running = sorted(n for n, s in before.items() if s not in RUNNING_STATES)
    startable = sorted(n for n, s in before.items() if s != 'RUNNING')
    final = 'STOPPED' if state == 'stopped' else 'RUNNING'
    expected = dict((n, final) for n in before)
    steps = []
    to_stop, to_start = [], []
    changed = False
    if daemon == 'restarted':
        if running or stopping:
            steps.append('stop')
            to_stop = running
        steps.append('daemon_restart')
        if state != 'stopped':
            steps.append('start')
            to_start = sorted(before)
        changed = True
    elif state == 'stopped':
        if running or stopping:
            steps.append('stop')
        to_stop = running
        changed = bool(running)
    elif state == 'started':
        if startable:
            steps.append('start')
        to_start = not_running
        changed = bool(not_running)
    elif rolling:
        steps.append('rolling')
        to_stop, to_start = running, sorted(before)
        changed = bool(before)
    else:
        if running or stopping:
            steps.append('stop')
        steps.append('start')
        to_stop, to_start = running, sorted(before)
        changed = bool(before)
    return dict(steps=steps, changed=changed, to_stop=to_stop, to_start=to_start, expected=expected)


def _check_target_names(params):
    """O(name) (``group``, ``group:``, ``group:*``, ``group:process`` or ``process``) and O(stop_last) through
    the name grammar; O(service_name) through the service name grammar."""
    try:
        name = (params.get('name') or '').strip()
        name = name[:-2] if name.endswith(':*') else name.rstrip(':')
        group, sep, proc = name.partition(':')
        check_name('name', group, max_len=PROCESS_NAME_MAX)
        if sep:
            check_name('name (process)', proc, max_len=PROCESS_NAME_MAX)
        for item in params.get('stop_last') or []:
            check_name('stop_last', item, max_len=PROCESS_NAME_MAX)
        if params.get('service_name') is not None:
            check_service_name('service_name', params['service_name'])
    except GateError as exc:
        raise SupervisorError(str(exc), phase=PHASE_VALIDATE)


def validate_params(params, path_exists=os.path.exists, get_bin_path=None):
    """Range-check every option and probe the service manager before the first call that changes state."""
    _check_target_names(params)
    for key in ('stop_timeout', 'daemon_timeout', 'start_timeout'):
        value = params.get(key)
        if value is not None and value < 1:
            raise SupervisorError('%s must be at least 1 second, got %s; leave it out for the computed default'
                                  % (key, value), phase=PHASE_VALIDATE)
    interval = params.get('poll_interval')
    if interval is not None and not 0 < interval <= 60:
        raise SupervisorError('poll_interval must be above 0 and at most 60 seconds, got %s' % interval,
                              phase=PHASE_VALIDATE)
    call_timeout = params.get('call_timeout')
    if call_timeout is not None and call_timeout <= 0:
        raise SupervisorError('call_timeout must be above 0 seconds, got %s' % call_timeout, phase=PHASE_VALIDATE)
    if params.get('daemon') == 'reloaded' and params.get('rolling'):
        raise SupervisorError('rolling=true cannot be combined with daemon=reloaded (a changed group is replaced '
                              'whole); apply the change first, then restart rolling', phase=PHASE_VALIDATE)
    manager = params.get('service_manager')
    if params.get('daemon') == 'restarted' and manager in ('systemd', 'service'):
        service = service_name_of(params)
        if manager == 'systemd' and not (path_exists('/run/systemd/system') and
                                         (get_bin_path is None or get_bin_path('systemctl'))):
            raise SupervisorError('service_manager=systemd, but systemd does not run on this host; use '
                                  'service_manager=auto (or rpc)', phase=PHASE_VALIDATE)
        if manager == 'service' and not (path_exists('/etc/init.d/%s' % service) or
                                         (get_bin_path is not None and get_bin_path('service'))):
            raise SupervisorError('service_manager=service, but there is no init script /etc/init.d/%s; use '
                                  'service_manager=auto (or rpc)' % service, phase=PHASE_VALIDATE)


def service_name_of(params):
    """The service that runs supervisord: O(service_name), else the one of the OS family whose supervisord config
    exists here (the location contract)."""
    return params.get('service_name') or installed()['service_name']
