# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Hostile and malformed input (issue: nothing reaches supervisor's file or a root process unchecked).

Every case goes through plan_group, the one entry the worker_flags module uses: it must be refused
with a message naming the option, before anything is returned to the role's template."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy

import pytest

from ansible_collections.authops.celery_tuning.plugins.module_utils.plan_errors import WorkerFlagsError
from ansible_collections.authops.celery_tuning.plugins.module_utils.gate import GateError
from ansible_collections.authops.celery_tuning.plugins.module_utils.programs import plan_group
from ansible_collections.authops.celery_tuning.plugins.module_utils.supervisor_conf import AdoptionError, read_conf

WORKERS = [{"name": "beat", "beat": True}, {"name": "worker", "workload": "io"},
           {"name": "worker_services", "queues": ["services"], "single_threaded": True}]
LAYOUT = dict(directory="/home/allianceserver/myauth", user="allianceserver", log_dir="/var/log/supervisor/myauth",
              group_name="myauth", app="myauth", celery_bin="/home/allianceserver/venv/auth/bin/celery")
GUNICORN = dict(name="gunicorn", source="test", options=dict(
    command="/home/allianceserver/venv/auth/bin/gunicorn myauth.wsgi", user="allianceserver", stopsignal="INT"))


def plan(workers=None, layout=None, environment=None, **kw):
    """The plan as the role makes it: its environment checked on the controller first (the filter; the values
    may be secrets and never reach the module), then plan_group with the names."""
    if environment is not None:
        from ansible_collections.authops.celery_tuning.plugins.filter.supervisor import supervisor_env_problems

        problems = supervisor_env_problems(environment, root=kw.get("allow_root", False))
        if problems:
            raise GateError("; ".join(problems))
        kw["environment_names"] = list(environment)
    return plan_group(workers if workers is not None else copy.deepcopy(WORKERS), layout or dict(LAYOUT),
                      cpu_count=2, memory_total="4GB", **kw)


def worker(**kw):
    out = copy.deepcopy(WORKERS)
    out[1].update(kw)
    return out


INJECT = "x\n[program:evil]\ncommand=/bin/sh -c id"
REFUSED = [
    # a newline injects a section
    ("queues", dict(workers=worker(queues=["celery\n[program:evil]"])), "queue"),
    ("process_name", dict(workers=worker(process_name="%(program_name)s_%(process_num)02d\n[x]")), "newline"),
    ("node_name", dict(workers=worker(node_name=INJECT)), "newline"),
    ("celery_bin", dict(layout=dict(LAYOUT, celery_bin="/venv/bin/celery\n[program:evil]")), "newline"),
    ("extra_args", dict(workers=worker(extra_args=["--without-mingle\n[program:evil]"])), "newline"),
    ("supervisor dict", dict(workers=worker(supervisor={"startsecs": "10\n[program:evil]"})), "newline"),
    ("project dir", dict(layout=dict(LAYOUT, directory="/srv/x\n[program:evil]")), "newline"),
    ("log dir", dict(layout=dict(LAYOUT, log_dir="/var/log/x\n[program:evil]")), "newline"),
    ("group name", dict(layout=dict(LAYOUT, group_name="myauth\n")), "group_name"),
    ("worker name, trailing newline", dict(workers=worker(name="worker\n")), "name"),
    ("user", dict(layout=dict(LAYOUT, user="allianceserver\n[program:evil]")), "user"),
    ("carried command", dict(carry_over=[dict(GUNICORN, options=dict(GUNICORN["options"], command=INJECT))]),
     "newline"),
    ("supervisord environment", dict(supervisord_environment={"AA_USER": "x\n[program:evil]"}), "newline"),
    # arguments supervisor's parser would cut
    ("extra_args ' #'", dict(workers=worker(extra_args=["--foo=a #b"])), "cut"),
    ("extra_args ' ;'", dict(workers=worker(extra_args=["--foo=a ;b"])), "cut"),
    ("supervisor dict ' ;'", dict(workers=worker(supervisor={"stopsignal": "TERM ;x"})), "cut"),
    # one beat only, and nothing that leaves supervisor
    ("-B", dict(workers=worker(extra_args=["-B"])), "beat"),
    ("--beat", dict(workers=worker(extra_args=["--beat"])), "beat"),
    ("--detach", dict(workers=worker(extra_args=["--detach"])), "detaches"),
    ("-D", dict(workers=worker(extra_args=["-D"])), "detaches"),
    ("two beats", dict(workers=copy.deepcopy(WORKERS) + [{"name": "beat2", "beat": True}]), "beat programs"),
    # names supervisor would misread
    ("process_name a:b", dict(workers=worker(process_name="a:b")), "non-empty name"),
    # environment values supervisor would change
    ("outer single quotes", dict(environment={"PW": "'pw'"}), "single quote"),
    ("double quote", dict(environment={"PW": 'a"b'}), "contains '\"'"),
    # root only when asked
    ("user root", dict(layout=dict(LAYOUT, user="root")), "root"),
    ("carried program without user", dict(carry_over=[dict(GUNICORN, options={"command": "/bin/true"})]), "root"),
    # managed keys and unknown keys of the supervisor dict
    ("supervisor dict command", dict(workers=worker(supervisor={"command": "/bin/sh"})), "writes from the plan"),
    ("supervisor dict stdout_logfile", dict(workers=worker(supervisor={"stdout_logfile": "/root/x"})), "plan"),
    ("supervisor dict unknown", dict(workers=worker(supervisor={"bogus": "1"})), "not a \\[program:x\\] option"),
    ("relative path", dict(layout=dict(LAYOUT, log_dir="log")), "absolute"),
    ("path trick", dict(layout=dict(LAYOUT, log_dir="/var/log/../../etc")), "'..'"),
]


@pytest.mark.parametrize("what,kwargs,match", REFUSED, ids=[r[0] for r in REFUSED])
def test_refused(what, kwargs, match):
    with pytest.raises((GateError, WorkerFlagsError), match=match):
        plan(**kwargs)


def test_environment_messages_never_show_the_value():
    from ansible_collections.authops.celery_tuning.plugins.filter.supervisor import supervisor_env_problems

    problems = supervisor_env_problems({"DB_PASSWORD": "s3cret\nx"})
    assert "DB_PASSWORD" in problems[0] and "s3cret" not in problems[0]


@pytest.mark.parametrize("kwargs", [
    dict(layout=dict(LAYOUT, app="myauth.celery:app")),
    dict(workers=worker(loglevel="INFO")),
    dict(workers=worker(node_name="%(program_name)s_%(process_num)02d@%(host_node_name)s")),
    dict(workers=worker(extra_args=["--without-mingle --without-gossip"])),
    dict(workers=worker(node_name="%(program_name)s_%(process_num)02d@%h")),
], ids=["app module:attr", "loglevel INFO", "host_node_name", "extra args", "celery's %h"])
def test_valid_input_is_accepted(kwargs):
    plan(**kwargs)


def test_no_program_without_a_user():
    result = plan(carry_over=[GUNICORN])
    for program in result["programs"]:
        assert dict(program["options"])["user"] == "allianceserver"


STOCK_HEAD = "[supervisord]\nenvironment = AA_USER = allianceserver\n\n"


@pytest.mark.parametrize("text,match", [
    (STOCK_HEAD + "[program:gunicorn]\ncommand = %(ENV_AA_NOPE)s/bin/gunicorn\nuser = x\n", "line 5"),
    (STOCK_HEAD + "[unix_http_server]\nfile = /tmp/s\n", "line 4"),
    (STOCK_HEAD + "[eventlistener:other]\ncommand = /bin/crashmail\n", "not superlance"),
    (STOCK_HEAD + "[eventlistener:memmon]\ncommand = /v/bin/memmon -x 1\n", "-x"),
    ("[supervisord]\nlogfile = /tmp/x\n", "line 2"),
], ids=["unknown ENV", "foreign section", "foreign listener", "memmon flag", "supervisord option"])
def test_adoption_refuses_what_it_cannot_carry(text, match):
    with pytest.raises(AdoptionError, match=match):
        read_conf("/etc/supervisor/conf.d/myauth.conf", text, {"beat", "worker"})


@pytest.mark.parametrize("environment,match", [
    ({"DB": "pw\n[program:evil]"}, "newline"),
    ({"PW": "'pw'"}, "single quote"),
    ({"PW": 'a"b'}, "contains '\"'"),
    ({"PW": "a #b"}, "cut"),
    ({"1BAD": "x"}, "not a variable name"),
])
def test_environment_filter_refuses_naming_the_variable_only(environment, match):
    """The programs' environment is checked on the controller (no module sees a secret)."""
    from ansible.errors import AnsibleFilterError

    from ansible_collections.authops.celery_tuning.plugins.filter.supervisor import (
        supervisor_env_line,
        supervisor_env_problems,
    )

    problems = supervisor_env_problems(environment)
    assert len(problems) == 1 and pytest.importorskip("re").search(match, problems[0])
    for value in environment.values():
        if len(value) > 2:
            assert value not in problems[0]
    with pytest.raises(AnsibleFilterError):
        supervisor_env_line(environment)


def test_environment_filter_renders_what_supervisor_reads_back():
    from supervisor.datatypes import dict_of_key_value_pairs

    from ansible_collections.authops.celery_tuning.plugins.filter.supervisor import supervisor_env_line

    env = {"DB_PASS": "a b%c,d=e", "QUOTED": "it's", "N": "2"}
    line = supervisor_env_line(env)
    assert dict_of_key_value_pairs(line.replace("%%", "%")) == env


def test_celery_hostname_expansion_reaches_celery():
    result = plan(workers=worker(node_name="%(program_name)s_%(process_num)02d@%h"))
    command = dict(result["programs"][1]["options"])["command"]
    assert "'--hostname=%(program_name)s_%(process_num)02d@%%h'" in command
