# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

import pytest

from ansible_collections.authops.celery_tuning.plugins.module_utils import procfs


def make_proc(root, pid, ppid, rss_kib, cmdline=b"celery\0worker\0", comm="celery (x) y"):
    d = root / str(pid)
    d.mkdir()
    (d / "stat").write_text("%d (%s) S %d 1 1 0 -1\n" % (pid, comm, ppid))
    (d / "status").write_text("Name:\tcelery\nVmRSS:\t%d kB\n" % rss_kib if rss_kib is not None else "Name:\tzombie\n")
    (d / "cmdline").write_bytes(cmdline)


@pytest.fixture
def proc(tmp_path):
    make_proc(tmp_path, 10, 1, 60000)          # worker parent
    make_proc(tmp_path, 11, 10, 100000)        # prefork child
    make_proc(tmp_path, 12, 10, 90000)         # prefork child
    make_proc(tmp_path, 13, 12, 1000)          # grandchild
    make_proc(tmp_path, 14, 10, None)          # zombie child
    make_proc(tmp_path, 20, 1, 5000)           # unrelated
    (tmp_path / "self").mkdir()
    return str(tmp_path)


def test_tree_rss_counts_all_descendants(proc):
    mem = procfs.process_memory(10, proc=proc)
    assert mem["rss_bytes"] == 60000 * 1024
    assert mem["tree_rss_bytes"] == (60000 + 100000 + 90000 + 1000) * 1024
    assert sorted(c["pid"] for c in mem["children"]) == [11, 12, 13]


def test_command_name_with_spaces_and_parentheses(proc):
    assert procfs.read_ppid(10, proc) == 1
    assert procfs.read_ppid(13, proc) == 12


def test_gone_process(proc):
    assert procfs.read_rss_bytes(99, proc) is None
    assert procfs.read_cmdline(99, proc) is None
    assert procfs.process_memory(99, proc=proc)["tree_rss_bytes"] == 0


def test_cmdline(proc):
    assert procfs.read_cmdline(10, proc) == ["celery", "worker"]


@pytest.mark.parametrize("name, program", [
    ("worker_00", "worker"),
    ("worker_services_00", "worker_services"),
    ("worker_12", "worker"),
    ("beat", "beat"),
    ("memmon", "memmon"),
])
def test_program_of(name, program):
    assert procfs.program_of(name) == program


def test_real_proc_has_this_process():
    assert procfs.read_rss_bytes(os.getpid()) > 0
