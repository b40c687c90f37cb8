# -*- coding: utf-8 -*-
# Copyright: authops.celery_tuning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Whether a host's workers serve again after a change, from what the broker, the workers and the database said.

``playbooks/files/celery_cluster.py --wait`` asks them on the host (as the Auth user, in Auth's venv) until every
expected node answers ping and consumes its queues and the database accepts a connection, or its time is up, and
prints what it last saw. This file turns that document into what to tell the user: nothing when all is well, else
one message per thing that did not answer, each naming it (the broker's URL without its password, the database's
name and host, the node) with the error it gave and what to do. Nothing here runs anything.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

#: The lines of the script's stderr kept in a message when it could not run at all.
STDERR_TAIL_LINES = 5


def expected_queues(nodes):
    """``{node: [queues]}`` for the script's EXPECT_JSON, from nodes as ``cluster.worker_nodes`` describes them."""
    return dict((n["node"], sorted(n["queues"])) for n in nodes)


def _report(result):
    """The script's JSON document, or None when it did not print one (it failed before it could ask)."""
    if not isinstance(result, dict) or result.get("rc") not in (0, None):
        return None
    try:
        report = json.loads(result.get("stdout") or "")
    except ValueError:
        return None
    return report if isinstance(report, dict) else None


#: What the readiness check asks besides the workers: (key in the report, name when the report has none,
#: what needs it, how to start Auth's, the setting to check, what the re-run also does).
_SERVICES = (
    ("broker", "the broker", "The workers", "Auth's Redis: systemctl start redis-server", "the broker URL",
     " (it starts the workers that gave up meanwhile)"),
    ("database", "the database", "The website and the tasks", "Auth's MariaDB: systemctl start mariadb",
     "DATABASES", ""),
)


def _tail(text):
    lines = [line for line in (text or "").splitlines() if line.strip()]
    return " | ".join(lines[-STDERR_TAIL_LINES:]) or "no output"


def _node_problem(name, node, queues):
    if not node.get("ping"):
        return "%s does not answer ping" % name
    missing = sorted(set(queues) - set(node.get("queues") or []))
    return "%s answers but does not consume %s" % (name, ", ".join(missing))


def ready_problems(result, wait, group_name="myauth", runner="the Auth user"):
    """What did not answer within ``wait`` seconds, one message each; [] when the host serves again.

    ``result`` is the registered result of the script (``rc``, ``stdout``, ``stderr``); ``group_name`` the
    supervisor group, ``runner`` who ran the script (for a script that could not run).
    """
    report = _report(result)
    if report is None:
        result = result if isinstance(result, dict) else {}
        return ["the readiness check could not ask the broker (rc %s, as %s in Auth's venv): %s. Check that "
                "celery_workers_venv, celery_workers_project_dir and celery_workers_environment are Auth's"
                % (result.get("rc"), runner, _tail(result.get("stderr") or result.get("msg")))]
    waited = report.get("waited", wait)
    problems = []
    broker = report.get("broker") or "the broker"
    for kind, name, needs, start, setting, after in _SERVICES:
        if report.get(kind + "_error"):
            problems.append(
                "the %s %s did not answer within %s s: %s. %s cannot work without it: start it (%s), check %s in "
                "Auth's settings, then run this playbook again%s"
                % (kind, report.get(kind) or name, waited, report[kind + "_error"], needs, start, setting, after))
    if not report.get("broker_error"):
        nodes = report.get("nodes") or {}
        expect = report.get("expect") or {}
        missing = [_node_problem(name, nodes.get(name) or {}, expect.get(name) or [])
                   for name in report.get("missing") or []]
        if missing:
            problems.append(
                "within %s s, through the broker %s: %s. See supervisorctl status %s: and the workers' logs; "
                "a worker that is still starting on a slow host needs a larger celery_tuning_ready_retries"
                % (waited, broker, "; ".join(missing), group_name))
    if not problems and not report.get("ready"):
        problems.append("the workers were not ready within %s s, and the check said nothing more: %s"
                        % (waited, json.dumps(report, sort_keys=True)[:400]))
    return problems
