# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.authops.celery_tuning.plugins.module_utils.supervisor_errors import (
    FAULT_SHUTDOWN_STATE,
    KIND_BAD_NAME,
    KIND_CONNECTION,
    KIND_REFUSED,
    SupervisorError,
)
from ansible_collections.authops.celery_tuning.plugins.module_utils.supervisor_status import collect, read_daemon, read_settled


class FakeClient(object):
    def __init__(self, infos, configs=()):
        self.infos = infos
        self.configs = list(configs)

    def get_all_process_info(self):
        return self.infos

    def get_all_config_info(self):
        return self.configs


def info(group, name, state="RUNNING", pid=0):
    return dict(group=group, name=name, statename=state, pid=pid, start=100, now=160, description="")


@pytest.fixture
def proc(tmp_path):
    d = tmp_path / "4242"
    d.mkdir()
    (d / "stat").write_text("4242 (celery) S 1 1 1 0 -1\n")
    (d / "status").write_text("VmRSS:\t2048 kB\n")
    (d / "cmdline").write_bytes(b"celery\0-A\0myauth\0worker\0--pool=gevent\0")
    return str(tmp_path)


CLIENT = FakeClient(
    [info("myauth", "beat"), info("myauth", "worker_00", pid=4242), info("myauth", "worker_services_00", "STOPPED"),
     info("memmon", "memmon")],
    [dict(group="myauth", name="worker_00", stopwaitsecs=600, startsecs=10)])


def test_group_selects_its_processes_with_memory_and_cmdline(proc):
    procs = collect(CLIENT, "myauth", proc=proc)
    assert [p["name"] for p in procs] == ["beat", "worker_00", "worker_services_00"]
    worker = procs[1]
    assert worker["program"] == "worker" and worker["full_name"] == "myauth:worker_00"
    assert worker["rss_bytes"] == 2048 * 1024 and worker["cmdline"][-1] == "--pool=gevent"
    assert worker["stopwaitsecs"] == 600 and worker["uptime_seconds"] == 60
    assert procs[2]["uptime_seconds"] == 0 and procs[2]["cmdline"] is None


@pytest.mark.parametrize("name", ["worker", "worker_00", "myauth:worker_00"])
def test_program_process_and_full_names(proc, name):
    assert [p["name"] for p in collect(CLIENT, name, proc=proc)] == ["worker_00"]


def test_everything_without_a_name(proc):
    assert len(collect(CLIENT, None, proc=proc)) == 4


def test_unknown_name_says_what_exists(proc):
    with pytest.raises(SupervisorError) as err:
        collect(CLIENT, "nope", proc=proc)
    assert err.value.kind == KIND_BAD_NAME
    assert "memmon, myauth" in str(err.value)


class _Clock(object):
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def _answers(*answers):
    """read() that gives each answer in turn (an exception is raised), the last one from then on."""
    seq = list(answers)

    def read():
        answer = seq.pop(0) if len(seq) > 1 else seq[0]
        if isinstance(answer, Exception):
            raise answer
        return answer
    return read


def _shutting():
    return SupervisorError('supervisord at /run/s.sock is shutting down or restarting (SHUTDOWN_STATE on x).',
                           kind=KIND_CONNECTION, fault_code=FAULT_SHUTDOWN_STATE)


def _refused():
    return SupervisorError('refused', kind=KIND_REFUSED)


def test_a_restart_under_way_is_waited_out():
    clock = _Clock()
    states = iter(['deactivating', 'activating'])
    got, waited = read_settled(_answers(_shutting(), _shutting(), _refused(), _refused(), ['p']),
                               lambda: next(states), 700, clock=clock, sleep=clock.sleep)
    assert got == ['p'] and waited == 8.0


def test_a_daemon_that_is_down_is_not_waited_for():
    clock = _Clock()
    refused = _refused()
    with pytest.raises(SupervisorError) as err:
        read_settled(_answers(refused), lambda: 'inactive', 700, clock=clock, sleep=clock.sleep)
    assert err.value is refused and clock.now == 0


def test_a_restart_that_does_not_end_fails_saying_so():
    clock = _Clock()
    with pytest.raises(SupervisorError) as err:
        read_settled(_answers(_shutting()), lambda: 'deactivating', 10, clock=clock, sleep=clock.sleep)
    assert 'Still so after 10 s' in err.value.msg and 'SHUTDOWN_STATE' in str(err.value)


def test_no_wait_asks_once():
    clock = _Clock()
    with pytest.raises(SupervisorError) as err:
        read_settled(_answers(_shutting(), ['p']), lambda: None, 0, clock=clock, sleep=clock.sleep)
    assert 'Still so' not in err.value.msg and clock.now == 0


def _params(**kw):
    params = dict(name=None, missing_ok=True, socket='/nonexistent/s.sock', config_file='/nonexistent/s.conf',
                  service='supervisor', settle_timeout=0)
    params.update(kw)
    return params


class _Daemon(object):
    def __init__(self, *answers):
        self.read = _answers(*answers)

    def get_all_process_info(self):
        return self.read()

    def get_all_config_info(self):
        return []


def test_read_daemon_finds_the_processes():
    found, failure = read_daemon(_params(), lambda: dict(active_state='active'), connect=lambda p: _Daemon([]))
    assert failure is None and found == dict(found=True, processes=[], settled_after=0.0)


def test_read_daemon_missing_ok_reports_a_stopped_daemon_as_not_found():
    found, failure = read_daemon(_params(), lambda: dict(active_state='inactive'),
                                 connect=lambda p: _Daemon(_refused()))
    assert failure is None and found == dict(found=False, processes=[])


def test_read_daemon_fails_on_a_shutdown_that_outlasts_its_wait():
    found, failure = read_daemon(_params(missing_ok=False), lambda: dict(active_state='deactivating'),
                                 connect=lambda p: _Daemon(_shutting()))
    assert found['found'] is False and 'SHUTDOWN_STATE' in failure['msg']


def test_read_daemon_without_supervisor_installed():
    found, failure = read_daemon(_params(), lambda: None, has_supervisor=False)
    assert failure is None and found['found'] is False
    found, failure = read_daemon(_params(missing_ok=False), lambda: None, has_supervisor=False)
    assert 'supervisor' in failure['msg']
