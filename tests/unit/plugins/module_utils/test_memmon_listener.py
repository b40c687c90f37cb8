# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""memmon's listener, built in Python: what superlance's own parser reads from the argv is what was asked for."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import shlex

import pytest

from ansible_collections.authops.celery_tuning.plugins.module_utils.gate import GateError
from ansible_collections.authops.celery_tuning.plugins.module_utils.memmon_listener import (
    listener,
    memmon_argv,
    memmon_listener,
)

VENV = "/opt/authops-celery-tuning/memmon"
INPUTS = dict(venv=VENV, name="memmon", tick="TICK_60", user="root", log_dir="/var/log/supervisor",
              process_limits={"worker_00": "256MB", "gunicorn": "1GiB"}, group_limits={"myauth": "3GB"},
              any_limit="", cumulative=True, uptime="1d", email="admin@example.org", sendmail_program="",
              allow_small=False, known_processes=["worker_00", "gunicorn", "beat"], known_groups=["myauth"],
              prefork_workers=[], reserved=["myauth", "worker"])


def test_superlance_reads_the_limits_that_were_asked_for():
    memmon = pytest.importorskip("superlance.memmon")
    result = memmon_listener(INPUTS)
    command = dict(result["options"])["command"]
    argv = shlex.split(command)  # as supervisor splits command=
    assert argv[0] == VENV + "/bin/memmon"
    parsed = memmon.memmon_from_args(argv[1:])
    assert parsed.cumulative is True
    assert parsed.programs == {"worker_00": 256 * 1024 ** 2, "gunicorn": 1024 ** 3}
    assert parsed.groups == {"myauth": 3 * 1024 ** 3}
    assert parsed.email_uptime_limit == 86400
    assert parsed.email == "admin@example.org"
    assert dict(result["options"])["events"] == "TICK_60"
    assert dict(result["options"])["stderr_logfile"] == "/var/log/supervisor/memmon.log"


@pytest.mark.parametrize("change,match", [
    (dict(process_limits={"worker": "256MB"}), "names no process"),
    (dict(group_limits={"nope": "1GB"}), "names no group"),
    (dict(process_limits={"myauth:worker_00": "256MB"}, known_processes=None), "group:process form"),
    (dict(process_limits={"worker_00": "64MB"}), "below 128MB"),
    (dict(process_limits={"worker_00": "1KB"}, allow_small=True), "below 16MB"),
    (dict(process_limits={"worker_00": "lots"}), "cannot parse"),
    (dict(process_limits={}, group_limits={}), "at least one limit"),
    (dict(tick="TICK_7"), "memmon_tick must be one of"),
    (dict(uptime="1w"), "memmon_uptime"),
    (dict(name="worker"), "also the name of the Auth group"),
    (dict(name="mem\nmon"), "memmon_listener_name"),
    (dict(venv="/opt/../tmp/memmon"), "'..'"),
    (dict(log_dir="relative/log"), "absolute"),
    (dict(email="a@b.c ;x"), "memmon_email"),
    (dict(cumulative=False, prefork_workers=[dict(name="worker", process_names=["worker_00"])]), "memmon_cumulative"),
])
def test_refused_before_anything_is_written(change, match):
    with pytest.raises(GateError, match=match):
        memmon_listener(dict(INPUTS, **change))


def test_without_known_names_nothing_is_checked_against_supervisord():
    argv = memmon_argv(VENV, {"worker_00": "512MiB"}, cumulative=False)
    assert argv == [VENV + "/bin/memmon", "-p", "worker_00=512MB"]
    assert dict(listener("memmon", argv, "TICK_5", "root", "/var/log/supervisor"))["command"] == (
        VENV + "/bin/memmon -p worker_00=512MB")
