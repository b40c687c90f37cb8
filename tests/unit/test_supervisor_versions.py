# -*- coding: utf-8 -*-
# Copyright: authops.celery_tuning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The supervisor releases the client code is unit-tested against.

The modules run on the target with the ``supervisor`` package its distribution ships. The matrix venvs
(``requirements/ansible-core-2.1[678].txt``) pin that release, ``.venv`` (``requirements/dev.txt``) has
PyPI's newest, so ``make test`` runs every unit test against both.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pathlib
import re

import supervisor.options
import supervisor.xmlrpc

ROOT = pathlib.Path(__file__).resolve().parents[2]

#: distribution -> the supervisor release of its `supervisor` package (Debian 4.2.5-1 / 4.2.5-3, Ubuntu 4.2.5-1)
DISTRIBUTION_SUPERVISOR = {
    "Debian 12 (bookworm)": "4.2.5",
    "Debian 13 (trixie)": "4.2.5",
    "Ubuntu 24.04 (noble)": "4.2.5",
}
PYPI_LATEST = "4.3.0"


def _pin(path):
    match = re.search(r"^supervisor==(\S+)$", (ROOT / path).read_text(), re.MULTILINE)
    return match.group(1) if match else None


def test_matrix_venvs_pin_the_distributions_supervisor():
    pins = set(_pin("requirements/ansible-core-%s.txt" % v) for v in ("2.16", "2.17", "2.18"))
    assert pins == set(DISTRIBUTION_SUPERVISOR.values())
    assert _pin("requirements/dev.txt") == PYPI_LATEST


def test_running_against_a_pinned_release():
    """Fails when a venv drifts from the table above (the client would be tested against an unknown release)."""
    from importlib.metadata import version
    assert version("supervisor") in set(DISTRIBUTION_SUPERVISOR.values()) | {PYPI_LATEST}


def test_the_public_client_api_the_collection_uses_exists():
    options = supervisor.options.ClientOptions()
    assert callable(options.read_config) and callable(options.getServerProxy)
    transport = supervisor.xmlrpc.SupervisorTransport(None, None, "unix:///run/x.sock")
    assert callable(transport.request) and callable(transport.close)
    for name in ("BAD_NAME", "NOT_RUNNING", "ALREADY_STARTED", "SPAWN_ERROR", "SHUTDOWN_STATE", "SUCCESS",
                 "NO_FILE", "NOT_EXECUTABLE"):
        assert isinstance(getattr(supervisor.xmlrpc.Faults, name), int)
