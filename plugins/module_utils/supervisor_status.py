# -*- coding: utf-8 -*-
# Copyright: authops.celery_tuning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What supervisord runs, joined with what /proc says about each process (supervisor_info)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

from ansible_collections.authops.celery_tuning.plugins.module_utils import procfs
from ansible_collections.authops.celery_tuning.plugins.module_utils.supervisor_errors import (
    FAULT_SHUTDOWN_STATE,
    HAS_SUPERVISOR,
    KIND_BAD_NAME,
    KIND_REFUSED,
    KIND_SOCKET_MISSING,
    SUPERVISOR_IMPORT_ERROR,
    SupervisorError,
    missing_supervisor_message,
)
from ansible_collections.authops.celery_tuning.plugins.module_utils.supervisor_rpc import (
    connect_from_module_params,
    visibly_absent,
)

#: systemd states of a unit on its way up or down: a restart that is under way.
UNIT_TRANSIENT_STATES = ("activating", "deactivating", "reloading")
SETTLE_POLL_SECONDS = 2


def read_settled(read, unit_state, timeout, clock=time.time, sleep=time.sleep):
    """``read()`` once supervisord is not in the middle of a shutdown or restart: ``(result, waited s)``.

    A restart that is under way (a run killed while it restarted the daemon leaves systemd going on with it)
    answers SHUTDOWN_STATE while supervisord stops its programs, then nothing, while its unit is deactivating
    or activating (``unit_state()``, systemd's ActiveState, None without systemd). Such answers are waited
    out, polling, up to ``timeout`` seconds; any other answer, or the last one after the timeout, is
    returned or raised as it came (the error then says how long it waited).
    """
    start = clock()
    while True:
        try:
            return read(), round(clock() - start, 1)
        except SupervisorError as exc:
            shutting_down = exc.fault_code == FAULT_SHUTDOWN_STATE
            restarting = exc.kind in (KIND_REFUSED, KIND_SOCKET_MISSING) and unit_state() in UNIT_TRANSIENT_STATES
            if not (shutting_down or restarting):
                raise
            if clock() - start >= timeout:
                if timeout > 0:
                    exc.msg = ('%s Still so after %d s: a restart of supervisord is under way (systemctl status shows '
                               'it); let it end, then run again.' % (exc.msg, int(clock() - start)))
                    exc.args = (exc.msg,)
                raise
        sleep(SETTLE_POLL_SECONDS)


def collect(client, name=None, proc='/proc'):
    """Processes of group or program ``name`` (all when None), each with memory and command line.

    Raises SupervisorError(kind=KIND_BAD_NAME) when ``name`` matches no group, program or process.
    """
    infos = client.get_all_process_info()
    configs = {}
    for conf in client.get_all_config_info():
        configs[(conf.get('group'), conf.get('name'))] = conf
    selected = []
    for info in infos:
        program = procfs.program_of(info['name'])
        full = '%s:%s' % (info['group'], info['name'])
        if name in (None, info['group'], info['name'], full, program):
            selected.append((info, program, full))
    if name is not None and not selected:
        raise SupervisorError(
            "supervisord has no group, program or process named %r (it has: %s). Check the name, or "
            "whether the group's file is in supervisor's include directory and the daemon was restarted."
            % (name, ', '.join(sorted(set(i['group'] for i in infos))) or 'nothing'),
            kind=KIND_BAD_NAME)
    tree = procfs.children_map(proc)
    processes = []
    for info, program, full in selected:
        pid = info.get('pid') or 0
        conf = configs.get((info['group'], info['name']), {})
        entry = dict(
            name=info['name'], group=info['group'], full_name=full, program=program,
            state=info.get('statename'), pid=pid, description=info.get('description', ''),
            uptime_seconds=max(0, info.get('now', 0) - info.get('start', 0)) if info.get('statename') == 'RUNNING' else 0,
            stopwaitsecs=conf.get('stopwaitsecs'), startsecs=conf.get('startsecs'),
            cmdline=None, rss_bytes=0, tree_rss_bytes=0, children=[],
        )
        if pid:
            entry.update(procfs.process_memory(pid, tree, proc))
            entry['cmdline'] = procfs.read_cmdline(pid, proc)
        processes.append(entry)
    return processes


def read_daemon(params, read_service, connect=connect_from_module_params, has_supervisor=HAS_SUPERVISOR):
    """supervisor_info's question to the daemon: ``(found, failure)``, ``found`` with ``found``, ``processes``
    (and ``settled_after``), ``failure`` None or fail_json's arguments. A daemon that is not there is not found
    (no failure) with ``missing_ok``; a restart under way is waited out for ``settle_timeout`` seconds."""
    absent = dict(found=False, processes=[])
    if not has_supervisor:
        if params['missing_ok'] and visibly_absent(params['socket'], params['config_file']):
            return absent, None
        return absent, dict(msg=missing_supervisor_message(), exception=SUPERVISOR_IMPORT_ERROR)

    def unit_state():
        return read_service()['active_state'] if params['service'] else None

    try:
        processes, waited = read_settled(lambda: collect(connect(params), params['name']), unit_state,
                                         max(params['settle_timeout'] or 0, 0))
    except SupervisorError as exc:
        if params['missing_ok'] and exc.kind in (KIND_BAD_NAME, KIND_REFUSED, KIND_SOCKET_MISSING):
            return absent, None
        return absent, dict(msg=exc.msg)
    return dict(found=True, processes=processes, settled_after=waited), None
