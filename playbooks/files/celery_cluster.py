# -*- coding: utf-8 -*-
# Copyright: authops.celery_tuning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the broker and the workers of an Auth cluster say, as one JSON document on stdout.

Run by status.yml and tune.yml with the Auth venv's python, as the Auth user, in the project directory:
  python celery_cluster.py APP TIMEOUT EXPECT_JSON QUEUES
APP is Celery's -A (myauth); TIMEOUT the seconds to wait for the workers' replies; EXPECT_JSON maps node
names to the queues they must consume ({} asks every node); QUEUES is a comma-separated list of queues
whose backlog to read from the broker ("" for none).

Output: nodes (name -> ping, pool, slots, active (tasks in flight), reserved, queues), backlog
(queue -> messages waiting in the broker), and ready: every expected node answers ping and
consumes its queues. Changes nothing.
"""

from __future__ import absolute_import, division, print_function

import json
import os
import sys


def _app(name):
    sys.path.insert(0, os.getcwd())
    from celery.app.utils import find_app  # the way `celery -A` finds it
    return find_app(name)


def _backlog(app, queues):
    backlog = {}
    with app.connection_for_read() as conn:
        for queue in queues:
            try:
                backlog[queue] = conn.default_channel.queue_declare(queue=queue, passive=True).message_count
            except Exception:  # pylint: disable=broad-except  # a queue nobody declared yet holds nothing
                backlog[queue] = 0
    return backlog


def _pool_names():
    """celery.concurrency.thread:TaskPool -> threads (the first alias wins: prefork, not processes)."""
    from celery.concurrency import ALIASES
    names = {}
    for alias, path in ALIASES.items():
        names.setdefault(path, alias)
    return names


def _nodes(app, expect, timeout):
    """Ping first (every node, or the expected ones); then ask only the nodes that answered, so each
    further question returns as soon as they all replied instead of after the whole timeout."""
    pool_names = _pool_names()
    ping = app.control.inspect(destination=sorted(expect) or None, timeout=timeout).ping() or {}
    stats = active = reserved = queues = {}
    if ping:
        inspect = app.control.inspect(destination=sorted(ping), timeout=timeout)
        stats = inspect.stats() or {}
        active = inspect.active() or {}
        reserved = inspect.reserved() or {}
        queues = inspect.active_queues() or {}
    nodes = {}
    for name in sorted(set(ping) | set(stats) | set(expect)):
        pool = (stats.get(name) or {}).get("pool") or {}
        nodes[name] = dict(
            ping=(ping.get(name) or {}).get("ok") == "pong",
            pool=pool_names.get(pool.get("implementation"), pool.get("implementation")),
            slots=pool.get("max-concurrency"),
            active=len(active.get(name) or []),
            reserved=len(reserved.get(name) or []),
            queues=sorted(q.get("name") for q in (queues.get(name) or [])))
    return nodes


def main():
    app_name, timeout, expect, queues = sys.argv[1], float(sys.argv[2]), json.loads(sys.argv[3]), sys.argv[4]
    app = _app(app_name)
    nodes = _nodes(app, expect, timeout)
    ready = all(nodes[n]["ping"] and set(q) <= set(nodes[n]["queues"]) for n, q in expect.items())
    out = dict(nodes=nodes, backlog=_backlog(app, [q for q in queues.split(",") if q]), ready=ready,
               missing=sorted(n for n, q in expect.items() if not (nodes[n]["ping"] and set(q) <= set(nodes[n]["queues"]))))
    print(json.dumps(out, sort_keys=True))


if __name__ == "__main__":
    main()
