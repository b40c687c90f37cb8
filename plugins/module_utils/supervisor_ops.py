# -*- coding: utf-8 -*-
# Copyright: authops.celery_tuning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Planning and state machines of the ``supervisor_group`` module.

Nothing in here talks to a socket directly: the runner gets a client (see
``supervisor_rpc.SupervisorClient``), a monotonic ``clock`` and a ``sleep`` function, a
``run_command`` callable for service managers and small probes, so unit tests can fake all of it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import os
import re
import time
from urllib.error import HTTPError

from ansible.module_utils.urls import open_url

from ansible_collections.authops.celery_tuning.plugins.module_utils.gate import (
    PROCESS_NAME_MAX,
    GateError,
    check_name,
    check_service_name,
)
from ansible_collections.authops.celery_tuning.plugins.module_utils.systemd_units import unit_name
from ansible_collections.authops.celery_tuning.plugins.module_utils.supervisor_rpc import (
    FAULT_ALREADY_STARTED,
    FAULT_NO_FILE,
    FAULT_NOT_EXECUTABLE,
    FAULT_NOT_RUNNING,
    FAULT_SPAWN_ERROR,
    FAULT_SUCCESS,
    FAULT_NAMES,
    KIND_BAD_NAME,
    SupervisorError,
    socket_identity,
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
#: supervisor 4.x's main-log line for a process it had to SIGKILL (a format string, not a regex).
KILL_LOG_LINE = "killing '%s' (%s) with SIGKILL"


def _url_answers(url, timeout=2):
    """Whether an HTTP server answers ``url`` at all (any status counts: the application is up)."""
    try:
        with open_url(url, timeout=timeout, follow_redirects='none'):
            return True
    except HTTPError:
        return True
    except Exception:  # pylint: disable=broad-except
        return False


def namespec(group, name):
    """supervisorctl's name for a process: ``name`` when it is alone in its group of the same name."""
    return name if group == name else '%s:%s' % (group, name)


def _pid_alive(pid):
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except OSError as exc:
        return exc.errno == errno.EPERM
    return True


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


def _cfg_num(cfg, key, default):
    value = (cfg or {}).get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return default
    return value


def compute_timeouts(target_infos, cfg_index, all_infos, params):
    """Effective stop/start/daemon timeouts (seconds); options win over the computed defaults."""
    stopwaits = [_cfg_num(cfg_index.get((i['group'], i['name'])), 'stopwaitsecs', DEFAULT_STOPWAITSECS)
                 for i in target_infos] or [DEFAULT_STOPWAITSECS]
    startsecs = [_cfg_num(cfg_index.get((i['group'], i['name'])), 'startsecs', DEFAULT_STARTSECS)
                 for i in target_infos] or [DEFAULT_STARTSECS]
    running_all = [i for i in all_infos if i.get('statename') not in STOPPED_STATES]
    daemon_waits = [_cfg_num(cfg_index.get((i['group'], i['name'])), 'stopwaitsecs', DEFAULT_STOPWAITSECS)
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


def was_killed(report, main_log=None):
    """Decide whether supervisor had to SIGKILL a process that outlived ``stopwaitsecs``.

    supervisor 4.x logs ``killing '<name>' (<pid>) with SIGKILL`` in its main log, and a killed
    process has ``exitstatus`` -1 (terminated by a signal; supervisor cannot tell which) after at
    least ``stopwaitsecs``.  The log line is decisive; without it the timing + exit status decide.
    """
    pid = report.get('pid_before')
    if main_log and pid:
        if KILL_LOG_LINE % (report.get('process'), pid) in main_log:
            return True
    seconds = report.get('stop_seconds')
    if seconds is None:
        return False
    return report.get('exitstatus') == -1 and seconds >= report.get('stopwaitsecs', DEFAULT_STOPWAITSECS)


#: The service name the module falls back to RPC for when no service manager knows it.
DEFAULT_SERVICE_NAME = 'supervisor'


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
    if service_name != DEFAULT_SERVICE_NAME:
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
# Runner
# --------------------------------------------------------------------------------------------

class _RunnerBase(object):
    """Bookkeeping shared by the runners: reports per process, snapshots, results, partial results."""

    def __init__(self, client, params, check_mode=False, clock=time.monotonic, sleep=time.sleep,
                 run_command=None, get_bin_path=None, path_exists=os.path.exists, pid_alive=_pid_alive,
                 sock_identity=socket_identity, url_answers=None):
        self.client = client
        self.params = params
        self.check_mode = check_mode
        self.clock = clock
        self.sleep = sleep
        self.run_command = run_command
        self.get_bin_path = get_bin_path
        self.path_exists = path_exists
        self.pid_alive = pid_alive
        self.sock_identity = sock_identity
        self.url_answers = url_answers or _url_answers
        self.interval = float(params.get('poll_interval') or 0.5)
        self.phase = PHASE_CONNECT
        self.changed = False
        self.actions = []
        self.reports = {}
        self.order = []
        self.cfg = {}
        self.timeouts = {}
        self.daemon_report = None
        self.kind = None
        self.key = None

    # -- bookkeeping --------------------------------------------------------------------------
    def _fail(self, msg, phase=None, kind=None):
        raise SupervisorError(msg, phase=phase or self.phase, kind=kind)

    def _report(self, info):
        spec = namespec(info['group'], info['name'])
        if spec not in self.reports:
            cfg = self.cfg.get((info['group'], info['name']))
            self.reports[spec] = dict(
                name=spec, group=info['group'], process=info['name'],
                state_before=None, pid_before=None, state_after=None, pid=None,
                stopped=False, stop_seconds=None, killed=False, exitstatus=None,
                started=False, start_seconds=None,
                stopwaitsecs=_cfg_num(cfg, 'stopwaitsecs', DEFAULT_STOPWAITSECS),
                startsecs=_cfg_num(cfg, 'startsecs', DEFAULT_STARTSECS),
            )
            self.order.append(spec)
        return self.reports[spec]

    def processes(self):
        return [self.reports[s] for s in sorted(self.order)]

    def _snapshot(self):
        infos = self.client.get_all_process_info()
        return dict((namespec(i['group'], i['name']), i) for i in infos), infos

    def _refresh_after(self):
        try:
            snap, dummy = self._snapshot()
        except SupervisorError:
            return
        for spec, rep in self.reports.items():
            info = snap.get(spec)
            if info is not None:
                rep['state_after'] = info['statename']
                rep['pid'] = info['pid'] or None

    def partial_result(self):
        """What is known so far; attached to failures."""
        return dict(processes=self.processes(), actions=list(self.actions), changed=self.changed,
                    daemon_restart=self.daemon_report, timeouts=self.timeouts, name=self.params.get('name'))

    def _targets(self, all_infos):
        self.kind, self.key, infos = resolve_target(self.params['name'], all_infos)
        return infos

    # -- main ---------------------------------------------------------------------------------
    def run(self):
        try:
            return self._run()
        except SupervisorError as exc:
            if exc.phase is None:
                exc.phase = self.phase
            if not self.check_mode and self.phase in (PHASE_STOP, PHASE_DAEMON, PHASE_START):
                self._refresh_after()
            details = self.partial_result()
            details.update(exc.details or {})
            exc.details = details
            raise

    def _wait_until_running(self):
        """Wait up to CONNECT_WAIT s for a daemon that is (re)starting; fail on anything else."""
        deadline = self.clock() + CONNECT_WAIT
        while True:
            try:
                st = self.client.get_state()
            except SupervisorError as exc:
                if not exc.is_connection_error or self.clock() >= deadline:
                    raise
                self.sleep(self.interval)
                continue
            if st.get('statename') == 'RUNNING':
                return
            if self.clock() >= deadline:
                self._fail('supervisord is %s, not RUNNING: wait until it finished starting/restarting and retry.'
                           % st.get('statename'))
            self.sleep(self.interval)

    def _diff_side(self, states):
        return dict(processes=dict((k, v) for k, v in sorted(states.items())))

    def _result(self, plan, before, after):
        p = self.params
        if not self.actions:
            self.actions.append('nothing to do: %s already %s' % (self._what(), 'stopped' if p['state'] == 'stopped' else 'running'))
        msg = '; '.join(self.actions)
        return dict(changed=self.changed, msg=msg, name=p['name'], target_type=self.kind, target=self.key,
                    state=p['state'], daemon=p['daemon'], rolling=bool(p.get('rolling')),
                    actions=list(self.actions), processes=self.processes(), daemon_restart=self.daemon_report,
                    timeouts=self.timeouts, diff=dict(before=before, after=after))

    def _what(self):
        return ('group %s' % self.key) if self.kind == 'group' else ('process %s' % self.key)

    # -- stop ---------------------------------------------------------------------------------
    def _current_targets(self):
        snap, all_infos = self._snapshot()
        return snap, [snap[s] for s in self._member_specs(all_infos)]

    def _member_specs(self, all_infos):
        if self.kind == 'group':
            return sorted(namespec(i['group'], i['name']) for i in all_infos if i['group'] == self.key)
        return [s for s in (namespec(i['group'], i['name']) for i in all_infos)
                if s == namespec(*self.key.split(':', 1))]

    def _check_results(self, results, ok, what):
        bad = []
        for item in results or []:
            if item.get('status') not in ok:
                spec = namespec(item.get('group'), item.get('name'))
                desc = '%s: %s' % (FAULT_NAMES.get(item.get('status'), item.get('status')), item.get('description'))
                if spec in self.reports:
                    self.reports[spec]['error'] = desc
                bad.append((spec, item.get('status'), desc))
        if what == 'stop' and bad:
            self._fail('supervisord could not stop %s: %s' % (self._what(), '; '.join('%s (%s)' % (s, d) for s, c, d in bad)))
        return bad


class _StopStart(_RunnerBase):
    """Graceful stops and starts of the target, waiting until each process reached its state."""

    def _stop_phase(self, again=False):
        self.phase = PHASE_STOP
        snap, infos = self._current_targets()
        running = [namespec(i['group'], i['name']) for i in infos if i['statename'] in RUNNING_STATES]
        waiting = [namespec(i['group'], i['name']) for i in infos if i['statename'] == STOPPING]
        if not running and not waiting:
            return
        for i in infos:
            self._report(i)
        t0 = self.clock()
        if running:
            pids = dict((namespec(i['group'], i['name']), i['pid']) for i in infos)
            for spec in running:
                if again or not self.reports[spec]['pid_before']:
                    self.reports[spec]['pid_before'] = pids.get(spec) or None
            if self.kind == 'group':
                results = self.client.stop_process_group(self.key, False)
                self._check_results(results, ok=(FAULT_SUCCESS, FAULT_NOT_RUNNING), what='stop')
            else:
                self._stop_one(self.key)
            self.changed = True
            self.actions.append('%sstopped %s gracefully, all at once (%s)'
                                % ('re-' if again else '', self._what(), ', '.join(running)))
        self._wait_stopped(running + waiting, t0, self.timeouts['stop'])

    def _stop_one(self, spec):
        try:
            self.client.stop_process(spec, False)
        except SupervisorError as exc:
            if exc.fault_code != FAULT_NOT_RUNNING:
                raise

    def _wait_stopped(self, specs, t0, timeout):
        pending = list(specs)
        last = {}
        while True:
            snap, dummy = self._snapshot()
            now = self.clock()
            for spec in list(pending):
                info = snap.get(spec)
                state = info['statename'] if info else 'ABSENT'
                last[spec] = state
                if state in STOPPED_STATES or state == 'ABSENT':
                    rep = self.reports[spec]
                    rep['stopped'] = True
                    rep['stop_seconds'] = round(now - t0, 2)
                    rep['exitstatus'] = info.get('exitstatus') if info else None
                    rep['state_after'] = state
                    pending.remove(spec)
            if not pending:
                break
            if now - t0 >= timeout:
                self._fail('Timed out after %ss waiting for %s to stop: %s still %s. supervisor sends SIGKILL after '
                           'stopwaitsecs; a process that survives it is stuck (uninterruptible I/O?). Check it with '
                           "'supervisorctl status' and raise stop_timeout if needed."
                           % (timeout, self._what(), ', '.join(pending), '/'.join(sorted(set(last[s] for s in pending)))))
            self.sleep(self.interval)
        main_log = None
        if any(self.reports[s]['exitstatus'] == -1 for s in specs):
            try:
                main_log = self.client.read_main_log_tail(MAIN_LOG_TAIL_BYTES)
            except SupervisorError:
                main_log = None
        for spec in specs:
            rep = self.reports[spec]
            rep['killed'] = was_killed(rep, main_log)
        killed = [s for s in specs if self.reports[s]['killed']]
        if killed:
            self.actions.append('killed with SIGKILL after stopwaitsecs: %s' % ', '.join(killed))

    # -- start --------------------------------------------------------------------------------
    def _start_phase(self):
        self.phase = PHASE_START
        snap, infos = self._current_targets()
        for i in infos:
            self._report(i)
        stopping = [namespec(i['group'], i['name']) for i in infos if i['statename'] == STOPPING]
        if stopping:
            self._wait_stopped(stopping, self.clock(), self.timeouts['stop'])
            self.phase = PHASE_START
            snap, infos = self._current_targets()
        to_start = [namespec(i['group'], i['name']) for i in infos if i['statename'] not in RUNNING_STATES]
        pending = [namespec(i['group'], i['name']) for i in infos if i['statename'] != 'RUNNING']
        if not pending:
            return
        t0 = self.clock()
        errors = {}
        if to_start:
            if self.kind == 'group':
                results = self.client.start_process_group(self.key, False)
                for spec, code, desc in self._check_results(results, ok=(FAULT_SUCCESS, FAULT_ALREADY_STARTED), what='start'):
                    if code != FAULT_SPAWN_ERROR:
                        errors[spec] = desc
            else:
                err = self._start_one(self.key)
                if err:
                    errors[self.key] = err
            self.changed = True
            self.actions.append('started %s (%s)' % (self._what(), ', '.join(to_start)))
        for spec in to_start:
            self.reports[spec]['started'] = True
        self._wait_running(pending, t0, self.timeouts['start'], errors)

    def _start_one(self, spec):
        try:
            self.client.start_process(spec, False)
        except SupervisorError as exc:
            if exc.fault_code in (FAULT_ALREADY_STARTED, FAULT_SPAWN_ERROR):
                return None
            if exc.fault_code in (FAULT_NO_FILE, FAULT_NOT_EXECUTABLE):
                return exc.msg
            raise
        return None

    def _wait_running(self, specs, t0, timeout, errors=None):
        errors = dict(errors or {})
        pending = [s for s in specs if s not in errors]
        failed = dict(errors)
        while True:
            snap, dummy = self._snapshot()
            now = self.clock()
            for spec in list(pending):
                info = snap.get(spec)
                rep = self.reports[spec]
                if info is None:
                    failed[spec] = 'disappeared from supervisord'
                    pending.remove(spec)
                    continue
                state = info['statename']
                rep['state_after'] = state
                rep['pid'] = info['pid'] or None
                if state == 'RUNNING':
                    rep['start_seconds'] = round(now - t0, 2)
                    pending.remove(spec)
                elif state in ('FATAL', 'EXITED', 'STOPPED'):
                    failed[spec] = '%s (%s)' % (state, info.get('spawnerr') or info.get('description') or 'no details')
                    pending.remove(spec)
            if not pending:
                break
            if now - t0 >= timeout:
                for spec in pending:
                    info = snap.get(spec) or {}
                    state = info.get('statename')
                    failed[spec] = '%s after %ss (%s)' % (state, timeout, info.get('spawnerr') or info.get('description') or
                                                          'startsecs %s not reached' % self.reports[spec]['startsecs'])
                break
            self.sleep(self.interval)
        if failed:
            parts = []
            for spec in sorted(failed):
                rep = self.reports[spec]
                rep['error'] = failed[spec]
                tail = ''
                try:
                    tail = self.client.tail_process_log(spec, STDERR_TAIL_BYTES)
                except SupervisorError:
                    tail = ''
                rep['stderr_tail'] = tail
                parts.append('%s is %s; stderr tail:\n%s' % (spec, failed[spec], tail.strip() or '(empty)'))
            self._fail('%d process(es) of %s did not reach RUNNING: %s'
                       % (len(failed), self._what(), '\n'.join(parts)))


class _DaemonRestart(_StopStart):
    """A restart of supervisord through its service manager (or RPC), proven by a new pid."""

    # -- daemon -------------------------------------------------------------------------------
    def _plan_daemon_restart(self):
        """Pick the service manager (probed before anything changes) and start the daemon's report."""
        p = self.params
        manager, reason = detect_service_manager(p.get('service_manager', 'auto'), p.get('service_name', 'supervisor'),
                                                 self.run_command, self.get_bin_path, self.path_exists)
        self.daemon_report = dict(method=manager, reason=reason, restarted=False, pid_before=None,
                                  pid_after=None, seconds=None)
        return manager

    def _daemon_phase(self, manager):
        self.phase = PHASE_DAEMON
        pid_before = self.client.get_pid()
        self.daemon_report['pid_before'] = pid_before
        sock_before = self.sock_identity(self.client.socket_path)
        t0 = self.clock()
        self._trigger_restart(manager)
        self.changed = True
        self._wait_for_new_daemon(manager, pid_before, sock_before, t0)
        self.actions.append('restarted supervisord via %s (pid %s -> %s)'
                            % (manager, pid_before, self.daemon_report['pid_after']))
        self._reread_config()

    def _trigger_restart(self, manager):
        if manager == 'rpc':
            self.client.restart()
        else:
            argv = restart_command(manager, self.params.get('service_name', 'supervisor'), self.get_bin_path)
            if self.run_command is None:
                self._fail('cannot run %s: no command runner' % ' '.join(argv))
            rc, out, err = self.run_command(argv)
            if rc != 0:
                self._fail("'%s' failed (rc=%s): %s. The group is stopped; fix the service and start it again."
                           % (' '.join(argv), rc, (err or out or '').strip()))

    def _wait_for_new_daemon(self, manager, pid_before, sock_before, t0):
        """Until the daemon answers RUNNING with a new pid (the old one gone), or fail after the timeout."""
        rep = self.daemon_report
        timeout = self.timeouts['daemon']
        went_down = False
        last_error = None
        while True:
            now = self.clock()
            try:
                state = self.client.get_state()
                pid = self.client.get_pid()
            except SupervisorError as exc:
                if not exc.is_connection_error:
                    raise
                went_down = True
                last_error = exc.msg
            else:
                if state.get('statename') != 'RUNNING':
                    went_down = True
                    last_error = 'supervisord state %s' % state.get('statename')
                else:
                    pid_changed = pid != pid_before
                    sock_changed = sock_before is not None and self.sock_identity(self.client.socket_path) not in (None, sock_before)
                    if manager == 'rpc':
                        # the restart() call set the mood synchronously: RUNNING now is the new instance
                        done = True
                    else:
                        done = pid_changed and not self.pid_alive(pid_before)
                        if not pid_changed:
                            last_error = 'supervisord still answers with the old pid %s' % pid_before
                        elif not done:
                            last_error = 'old supervisord pid %s is still alive' % pid_before
                    if done:
                        rep.update(restarted=True, pid_after=pid, seconds=round(now - t0, 2),
                                   evidence=sorted(k for k, v in (('pid_changed', pid_changed), ('went_down', went_down),
                                                                  ('socket_recreated', sock_changed)) if v))
                        break
            if now - t0 >= timeout:
                service = self.params.get('service_name', 'supervisor')
                self._fail('supervisord did not come back within %ss after the %s restart (last: %s). %s is stopped; '
                           "once the daemon answers again, start it (state=started) or check 'journalctl -u %s' / "
                           'the supervisord log.' % (timeout, manager, last_error or 'no answer', self._what(), service))
            self.sleep(self.interval)

    def _reread_config(self):
        """The config was re-read: refresh per-program settings and group membership."""
        self.phase = PHASE_START
        snap, all_infos = self._snapshot()
        self.cfg = config_index(self.client.get_all_config_info())
        try:
            members = self._member_specs(all_infos)
        except Exception:  # pylint: disable=broad-except
            members = []
        if not members:
            raise SupervisorError('%s does not exist any more after the daemon restart (config changed?): '
                                  'supervisord knows the groups %s.'
                                  % (self._what(), ', '.join(sorted(set(i['group'] for i in all_infos))) or '(none)'),
                                  phase=PHASE_START, kind=KIND_BAD_NAME)
        for i in all_infos:
            if namespec(i['group'], i['name']) in members:
                r = self._report(i)
                cfg = self.cfg.get((i['group'], i['name']))
                r['stopwaitsecs'] = _cfg_num(cfg, 'stopwaitsecs', r['stopwaitsecs'])
                r['startsecs'] = _cfg_num(cfg, 'startsecs', r['startsecs'])
        if self.params.get('start_timeout') is None:
            self.timeouts['start'] = max(self.reports[s]['startsecs'] for s in members) + START_MARGIN


class GroupRunner(_DaemonRestart):
    """Runs one ``supervisor_group`` invocation; see :meth:`run`."""

    def _run(self):
        p = self.params
        self.phase = PHASE_CONNECT
        self._wait_until_running()
        self.phase = PHASE_INSPECT
        snap, all_infos = self._snapshot()
        self.cfg = config_index(self.client.get_all_config_info())
        try:
            targets = self._targets(all_infos)
        except SupervisorError as exc:
            # A group supervisord does not know yet (its file was just written): with a daemon
            # restart there is nothing to stop; restart, then start what the daemon now knows.
            if exc.kind != KIND_BAD_NAME or p['daemon'] != 'restarted' or p['state'] == 'stopped':
                raise
            return self._run_new_target(all_infos)
        for info in targets:
            rep = self._report(info)
            rep['state_before'] = info['statename']
            rep['pid_before'] = info['pid'] or None
        self.timeouts = compute_timeouts(targets, self.cfg, all_infos, p)
        self.phase = PHASE_VALIDATE
        before = dict((s, r['state_before']) for s, r in self.reports.items())
        plan = plan_actions(p['state'], p['daemon'], p.get('rolling'), before)
        manager = self._plan_daemon_restart() if 'daemon_restart' in plan['steps'] else None
        self.changed = plan['changed']
        diff_before = self._diff_side(dict((s, r['state_before']) for s, r in self.reports.items()))

        if self.check_mode:
            self._describe_plan(plan, manager)
            for spec, rep in self.reports.items():
                rep['state_after'] = plan['expected'][spec] if plan['steps'] else rep['state_before']
                rep['pid'] = rep['pid_before'] if rep['state_after'] == rep['state_before'] else None
            after = self._diff_side(plan['expected'])
            return self._result(plan, diff_before, after)

        for step in plan['steps']:
            if step == 'stop':
                self._stop_phase()
            elif step == 'daemon_restart':
                self._daemon_phase(manager)
            elif step == 'start':
                self._start_phase()
            elif step == 'rolling':
                self._rolling_phase()
        if p['state'] == 'stopped' and p['daemon'] == 'restarted':
            # autostart programs come back with the daemon: stop them again
            self._stop_phase(again=True)
        self._refresh_after()
        after = self._diff_side(dict((s, r['state_after']) for s, r in self.reports.items()))
        return self._result(plan, diff_before, after)

    def _run_new_target(self, all_infos):
        p = self.params
        self.phase = PHASE_VALIDATE
        manager = self._plan_daemon_restart()
        self.timeouts = compute_timeouts([], self.cfg, all_infos, p)
        self.changed = True
        self.kind, self.key = 'group', p['name']
        before = dict(processes={})
        if self.check_mode:
            self.actions.append('%s is not known to supervisord yet: would restart supervisord via %s so it reads '
                                'its files, then start %s and wait until RUNNING' % (p['name'], manager, p['name']))
            return self._result(dict(steps=['daemon_restart', 'start']), before, before)
        self._daemon_phase(manager)
        self.phase = PHASE_INSPECT
        snap, all_infos = self._snapshot()
        self.cfg = config_index(self.client.get_all_config_info())
        targets = self._targets(all_infos)
        for info in targets:
            rep = self._report(info)
            rep['state_before'] = 'ABSENT'
            rep['pid_before'] = None
        self.timeouts.update((k, v) for k, v in compute_timeouts(targets, self.cfg, all_infos, p).items()
                             if k != 'daemon')
        self._start_phase()
        self._refresh_after()
        after = self._diff_side(dict((s, r['state_after']) for s, r in self.reports.items()))
        return self._result(dict(steps=['daemon_restart', 'start']), before, after)

    def _describe_plan(self, plan, manager):
        for step in plan['steps']:
            if step == 'stop':
                if plan['to_stop']:
                    self.actions.append('would stop %s gracefully, all at once (%s)' % (self._what(), ', '.join(plan['to_stop'])))
                else:
                    self.actions.append('would wait for STOPPING processes of %s' % self._what())
            elif step == 'daemon_restart':
                self.actions.append('would restart supervisord via %s' % manager)
            elif step == 'start':
                self.actions.append('would start %s and wait until RUNNING (%s)' % (self._what(), ', '.join(plan['to_start'])))
            elif step == 'rolling':
                self.actions.append('would do a rolling restart of %s, one process at a time (%s)'
                                    % (self._what(), ', '.join(plan['to_start'])))

    # -- rolling ------------------------------------------------------------------------------
    def _rolling_phase(self):
        snap, infos = self._current_targets()
        for i in infos:
            self._report(i)
        down = [namespec(i['group'], i['name']) for i in infos if i['statename'] not in RUNNING_STATES]
        up = [namespec(i['group'], i['name']) for i in infos if i['statename'] in RUNNING_STATES]
        done = []
        # start the stopped ones first: more capacity before we take any away
        for spec in down + up:
            rep = self.reports[spec]
            info = self._snapshot()[0].get(spec) or {}
            try:
                if info.get('statename') in RUNNING_STATES or info.get('statename') == STOPPING:
                    self.phase = PHASE_STOP
                    t0 = self.clock()
                    if info.get('statename') != STOPPING:
                        rep['pid_before'] = info.get('pid') or rep['pid_before']
                        self._stop_one(spec)
                        self.changed = True
                    stop_timeout = self.params.get('stop_timeout') or rep['stopwaitsecs'] + STOP_WAIT_MARGIN
                    self._wait_stopped([spec], t0, stop_timeout)
                self.phase = PHASE_START
                t0 = self.clock()
                err = self._start_one(spec)
                self.changed = True
                rep['started'] = True
                start_timeout = self.params.get('start_timeout') or rep['startsecs'] + START_MARGIN
                self._wait_running([spec], t0, start_timeout, {spec: err} if err else None)
            except SupervisorError as exc:
                rest = [s for s in down + up if s not in done and s != spec]
                exc.msg = '%s (rolling restart of %s stopped at %s; restarted so far: %s; not touched: %s)' % (
                    exc.msg, self._what(), spec, ', '.join(done) or 'none', ', '.join(rest) or 'none')
                exc.args = (exc.msg,)
                raise
            done.append(spec)
            self.actions.append('rolling: restarted %s' % spec)


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
        service = params.get('service_name', 'supervisor')
        if manager == 'systemd' and not (path_exists('/run/systemd/system') and
                                         (get_bin_path is None or get_bin_path('systemctl'))):
            raise SupervisorError('service_manager=systemd, but systemd does not run on this host; use '
                                  'service_manager=auto (or rpc)', phase=PHASE_VALIDATE)
        if manager == 'service' and not (path_exists('/etc/init.d/%s' % service) or
                                         (get_bin_path is not None and get_bin_path('service'))):
            raise SupervisorError('service_manager=service, but there is no init script /etc/init.d/%s; use '
                                  'service_manager=auto (or rpc)' % service, phase=PHASE_VALIDATE)


class ReloadRunner(_StopStart):
    """Apply a changed file to one group of the running daemon, as ``supervisorctl update <group>`` does,
    but gracefully: supervisord re-reads its files (``reloadConfig``); a changed group has its workers
    stopped first and the O(stop_last) programs (Auth's gunicorn) only once the workers drained; then
    the group is replaced and started, ``stop_last`` first. Other groups and the daemon keep running."""

    def _run(self):
        p = self.params
        self.phase = PHASE_CONNECT
        self._wait_until_running()
        self.phase = PHASE_INSPECT
        name = p['name'].strip().rstrip(':')
        self.kind, self.key = 'group', name
        added, changed, removed = self.client.reload_config()
        snap, all_infos = self._snapshot()
        self.cfg = config_index(self.client.get_all_config_info())
        members = [i for i in all_infos if i['group'] == name]
        for info in members:
            rep = self._report(info)
            rep['state_before'] = info['statename']
            rep['pid_before'] = info['pid'] or None
        self.timeouts = compute_timeouts(members, self.cfg, all_infos, p)
        before = self._diff_side(dict((s, r['state_before']) for s, r in self.reports.items()))
        if name in changed or name in removed:
            action = 'replace' if name in changed else 'remove'
        elif name in added:
            action = 'add'
        elif not members:
            raise SupervisorError('supervisord knows no group %s, and its files do not define one: check the '
                                  'include directory' % name, phase=PHASE_INSPECT, kind=KIND_BAD_NAME)
        else:
            action = 'keep'
        if self.check_mode:
            self.changed = action != 'keep' or any(r['state_before'] != 'RUNNING' for r in self.reports.values())
            self.actions.append({'replace': 'would stop %s gracefully (workers first, then %s), replace it with its '
                                            'new configuration and start it' % (name, ', '.join(p.get('stop_last') or [])
                                                                                or 'nothing else'),
                                 'remove': 'would stop and remove %s (no longer in the files)' % name,
                                 'add': 'would add %s and start it' % name,
                                 'keep': 'configuration of %s unchanged' % name}[action])
            return self._result(dict(steps=[action]), before, before)
        if action in ('replace', 'remove'):
            self._stop_in_order(members)
            self.client.remove_process_group(name)
            self.changed = True
            self.actions.append('removed %s from the running daemon' % name)
        if action in ('replace', 'add'):
            self.client.add_process_group(name)
            self.changed = True
            self.actions.append('added %s with its new configuration' % name)
            snap, all_infos = self._snapshot()
            self.cfg = config_index(self.client.get_all_config_info())
            self.timeouts.update((k, v) for k, v in compute_timeouts(
                [i for i in all_infos if i['group'] == name], self.cfg, all_infos, p).items() if k == 'start')
            if p['state'] != 'stopped':
                self._hold_back_autostarted()
        if action != 'remove' and p['state'] != 'stopped':
            self._start_in_order()
        self._refresh_after()
        after = self._diff_side(dict((s, r['state_after']) for s, r in self.reports.items()))
        return self._result(dict(steps=[action]), before, after)

    def _stop_in_order(self, members):
        last = set(self.params.get('stop_last') or [])
        first = [i for i in members if i['name'] not in last]
        final = [i for i in members if i['name'] in last]
        for batch in (first, final):
            running = [namespec(i['group'], i['name']) for i in batch if i['statename'] in RUNNING_STATES]
            waiting = [namespec(i['group'], i['name']) for i in batch if i['statename'] == STOPPING]
            if not running and not waiting:
                continue
            self.phase = PHASE_STOP
            t0 = self.clock()
            for spec in running:
                self._stop_one('%s:%s' % (self.key, spec.split(':')[-1]))
            self.changed = True
            self.actions.append('stopped %s gracefully' % ', '.join(running))
            self._wait_stopped(running + waiting, t0, self.timeouts['stop'])

    def _autostarted(self, members):
        """Members whose autostart supervisord has not acted on yet (it does so on its next tick)."""
        return [i for i in members if i['statename'] == 'STOPPED' and not i.get('start')
                and (self.cfg.get((i['group'], i['name'])) or {}).get('autostart', True)]

    def _hold_back_autostarted(self):
        """A new group autostarts all its programs at once. The ones that must wait for the ``stop_last``
        programs (the workers, while gunicorn boots) are stopped again at once: they are still STARTING
        and have taken no task, and the website then boots without competing for the CPU."""
        last = set(self.params.get('stop_last') or [])
        deadline = self.clock() + AUTOSTART_WAIT
        while True:
            snap, all_infos = self._snapshot()
            members = [i for i in all_infos if i['group'] == self.key]
            if not self._autostarted(members) or self.clock() >= deadline:
                break
            self.sleep(min(self.interval, 0.1))
        if not any(i['name'] in last for i in members):
            return
        early = [namespec(i['group'], i['name']) for i in members
                 if i['name'] not in last and i['statename'] in RUNNING_STATES]
        if not early:
            return
        for info in members:
            self._report(info)
        t0 = self.clock()
        for spec in early:
            self._stop_one('%s:%s' % (self.key, spec.split(':')[-1]))
        self._wait_stopped(early, t0, self.timeouts['stop'])
        self.actions.append('held back %s until %s run' % (', '.join(early), ', '.join(sorted(last))))

    def _wait_ready(self):
        """Until ``ready_url`` answers at all (any HTTP status), or ``ready_timeout`` passes."""
        url = self.params.get('ready_url')
        if not url:
            return
        t0 = self.clock()
        while not self.url_answers(url):
            if self.clock() - t0 >= self.params.get('ready_timeout', 60):
                self.actions.append('%s did not answer within %ss; starting the others anyway'
                                    % (url, self.params.get('ready_timeout', 60)))
                return
            self.sleep(self.interval)
        self.actions.append('%s answered after %.1fs' % (url, self.clock() - t0))

    def _start_in_order(self):
        self.phase = PHASE_START
        last = set(self.params.get('stop_last') or [])
        snap, all_infos = self._snapshot()
        members = [i for i in all_infos if i['group'] == self.key]
        for info in members:
            self._report(info)
        for batch in ([i for i in members if i['name'] in last], [i for i in members if i['name'] not in last]):
            t0 = self.clock()  # each batch has the whole start timeout (the first may wait for ready_url)
            pending = [namespec(i['group'], i['name']) for i in batch if i['statename'] != 'RUNNING']
            errors = {}
            for info in batch:
                if info['statename'] not in RUNNING_STATES:
                    spec = '%s:%s' % (self.key, info['name'])
                    err = self._start_one(spec)
                    if err:
                        errors[namespec(info['group'], info['name'])] = err
                    self.reports[namespec(info['group'], info['name'])]['started'] = True
            if pending:
                self.changed = True
                self.actions.append('started %s' % ', '.join(pending))
                self._wait_running(pending, t0, self.timeouts['start'], errors)
            if batch and batch[0]['name'] in last:
                self._wait_ready()


def run_supervisor_group(client, params, check_mode=False, **kwargs):
    """Entry point used by the module: returns the result dict or raises SupervisorError."""
    validate_params(params, kwargs.get('path_exists', os.path.exists), kwargs.get('get_bin_path'))
    runner = ReloadRunner if params.get('daemon') == 'reloaded' else GroupRunner
    return runner(client, params, check_mode=check_mode, **kwargs).run()
