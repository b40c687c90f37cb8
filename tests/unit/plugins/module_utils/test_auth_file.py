# -*- coding: utf-8 -*-
# Copyright: authops.celery_tuning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Auth's own file as the source of intent: recorded at adoption, read again on every run, changes shown."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os

import pytest

from ansible_collections.authops.celery_tuning.plugins.module_utils.auth_file import (
    intent,
    read_record,
    unified,
)
from ansible_collections.authops.celery_tuning.plugins.module_utils.plan_inputs import host_programs
from ansible_collections.authops.celery_tuning.plugins.module_utils.supervisor_conf import AdoptionError

AUTH = """[supervisord]
environment = AA_USER=allianceserver,AA_SECRET_THING="s3cr3t-value"

[program:worker]
command = /v/bin/celery -A myauth worker --pool=threads --concurrency=5
user = allianceserver

[program:gunicorn]
command = /v/bin/gunicorn myauth.wsgi --workers=3
user = allianceserver

[group:myauth]
programs = worker,gunicorn
"""

PINGBOT = AUTH.replace("[group:myauth]\nprograms = worker,gunicorn", """[program:pingbot]
command = /v/bin/celery -A myauth worker -Q pingbot
user = allianceserver

[group:myauth]
programs = worker,pingbot,gunicorn""")


@pytest.fixture
def host(tmp_path):
    """Auth's project file, the include directory with Auth's link, the state directory."""
    project = tmp_path / "home" / "myauth"
    project.mkdir(parents=True)
    (project / "supervisor.conf").write_text(AUTH)
    confd = tmp_path / "conf.d"
    confd.mkdir()
    os.symlink(str(project / "supervisor.conf"), str(confd / "myauth.conf"))
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    return dict(auth=str(project / "supervisor.conf"), conf=str(confd / "myauth.conf"),
                adopted=str(confd / "myauth.conf.adopted"), record=str(state / "myauth.conf.source.json"))


def _adopt(host):
    """What a first run does: read through the link, record, replace the link with a managed file."""
    found = intent(host["conf"], host["adopted"], host["record"], managed=False)
    with open(host["adopted"], "w") as out:
        out.write(found["text"])
    _write_record(host, found)
    os.unlink(host["conf"])
    with open(host["conf"], "w") as out:
        out.write("; authops.celery_tuning.celery_workers\n")
    return found


def _write_record(host, found):
    fd = os.open(host["record"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(found["record_content"])


def _run(host):
    return intent(host["conf"], host["adopted"], host["record"], managed=True)


def test_adoption_records_where_the_link_pointed(host):
    found = _adopt(host)
    assert found["auth_file"] == host["auth"]
    assert found["changes"] == [] and not found["record_current"]
    record = json.loads(found["record_content"])
    assert record["source"] == host["auth"] and record["text"] == AUTH


def test_a_rerun_reads_auths_file_and_finds_nothing_new(host):
    _adopt(host)
    found = _run(host)
    assert found["source"] == host["auth"] and found["text"] == AUTH
    assert found["changes"] == [] and found["diff"] is None and found["record_current"]


def test_an_edit_of_auths_file_is_read_and_shown(host):
    _adopt(host)
    with open(host["auth"], "w") as out:
        out.write(PINGBOT)
    found = _run(host)
    assert found["text"] == PINGBOT and not found["record_current"]
    assert "[program:pingbot] added" in found["changes"]
    assert "[group:myauth] programs= changed to: worker,pingbot,gunicorn" in found["changes"]
    text = unified(found["diff"])
    assert "+[program:pingbot]" in text and "s3cr3t" not in text
    # Followed: the record now says the new text, and the run after finds nothing new.
    _write_record(host, found)
    assert _run(host)["changes"] == []


def test_environment_values_never_shown(host):
    _adopt(host)
    with open(host["auth"], "w") as out:
        out.write(AUTH.replace("s3cr3t-value", "other-secret"))
    found = _run(host)
    assert found["changes"] == ["[supervisord] environment= changed (AA_SECRET_THING changed)"]
    assert "secret" not in unified(found["diff"]).replace("AA_SECRET_THING", "")


def test_auths_file_gone_keeps_the_last_runs_programs(host):
    _adopt(host)
    os.unlink(host["auth"])
    found = _run(host)
    assert found["text"] == AUTH and found["source"] == host["record"] and found["auth_file"] is None
    assert found["warnings"] and "is gone" in found["warnings"][0]
    assert found["record_current"]  # the record keeps naming the file, so restoring it resumes following


def test_a_server_tuned_before_the_record_compares_with_the_adopted_copy(host):
    _adopt(host)
    os.unlink(host["record"])
    with open(host["auth"], "w") as out:
        out.write(PINGBOT)
    found = intent(host["conf"], host["adopted"], host["record"], auth_file=host["auth"], managed=True)
    assert found["source"] == host["auth"] and "[program:pingbot] added" in found["changes"]
    assert json.loads(found["record_content"])["source"] == host["auth"]
    # Without an Auth file to follow, the adopted copy as before.
    found = intent(host["conf"], host["adopted"], host["record"], auth_file=host["auth"] + ".nope", managed=True)
    assert found["source"] == host["adopted"] and found["changes"] == []


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o606])
def test_a_record_others_may_read_or_write_is_refused(host, mode):
    _adopt(host)
    os.chmod(host["record"], mode)
    with pytest.raises(AdoptionError, match="only its owner"):
        _run(host)


def test_a_record_that_is_a_link_is_refused(host, tmp_path):
    _adopt(host)
    os.rename(host["record"], str(tmp_path / "elsewhere.json"))
    os.symlink(str(tmp_path / "elsewhere.json"), host["record"])
    with pytest.raises(AdoptionError, match="never followed"):
        _run(host)


def test_a_record_not_written_by_the_role_is_refused(host):
    _adopt(host)
    with open(host["record"], "w") as out:
        out.write(json.dumps(dict(format=1, source="relative/path", text="")))
    with pytest.raises(AdoptionError, match="not one this role wrote"):
        read_record(host["record"])


@pytest.mark.skipif(os.geteuid() != 0, reason="a file only root can read needs root")
def test_auths_file_pointed_at_a_root_only_file_is_refused(host, tmp_path):
    _adopt(host)
    secret = tmp_path / "shadow"
    secret.write_text("[supervisord]\n")
    os.chmod(str(secret), 0o600)
    os.unlink(host["auth"])
    os.symlink(str(secret), host["auth"])
    with pytest.raises(AdoptionError, match="only root can read"):
        _run(host)


def test_auths_file_replaced_by_a_fifo_is_refused(host):
    _adopt(host)
    os.unlink(host["auth"])
    os.mkfifo(host["auth"])
    with pytest.raises(AdoptionError, match="not a regular file"):
        _run(host)


WORKERS = [dict(name="worker", workload="io"),
           dict(name="worker_services", queues=["services"], single_threaded=True, only_if_in_auth_file=True)]


def test_worker_services_is_added_only_when_auths_file_has_it():
    planned, dummy, explain = host_programs(WORKERS, source_programs=["beat", "worker", "gunicorn"], source="/a.conf")
    assert [w["name"] for w in planned] == ["beat", "worker"]
    assert "worker_services: not added: Auth's file (/a.conf) has no [program:worker_services]" in explain[0]
    planned, dummy, explain = host_programs(WORKERS, source_programs=["worker", "worker_services"], source="/a.conf")
    assert [w["name"] for w in planned] == ["beat", "worker", "worker_services"]
    assert "planned because Auth's file (/a.conf) has" in explain[0]
    planned, dummy, explain = host_programs(WORKERS)
    assert [w["name"] for w in planned] == ["beat", "worker", "worker_services"]
    forced = [WORKERS[0], dict(WORKERS[1], only_if_in_auth_file=False)]
    planned, dummy, explain = host_programs(forced, source_programs=["worker"], source="/a.conf")
    assert [w["name"] for w in planned] == ["beat", "worker", "worker_services"] and explain == []
