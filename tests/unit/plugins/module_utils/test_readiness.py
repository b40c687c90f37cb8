# -*- coding: utf-8 -*-
# Copyright: authops.celery_tuning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What tune.yml tells the user after its readiness wait: nothing when all answer, else what did not, with its
error and what to do (the broker's URL as the script printed it, without a password)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

import pytest

from ansible_collections.authops.celery_tuning.plugins.module_utils.readiness import expected_queues, ready_problems

BROKER = "redis://:**@127.0.0.1:6379/0"
DATABASE = "alliance_auth (mysql) on 127.0.0.1:3306"
EXPECT = {"celery@worker_00": ["celery"], "celery@worker_services_00": ["services"]}


def node(ping=True, queues=("celery",)):
    return dict(ping=ping, pool="threads", slots=18, active=0, reserved=0, queues=list(queues))


def script(rc=0, **report):
    nodes = {"celery@worker_00": node(), "celery@worker_services_00": node(queues=["services"])}
    out = dict(broker=BROKER, broker_error=None, nodes=nodes,
               backlog={}, database=DATABASE, database_error=None, expect=EXPECT, missing=[], ready=True, waited=4)
    out.update(report)
    return dict(rc=rc, stdout=json.dumps(out), stderr="")


def test_expected_queues_from_nodes():
    nodes = [dict(node="worker_00@a", queues=["celery", "b"]), dict(node="worker_services_00@a", queues=["services"])]
    assert expected_queues(nodes) == {"worker_00@a": ["b", "celery"], "worker_services_00@a": ["services"]}


def test_all_answer():
    assert ready_problems(script(), 120) == []


def test_broker_down_names_the_broker_its_error_and_what_to_do():
    problems = ready_problems(script(broker_error="Error 111 connecting to 127.0.0.1:6379. Connection refused.",
                                     missing=sorted(EXPECT), ready=False, waited=120,
                                     nodes=dict((n, node(ping=False, queues=[])) for n in EXPECT)), 120)
    assert len(problems) == 1  # the nodes cannot answer without it: not listed again
    assert problems[0].startswith("the broker redis://:**@127.0.0.1:6379/0 did not answer within 120 s: "
                                  "Error 111 connecting to 127.0.0.1:6379. Connection refused.")
    assert "systemctl start redis-server" in problems[0] and "run this playbook again" in problems[0]


def test_database_down_names_the_database_its_error_and_what_to_do():
    error = "(2002, \"Can't connect to local server through socket '/run/mysqld/mysqld.sock' (2)\")"
    problems = ready_problems(script(database_error=error, ready=False, waited=60), 60)
    assert problems == ["the database %s did not answer within 60 s: %s. The website and the tasks cannot work "
                        "without it: start it (Auth's MariaDB: systemctl start mariadb), check DATABASES in Auth's "
                        "settings, then run this playbook again" % (DATABASE, error)]


def test_broker_and_database_down_are_both_named():
    problems = ready_problems(script(broker_error="Error 111", database_error="(2002, 'x')", ready=False,
                                     missing=sorted(EXPECT)), 120)
    assert [p.split(" did not")[0] for p in problems] == ["the broker " + BROKER, "the database " + DATABASE]


@pytest.mark.parametrize("nodes, said", [
    ({"celery@worker_00": node(ping=False, queues=[])}, "celery@worker_00 does not answer ping"),
    ({"celery@worker_00": node(queues=[])}, "celery@worker_00 answers but does not consume celery"),
    ({}, "celery@worker_00 does not answer ping"),
])
def test_a_node_that_does_not_answer_or_consume(nodes, said):
    nodes = dict(nodes, **{"celery@worker_services_00": node(queues=["services"])})
    problems = ready_problems(script(nodes=nodes, missing=["celery@worker_00"], ready=False, waited=120), 120)
    assert len(problems) == 1 and said in problems[0]
    assert "through the broker %s" % BROKER in problems[0]
    assert "supervisorctl status myauth:" in problems[0] and "celery_tuning_ready_retries" in problems[0]


@pytest.mark.parametrize("result", [
    dict(rc=1, stdout="", stderr="Traceback (most recent call last):\n  ...\nModuleNotFoundError: No module named 'x'\n"),
    dict(rc=0, stdout="not json", stderr="ModuleNotFoundError: No module named 'x'"),
    dict(rc=0, stdout="[]", stderr="ModuleNotFoundError: No module named 'x'"),
])
def test_a_script_that_could_not_run_says_so_with_its_stderr(result):
    problems = ready_problems(result, 120, runner="allianceserver")
    assert len(problems) == 1 and "could not ask the broker" in problems[0]
    assert "as allianceserver in Auth's venv" in problems[0] and "No module named 'x'" in problems[0]


def test_a_timed_out_task_without_output_still_says_something():
    problems = ready_problems(dict(failed=True, msg="The task was terminated after 240 s"), 120)
    assert "terminated after 240 s" in problems[0]


def test_not_ready_without_a_reason_shows_the_report():
    problems = ready_problems(script(ready=False), 120)
    assert len(problems) == 1 and "were not ready within 4 s" in problems[0]
