# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Render the celery_workers role's group file from a plan of worker_flags' logic (plan_group) and let
supervisor's own parser read it: the template only writes what the module returned."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

import pytest

from ansible_collections.authops.celery_tuning.plugins.filter.supervisor import supervisor_env_line
from ansible_collections.authops.celery_tuning.plugins.module_utils.programs import plan_group
from ansible_collections.authops.celery_tuning.plugins.module_utils.supervisor_conf import read_conf

pytest.importorskip("supervisor")
template_mod = pytest.importorskip("ansible.template")
if not hasattr(template_mod, "trust_as_template"):
    pytest.skip("needs ansible-core 2.19's templating API", allow_module_level=True)

from ansible.parsing.dataloader import DataLoader  # noqa: E402
from ansible.template import Templar, trust_as_template  # noqa: E402
from supervisor.options import ServerOptions  # noqa: E402

HERE = os.path.dirname(__file__)
ROLE = os.path.join(HERE, "..", "..", "..", "roles", "celery_workers")
STOCK = os.path.join(HERE, "..", "fixtures", "auth55_supervisor.conf")
WORKERS = [{"name": "beat", "beat": True}, {"name": "worker", "workload": "io"},
           {"name": "worker_services", "queues": ["services"], "single_threaded": True}]


def layout(tmp_path, **kw):
    out = dict(directory="/home/allianceserver/myauth", user="nobody", log_dir=str(tmp_path),
               group_name="myauth", app="myauth", celery_bin="/home/allianceserver/venv/auth/bin/celery")
    out.update(kw)
    return out


def render(tmp_path, workers=None, environment=None, **kw):
    loader = DataLoader()
    variables = dict(loader.load_from_file(os.path.join(ROLE, "vars", "main.yml"), trusted_as_template=True))
    kw.setdefault("program_defaults", {"autostart": True, "killasgroup": True, "stopasgroup": False})
    plan = plan_group(workers or WORKERS, layout(tmp_path), environment_names=list(environment or {}),
                      worker_defaults={"loglevel": "info", "stopwaitsecs": 600}, cpu_count=2,
                      memory_total="4GB", **kw)
    variables.update(ansible_managed="Ansible managed", celery_workers_plan=plan,
                     celery_workers_environment=environment or {}, celery_workers_conf_path="/x/myauth.conf")
    # The collection's filter is not loadable in-process here: the test renders its result itself
    # (the filter has tests of its own in test_hostile_input.py).
    variables["__env_line"] = supervisor_env_line(environment or {})
    with open(os.path.join(ROLE, "templates", "group.conf.j2")) as handle:
        source = handle.read()
    expression = "celery_workers_environment | authops.celery_tuning.supervisor_env_line"
    assert expression in source
    text = Templar(loader=loader, variables=variables).template(
        trust_as_template(source.replace(expression, "__env_line")))
    return plan, text


def parse(tmp_path, text):
    conf = tmp_path / "supervisord.conf"
    conf.write_text("[supervisord]\nlogfile=%s/d.log\npidfile=%s/d.pid\n\n%s" % (tmp_path, tmp_path, text))
    options = ServerOptions()
    options.configfile = str(conf)
    options.process_config(do_usage=False)
    return options


def procs_of(options):
    groups = dict((g.name, g) for g in options.process_group_configs)
    return dict((p.name, p) for p in groups["myauth"].process_configs)


def test_auth_defaults(tmp_path):
    plan, text = render(tmp_path)
    procs = procs_of(parse(tmp_path, text))
    assert sorted(procs) == ["beat", "worker_00", "worker_01", "worker_services_00"]
    assert "--pool=threads" in procs["worker_00"].command and procs["worker_00"].stopwaitsecs == 600
    assert procs["worker_00"].killasgroup and not procs["worker_00"].stopasgroup
    assert "--queues=services" in procs["worker_services_00"].command
    assert procs["worker_00"].uid is not None  # user= is written: nothing runs as root
    # The processes supervisor makes are the ones the plan (and so memmon) names.
    assert sorted(n for w in plan["workers"] for n in w["process_names"]) == sorted(procs)


def test_numprocs_supervisor_dict_and_environment(tmp_path):
    plan, text = render(
        tmp_path,
        workers=[{"name": "worker", "workload": "io", "time_limit": 900, "numprocs": 2},
                 {"name": "worker_services", "queues": ["services"], "single_threaded": True,
                  "supervisor": {"startsecs": 3}}],
        environment={"DB_PASS": "a b%c,d=e", "QUOTED": "it's"})
    procs = procs_of(parse(tmp_path, text))
    assert sorted(procs) == ["worker_00", "worker_01", "worker_services_00"]
    # stopwaitsecs above the hard time limit, so a graceful stop never kills a running task
    assert procs["worker_00"].stopwaitsecs == 930
    assert procs["worker_services_00"].startsecs == 3
    assert procs["worker_00"].environment == {"DB_PASS": "a b%c,d=e", "QUOTED": "it's"}


def stock_text():
    """Auth's file, with a user this test machine has."""
    with open(STOCK) as handle:
        return handle.read().replace("AA_USER = allianceserver", "AA_USER = nobody")


def test_stock_auth_file_is_carried_over(tmp_path):
    """Auth 5.5's own file: gunicorn carried over as written, AA_* kept, memmon intent translated."""
    adoption = read_conf("/etc/supervisor/conf.d/myauth.conf", stock_text(), {"beat", "worker", "worker_services"})
    plan, text = render(tmp_path, carry_over=adoption["carry_over"],
                        supervisord_environment=adoption["environment"], adopted_memmon=adoption["memmon"])
    options = parse(tmp_path, text)
    procs = procs_of(options)
    assert sorted(procs) == ["beat", "gunicorn", "worker_00", "worker_01", "worker_services_00"]
    assert procs["gunicorn"].command == ("/home/allianceserver/venv/auth/bin/gunicorn myauth.wsgi --workers=3 "
                                         "--timeout 120 --pid /home/allianceserver/myauth/gunicorn.pid "
                                         "--no-control-socket")
    assert procs["gunicorn"].stopsignal == 2  # INT
    assert options.environ_expansions["ENV_AA_PROJECT_NAME"] == "myauth"
    assert plan["memmon_limits"]["worker_00"] == "256MB"
    assert plan["memmon_limits"]["gunicorn"] == "1GB"  # 256MB for the master and each of 3 workers (-c)
    assert plan["sections"] == ["supervisord", "program:beat", "program:worker", "program:worker_services",
                                "program:gunicorn", "group:myauth"]
