# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.authops.celery_tuning.plugins.module_utils.supervisor_errors import (
    KIND_BAD_NAME,
    SupervisorError,
)
from ansible_collections.authops.celery_tuning.plugins.module_utils.supervisor_status import collect


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
