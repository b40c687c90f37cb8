# -*- coding: utf-8 -*-
# Copyright: authops.celery_tuning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The planner's inputs from the role's: the programs this host runs (a web host all of them, a worker host
none of the web-only ones), Auth's beat, the node names of a cluster, and the measured RSS of the group's
processes."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.authops.celery_tuning.plugins.module_utils.gate import GateError
from ansible_collections.authops.celery_tuning.plugins.module_utils.worker_options import DEFAULT_NAME

HOST_ROLES = ("web", "worker")
#: What a worker host neither plans nor carries over: beat (one per cluster), the services worker (one task
#: at a time in the whole cluster) and the website.
WEB_ONLY_PROGRAMS = ("beat", "worker_services", "gunicorn")
#: Node names in a cluster: Celery expands %h to the host's name, so they are unique across the hosts.
CLUSTER_NODE_NAME = DEFAULT_NAME + "@%h"
#: The beat program the plan adds (Auth runs exactly one).
BEAT = dict(name="beat", beat=True)


def _name(item):
    return item.get("name") if isinstance(item, dict) else None


def host_programs(workers, carry_over=None, beat=True, host_role="web", web_only=WEB_ONLY_PROGRAMS,
                  source_programs=None, source=None):
    """``(workers to plan, programs to carry over, explain)`` for this host: beat first when ``beat`` and no
    worker is a beat already; on a worker host none of ``web_only``.

    ``source_programs``: the program names of Auth's file (``source``), or None when there is none. A worker
    with ``only_if_in_auth_file`` is planned only when that file has a program of its name: Auth 4.x ships
    no ``worker_services``, and nothing in its core routes tasks to queue ``services``."""
    if host_role not in HOST_ROLES:
        raise GateError("host_role must be web (the website, beat and the workers) or worker (workers only), got %r"
                        % (host_role,))
    if isinstance(workers, dict):
        workers = [workers]
    skipped = set(web_only or ()) if host_role == "worker" else set()
    has_beat = any(isinstance(w, dict) and w.get("beat") for w in workers or [])
    planned = [dict(BEAT)] if beat and not has_beat and BEAT["name"] not in skipped else []
    explain = []
    for worker in workers or []:
        if not (isinstance(worker, dict) and worker.get("only_if_in_auth_file")) or _name(worker) in skipped:
            continue
        if source_programs is None:
            explain.append("%s: planned (only_if_in_auth_file: there is no Auth file to compare with)" % _name(worker))
        elif _name(worker) in source_programs:
            explain.append("%s: planned because Auth's file (%s) has [program:%s]" % (_name(worker), source, _name(worker)))
        else:
            skipped.add(_name(worker))
            explain.append("%s: not added: Auth's file (%s) has no [program:%s] (Auth 4.x ships none). Set "
                           "only_if_in_auth_file: false on it in celery_workers_workers to add it"
                           % (_name(worker), source, _name(worker)))
    planned += [w for w in workers or [] if _name(w) not in skipped]
    carried = [p for p in carry_over or [] if _name(p) not in skipped]
    left_out = sorted((set(web_only or ()) if host_role == "worker" else set())
                      & set(_name(item) for item in list(workers or []) + list(carry_over or []) + [BEAT]))
    explain = ["%s: not run on a worker host (web_only_programs)" % name for name in left_out] + explain
    return planned, carried, explain


def cluster_defaults(worker_defaults, cluster):
    """The workers' defaults; in a cluster the node names end in ``@%h`` unless the defaults name them."""
    defaults = dict(node_name=CLUSTER_NODE_NAME) if cluster else {}
    defaults.update(worker_defaults or {})
    return defaults


def measured_rss(processes, group):
    """``{process name: RSS bytes}`` of the group's processes, as ``supervisor_info`` returns them."""
    return dict((p["name"], int(p["rss_bytes"])) for p in processes or []
                if isinstance(p, dict) and p.get("group") == group and p.get("name") and p.get("rss_bytes"))
