# -*- coding: utf-8 -*-
# Copyright: authops.celery_tuning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The group runner: stop, restart or start one group, restarting supervisord itself through its service
manager when asked (proven by a new pid)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


from ansible_collections.authops.celery_tuning.plugins.module_utils.group_runner_base import (
    StopStart,
)
from ansible_collections.authops.celery_tuning.plugins.module_utils.service_manager import (
    detect_service_manager,
    restart_command,
)
from ansible_collections.authops.celery_tuning.plugins.module_utils.supervisor_ops import (
    PHASE_CONNECT,
    PHASE_DAEMON,
    PHASE_INSPECT,
    PHASE_START,
    PHASE_STOP,
    PHASE_VALIDATE,
    RUNNING_STATES,
    START_MARGIN,
    STOPPING,
    STOP_WAIT_MARGIN,
    cfg_num,
    compute_timeouts,
    config_index,
    namespec,
    plan_actions,
    service_name_of,
)
from ansible_collections.authops.celery_tuning.plugins.module_utils.supervisor_errors import (
    KIND_BAD_NAME,
    SupervisorError,
)


class _DaemonRestart(StopStart):
    """A restart of supervisord through its service manager (or RPC), proven by a new pid."""

    # -- daemon -------------------------------------------------------------------------------
    def _plan_daemon_restart(self):
        """Pick the service manager (probed before anything changes) and start the daemon's report."""
        p = self.params
        manager, reason = detect_service_manager(p.get('service_manager', 'auto'), service_name_of(p),
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
            argv = restart_command(manager, service_name_of(self.params), self.get_bin_path)
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
                service = service_name_of(self.params)
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
                r['stopwaitsecs'] = cfg_num(cfg, 'stopwaitsecs', r['stopwaitsecs'])
                r['startsecs'] = cfg_num(cfg, 'startsecs', r['startsecs'])
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
