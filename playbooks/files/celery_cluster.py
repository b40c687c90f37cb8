# -*- coding: utf-8 -*-
# Copyright: authops.celery_tuning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the broker, the workers and the database of an Auth server say, as one JSON document on stdout.

Run by status.yml and tune.yml with the Auth venv's python, as the Auth user, in the project directory:
  python celery_cluster.py APP TIMEOUT EXPECT_JSON QUEUES [--wait SECONDS] [--database]
APP is Celery's -A (myauth); TIMEOUT the seconds to wait for the workers' replies; EXPECT_JSON maps node
names to the queues they must consume ({} asks every node); QUEUES is a comma-separated list of queues
whose backlog to read from the broker ("" for none). --wait asks again every 2 s until ready, for at most
SECONDS (tune.yml's readiness wait after a change); --database also opens a connection to each of
Django's databases (Auth's MariaDB), from Django's settings alone, and closes it.

Output: broker (its URL, without the password) and broker_error (the last error talking to it), nodes
(name -> ping, pool, slots, active (tasks in flight), reserved, queues), backlog (queue -> messages
waiting in the broker), database (which one, without the password) and database_error, expect, missing
(expected nodes that do not answer or do not consume their queues), waited (seconds), and ready: the
broker answers, every expected node answers ping and consumes its queues, and the database (when asked)
accepts a connection. Changes nothing; exits 0 whatever it found.
"""

from __future__ import absolute_import, division, print_function

import json
import os
import sys
import time

#: Seconds between two rounds of --wait.
INTERVAL = 2.0
#: Seconds a database connection may take to open (MySQL/MariaDB and PostgreSQL drivers).
DB_CONNECT_TIMEOUT = 5


def _args(argv):
    import argparse
    parser = argparse.ArgumentParser(prog="celery_cluster.py")
    parser.add_argument("app")
    parser.add_argument("timeout", type=float)
    parser.add_argument("expect", type=json.loads)
    parser.add_argument("queues")
    parser.add_argument("--wait", type=float, default=0.0)
    parser.add_argument("--database", action="store_true")
    return parser.parse_args(argv)


def _app(name):
    sys.path.insert(0, os.getcwd())
    from celery.app.utils import find_app  # the way `celery -A` finds it
    return find_app(name)


def _masked(text, secrets):
    """``text`` with every secret (a password) written as ``**``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "**")
    return text


def _error(exc, secrets=()):
    return _masked(" ".join(str(exc).split()) or type(exc).__name__, secrets)


def _broker(app):
    """The broker's URL (a password written as **), and the password itself, to mask it in errors."""
    conn = app.connection_for_read()
    try:
        return conn.as_uri(include_password=not conn.password), conn.password
    finally:
        conn.release()


def _backlog(app, queues):
    backlog = {}
    if not queues:
        return backlog
    with app.connection_for_read() as conn:
        for queue in queues:
            try:
                backlog[queue] = conn.default_channel.queue_declare(queue=queue, passive=True).message_count
            except conn.connection_errors:
                raise
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


def _databases():
    """Django's databases, alias -> (connection, 'NAME (vendor) on HOST:PORT'); {} without Django settings
    (a project that is not Django's, such as the test bed's stand-in). Django's apps are not set up: Auth's
    need Redis for that, and a connection needs only the settings."""
    if not os.environ.get("DJANGO_SETTINGS_MODULE"):
        return {}
    from django.db import connections
    found = {}
    for alias in connections:
        conn = connections[alias]
        cfg = conn.settings_dict
        engine = cfg.get("ENGINE") or ""
        if engine.endswith("dummy"):
            continue
        if "mysql" in engine or "postgresql" in engine:
            cfg.setdefault("OPTIONS", {}).setdefault("connect_timeout", DB_CONNECT_TIMEOUT)
        where = cfg.get("HOST") or "localhost (socket)"
        if cfg.get("PORT"):
            where = "%s:%s" % (where, cfg["PORT"])
        found[alias] = (conn, "%s (%s) on %s" % (cfg.get("NAME"), conn.vendor, where))
    return found


def _database_error(databases):
    """The first database that does not accept a connection, and its error; (None, None) when all do."""
    for alias in sorted(databases):
        conn, described = databases[alias]
        try:
            conn.ensure_connection()
        except Exception as exc:  # pylint: disable=broad-except  # the driver's own error, shown to the user
            return described, _error(exc, [conn.settings_dict.get("PASSWORD")])
        finally:
            conn.close()
    return None, None


def _missing(nodes, expect):
    return sorted(n for n, q in expect.items()
                  if not (nodes.get(n, {}).get("ping") and set(q) <= set(nodes.get(n, {}).get("queues") or [])))


def ask(app, expect, timeout, queues, databases, secrets):
    """One round: the broker and the workers through it, then the databases."""
    out = dict(broker_error=None, nodes={}, backlog={}, database=None, database_error=None)
    try:
        out["nodes"] = _nodes(app, expect, timeout)
        out["backlog"] = _backlog(app, queues)
    except Exception as exc:  # pylint: disable=broad-except  # the broker did not answer: said, not raised
        out["broker_error"] = _error(exc, secrets)
        out["nodes"] = dict((n, dict(ping=False, pool=None, slots=None, active=0, reserved=0, queues=[]))
                            for n in expect)
    if databases:
        out["database"], out["database_error"] = _database_error(databases)
        if out["database"] is None:
            out["database"] = ", ".join(d for _c, d in sorted(databases.values(), key=lambda item: item[1]))
    out["missing"] = _missing(out["nodes"], expect)
    out["ready"] = not out["broker_error"] and not out["missing"] and not out["database_error"]
    return out


def main():
    args = _args(sys.argv[1:])
    started = time.monotonic()
    app = _app(args.app)
    broker, password = _broker(app)
    databases = {}
    if args.database:
        try:
            databases = _databases()
        except Exception as exc:  # pylint: disable=broad-except  # settings that do not load: said, not raised
            databases = {"default": (_Unloaded(exc), "Django's default")}
    queues = [q for q in args.queues.split(",") if q]
    while True:
        began = time.monotonic()
        out = ask(app, args.expect, args.timeout, queues, databases, [password])
        # Another round only when it would end within --wait, as long as this one took.
        if out["ready"] or time.monotonic() + INTERVAL + (time.monotonic() - began) - started > args.wait:
            break
        time.sleep(INTERVAL)
    out.update(broker=broker, expect=args.expect, waited=int(round(time.monotonic() - started)))
    print(json.dumps(out, sort_keys=True))


class _Unloaded(object):
    """A database whose settings did not load: each round says so, with the error."""
    settings_dict = {}

    def __init__(self, exc):
        self.exc = exc

    def ensure_connection(self):
        raise RuntimeError("Auth's Django settings did not load: %s" % _error(self.exc))

    def close(self):
        pass


if __name__ == "__main__":
    main()
