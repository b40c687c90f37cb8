# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The worker option table (worker_options.WORKER_OPTIONS) is the one list of worker options: the module's
argument spec is built from it, and the role and its docs only use what it holds."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

import yaml

from ansible_collections.authops.celery_tuning.plugins.module_utils.worker_options import (
    MANAGED_FLAGS,
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
    assert set(MANAGED_FLAGS.values()) == flagged


def test_role_defaults_and_specs_use_only_table_options():
    defaults = load("defaults", "main.yml")
    specs = load("meta", "argument_specs.yml")["argument_specs"]["main"]["options"]
    for item in defaults["celery_workers_workers"] + specs["celery_workers_workers"]["default"]:
        assert set(item) <= set(WORKER_OPTIONS), item
    for source in (defaults["celery_workers_worker_defaults"], specs["celery_workers_worker_defaults"]["default"]):
        assert set(source) <= set(WORKER_OPTIONS), source
