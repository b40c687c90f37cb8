# -*- coding: utf-8 -*-
# Copyright: authops.celery_tuning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import types

import pytest

from ansible_collections.authops.celery_tuning.plugins.module_utils import (
    group_apply,
    group_runner_base,
    kill_detection,
    service_manager,
    supervisor_ops,
)
from ansible_collections.authops.celery_tuning.plugins.module_utils.supervisor_errors import (
    FAULT_ALREADY_STARTED,
    FAULT_BAD_NAME,
    FAULT_NOT_RUNNING,
    FAULT_SUCCESS,
    KIND_PERMISSION,
    KIND_REFUSED,
    SupervisorError,
)

#: The planning, the kill detection, the service manager and the runners, under one name for these tests.
ops = types.SimpleNamespace(**dict(
    (k, v) for module in (supervisor_ops, kill_detection, service_manager, group_runner_base, group_apply)
    for k, v in vars(module).items() if not k.startswith("__")))


class FakeClock(object):
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


class FakeProc(object):
    def __init__(self, group, name, state='RUNNING', pid=100, stop_delay=0.0, kill=False, stopwaitsecs=10,
                 startsecs=1, start_result='RUNNING', stderr=''):
        self.group, self.name, self.state, self.pid = group, name, state, pid
        self.stop_delay, self.kill, self.stopwaitsecs, self.startsecs = stop_delay, kill, stopwaitsecs, startsecs
        self.start_result, self.stderr = start_result, stderr
        self.exitstatus = 0
        self.spawnerr = ''
        self.until = None
        self.next = None


class FakeSupervisor(object):
    """A supervisord simulator driven by a fake clock."""

    def __init__(self, clock, procs, socket_path='/run/s.sock'):
        self.clock = clock
        self.procs = dict(('%s:%s' % (p.group, p.name), p) for p in procs)
        self.calls = []
        self.pid = 1
        self.next_pid = 5000
        self.main_log = ''
        self.down_until = None
        self.restart_fails = False
        self.socket_path = socket_path
        self.running_samples = []

    # -- simulation
    def _tick(self):
        now = self.clock()
        for p in self.procs.values():
            if p.until is not None and now >= p.until:
                p.state, p.until = p.next, None
                if p.state in ('STOPPED', 'FATAL'):
                    p.pid = 0
                if p.state == 'FATAL':
                    p.spawnerr = 'Exited too quickly (process log may have details)'
        self.running_samples.append(sum(1 for p in self.procs.values() if p.state == 'RUNNING'))

    def _check_up(self):
        if self.down_until is not None:
            if self.restart_fails or self.clock() < self.down_until:
                raise SupervisorError('Connection refused', kind=KIND_REFUSED)
            self.down_until = None

    def _find(self, name):
        for spec, p in self.procs.items():
            if name in (spec, p.name):
                return p
        raise SupervisorError('BAD_NAME %s' % name, fault_code=FAULT_BAD_NAME)

    def _stop(self, p):
        now = self.clock()
        if p.kill:
            p.until, p.exitstatus = now + p.stopwaitsecs + 0.3, -1
            self.main_log += "WARN killing '%s' (%s) with SIGKILL\n" % (p.name, p.pid)
        else:
            p.until, p.exitstatus = now + p.stop_delay, 0
        p.state, p.next = 'STOPPING', 'STOPPED'
        if p.until <= now:
            p.state, p.until, p.pid = 'STOPPED', None, 0

    def _start(self, p):
        self.next_pid += 1
        p.pid = self.next_pid
        p.state, p.until, p.next = 'STARTING', self.clock() + p.startsecs, p.start_result
        p.spawnerr = ''

    # -- API used by the runner
    def get_state(self):
        self.calls.append(('getState',))
        self._check_up()
        return {'statename': 'RUNNING', 'statecode': 1}

    def get_pid(self):
        self._check_up()
        return self.pid

    def get_all_process_info(self):
        self._check_up()
        self._tick()
        return [dict(group=p.group, name=p.name, statename=p.state, pid=p.pid, exitstatus=p.exitstatus,
                     spawnerr=p.spawnerr, description='') for p in sorted(self.procs.values(), key=lambda x: x.name)]

    def get_all_config_info(self):
        self._check_up()
        return [dict(group=p.group, name=p.name, stopwaitsecs=p.stopwaitsecs, startsecs=p.startsecs, inuse=True)
                for p in self.procs.values()]

    def stop_process_group(self, name, wait=False):
        self.calls.append(('stopProcessGroup', name, wait))
        res = []
        for p in self.procs.values():
            if p.group == name and p.state in ops.RUNNING_STATES:
                self._stop(p)
                res.append(dict(group=p.group, name=p.name, status=FAULT_SUCCESS, description='OK'))
        return res

    def start_process_group(self, name, wait=False):
        self.calls.append(('startProcessGroup', name, wait))
        res = []
        for p in self.procs.values():
            if p.group == name and p.state not in ops.RUNNING_STATES:
                self._start(p)
                res.append(dict(group=p.group, name=p.name, status=FAULT_SUCCESS, description='OK'))
        return res

    def stop_process(self, name, wait=False):
        self.calls.append(('stopProcess', name, wait))
        p = self._find(name)
        if p.state not in ops.RUNNING_STATES:
            raise SupervisorError('NOT_RUNNING', fault_code=FAULT_NOT_RUNNING)
        self._stop(p)
        return True

    def start_process(self, name, wait=False):
        self.calls.append(('startProcess', name, wait))
        p = self._find(name)
        if p.state in ops.RUNNING_STATES:
            raise SupervisorError('ALREADY_STARTED', fault_code=FAULT_ALREADY_STARTED)
        self._start(p)
        return True

    def restart(self):
        self.calls.append(('restart',))
        self.down_until = self.clock() + 2
        for p in self.procs.values():
            p.state, p.pid, p.until = 'STOPPED', 0, None

    def read_main_log_tail(self, nbytes=65536):
        return self.main_log

    def tail_process_log(self, name, nbytes=2048):
        return self._find(name).stderr

    def signal_calls(self):
        return [c for c in self.calls if c[0] not in ('getState',)]


def params(**kw):
    p = dict(name='myauth', state='started', daemon='unchanged', service_manager='auto', service_name='supervisor',
             rolling=False, stop_timeout=None, start_timeout=None, daemon_timeout=None, poll_interval=0.1)
    p.update(kw)
    return p


def myauth(**kw):
    pid = kw.pop('pid', None)
    return [FakeProc('myauth', 'beat', pid=11 if pid is None else pid, **kw),
            FakeProc('myauth', 'worker_00', pid=12 if pid is None else pid, **kw),
            FakeProc('myauth', 'worker_01', pid=13 if pid is None else pid, **kw), FakeProc('other', 'other', pid=20)]


def run(sup, clock, check_mode=False, **kw):
    extra = dict(run_command=kw.pop('run_command', None), get_bin_path=kw.pop('get_bin_path', None),
                 path_exists=kw.pop('path_exists', lambda p: False), pid_alive=kw.pop('pid_alive', lambda pid: False),
                 sock_identity=kw.pop('sock_identity', lambda p: None))
    return ops.run_supervisor_group(sup, params(**kw), check_mode=check_mode, clock=clock, sleep=clock.sleep, **extra)


# -- pure helpers -------------------------------------------------------------------------------

INFOS = [dict(group='myauth', name='worker_00'), dict(group='myauth', name='beat'), dict(group='solo', name='solo')]


@pytest.mark.parametrize('name, kind, key, count', [
    ('myauth', 'group', 'myauth', 2), ('myauth:', 'group', 'myauth', 2), ('myauth:*', 'group', 'myauth', 2),
    ('myauth:beat', 'process', 'myauth:beat', 1), ('worker_00', 'process', 'myauth:worker_00', 1),
    ('solo', 'group', 'solo', 1),
])
def test_resolve_target(name, kind, key, count):
    k, got_key, infos = ops.resolve_target(name, INFOS)
    assert (k, got_key, len(infos)) == (kind, key, count)


def test_resolve_target_unknown_lists_groups():
    with pytest.raises(SupervisorError) as err:
        ops.resolve_target('nosuch', INFOS)
    assert err.value.phase == 'inspect'
    assert "'nosuch'" in err.value.msg and 'myauth, solo' in err.value.msg


def test_namespec():
    assert ops.namespec('a', 'a') == 'a' and ops.namespec('g', 'p') == 'g:p'


@pytest.mark.parametrize('state, daemon, rolling, before, steps, changed', [
    ('started', 'unchanged', False, {'a': 'RUNNING', 'b': 'RUNNING'}, [], False),
    ('started', 'unchanged', False, {'a': 'RUNNING', 'b': 'STOPPED'}, ['start'], True),
    ('started', 'unchanged', False, {'a': 'RUNNING', 'b': 'STARTING'}, ['start'], False),
    ('started', 'unchanged', False, {'a': 'FATAL'}, ['start'], True),
    ('stopped', 'unchanged', False, {'a': 'STOPPED', 'b': 'EXITED', 'c': 'FATAL'}, [], False),
    ('stopped', 'unchanged', False, {'a': 'RUNNING', 'b': 'STOPPED'}, ['stop'], True),
    ('stopped', 'unchanged', False, {'a': 'STOPPING'}, ['stop'], False),
    ('restarted', 'unchanged', False, {'a': 'RUNNING'}, ['stop', 'start'], True),
    ('restarted', 'unchanged', False, {'a': 'STOPPED'}, ['start'], True),
    ('restarted', 'unchanged', True, {'a': 'RUNNING'}, ['rolling'], True),
    ('restarted', 'restarted', False, {'a': 'RUNNING'}, ['stop', 'daemon_restart', 'start'], True),
    ('started', 'restarted', False, {'a': 'STOPPED'}, ['daemon_restart', 'start'], True),
    ('stopped', 'restarted', False, {'a': 'RUNNING'}, ['stop', 'daemon_restart'], True),
])
def test_plan_actions(state, daemon, rolling, before, steps, changed):
    plan = ops.plan_actions(state, daemon, rolling, before)
    assert plan['steps'] == steps and plan['changed'] is changed


def test_plan_rolling_with_daemon_restart_fails():
    with pytest.raises(SupervisorError) as err:
        ops.plan_actions('restarted', 'restarted', True, {'a': 'RUNNING'})
    assert err.value.phase == 'validate' and 'rolling' in err.value.msg


def test_compute_timeouts():
    targets = [dict(group='g', name='a', statename='RUNNING'), dict(group='g', name='b', statename='RUNNING')]
    others = [dict(group='o', name='o', statename='RUNNING'), dict(group='s', name='s', statename='STOPPED')]
    idx = ops.config_index([dict(group='g', name='a', stopwaitsecs=600, startsecs=10, inuse=True),
                            dict(group='g', name='b', stopwaitsecs=60, startsecs=3, inuse=True),
                            dict(group='o', name='o', stopwaitsecs=900, inuse=True),
                            dict(group='s', name='s', stopwaitsecs=5000, inuse=True)])
    t = ops.compute_timeouts(targets, idx, targets + others, {})
    assert t == dict(stop=610, start=20, daemon=930)
    t = ops.compute_timeouts(targets, {}, targets, dict(stop_timeout=5, start_timeout=6, daemon_timeout=7))
    assert t == dict(stop=5, start=6, daemon=7)
    t = ops.compute_timeouts(targets, {}, [], {})
    assert t == dict(stop=20, start=11, daemon=30)


def test_was_killed():
    rep = dict(process='worker_00', pid_before=42, exitstatus=-1, stop_seconds=10.4, stopwaitsecs=10)
    assert ops.was_killed(rep, "WARN killing 'worker_00' (42) with SIGKILL") is True
    assert ops.was_killed(rep, None) is True  # timing + signal exit
    assert ops.was_killed(dict(rep, exitstatus=0), None) is False  # finished its task and exited 0
    assert ops.was_killed(dict(rep, stop_seconds=0.2), None) is False  # TERM ended it at once
    assert ops.was_killed(dict(rep, stop_seconds=None), None) is False
    assert ops.was_killed(dict(rep, stop_seconds=0.2), "killing 'worker_00' (42) with SIGKILL") is True


def _bins(name):
    return '/usr/bin/' + name


def _loaded(argv):
    return 0, 'LoadState=loaded\n', ''


def _missing(argv):
    return 0, 'LoadState=not-found\n', ''


def _only_systemd(path):
    return path == '/run/systemd/system'


def test_detect_service_manager():
    bins, loaded, missing, only_systemd = _bins, _loaded, _missing, _only_systemd
    assert ops.detect_service_manager('rpc', 'supervisor')[0] == 'rpc'
    assert ops.detect_service_manager('auto', 'supervisor', loaded, bins, lambda p: True)[0] == 'systemd'
    assert ops.detect_service_manager('auto', 'supervisor', missing, bins, lambda p: True)[0] == 'service'
    assert ops.detect_service_manager('auto', 'supervisor', missing, bins, only_systemd)[0] == 'rpc'
    assert ops.detect_service_manager('auto', 'supervisor', loaded, bins, lambda p: False)[0] == 'rpc'
    assert ops.restart_command('systemd', 'supervisor', bins) == ['/usr/bin/systemctl', 'restart', 'supervisor']
    assert ops.restart_command('service', 'supervisor', bins) == ['/usr/bin/service', 'supervisor', 'restart']
    assert ops.restart_command('service', 'supervisor', lambda n: None) == ['/etc/init.d/supervisor', 'restart']


# -- runner -------------------------------------------------------------------------------------

def test_started_is_idempotent():
    clock = FakeClock()
    sup = FakeSupervisor(clock, myauth())
    res = run(sup, clock, state='started')
    assert res['changed'] is False
    assert [c for c in sup.calls if c[0].startswith(('start', 'stop'))] == []
    assert [p['state_after'] for p in res['processes']] == ['RUNNING'] * 3
    assert res['diff']['before'] == res['diff']['after']


def test_stopped_is_idempotent():
    clock = FakeClock()
    sup = FakeSupervisor(clock, myauth(state='STOPPED', pid=0))
    res = run(sup, clock, state='stopped')
    assert res['changed'] is False and 'nothing to do' in res['msg']


def test_restarted_stops_all_at_once_reports_kill_and_starts():
    clock = FakeClock()
    procs = myauth(stop_delay=3)
    procs[1].kill, procs[1].stopwaitsecs = True, 5
    sup = FakeSupervisor(clock, procs)
    res = run(sup, clock, state='restarted')
    assert res['changed'] is True
    signals = [c for c in sup.calls if c[0].startswith(('start', 'stop'))]
    assert signals == [('stopProcessGroup', 'myauth', False), ('startProcessGroup', 'myauth', False)]
    by = dict((p['name'], p) for p in res['processes'])
    assert set(by) == {'myauth:beat', 'myauth:worker_00', 'myauth:worker_01'}
    assert by['myauth:worker_00']['killed'] is True and by['myauth:worker_00']['exitstatus'] == -1
    assert by['myauth:worker_00']['stop_seconds'] >= 5
    assert by['myauth:beat']['killed'] is False and 3 <= by['myauth:beat']['stop_seconds'] < 3.5
    for p in res['processes']:
        assert p['state_before'] == 'RUNNING' and p['state_after'] == 'RUNNING'
        assert p['pid'] != p['pid_before'] and p['started'] and p['stopped']
    assert sup.procs['other:other'].state == 'RUNNING'
    assert res['timeouts']['stop'] == 20  # largest stopwaitsecs (10) + margin


def test_check_mode_signals_nothing():
    clock = FakeClock()
    sup = FakeSupervisor(clock, myauth())
    res = run(sup, clock, check_mode=True, state='restarted', daemon='restarted', service_manager='rpc')
    assert res['changed'] is True
    assert [c for c in sup.calls if c[0] != 'getState'] == []
    assert res['actions'][0].startswith('would stop') and 'would restart supervisord via rpc' in res['actions']
    assert res['diff']['after']['processes']['myauth:beat'] == 'RUNNING'
    res = run(sup, clock, check_mode=True, state='stopped')
    assert res['diff']['after']['processes'] == {'myauth:beat': 'STOPPED', 'myauth:worker_00': 'STOPPED',
                                                 'myauth:worker_01': 'STOPPED'}
    assert all(p.state == 'RUNNING' for p in sup.procs.values())


def test_single_process_target():
    clock = FakeClock()
    sup = FakeSupervisor(clock, myauth())
    res = run(sup, clock, name='myauth:worker_01', state='stopped')
    assert res['changed'] is True and res['target_type'] == 'process'
    assert ('stopProcess', 'myauth:worker_01', False) in sup.calls
    assert sup.procs['myauth:worker_00'].state == 'RUNNING'
    assert [p['name'] for p in res['processes']] == ['myauth:worker_01']


def test_stop_timeout_fails_with_phase_and_partial_report():
    clock = FakeClock()
    procs = myauth(stop_delay=100)
    procs[0].stop_delay = 0
    sup = FakeSupervisor(clock, procs)
    with pytest.raises(SupervisorError) as err:
        run(sup, clock, state='restarted', stop_timeout=5)
    exc = err.value
    assert exc.phase == 'stop'
    assert 'Timed out after 5s' in exc.msg and 'myauth:worker_00' in exc.msg and 'STOPPING' in exc.msg
    by = dict((p['name'], p) for p in exc.details['processes'])
    assert by['myauth:beat']['stopped'] is True and by['myauth:worker_00']['stopped'] is False
    assert by['myauth:worker_00']['state_after'] == 'STOPPING'
    assert exc.details['changed'] is True


def test_fatal_after_start_reports_stderr_tail():
    clock = FakeClock()
    procs = myauth(state='STOPPED', pid=0)
    procs[2].start_result, procs[2].stderr = 'FATAL', 'Traceback...\nImportError: no module named celery\n'
    sup = FakeSupervisor(clock, procs)
    with pytest.raises(SupervisorError) as err:
        run(sup, clock, state='started')
    exc = err.value
    assert exc.phase == 'start'
    assert 'myauth:worker_01 is FATAL' in exc.msg and 'ImportError: no module named celery' in exc.msg
    by = dict((p['name'], p) for p in exc.details['processes'])
    assert by['myauth:worker_01']['stderr_tail'].startswith('Traceback')
    assert by['myauth:beat']['state_after'] == 'RUNNING'


def test_backoff_until_timeout_fails():
    clock = FakeClock()
    procs = myauth(state='STOPPED', pid=0)
    procs[0].start_result = 'BACKOFF'
    sup = FakeSupervisor(clock, procs)
    with pytest.raises(SupervisorError) as err:
        run(sup, clock, state='started', start_timeout=4)
    assert err.value.phase == 'start' and 'myauth:beat is BACKOFF after 4s' in err.value.msg


def test_rolling_restart_one_at_a_time():
    clock = FakeClock()
    procs = [FakeProc('pool', 'w_00', pid=1, stop_delay=1, startsecs=2),
             FakeProc('pool', 'w_01', pid=2, stop_delay=1, startsecs=2),
             FakeProc('pool', 'w_02', state='STOPPED', pid=0)]
    sup = FakeSupervisor(clock, procs)
    res = run(sup, clock, name='pool', state='restarted', rolling=True)
    assert res['changed'] is True
    signals = [c for c in sup.calls if c[0].startswith(('start', 'stop'))]
    assert signals == [('startProcess', 'pool:w_02', False),
                       ('stopProcess', 'pool:w_00', False), ('startProcess', 'pool:w_00', False),
                       ('stopProcess', 'pool:w_01', False), ('startProcess', 'pool:w_01', False)]
    assert min(sup.running_samples) >= 1
    assert all(p['state_after'] == 'RUNNING' for p in res['processes'])


def test_rolling_failure_says_where_it_stopped():
    clock = FakeClock()
    procs = [FakeProc('pool', 'w_00', pid=1), FakeProc('pool', 'w_01', pid=2)]
    procs[0].start_result = 'FATAL'
    sup = FakeSupervisor(clock, procs)
    with pytest.raises(SupervisorError) as err:
        run(sup, clock, name='pool', state='restarted', rolling=True)
    assert err.value.phase == 'start'
    assert 'stopped at pool:w_00' in err.value.msg and 'not touched: pool:w_01' in err.value.msg
    assert sup.procs['pool:w_01'].state == 'RUNNING'


def test_daemon_restart_over_rpc():
    clock = FakeClock()
    sup = FakeSupervisor(clock, myauth(stop_delay=1))
    res = run(sup, clock, state='restarted', daemon='restarted', service_manager='rpc')
    assert res['daemon_restart']['restarted'] is True and res['daemon_restart']['method'] == 'rpc'
    assert 'went_down' in res['daemon_restart']['evidence']
    names = [c[0] for c in sup.calls if c[0] != 'getState']
    assert names == ['stopProcessGroup', 'restart', 'startProcessGroup']
    assert all(p['state_after'] == 'RUNNING' for p in res['processes'])


def test_daemon_restart_with_stop_last_drains_the_others_first():
    """gunicorn keeps serving while the workers drain; only the daemon's restart stops it."""
    clock = FakeClock()
    procs = myauth(stop_delay=3) + [FakeProc('myauth', 'gunicorn', pid=14)]
    sup = FakeSupervisor(clock, procs)
    seen = []
    real_restart = sup.restart

    def restart():
        seen.append(dict((k, p.state) for k, p in sup.procs.items()))
        real_restart()
    sup.restart = restart
    res = run(sup, clock, state='restarted', daemon='restarted', service_manager='rpc', stop_last=['gunicorn'])
    stops = [c[1] for c in sup.calls if c[0] == 'stopProcess']
    assert sorted(stops) == ['myauth:beat', 'myauth:worker_00', 'myauth:worker_01']
    assert not [c for c in sup.calls if c[0] == 'stopProcessGroup']
    assert seen[0]['myauth:gunicorn'] == 'RUNNING'
    assert all(seen[0][k] == 'STOPPED' for k in ('myauth:beat', 'myauth:worker_00', 'myauth:worker_01'))
    assert seen[0]['other:other'] == 'RUNNING'
    assert any('gunicorn kept serving' in a for a in res['actions'])
    assert all(p['state_after'] == 'RUNNING' for p in res['processes'])


def test_daemon_not_coming_back():
    clock = FakeClock()
    sup = FakeSupervisor(clock, myauth())
    sup.restart_fails = True
    with pytest.raises(SupervisorError) as err:
        run(sup, clock, state='restarted', daemon='restarted', service_manager='rpc', daemon_timeout=7)
    exc = err.value
    assert exc.phase == 'daemon_restart'
    assert 'did not come back within 7s' in exc.msg and 'Connection refused' in exc.msg
    assert 'group myauth is stopped' in exc.msg
    assert exc.details['daemon_restart']['restarted'] is False
    assert all(p['stopped'] for p in exc.details['processes'])


def test_daemon_restart_via_systemd_waits_for_new_pid():
    clock = FakeClock()
    sup = FakeSupervisor(clock, myauth())
    commands = []

    def run_command(argv):
        commands.append(argv)
        if argv[1] == 'show':
            return 0, 'LoadState=loaded\n', ''
        sup.pid = 777
        for p in sup.procs.values():
            p.state, p.pid = 'STOPPED', 0
        return 0, '', ''

    alive = {'n': 0}

    def pid_alive(pid):
        alive['n'] += 1
        return alive['n'] < 3  # the old pid lingers for two polls

    res = run(sup, clock, state='restarted', daemon='restarted', run_command=run_command,
              get_bin_path=lambda n: '/bin/' + n, path_exists=lambda p: p == '/run/systemd/system',
              pid_alive=pid_alive)
    assert commands[-1] == ['/bin/systemctl', 'restart', 'supervisor']
    assert res['daemon_restart']['method'] == 'systemd'
    assert res['daemon_restart']['pid_before'] == 1 and res['daemon_restart']['pid_after'] == 777
    assert alive['n'] == 3


def test_daemon_restart_command_failure():
    clock = FakeClock()
    sup = FakeSupervisor(clock, myauth())
    with pytest.raises(SupervisorError) as err:
        run(sup, clock, state='restarted', daemon='restarted', service_manager='service',
            run_command=lambda argv: (1, '', 'Job for supervisor.service failed'), get_bin_path=lambda n: None,
            path_exists=lambda p: p == '/etc/init.d/supervisor')
    assert err.value.phase == 'daemon_restart'
    assert '/etc/init.d/supervisor restart' in err.value.msg and 'Job for supervisor.service failed' in err.value.msg


@pytest.mark.parametrize('options,match', [
    (dict(stop_timeout=-1), 'stop_timeout must be at least 1'),
    (dict(start_timeout=0), 'start_timeout must be at least 1'),
    (dict(poll_interval=-0.5), 'poll_interval'),
    (dict(daemon='restarted', service_manager='systemd'), 'systemd does not run'),
    (dict(daemon='restarted', service_manager='service'), 'no init script'),
])
def test_refused_options_touch_nothing(options, match):
    """A refused call leaves every process as it was: the check comes before the first XML-RPC call."""
    clock = FakeClock()
    sup = FakeSupervisor(clock, myauth())
    before = dict((i['name'], (i['statename'], i['pid'])) for i in sup.get_all_process_info())
    params = dict(state='restarted')
    params.update(options)
    with pytest.raises(SupervisorError, match=match) as err:
        run(sup, clock, get_bin_path=lambda n: None, **params)
    assert err.value.phase == 'validate'
    assert dict((i['name'], (i['statename'], i['pid'])) for i in sup.get_all_process_info()) == before


def test_group_gone_after_daemon_restart():
    clock = FakeClock()
    sup = FakeSupervisor(clock, myauth())
    orig = sup.restart

    def restart():
        orig()
        for spec in [s for s in sup.procs if s.startswith('myauth:')]:
            del sup.procs[spec]
    sup.restart = restart
    with pytest.raises(SupervisorError) as err:
        run(sup, clock, state='restarted', daemon='restarted', service_manager='rpc')
    assert err.value.phase == 'start' and 'does not exist any more' in err.value.msg


def test_stopped_with_daemon_restart_stops_autostarted_again():
    clock = FakeClock()
    sup = FakeSupervisor(clock, myauth())
    orig = sup.restart

    def restart():
        orig()
        for p in sup.procs.values():  # autostart=true
            sup._start(p)
    sup.restart = restart
    res = run(sup, clock, state='stopped', daemon='restarted', service_manager='rpc')
    assert all(p['state_after'] == 'STOPPED' for p in res['processes'])
    assert any(a.startswith('re-stopped') for a in res['actions'])


def test_connect_errors_get_phase_connect():
    clock = FakeClock()
    sup = FakeSupervisor(clock, myauth())

    def denied():
        raise SupervisorError('Permission denied connecting to supervisord socket', kind=KIND_PERMISSION)
    sup.get_state = denied
    with pytest.raises(SupervisorError) as err:
        run(sup, clock)
    assert err.value.phase == 'connect' and err.value.details['processes'] == []


def test_unknown_group_phase_inspect():
    clock = FakeClock()
    sup = FakeSupervisor(clock, myauth())
    with pytest.raises(SupervisorError) as err:
        run(sup, clock, name='nosuch', state='restarted')
    assert err.value.phase == 'inspect' and 'myauth, other' in err.value.msg
    assert [c for c in sup.calls if c[0].startswith(('start', 'stop'))] == []


def test_new_group_with_daemon_restart_restarts_then_starts():
    # First converge: the group's file was just written; supervisord does not know the group yet.
    clock = FakeClock()
    sup = FakeSupervisor(clock, [FakeProc('other', 'x')])
    orig = sup.restart

    def restart():
        orig()
        for p in myauth():
            p.state, p.pid = 'STOPPED', 0
            sup.procs['%s:%s' % (p.group, p.name)] = p
    sup.restart = restart
    res = run(sup, clock, state='restarted', daemon='restarted', service_manager='rpc')
    names = [c[0] for c in sup.calls if c[0] not in ('getState',)]
    assert 'stopProcessGroup' not in names
    assert names.index('restart') < names.index('startProcessGroup')
    assert res['changed'] and all(p['state_before'] == 'ABSENT' and p['state_after'] == 'RUNNING'
                                  for p in res['processes'])


def test_new_group_in_check_mode_says_what_would_happen():
    clock = FakeClock()
    sup = FakeSupervisor(clock, [FakeProc('other', 'x')])
    res = run(sup, clock, check_mode=True, state='restarted', daemon='restarted', service_manager='rpc')
    assert res['changed'] and 'not known to supervisord yet' in res['msg']
    assert sup.signal_calls() == [] and ('restart',) not in sup.calls


def test_unknown_group_without_daemon_restart_still_fails():
    clock = FakeClock()
    sup = FakeSupervisor(clock, [FakeProc('other', 'x')])
    with pytest.raises(SupervisorError) as err:
        run(sup, clock, state='restarted', daemon='unchanged')
    assert err.value.phase == 'inspect'


def test_connect_waits_for_a_restarting_daemon():
    clock = FakeClock()
    sup = FakeSupervisor(clock, myauth())
    sup.down_until = clock() + 5  # the service manager just restarted it
    res = run(sup, clock, state='started')
    assert not res['changed'] and clock() >= 1005


def test_url_answers_counts_a_status_below_500(tmp_path):
    """The website serves when it answers below 500: a 404 or a redirect count; a 500 (it runs but cannot serve,
    for example without its database) and a closed port do not, and each says what it got."""
    import http.server
    import threading

    from ansible_collections.authops.celery_tuning.plugins.module_utils.group_runner_base import _url_answers

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802  # http.server's name
            code = {"/": 302, "/missing": 404}.get(self.path, 500)
            self.send_response(code)
            self.send_header("Location", "/account/login/")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        assert _url_answers("http://127.0.0.1:%d/" % port) == (True, "HTTP 302")
        assert _url_answers("http://127.0.0.1:%d/missing" % port) == (True, "HTTP 404")
        assert _url_answers("http://127.0.0.1:%d/broken" % port) == (False, "HTTP 500")
    finally:
        server.shutdown()
        server.server_close()
    answers, what = _url_answers("http://127.0.0.1:%d/" % port)
    assert not answers and "refused" in what.lower()


def _ready_runner(answers):
    from ansible_collections.authops.celery_tuning.plugins.module_utils.group_apply import ReloadRunner
    clock = FakeClock()
    calls = []

    def url_answers(url):
        calls.append(clock())
        return answers(clock() - 1000.0)
    runner = ReloadRunner(None, params(ready_url="http://127.0.0.1:8000/", ready_timeout=60, poll_interval=1),
                          clock=clock, sleep=clock.sleep, url_answers=url_answers)
    return runner, clock, calls


def test_wait_ready_goes_on_once_the_website_answers_below_500():
    runner, clock, calls = _ready_runner(lambda t: (True, "HTTP 302") if t >= 3 else (False, "HTTP 500"))
    runner._wait_ready()
    assert clock() == 1003.0 and runner.actions == ["http://127.0.0.1:8000/ answered (HTTP 302) after 3.0s"]


def test_wait_ready_on_a_5xx_waits_its_timeout_then_says_what_the_website_answered():
    runner, clock, calls = _ready_runner(lambda t: (False, "HTTP 500"))
    runner._wait_ready()
    assert clock() == 1060.0
    assert runner.actions == ["http://127.0.0.1:8000/ did not answer within 60s (last: HTTP 500: the website runs but "
                              "cannot serve, see its log); starting the others anyway"]


def test_wait_ready_without_an_answer_says_why():
    runner, clock, calls = _ready_runner(lambda t: (False, "[Errno 111] Connection refused"))
    runner._wait_ready()
    assert runner.actions == ["http://127.0.0.1:8000/ did not answer within 60s (last: [Errno 111] Connection refused); "
                              "starting the others anyway"]
