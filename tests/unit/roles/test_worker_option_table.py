# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The worker option table (worker_options.WORKER_OPTIONS) is the one list of worker options: the module's
argument spec is built from it, and the role and its docs only use what it holds."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

import yaml

from ansible_collections.authops.celery_tuning.plugins.module_utils.worker_options import (
    managed_flags,
    WORKER_OPTIONS,
    worker_argument_spec,
)

ROLE = os.path.join(os.path.dirname(__file__), "..", "..", "..", "roles", "celery_workers")


def load(*parts):
    with open(os.path.join(ROLE, *parts)) as handle:
        return yaml.safe_load(handle)


def test_argument_spec_is_the_table():
    spec = worker_argument_spec()
    assert set(spec) == set(WORKER_OPTIONS)
    for name, option in WORKER_OPTIONS.items():
        assert spec[name]["type"] == option["type"], name
        assert spec[name].get("choices") == option.get("choices"), name


def test_managed_flags_come_from_the_table():
    flagged = set(name for name, option in WORKER_OPTIONS.items() if "flag" in option)
    assert set(managed_flags().values()) == flagged


def test_role_defaults_and_specs_use_only_table_options():
    defaults = load("defaults", "main.yml")
    specs = load("meta", "argument_specs.yml")["argument_specs"]["main"]["options"]
    for item in defaults["celery_workers_workers"] + specs["celery_workers_workers"]["default"]:
        assert set(item) <= set(WORKER_OPTIONS), item
    for source in (defaults["celery_workers_worker_defaults"], specs["celery_workers_worker_defaults"]["default"]):
        assert set(source) <= set(WORKER_OPTIONS), source


def test_a_new_option_is_one_table_row(monkeypatch):
    """One row in WORKER_OPTIONS, and the option is in the argument spec, the argv, the managed flags and
    the module docs, with no other edit."""
    import importlib.util

    import pytest

    from ansible_collections.authops.celery_tuning.plugins.module_utils.plan_errors import WorkerFlagsError
    from ansible_collections.authops.celery_tuning.plugins.module_utils.worker_options import worker_suboptions_doc
    from ansible_collections.authops.celery_tuning.plugins.module_utils.worker_plan import plan_workers

    row = dict(type="int", minimum=1, flag="--fake-option", written="int", description=["A fake option."])
    monkeypatch.setitem(WORKER_OPTIONS, "fake_option", row)
    assert worker_argument_spec()["fake_option"] == {"type": "int"}
    worker = {"name": "worker", "pool": "threads", "concurrency": 2, "fake_option": 3}
    result = plan_workers([worker], cpu_count=2, memory_total="8GB")
    assert "--fake-option=3" in result["workers"][0]["argv"]
    assert managed_flags()["--fake-option"] == "fake_option"
    with pytest.raises(WorkerFlagsError, match="fake_option must be at least 1"):
        plan_workers([dict(worker, fake_option=0)], cpu_count=2, memory_total="8GB")
    with pytest.raises(WorkerFlagsError, match="set the worker option fake_option instead"):
        plan_workers([dict(worker, extra_args=["--fake-option=4"])], cpu_count=2, memory_total="8GB")
    spec = importlib.util.spec_from_file_location(
        "module_docs", os.path.join(ROLE, "..", "..", "scripts", "module-docs.py"))
    module_docs = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module_docs)
    rendered = module_docs.render(module_docs.MODULE.read_text(), worker_suboptions_doc())
    assert "      fake_option:\n        description:\n          - A fake option.\n        type: int\n" in rendered


def _module_argspec():
    from ansible_collections.authops.celery_tuning.plugins.modules import worker_flags

    return worker_flags.argument_spec()


def test_role_and_module_defaults_agree():
    """Where the role passes one of its variables to worker_flags as it is, the two defaults are one."""
    tasks = load("tasks", "plan.yml")
    args = [t["authops.celery_tuning.worker_flags"] for t in tasks if "authops.celery_tuning.worker_flags" in t][0]
    defaults = load("defaults", "main.yml")
    spec = _module_argspec()
    compared = 0
    for param, value in args.items():
        var = str(value).strip()
        if not (var.startswith("{{ celery_workers_") and var.endswith(" }}") and "|" not in var and " " not in var[3:-3]):
            continue
        default = spec[param].get("default")
        if default is None:
            continue
        role_default = defaults[var[3:-3]]
        while isinstance(role_default, str) and role_default.startswith("{{ celery_workers_"):
            role_default = defaults[role_default[3:-3]]  # one variable's default is another's
        if isinstance(role_default, str) and "{{" in role_default:
            continue  # derived from the host (the supervisor layout): the module has no host to derive it from
        compared += 1
        assert role_default == default, "%s: role %r, module %r" % (param, role_default, default)
    assert compared >= 5


def test_one_default_for_node_and_process_names():
    from ansible_collections.authops.celery_tuning.plugins.module_utils.worker_options import DEFAULT_NAME

    assert WORKER_OPTIONS["node_name"]["default"] == WORKER_OPTIONS["process_name"]["default"] == DEFAULT_NAME
