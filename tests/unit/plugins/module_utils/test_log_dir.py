# -*- coding: utf-8 -*-
# Copyright: authops.celery_tuning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""worker_flags refuses a log directory that someone other than root can change (host_facts.root_only_dir_problems)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

import pytest

from ansible_collections.authops.celery_tuning.plugins.module_utils.host_facts import root_only_dir_problems

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="ownership checks need a root-owned tmp dir")


@needs_root
def test_root_only_directory_and_absent_ones_pass(tmp_path):
    os.chmod(str(tmp_path), 0o755)
    assert root_only_dir_problems(str(tmp_path / "absent")) == []
    (tmp_path / "logs").mkdir(mode=0o750)
    assert root_only_dir_problems(str(tmp_path / "logs")) == []


@needs_root
def test_group_or_world_writable_is_refused(tmp_path):
    os.chmod(str(tmp_path), 0o755)
    logs = tmp_path / "logs"
    logs.mkdir()
    os.chmod(str(logs), 0o1777)
    assert root_only_dir_problems(str(logs)) == ["%s is writable by someone other than root (owner uid 0, mode 1777)" % logs]
    os.chmod(str(logs), 0o755)
    os.chmod(str(tmp_path), 0o775)
    assert "writable by someone other than root" in root_only_dir_problems(str(logs))[0]


def test_not_owned_by_root_or_not_a_directory(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir(mode=0o755)
    if os.geteuid() == 0:
        os.chown(str(logs), 1000, 1000)
    os.chmod(str(tmp_path), 0o755)
    problems = root_only_dir_problems(str(logs))
    assert any("writable by someone other than root (owner uid" in p for p in problems)
    link = tmp_path / "link"
    link.symlink_to("/etc")
    assert "%s is not a directory" % link in root_only_dir_problems(str(link))
