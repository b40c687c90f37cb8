# -*- coding: utf-8 -*-
# Copyright: authops.celery_tuning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""authops.celery_tuning.supervisor_group against a real supervisord, through the ansible CLI."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import shutil
import stat
import textwrap
import subprocess
import threading
import time

import pytest

from ansible_collections.authops.celery_tuning.plugins.module_utils.supervisor_errors import (
    KIND_AUTH,
    SupervisorError,
)
from ansible_collections.authops.celery_tuning.plugins.module_utils.supervisor_rpc import SupervisorClient

pytestmark = pytest.mark.integration

GRACEFUL = '''
import os, signal, sys, time
HERE = os.path.dirname(os.path.abspath(__file__))
def term(*args):
    time.sleep(3)                      # finish the running "task"
    with open(os.path.join(HERE, 'marker'), 'w') as fh:
        fh.write('done')
    sys.exit(0)
signal.signal(signal.SIGTERM, term)
while True:
    time.sleep(0.1)
'''

STUBBORN = '''
import signal, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
while True:
    time.sleep(0.1)
'''

SLEEPER = '''
import os, sys, time
HERE = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(HERE, 'env-%s' % os.environ.get('SUPERVISOR_PROCESS_NAME', 'x')), 'w') as fh:
    fh.write(os.environ.get('MARK', ''))
while True:
    time.sleep(0.1)
'''

CRASHER = '''
import sys
sys.stderr.write('boom: CELERY_BROKER_URL is not set\\n')
sys.exit(3)
'''

MYAUTH = """
[group:myauth]
programs=graceful,stubborn

[program:graceful]
command={python} {dir}/graceful.py
stopwaitsecs=10
startsecs=1

[program:stubborn]
command={python} {dir}/stubborn.py
stopwaitsecs=2
startsecs=1
"""


def _common(sd, **kwargs):
    args = dict(config_file=sd.conf, poll_interval=0.1)
    args.update(kwargs)
    return args


def _running_sleeper(supervisord_factory, programs):
    """A supervisord whose program envprog (the sleeper script) is RUNNING."""
    sd = supervisord_factory(programs, start=False)
    sd.write_script('sleeper.py', SLEEPER)
    sd.start()
    sd.wait_states({'envprog:envprog': 'RUNNING'})
    return sd


def _by_name(result):
    return dict((p['name'], p) for p in result['processes'])


@pytest.fixture
def myauth(supervisord_factory):
    sd = supervisord_factory(MYAUTH, start=False)
    sd.write_script('graceful.py', GRACEFUL)
    sd.write_script('stubborn.py', STUBBORN)
    sd.start()
    sd.wait_states({'myauth:graceful': 'RUNNING', 'myauth:stubborn': 'RUNNING'})
    return sd


def test_graceful_stop_kill_and_idempotence(myauth, module_runner):
    sd = myauth
    pids = dict((k, v['pid']) for k, v in sd.states().items())

    # check mode + diff: says what would happen, signals nothing
    res, dummy = module_runner(_common(sd, name='myauth', state='restarted'), check=True, diff=True)
    assert res['changed'] is True, res
    assert res['actions'][0].startswith('would stop group myauth')
    assert res['diff']['before']['processes'] == {'myauth:graceful': 'RUNNING', 'myauth:stubborn': 'RUNNING'}
    assert dict((k, v['pid']) for k, v in sd.states().items()) == pids
    assert not os.path.exists(sd.path('marker'))

    # graceful stop: all signalled at once; the TERM trapper finishes its task, the TERM ignorer is killed
    res, dummy = module_runner(_common(sd, name='myauth', state='stopped'), diff=True)
    assert res['changed'] is True, res
    assert res.get('failed') is not True, res
    procs = _by_name(res)
    graceful, stubborn = procs['myauth:graceful'], procs['myauth:stubborn']
    with open(sd.path('marker')) as fh:
        assert fh.read() == 'done'
    assert graceful['killed'] is False and graceful['exitstatus'] == 0
    assert graceful['stop_seconds'] >= 3
    assert graceful['state_before'] == 'RUNNING' and graceful['state_after'] == 'STOPPED'
    assert graceful['pid_before'] == pids['myauth:graceful']
    assert stubborn['killed'] is True and stubborn['stop_seconds'] >= 2
    # stopped in parallel: less than the sum of both stop durations
    assert max(graceful['stop_seconds'], stubborn['stop_seconds']) < 3 + 2
    assert res['diff']['after']['processes'] == {'myauth:graceful': 'STOPPED', 'myauth:stubborn': 'STOPPED'}

    res, dummy = module_runner(_common(sd, name='myauth', state='stopped'))
    assert res['changed'] is False, res

    res, dummy = module_runner(_common(sd, name='myauth:', state='started'))
    assert res['changed'] is True, res
    assert all(p['state_after'] == 'RUNNING' and p['pid'] for p in res['processes'])
    assert all(v['statename'] == 'RUNNING' for v in sd.states().values())

    res, dummy = module_runner(_common(sd, name='myauth', state='started'))
    assert res['changed'] is False, res


def test_daemon_restart_over_rpc_picks_up_config_change(supervisord_factory, module_runner):
    programs = """
    [program:envprog]
    command={python} {dir}/sleeper.py
    environment=MARK="one"
    startsecs=1
    stopwaitsecs=2
    """
    sd = _running_sleeper(supervisord_factory, programs)
    with open(sd.path('env-envprog')) as fh:
        assert fh.read() == 'one'
    sd.write_config(programs.replace('MARK="one"', 'MARK="two"'))

    res, dummy = module_runner(_common(sd, name='envprog', state='restarted', daemon='restarted',
                                       service_manager='rpc', daemon_timeout=20))
    assert res.get('failed') is not True, res
    assert res['changed'] is True
    assert res['daemon_restart']['method'] == 'rpc'
    assert res['daemon_restart']['restarted'] is True
    assert res['daemon_restart']['pid_before'] == sd.proc.pid
    proc = _by_name(res)['envprog']
    assert proc['state_after'] == 'RUNNING'
    with open(sd.path('env-envprog')) as fh:
        assert fh.read() == 'two'


def test_group_new_to_the_daemon_is_started_after_the_restart(supervisord_factory, module_runner):
    # The first converge: the group's file was just written, supervisord does not know it yet.
    programs = """
    [program:envprog]
    command={python} {dir}/sleeper.py
    startsecs=1
    stopwaitsecs=2
    """
    sd = _running_sleeper(supervisord_factory, programs)
    sd.write_config(programs + """
    [program:newprog]
    command={python} {dir}/sleeper.py
    startsecs=1
    stopwaitsecs=2
    [group:newgroup]
    programs=newprog
    """)

    res, dummy = module_runner(_common(sd, name='newgroup', state='restarted', daemon='restarted',
                                       service_manager='rpc', daemon_timeout=20))
    assert res.get('failed') is not True, res
    assert res['changed'] is True and res['daemon_restart']['restarted'] is True
    assert _by_name(res)['newgroup:newprog']['state_before'] == 'ABSENT'
    assert _by_name(res)['newgroup:newprog']['state_after'] == 'RUNNING'
    assert sd.states()['newgroup:newprog']['statename'] == 'RUNNING'


def test_rolling_restart_keeps_one_running(supervisord_factory, module_runner):
    programs = """
    [group:pool]
    programs=w

    [program:w]
    command={python} {dir}/sleeper.py
    process_name=%(program_name)s_%(process_num)02d
    numprocs=2
    startsecs=1
    stopwaitsecs=3
    """
    sd = supervisord_factory(programs, start=False)
    sd.write_script('sleeper.py', SLEEPER)
    sd.start()
    before = sd.wait_states({'pool:w_00': 'RUNNING', 'pool:w_01': 'RUNNING'})

    samples = []
    stop = threading.Event()
    client = sd.client()

    def sample():
        while not stop.is_set():
            infos = client.get_all_process_info()
            samples.append(sum(1 for i in infos if i['statename'] == 'RUNNING'))
            time.sleep(0.05)

    thread = threading.Thread(target=sample)
    thread.start()
    try:
        res, dummy = module_runner(_common(sd, name='pool', state='restarted', rolling=True))
    finally:
        stop.set()
        thread.join()
    assert res.get('failed') is not True, res
    assert res['changed'] is True
    assert len(samples) > 20
    assert min(samples) >= 1, samples
    procs = _by_name(res)
    for name in ('pool:w_00', 'pool:w_01'):
        assert procs[name]['pid'] and procs[name]['pid'] != before[name]['pid']
        assert procs[name]['state_after'] == 'RUNNING'

    # rolling + daemon restart is refused clearly
    res, dummy = module_runner(_common(sd, name='pool', state='restarted', rolling=True, daemon='restarted'))
    assert res['failed'] is True and res['phase'] == 'validate'
    assert 'rolling' in res['msg'] and 'daemon=restarted' in res['msg']


def test_failures_socket_credentials_group(myauth, module_runner):
    sd = myauth
    missing = sd.path('nope.sock')
    res, dummy = module_runner(dict(name='myauth', socket=missing, username='admin', password='not-the-password'))
    assert res['failed'] is True and res['phase'] == 'connect'
    assert 'does not exist' in res['msg'] and missing in res['msg']

    res, dummy = module_runner(_common(sd, name='myauth', password='wrong-password', username='admin'))
    assert res['failed'] is True and res['phase'] == 'connect'
    assert '401' in res['msg'] and 'credentials' in res['msg']
    assert 'wrong-password' not in res['msg']

    res, dummy = module_runner(_common(sd, name='nosuchgroup', state='restarted'))
    assert res['failed'] is True and res['phase'] == 'inspect'
    assert "Unknown group or program 'nosuchgroup'" in res['msg'] and 'myauth' in res['msg']
    # nothing was touched
    assert all(v['statename'] == 'RUNNING' for v in sd.states().values())


def test_fatal_program_reports_stderr_tail(supervisord_factory, module_runner):
    programs = """
    [program:crasher]
    command={python} {dir}/crasher.py
    autostart=false
    startsecs=1
    startretries=0
    """
    sd = supervisord_factory(programs, start=False)
    sd.write_script('crasher.py', CRASHER)
    sd.start()
    res, dummy = module_runner(_common(sd, name='crasher', state='started', start_timeout=15))
    assert res['failed'] is True and res['phase'] == 'start', res
    assert 'crasher' in res['msg'] and 'FATAL' in res['msg']
    assert 'boom: CELERY_BROKER_URL is not set' in res['msg']
    proc = _by_name(res)['crasher']
    assert proc['state_after'] == 'FATAL' and 'boom' in proc['stderr_tail']
    assert res['changed'] is True  # it did ask supervisor to start it


def test_daemon_that_does_not_come_back(supervisord_factory, module_runner):
    programs = """
    [program:envprog]
    command={python} {dir}/sleeper.py
    startsecs=0
    stopwaitsecs=2
    """
    sd = _running_sleeper(supervisord_factory, programs)
    # a broken config: supervisord exits when it re-reads it during the restart
    sd.write_config(textwrap.dedent(programs) + '\n[program:broken]\nstartsecs=notanumber\ncommand=/bin/true\n')
    res, dummy = module_runner(_common(sd, name='envprog', state='restarted', daemon='restarted',
                                       service_manager='rpc', daemon_timeout=4))
    assert res['failed'] is True and res['phase'] == 'daemon_restart', res
    assert 'did not come back within 4s' in res['msg']
    assert _by_name(res)['envprog']['stopped'] is True


def _can_drop_dac_caps():
    setpriv = shutil.which('setpriv')
    if os.geteuid() != 0 or not setpriv:
        return None
    try:
        rc = subprocess.call([setpriv, '--bounding-set=-dac_override,-dac_read_search', 'true'],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except OSError:
        return None
    return setpriv if rc == 0 else None


def test_permission_denied(myauth, module_runner):
    """EACCES: a socket reached through a directory we may not traverse.

    As root, permission checks are bypassed; we drop CAP_DAC_OVERRIDE/CAP_DAC_READ_SEARCH from the
    bounding set with setpriv(1) to get a real EACCES.  Without setpriv the branch is covered by the
    unit tests (fake socket error) only.
    """
    sd = myauth
    locked = sd.path('locked')
    os.mkdir(locked)
    os.symlink(sd.socket, os.path.join(locked, 's.sock'))
    os.chmod(locked, 0)
    try:
        prefix = None
        if os.geteuid() == 0:
            setpriv = _can_drop_dac_caps()
            if not setpriv:
                pytest.skip('running as root and cannot drop CAP_DAC_OVERRIDE with setpriv: '
                            'EACCES is covered by unit tests only')
            prefix = [setpriv, '--bounding-set=-dac_override,-dac_read_search']
        res, dummy = module_runner(dict(name='myauth', socket=os.path.join(locked, 's.sock'),
                                        username='admin', password='s3cret'), prefix=prefix)
        assert res['failed'] is True and res['phase'] == 'connect', res
        assert 'Permission denied' in res['msg'] and 'become' in res['msg']
    finally:
        os.chmod(locked, stat.S_IRWXU)


def test_supervisors_own_client_talks_to_real_daemon(myauth):
    """supervisor's transport (with the per-call timeout) against a real daemon with basic auth."""
    sd = myauth
    client = SupervisorClient('unix://' + sd.socket, 'admin', 's3cret', timeout=5)
    assert client.get_state()['statename'] == 'RUNNING'
    assert sorted(i['name'] for i in client.get_all_process_info()) == ['graceful', 'stubborn']
    bad = SupervisorClient('unix://' + sd.socket, 'admin', 'nope', timeout=5)
    with pytest.raises(SupervisorError) as err:
        bad.get_state()
    assert err.value.kind == KIND_AUTH
    with pytest.raises(SupervisorError) as err:
        client.stop_process_group('nosuchgroup')
    assert 'nosuchgroup' in str(err.value)
