# -*- coding: utf-8 -*-
# Copyright: authops.celery_tuning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import multiprocessing
import os
import time

import pytest

from ansible_collections.authops.celery_tuning.plugins.module_utils import run_lock as run_lock_mod
from ansible_collections.authops.celery_tuning.plugins.module_utils.run_lock import (
    GroupBusy,
    LockError,
    RunLock,
    busy_pid,
    renew_live_lease,
    run_lock,
)


class Clock(object):
    def __init__(self, now=1000.0):
        self.now = now
        self.slept = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.slept.append(seconds)
        self.now += seconds


def _params(tmp_path, **kw):
    params = dict(name='myauth', state='acquired', owner='run-a', description='admin@laptop', wait=10,
                  lease=600, break_lock=False, directory=str(tmp_path / 'locks'))
    params.update(kw)
    return params


def _run(tmp_path, clock, check_mode=False, **kw):
    return run_lock(_params(tmp_path, **kw), check_mode=check_mode, clock=clock, sleep=clock.sleep)


def test_take_renew_and_give_back(tmp_path):
    clock = Clock()
    got = _run(tmp_path, clock)
    assert got['held'] and got['waited'] == 0 and got['broken'] is None and got['waited_for'] is None
    path = tmp_path / 'locks' / 'myauth.lock'
    assert oct(os.stat(str(path)).st_mode & 0o777) == '0o600'
    assert oct(os.stat(str(tmp_path / 'locks')).st_mode & 0o777) == '0o700'
    record = json.loads(path.read_text())
    assert record == dict(owner='run-a', description='admin@laptop', acquired=1000.0, expires=1600.0, lease=600,
                          run=None)
    clock.now += 100
    _run(tmp_path, clock)  # the same run renews: its start is kept
    assert json.loads(path.read_text())['acquired'] == 1000.0
    assert json.loads(path.read_text())['expires'] == 1700.0
    assert _run(tmp_path, clock, state='query')['holder']['owner'] == 'run-a'
    assert _run(tmp_path, clock, state='released')['released'] is True
    assert _run(tmp_path, clock, state='query') == dict(held=False, holder=None)


def test_a_second_run_waits_then_refuses_naming_the_holder(tmp_path):
    clock = Clock()
    _run(tmp_path, clock)
    with pytest.raises(LockError) as err:
        _run(tmp_path, clock, owner='run-b', wait=10)
    msg = str(err.value)
    assert 'admin@laptop' in msg and 'Waited 10 s' in msg and 'celery_tuning_lock_break=true' in msg
    assert 'lease ends in' in msg
    assert err.value.holder['owner'] == 'run-a'
    assert sum(clock.slept) >= 10
    # run-b cannot give back run-a's lock
    got = _run(tmp_path, clock, owner='run-b', state='released')
    assert got['released'] is False and got['holder']['owner'] == 'run-a'


def test_the_lock_is_free_once_its_holder_gives_it_back_while_the_other_waits(tmp_path):
    clock = Clock()
    _run(tmp_path, clock)
    lock = RunLock(_params(tmp_path, owner='run-b', wait=60), clock=clock, uid=os.geteuid())

    def sleep(seconds):
        clock.sleep(seconds)
        if clock.now >= 1006:
            _run(tmp_path, Clock(clock.now), state='released')
    lock.sleep = sleep
    got = lock.acquire()
    assert got['held'] and 6 <= got['waited'] < 60 and got['broken'] is None
    assert got['waited_for'] == 'admin@laptop'


def test_a_dead_runs_lock_ends_with_its_lease_or_is_broken(tmp_path):
    clock = Clock()
    _run(tmp_path, clock, lease=60)
    clock.now += 61
    got = _run(tmp_path, clock, owner='run-b')
    assert got['held'] and got['broken'] is None and got['waited'] == 0
    got = _run(tmp_path, clock, owner='run-c', break_lock=True)
    assert got['broken']['owner'] == 'run-b'


def test_check_mode_only_reads(tmp_path):
    clock = Clock()
    got = _run(tmp_path, clock, check_mode=True)
    assert got == dict(held=False, holder=None)
    assert not (tmp_path / 'locks').exists()
    _run(tmp_path, clock)
    got = _run(tmp_path, clock, check_mode=True, owner='run-b')
    assert got['held'] and 'another run holds the lock' in got['warning']


@pytest.mark.parametrize('change, needle', [
    (dict(name='../etc/x'), 'name'),
    (dict(name='a\nb'), 'name'),
    (dict(directory='relative/dir'), 'directory'),
    (dict(directory='/run/../tmp'), 'directory'),
    (dict(owner=''), 'owner'),
    (dict(lease=30), 'lease'),
    (dict(wait=-1), 'wait'),
])
def test_bad_options_are_refused_before_anything_is_touched(tmp_path, change, needle):
    with pytest.raises(LockError) as err:
        _run(tmp_path, Clock(), **change)
    assert needle in str(err.value)
    assert not (tmp_path / 'locks').exists()


def test_a_directory_others_can_write_to_is_refused(tmp_path):
    locks = tmp_path / 'locks'
    locks.mkdir()
    os.chmod(str(locks), 0o777)
    with pytest.raises(LockError) as err:
        _run(tmp_path, Clock())
    assert 'no one else can write' in str(err.value)


def test_a_link_in_place_of_the_lock_file_is_refused(tmp_path):
    locks = tmp_path / 'locks'
    locks.mkdir(mode=0o700)
    os.symlink(str(tmp_path / 'elsewhere'), str(locks / 'myauth.lock'))
    with pytest.raises(LockError):
        _run(tmp_path, Clock())
    assert not (tmp_path / 'elsewhere').exists()


def _take(args):
    directory, owner = args
    params = dict(name='myauth', state='acquired', owner=owner, description=owner, wait=0, lease=600,
                  break_lock=False, directory=directory)
    try:
        run_lock(params)
        return owner
    except LockError:
        return None


def test_two_processes_at_once_one_wins(tmp_path):
    directory = str(tmp_path / 'locks')
    pool = multiprocessing.Pool(4)
    try:
        winners = [w for w in pool.map(_take, [(directory, 'run-%d' % i) for i in range(8)]) if w]
    finally:
        pool.close()
        pool.join()
    assert len(winners) == 1
    with open(os.path.join(directory, 'myauth.lock')) as handle:
        assert json.load(handle)['owner'] == winners[0]


def test_a_dead_run_is_taken_over_by_its_owner_token_only(tmp_path):
    clock = Clock()
    _run(tmp_path, clock, controller_run='laptop/boot/123/456')
    record = json.loads((tmp_path / 'locks' / 'myauth.lock').read_text())
    assert record['run'] == 'laptop/boot/123/456'
    # break_owner names another run: run-a is waited for as usual
    with pytest.raises(LockError):
        _run(tmp_path, clock, owner='run-b', break_owner='run-x', wait=4)
    got = _run(tmp_path, clock, owner='run-b', break_owner='run-a', wait=4)
    assert got['held'] and got['broken']['owner'] == 'run-a' and got['broken']['run'] == 'laptop/boot/123/456'


def _hold_busy(directory, started, release):
    with GroupBusy(directory, 'myauth'):
        started.set()
        release.wait(30)


@pytest.fixture
def busy_step(tmp_path):
    """Starts a step in another process that holds the group's busy file until its ``release`` is set."""
    steps = []

    def start():
        directory = str(tmp_path / 'locks')
        started, release = multiprocessing.Event(), multiprocessing.Event()
        step = multiprocessing.Process(target=_hold_busy, args=(directory, started, release))
        step.start()
        steps.append(step)
        assert started.wait(10)
        step.directory, step.release = directory, release
        return step
    yield start
    for step in steps:
        if step.is_alive():  # a killed step cannot wake (a multiprocessing Event would wait for it)
            step.release.set()
            step.join(10)


def test_no_takeover_while_a_step_of_the_dead_run_still_changes_the_group(tmp_path, busy_step):
    clock = Clock()
    _run(tmp_path, clock)
    busy_step = busy_step()
    assert busy_pid(busy_step.directory, 'myauth') == str(busy_step.pid)
    for change in (dict(break_owner='run-a'), dict(break_lock=True)):
        with pytest.raises(LockError) as err:
            _run(tmp_path, clock, owner='run-b', wait=4, **change)
        assert 'still changes the group' in str(err.value) and str(busy_step.pid) in str(err.value)
        assert err.value.holder['busy_pid'] == str(busy_step.pid)
    # the same run renews its own lock while its step works
    assert _run(tmp_path, clock, owner='run-a')['held']
    clock.now += 700  # the lease ended: still busy
    with pytest.raises(LockError):
        _run(tmp_path, clock, owner='run-b', wait=4)
    clock.now -= 700
    busy_step.release.set()
    busy_step.join(10)
    assert not busy_step.is_alive()
    assert busy_pid(busy_step.directory, 'myauth') is None
    got = _run(tmp_path, clock, owner='run-b', break_owner='run-a')
    assert got['held'] and got['broken']['owner'] == 'run-a'


def test_a_killed_step_leaves_the_group_free(busy_step):
    busy_step = busy_step()
    os.kill(busy_step.pid, 9)
    busy_step.join(10)
    assert busy_pid(busy_step.directory, 'myauth') is None


def test_a_busy_step_renews_the_live_lease_from_its_length(tmp_path, monkeypatch):
    clock = Clock()
    _run(tmp_path, clock, lease=100)
    directory = str(tmp_path / 'locks')
    path = tmp_path / 'locks' / 'myauth.lock'
    clock.now += 90
    assert renew_live_lease(directory, 'myauth', clock)
    assert json.loads(path.read_text())['expires'] == 1190.0
    monkeypatch.setattr(run_lock_mod, 'RENEW_SECONDS', 0.05)
    real = Clock(now=2000.0)  # the lease has ended: nothing to renew, nothing written
    with GroupBusy(directory, 'myauth', clock=real):
        pass
    assert json.loads(path.read_text())['expires'] == 1190.0
    with GroupBusy(directory, 'myauth', clock=Clock(now=1150.0)):
        time.sleep(0.2)
    assert json.loads(path.read_text())['expires'] == 1250.0


def test_a_second_step_waits_for_the_busy_file_then_names_its_pid(busy_step):
    busy_step = busy_step()
    clock = Clock()
    with pytest.raises(LockError) as err:
        with GroupBusy(busy_step.directory, 'myauth', wait=6, clock=clock, sleep=clock.sleep):
            pass
    assert 'pid %s' % busy_step.pid in str(err.value) and 'waited 6 s' in str(err.value)


@pytest.mark.parametrize('key', ['controller_run', 'break_owner', 'description'])
def test_newlines_in_the_record_fields_are_refused(tmp_path, key):
    with pytest.raises(LockError) as err:
        _run(tmp_path, Clock(), **{key: 'a\nb'})
    assert key in str(err.value)
    assert not (tmp_path / 'locks').exists()
