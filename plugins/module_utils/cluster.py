# -*- coding: utf-8 -*-
# Copyright: authops.celery_tuning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Pure logic behind the ``authops.celery_tuning.cluster_plan`` module: one plan for several hosts.

Several Auth hosts share one broker (Redis) and one database (MariaDB). Each host is planned alone
by ``worker_flags`` (see ``worker_plan``); this module checks what only the whole cluster can
tell, before anything changes on any host:

* exactly one beat across the hosts (none: periodic tasks never run; two: each runs twice);
* the workers' node names (``--hostname``, as supervisor and Celery expand them) are unique;
* the queues that must run one task at a time (``services``) have one slot in the whole cluster;
* the DB connections of every host's workers together fit the database's one budget.

It also says which hosts consume each queue (a queue consumed on one host only pauses while that
host is applied) and each host's share of the DB budget. Every refusal raises
:class:`ClusterError` with a message naming the hosts and what to change.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.authops.celery_tuning.plugins.module_utils.gate import GateError, check_name
from ansible_collections.authops.celery_tuning.plugins.module_utils.supervisor_format import EXPANSION_RE
from ansible_collections.authops.celery_tuning.plugins.module_utils.worker_options import DEFAULT_NAME

HOST_ROLES = ("web", "worker")
#: Celery's default queue: a worker without --queues consumes it.
DEFAULT_QUEUE = "celery"
#: Queues whose tasks must run one at a time in the whole cluster (Discord role sync breaks otherwise).
SINGLE_SLOT_QUEUES = ("services",)

# supervisor's %(name)s expansions in a command, and Celery's own %h, %n, %d, %% in --hostname.
_CELERY_RE = re.compile(r"%([hnd%])")


class ClusterError(Exception):
    """A cluster that must not be applied; the message says which hosts and what to change."""


# ---------------------------------------------------------------------------------------------
# input
# ---------------------------------------------------------------------------------------------

def _int(value, what):
    if isinstance(value, bool):
        raise ClusterError("%s must be an integer, got %r" % (what, value))
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ClusterError("%s must be an integer, got %r" % (what, value))


def _checked_name(what, value):
    try:
        return check_name(what, value, max_len=253)  # host names: DNS allows 253 characters
    except GateError as exc:
        raise ClusterError(str(exc))


def check_member(host, member):
    """One host's entry: its role, its node name for Celery's %h and its plan (from worker_flags)."""
    _checked_name("host", host)
    if not isinstance(member, dict):
        raise ClusterError("host %s: expected a dict with role, nodename and plan, got %r" % (host, member))
    role = member.get("role", "web")
    if role not in HOST_ROLES:
        raise ClusterError("host %s: celery_workers_host_role %r is not one of %s"
                           % (host, role, ", ".join(HOST_ROLES)))
    nodename = member.get("nodename") or host
    _checked_name("host %s: nodename" % host, nodename)
    plan = member.get("plan")
    if not isinstance(plan, dict) or not isinstance(plan.get("workers"), list):
        raise ClusterError("host %s: no plan of its workers (celery_workers_plan); run the celery_workers "
                           "role's preflight on it first" % host)
    budget = plan.get("budget") or {}
    return dict(
        host=host, role=role, nodename=nodename, group_name=member.get("group_name"),
        workers=[w for w in plan["workers"] if isinstance(w, dict)],
        db_connections=_int(budget.get("db_connections", 0), "host %s: budget.db_connections" % host),
        db_connection_budget=_int(budget.get("db_connection_budget", 0),
                                  "host %s: budget.db_connection_budget" % host))


# ---------------------------------------------------------------------------------------------
# node names
# ---------------------------------------------------------------------------------------------

def expand_node_name(node_name, program_name, process_num, nodename, numprocs=1, group_name=None):
    """The node name Celery registers for one process, e.g. ``worker_00@auth2``.

    supervisor expands ``%(program_name)s``, ``%(process_num)02d``, ... in the command first; Celery
    then expands ``%h`` (the host name), ``%n`` (its first label), ``%d`` (the domain) and adds
    ``celery@`` to a name without ``@``.
    """
    expansions = dict(program_name=program_name, process_num=process_num, numprocs=numprocs,
                      group_name=group_name or program_name, host_node_name=nodename)

    def supervisor(match):
        key = match.group(1)
        if key not in expansions:
            raise ClusterError("worker %s: node_name %r uses %%(%s)s, which the cluster check cannot "
                               "expand; use program_name, process_num, group_name, numprocs or "
                               "host_node_name (or Celery's %%h)" % (program_name, node_name, key))
        try:
            return ("%" + match.group(2)) % expansions[key]
        except (TypeError, ValueError) as exc:
            raise ClusterError("worker %s: node_name %r: %s" % (program_name, node_name, exc))

    short, _dot, domain = nodename.partition(".")
    celery = {"h": nodename, "n": short, "d": domain, "%": "%"}
    name = _CELERY_RE.sub(lambda m: celery[m.group(1)], EXPANSION_RE.sub(supervisor, node_name))
    return name if "@" in name else "celery@" + name


def worker_nodes(member):
    """Every Celery node of one host: name, worker, pool, slots and queues."""
    nodes = []
    for worker in member["workers"]:
        if worker.get("beat"):
            continue
        processes = worker.get("process_names") or [worker["name"]]
        start = int(worker.get("numprocs_start") or 0)
        template = worker.get("node_name") or DEFAULT_NAME
        for index, process in enumerate(processes):
            nodes.append(dict(
                node=expand_node_name(template, worker["name"], start + index, member["nodename"],
                                      len(processes), member["group_name"]),
                host=member["host"], worker=worker["name"], process=process, pool=worker.get("pool"),
                slots=_int(worker.get("concurrency") or 1, "worker %s: concurrency" % worker["name"]),
                queues=list(worker.get("queues") or [DEFAULT_QUEUE])))
    return nodes


def host_nodes(host, plan, nodename, group_name=None):
    """The Celery nodes one host runs by its plan (``celery_workers_plan``), named as its workers register
    them: ``nodename`` is the host's own name (what Celery's ``%h`` expands to), not the inventory's."""
    return worker_nodes(check_member(host, dict(role="web", nodename=nodename, group_name=group_name, plan=plan)))


# ---------------------------------------------------------------------------------------------
# checks
# ---------------------------------------------------------------------------------------------

def _check_beat(members, outside):
    beats = [m["host"] for m in members if any(w.get("beat") for w in m["workers"])]
    beats += sorted(h for h, role in outside.items() if role == "web")
    everyone = [m["host"] for m in members] + sorted(outside)
    if not beats:
        raise ClusterError(
            "no host of the cluster runs beat (%s): periodic tasks would never be sent. Give exactly one "
            "host celery_workers_host_role: web (it runs beat and the website)" % ", ".join(everyone))
    if len(beats) > 1:
        raise ClusterError(
            "%d hosts run beat (%s): every periodic task would be sent %d times. Keep beat on one host: set "
            "celery_workers_host_role: worker on the others (or celery_workers_beat_enabled: false)"
            % (len(beats), ", ".join(beats), len(beats)))
    return beats[0]


def _check_unique(nodes):
    seen = {}
    for node in nodes:
        other = seen.get(node["node"])
        if other is not None:
            raise ClusterError(
                "node name %s is used by %s on %s and by %s on %s: Celery's remote control cannot tell them "
                "apart and the broker sees one node. End node_name in @%%h (the default with "
                "celery_workers_cluster: true)" % (node["node"], other["process"], other["host"],
                                                   node["process"], node["host"]))
        seen[node["node"]] = node


def consumers(nodes):
    """queue -> [{host, node, slots}] over the whole cluster, queues sorted."""
    queues = {}
    for node in nodes:
        for queue in node["queues"]:
            queues.setdefault(queue, []).append(dict(host=node["host"], node=node["node"], slots=node["slots"]))
    return dict(sorted(queues.items()))


def _check_single_slot(queues):
    for queue in SINGLE_SLOT_QUEUES:
        taken = queues.get(queue, [])
        if sum(c["slots"] for c in taken) > 1:
            raise ClusterError(
                "queue %s must run one task at a time in the whole cluster (Discord role sync breaks "
                "otherwise), but %s consume it. Keep one single-threaded worker for it on one host (a worker "
                "host leaves it out: celery_workers_web_only_programs)"
                % (queue, ", ".join(_slots(c) for c in taken)))


def _slots(consumer):
    return "%s on %s (%d slot%s)" % (consumer["node"], consumer["host"], consumer["slots"],
                                     "" if consumer["slots"] == 1 else "s")


def _db_budget(members, given):
    if given is not None:
        budget = _int(given, "db_connection_budget")
        if budget < 1:
            raise ClusterError("db_connection_budget must be at least 1, got %d" % budget)
        return budget, "celery_tuning_db_connection_budget"
    values = dict((m["host"], m["db_connection_budget"]) for m in members)
    if len(set(values.values())) > 1:
        raise ClusterError(
            "the hosts share one database but give different celery_workers_db_connection_budget values (%s). "
            "Set it once for the cluster (group_vars), or give the database's budget as "
            "celery_tuning_db_connection_budget and keep the per-host values as each host's share"
            % ", ".join("%s=%d" % item for item in sorted(values.items())))
    return list(values.values())[0], "celery_workers_db_connection_budget"


def _check_db(members, budget, source):
    total = sum(m["db_connections"] for m in members)
    if total > budget:
        raise ClusterError(
            "the cluster's workers may hold %d DB connections together (%s) but the database's budget is %d "
            "(%s): every host uses the same MariaDB and its one max_connections. Lower concurrency or numprocs "
            "on some hosts, or raise the budget together with max_connections"
            % (total, ", ".join("%s %d" % (m["host"], m["db_connections"]) for m in members), budget, source))
    return total


# ---------------------------------------------------------------------------------------------
# the plan
# ---------------------------------------------------------------------------------------------

def _percent(part, whole):
    return int(round(100.0 * part / whole)) if whole else 0


def plan_cluster(hosts, db_connection_budget=None, outside=None):
    """Check the cluster and describe it. Raises ClusterError before returning anything.

    ``hosts``: host -> {role, nodename, group_name, plan} for every host of the play; ``outside``:
    host -> role for the cluster's hosts the play leaves out (``--limit``): a web host among them runs
    beat; they count for the beat check only.
    """
    if not isinstance(hosts, dict) or not hosts:
        raise ClusterError("hosts is empty; give every host of the cluster with its plan")
    outside = dict((h, role) for h, role in (outside or {}).items() if h not in hosts)
    for host, role in outside.items():
        if role not in HOST_ROLES:
            raise ClusterError("host %s: celery_workers_host_role %r is not one of %s"
                               % (host, role, ", ".join(HOST_ROLES)))
    members = [check_member(host, hosts[host]) for host in sorted(hosts)]
    beat_host = _check_beat(members, outside)
    nodes = [node for m in members for node in worker_nodes(m)]
    _check_unique(nodes)
    queues = consumers(nodes)
    _check_single_slot(queues)
    budget, source = _db_budget(members, db_connection_budget)
    total = _check_db(members, budget, source)
    return _describe(members, nodes, queues, beat_host, budget, total, outside)


def _describe(members, nodes, queues, beat_host, budget, total, outside):
    explain, warnings, per_host = [], [], {}
    for m in members:
        own = [n for n in nodes if n["host"] == m["host"]]
        per_host[m["host"]] = dict(
            role=m["role"], beat=m["host"] == beat_host, db_connections=m["db_connections"],
            db_share_percent=_percent(m["db_connections"], budget), nodes=[n["node"] for n in own],
            queues=sorted(set(q for n in own for q in n["queues"])))
        explain.append("%s (%s%s): %s; %d of the %d DB connections (%d%%)"
                       % (m["host"], m["role"], ", beat" if m["host"] == beat_host else "",
                          ", ".join("%s %s x%d" % (n["node"], n["pool"], n["slots"]) for n in own) or "no workers",
                          m["db_connections"], budget, per_host[m["host"]]["db_share_percent"]))
    explain.append("DB connections: %d of %d for the whole cluster" % (total, budget))
    for queue, taken in queues.items():
        hosts = sorted(set(c["host"] for c in taken))
        explain.append("queue %s: %s" % (queue, ", ".join("%s (%d)" % (c["node"], c["slots"]) for c in taken)))
        if len(hosts) == 1 and len(per_host) > 1:
            if queue in SINGLE_SLOT_QUEUES:
                explain.append("queue %s runs one task at a time on %s alone: it pauses while %s is applied and "
                               "its tasks wait in the broker" % (queue, hosts[0], hosts[0]))
            else:
                warnings.append("queue %s is consumed on %s only: it pauses while %s is applied; give it a "
                                "worker on another host to keep it consumed" % (queue, hosts[0], hosts[0]))
    if outside:
        warnings.append("hosts outside this play (%s) count for beat only: their DB connections are not in the "
                        "total; run on the whole cluster to check the budget" % ", ".join(sorted(outside)))
    return dict(beat_host=beat_host, hosts=per_host, nodes=nodes, queues=queues, db_connections=total,
                db_connection_budget=budget, explain=explain, warnings=warnings)
