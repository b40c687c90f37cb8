# -*- coding: utf-8 -*-
# Copyright: authops.celery_tuning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Applying a changed file to one group (the reload runner: ``reloadConfig``, the group replaced gracefully,
gunicorn last to stop and first to start), and the entry point that picks the runner."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible_collections.authops.celery_tuning.plugins.module_utils.group_runner_base import (
    StopStart,
)
from ansible_collections.authops.celery_tuning.plugins.module_utils.group_runners import (
    GroupRunner,
)
from ansible_collections.authops.celery_tuning.plugins.module_utils.supervisor_ops import (
    AUTOSTART_WAIT,
    PHASE_CONNECT,
    PHASE_INSPECT,
    PHASE_START,
    PHASE_STOP,
    RUNNING_STATES,
    STOPPING,
    compute_timeouts,
    config_index,
    namespec,
    validate_params,
)
from ansible_collections.authops.celery_tuning.plugins.module_utils.supervisor_errors import (
    KIND_BAD_NAME,
    SupervisorError,
)
from ansible_collections.authops.celery_tuning.plugins.module_utils.run_lock import (
    DEFAULT_DIRECTORY,
    GroupBusy,
    LockError,
    lock_name_ok,
)


class ReloadRunner(StopStart):
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
        """Until ``ready_url`` answers with a status below 500, or ``ready_timeout`` passes (then the others
        start anyway, and the message says what the website last answered)."""
        url = self.params.get('ready_url')
        if not url:
            return
        t0 = self.clock()
        while True:
            answers, what = self.url_answers(url)
            if answers:
                break
            if self.clock() - t0 >= self.params.get('ready_timeout', 60):
                self.actions.append('%s did not answer within %ss (last: %s%s); starting the others anyway'
                                    % (url, self.params.get('ready_timeout', 60), what,
                                       ': the website runs but cannot serve, see its log' if what.startswith('HTTP 5')
                                       else ''))
                return
            self.sleep(self.interval)
        self.actions.append('%s answered (%s) after %.1fs' % (url, what, self.clock() - t0))

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
    group = (params.get('name') or '').split(':')[0]
    if check_mode or not lock_name_ok(group):
        return runner(client, params, check_mode=check_mode, **kwargs).run()
    # While it works, the step holds the group's busy file and renews the run's lease (run_lock): a run whose
    # controller died is not taken over while its step still changes the group.
    try:
        busy = GroupBusy(params.get('lock_directory') or DEFAULT_DIRECTORY, group)
        busy.__enter__()
    except LockError as exc:
        raise SupervisorError(str(exc), phase=PHASE_CONNECT)
    try:
        return runner(client, params, check_mode=check_mode, **kwargs).run()
    finally:
        busy.__exit__(None, None, None)
