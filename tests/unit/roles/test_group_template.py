# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Render the celery_workers role's group file the way the role does (its defaults and vars, a plan
from worker_flags' logic) and let supervisor's own parser read it."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

import pytest

from ansible_collections.authops.celery_tuning.plugins.module_utils.celery_flags import plan_workers

pytest.importorskip("supervisor")
template_mod = pytest.importorskip("ansible.template")
if not hasattr(template_mod, "trust_as_template"):
    pytest.skip("needs ansible-core 2.19's templating API", allow_module_level=True)

from ansible.parsing.dataloader import DataLoader  # noqa: E402
from ansible.template import Templar, trust_as_template  # noqa: E402
from supervisor.options import ServerOptions  # noqa: E402

ROLE = os.path.join(os.path.dirname(__file__), "..", "..", "..", "roles", "celery_workers")


def render(tmp_path, **overrides):
    loader = DataLoader()
    variables = dict(loader.load_from_file(os.path.join(ROLE, "defaults", "main.yml"), trusted_as_template=True))
    variables.update(loader.load_from_file(os.path.join(ROLE, "vars", "main.yml"), trusted_as_template=True))
    variables.update(overrides)
    variables.update(ansible_managed="Ansible managed", celery_workers_user="root",
                     celery_workers_log_dir=str(tmp_path))
    request = Templar(loader=loader, variables=variables).template(trust_as_template("{{ _celery_workers_request }}"))
    variables["celery_workers_plan"] = plan_workers(request, cpu_count=2, memory_total="4GB")
    with open(os.path.join(ROLE, "templates", "group.conf.j2")) as handle:
        text = Templar(loader=loader, variables=variables).template(trust_as_template(handle.read()))
    return variables["celery_workers_plan"], text


def parse(tmp_path, text):
    conf = tmp_path / "supervisord.conf"
    conf.write_text("[supervisord]\nlogfile=%s/d.log\npidfile=%s/d.pid\n\n%s" % (tmp_path, tmp_path, text))
    options = ServerOptions()
    options.configfile = str(conf)
    options.process_config(do_usage=False)
    return dict((g.name, g) for g in options.process_group_configs)


def test_auth_defaults(tmp_path):
    plan, text = render(tmp_path)
    groups = parse(tmp_path, text)
    procs = dict((p.name, p) for p in groups["myauth"].process_configs)
    assert sorted(procs) == ["beat", "worker_00", "worker_services_00"]
    assert "--pool=gevent" in procs["worker_00"].command and procs["worker_00"].stopwaitsecs == 600
    assert procs["worker_00"].killasgroup and not procs["worker_00"].stopasgroup
    assert "--queues=services" in procs["worker_services_00"].command
    # The processes supervisor makes are the ones the plan (and so memmon) names.
    assert sorted(n for w in plan["workers"] for n in w["process_names"]) == sorted(procs)


def test_numprocs_from_worker_defaults_gunicorn_and_environment(tmp_path):
    plan, text = render(
        tmp_path,
        celery_workers_worker_defaults={"loglevel": "info", "stopwaitsecs": 600, "numprocs": 2},
        celery_workers_workers=[{"name": "worker", "workload": "io", "time_limit": 900},
                                {"name": "worker_services", "queues": ["services"], "single_threaded": True,
                                 "numprocs": 1, "supervisor": {"startsecs": 3}}],
        celery_workers_gunicorn_enabled=True,
        celery_workers_environment={"DB_PASS": "a b%c,d=e"})
    groups = parse(tmp_path, text)
    procs = dict((p.name, p) for p in groups["myauth"].process_configs)
    assert sorted(procs) == ["beat", "gunicorn", "worker_00", "worker_01", "worker_services_00"]
    # stopwaitsecs above the hard time limit, so a graceful stop never kills a running task
    assert procs["worker_00"].stopwaitsecs == 930
    assert procs["worker_services_00"].startsecs == 3
    assert procs["worker_00"].environment == {"DB_PASS": "a b%c,d=e"}
