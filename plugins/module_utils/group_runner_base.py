# -*- coding: utf-8 -*-
# Copyright: authops.celery_tuning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The runners' shared part: per-process reports, snapshots and results, and the graceful stops and starts
that wait until each process has reached its state. The runner gets a client (``supervisor_rpc``), a clock,
a ``sleep`` and a ``run_command``, so unit tests can fake all of it."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import os
import time
from ansible.module_utils.urls import open_url
from urllib.error import HTTPError

from ansible_collections.authops.celery_tuning.plugins.module_utils.kill_detection import (
    was_killed,
)
from ansible_collections.authops.celery_tuning.plugins.module_utils.supervisor_ops import (
    CONNECT_WAIT,
    DEFAULT_STARTSECS,
    DEFAULT_STOPWAITSECS,
    MAIN_LOG_TAIL_BYTES,
    PHASE_CONNECT,
    PHASE_DAEMON,
    PHASE_START,
    PHASE_STOP,
    RUNNING_STATES,
    STDERR_TAIL_BYTES,
    STOPPED_STATES,
    STOPPING,
    cfg_num,
    namespec,
    resolve_target,
)
from ansible_collections.authops.celery_tuning.plugins.module_utils.supervisor_errors import (
    FAULT_ALREADY_STARTED,
    FAULT_NAMES,
    FAULT_NOT_EXECUTABLE,
    FAULT_NOT_RUNNING,
    FAULT_NO_FILE,
    FAULT_SPAWN_ERROR,
    FAULT_SUCCESS,
    SupervisorError,
)
from ansible_collections.authops.celery_tuning.plugins.module_utils.supervisor_rpc import socket_identity


def _url_answers(url, timeout=2):
    """Whether the website answers ``url``, and what it answered: any status below 500 counts (a redirect to
    the login page, a 404: the application serves); a 5xx (it runs but cannot serve, for example without its
    database) or no answer does not. Returns ``(answers, what)``, ``what`` for the messages."""
    try:
        with open_url(url, timeout=timeout, follow_redirects='none') as response:
            return True, 'HTTP %s' % response.getcode()
    except HTTPError as exc:
        return exc.code < 500, 'HTTP %s' % exc.code
    except Exception as exc:  # pylint: disable=broad-except
        return False, str(getattr(exc, 'reason', None) or exc) or type(exc).__name__


def _pid_alive(pid):
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except OSError as exc:
        return exc.errno == errno.EPERM
    return True


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
                stopwaitsecs=cfg_num(cfg, 'stopwaitsecs', DEFAULT_STOPWAITSECS),
                startsecs=cfg_num(cfg, 'startsecs', DEFAULT_STARTSECS),
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


class StopStart(_RunnerBase):
    """Graceful stops and starts of the target, waiting until each process reached its state."""

    def _stop_phase(self, again=False):
        self.phase = PHASE_STOP
        snap, infos = self._current_targets()
        last = set(self.params.get('stop_last') or [])
        if not again and last and self.kind == 'group' and self.params.get('daemon') == 'restarted':
            return self._drain_before_daemon_restart(infos, last)
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

    def _drain_before_daemon_restart(self, infos, last):
        """With a daemon restart and ``stop_last``: the other programs stop gracefully (running tasks finish)
        while the ``stop_last`` ones (Auth's gunicorn) keep serving; the daemon's restart then stops those."""
        for i in infos:
            self._report(i)
        first = [i for i in infos if i['name'] not in last]
        running = [namespec(i['group'], i['name']) for i in first if i['statename'] in RUNNING_STATES]
        waiting = [namespec(i['group'], i['name']) for i in first if i['statename'] == STOPPING]
        for i in first:
            spec = namespec(i['group'], i['name'])
            if spec in running and not self.reports[spec]['pid_before']:
                self.reports[spec]['pid_before'] = i['pid'] or None
        if not running and not waiting:
            return
        t0 = self.clock()
        for spec in running:
            self._stop_one('%s:%s' % (self.key, spec.split(':')[-1]))
        self.changed = True
        self.actions.append('stopped %s gracefully; %s kept serving until the daemon restarts'
                            % (', '.join(running) or 'nothing', ', '.join(sorted(last))))
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
