# -*- coding: utf-8 -*-
# Copyright: authops.celery_tuning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""playbooks/files/celery_cluster.py, the script tune.yml's readiness wait and status.yml run in Auth's venv: one
round says what the broker, the nodes and the database said, with errors as text and no password; the wait ends
when all answer or its time is up."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import importlib.util
import json
import os

import pytest

SCRIPT = os.path.join(os.path.dirname(__file__), "..", "..", "playbooks", "files", "celery_cluster.py")
EXPECT = {"celery@worker_00": ["celery"]}


@pytest.fixture
def script():
    spec = importlib.util.spec_from_file_location("celery_cluster", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class BrokerDown(Exception):
    pass


class FakeApp(object):
    def __init__(self, nodes=None, error=None):
        self.nodes, self.error = nodes, error

    @property
    def control(self):
        return self

    def inspect(self, destination=None, timeout=None):
        if self.error:
            raise self.error
        return self

    def ping(self):
        return dict((n, {"ok": "pong"}) for n in self.nodes)

    def stats(self):
        return dict((n, {"pool": {"implementation": "celery.concurrency.thread:TaskPool", "max-concurrency": 18}})
                    for n in self.nodes)

    def active(self):
        return {}

    reserved = active

    def active_queues(self):
        return dict((n, [{"name": q} for q in queues]) for n, queues in self.nodes.items())


class FakeDb(object):
    vendor = "mysql"

    def __init__(self, error=None):
        self.error, self.closed = error, False
        self.settings_dict = {"PASSWORD": "s3cret", "NAME": "alliance_auth"}

    def ensure_connection(self):
        if self.error:
            raise self.error

    def close(self):
        self.closed = True


@pytest.fixture
def pools(script, monkeypatch):
    monkeypatch.setattr(script, "_pool_names", lambda: {"celery.concurrency.thread:TaskPool": "threads"})


def test_all_answer(script, pools):
    db = FakeDb()
    out = script.ask(FakeApp({"celery@worker_00": ["celery"]}), EXPECT, 5, [], {"default": (db, "alliance_auth")}, [])
    assert out["ready"] and out["missing"] == [] and out["database"] == "alliance_auth" and db.closed
    assert out["nodes"]["celery@worker_00"] == dict(ping=True, pool="threads", slots=18, active=0, reserved=0,
                                                    queues=["celery"])


def test_broker_down_is_said_with_its_error_and_no_password(script, pools):
    error = BrokerDown("Error 111 connecting to 127.0.0.1:6379.\n Connection refused. (password hunter2)")
    out = script.ask(FakeApp(error=error), EXPECT, 5, ["celery"], {}, ["hunter2"])
    assert not out["ready"] and out["missing"] == ["celery@worker_00"]
    assert out["broker_error"] == "Error 111 connecting to 127.0.0.1:6379. Connection refused. (password **)"
    assert out["nodes"]["celery@worker_00"]["ping"] is False and out["database"] is None


def test_a_node_without_its_queue_is_missing(script, pools):
    out = script.ask(FakeApp({"celery@worker_00": ["other"]}), EXPECT, 5, [], {}, [])
    assert not out["ready"] and out["missing"] == ["celery@worker_00"] and out["broker_error"] is None


def test_database_down_is_said_with_its_error_and_no_password(script, pools):
    db = FakeDb(error=Exception("(1045, \"Access denied for user 'a'@'localhost' (using password: s3cret)\")"))
    out = script.ask(FakeApp({"celery@worker_00": ["celery"]}), EXPECT, 5, [], {"default": (db, "alliance_auth")}, [])
    assert not out["ready"] and out["database"] == "alliance_auth" and db.closed
    assert out["database_error"] == "(1045, \"Access denied for user 'a'@'localhost' (using password: **)\")"


def test_without_django_settings_no_database_is_asked(script, monkeypatch):
    monkeypatch.delenv("DJANGO_SETTINGS_MODULE", raising=False)
    assert script._databases() == {}


def test_the_wait_asks_until_its_time_is_up_then_prints_the_last_round(script, monkeypatch, capsys):
    now = [0.0]
    rounds = []
    monkeypatch.setattr(script.time, "monotonic", lambda: now[0])
    monkeypatch.setattr(script.time, "sleep", lambda s: now.__setitem__(0, now[0] + s))
    monkeypatch.setattr(script, "_app", lambda name: None)
    monkeypatch.setattr(script, "_broker", lambda app: ("redis://127.0.0.1:6379/0", None))

    def ask(app, expect, timeout, queues, databases, secrets):
        rounds.append(now[0])
        now[0] += 4  # a round whose broker does not answer takes its connect timeout
        return dict(broker_error="Error 111", nodes={}, backlog={}, database=None, database_error=None,
                    missing=sorted(expect), ready=False)
    monkeypatch.setattr(script, "ask", ask)
    monkeypatch.setattr(script.sys, "argv", ["celery_cluster.py", "myauth", "5", json.dumps(EXPECT), "", "--wait", "20"])
    script.main()
    out = json.loads(capsys.readouterr().out)
    assert rounds == [0.0, 6.0, 12.0] and out["waited"] == 16
    assert out["broker"] == "redis://127.0.0.1:6379/0" and out["expect"] == EXPECT and not out["ready"]


def test_without_wait_one_round(script, monkeypatch, capsys):
    monkeypatch.setattr(script, "_app", lambda name: None)
    monkeypatch.setattr(script, "_broker", lambda app: ("redis://127.0.0.1:6379/0", None))
    calls = []
    monkeypatch.setattr(script, "ask", lambda *a: calls.append(a) or dict(ready=False, missing=[]))
    monkeypatch.setattr(script.sys, "argv", ["celery_cluster.py", "myauth", "5", "{}", "celery,services"])
    script.main()
    assert len(calls) == 1 and calls[0][3] == ["celery", "services"]
    assert json.loads(capsys.readouterr().out)["broker"] == "redis://127.0.0.1:6379/0"


def test_settings_that_do_not_load_are_said_each_round(script, pools, monkeypatch, capsys):
    monkeypatch.setenv("DJANGO_SETTINGS_MODULE", "myauth.settings.local")
    monkeypatch.setattr(script, "_app", lambda name: FakeApp({"celery@worker_00": ["celery"]}))
    monkeypatch.setattr(script, "_broker", lambda app: ("redis://localhost:6379/0", None))

    def broken():
        raise ImportError("No module named 'myauth.settings.local'")
    monkeypatch.setattr(script, "_databases", broken)
    monkeypatch.setattr(script.sys, "argv", ["celery_cluster.py", "myauth", "5", json.dumps(EXPECT), "", "--database"])
    script.main()
    out = json.loads(capsys.readouterr().out)
    assert not out["ready"] and out["database"] == "Django's default"
    assert out["database_error"] == "Auth's Django settings did not load: No module named 'myauth.settings.local'"
