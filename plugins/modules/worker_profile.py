#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: authops.celery_tuning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: worker_profile
short_description: Measure the live Celery workers of an Alliance Auth server and recommend a plan
version_added: "0.2.0"
description:
  - Samples the running Celery workers of one app on the target for a window and returns, per
    supervisor program (worker nodes named C(<program>_NN), as Auth's C(-n %(program_name\)s_%(process_num\)02d)
    makes them), the completions per second and the mean tasks in flight, the mean task time by
    Little's law (tasks in flight / completions per second), the CPU seconds per task over each
    worker's whole process tree (from C(/proc), prefork children included), the backlog of the
    queues the program consumes, the pool and concurrency it runs, and a recommended pool,
    concurrency and numprocs with the reasoning.
  - "Read-only towards the workers and the broker: Celery's remote control C(inspect stats) (task
    totals, at the start and the end of the window), C(inspect active) (every O(interval)) and
    C(inspect active_queues) (once); queue lengths from the broker (kombu's passive queue declare:
    C(LLEN) on Redis). No events are needed, so it works on a stock Auth."
  - The workers are the processes supervisord runs for O(group) (C(getAllProcessInfo)); only when
    supervisord cannot be reached are they looked for among all processes (C(/proc)), with a warning.
  - The measurement runs with the workers' own Python (the virtualenv of their C(celery)), as the
    user they run as, in their working directory, and takes their environment (supervisor's
    C(environment=) included) from C(/proc) as that user, so it reaches the same broker with the same
    settings. Nothing of that environment passes through the module or is returned.
  - "The recommendation uses the sizing model of M(authops.celery_tuning.worker_flags) (one function
    for both): pool from O(workload) and the database driver found in the virtualenv (C(threads) for
    Django on mysqlclient), slots per process = 0.8 x task time / CPU time per task, numprocs grows to
    the CPU count when work waited in the queue through the whole window. DB and memory budgets are
    applied by M(authops.celery_tuning.worker_flags), which takes this module's result as its
    O(authops.celery_tuning.worker_flags#module:profile)."
  - A program running one process with concurrency 1 (Auth's C(worker_services)) is reported and kept
    as it is.
  - The figures are as good as the load in the window; with fewer than 20 tasks a program's
    recommendation falls back to the defaults and says so.
author:
  - authops maintainers (@authops)
extends_documentation_fragment:
  - authops.celery_tuning.attributes.INFO_MODULE
  - authops.celery_tuning.connection
options:
  app:
    description:
      - The Celery app of the workers (their C(-A)).
    type: str
    default: myauth
  group:
    description:
      - The supervisor group whose processes are measured. Default O(app) (Auth's group is named after
        its project).
    type: str
  window:
    description:
      - Seconds to sample, at least 5. The module returns after about this long plus the start of
        the virtualenv's Python and Celery.
    type: int
    default: 30
  interval:
    description:
      - Seconds between two C(inspect active) and backlog samples.
    type: float
    default: 2.0
  timeout:
    description:
      - Seconds each remote-control call waits for the workers' replies.
    type: float
    default: 1.0
  programs:
    description:
      - Only these supervisor programs (for example C(worker)). Default every program whose nodes answer.
      - A program given here whose nodes do not answer is an error.
    type: list
    elements: str
  workload:
    description:
      - What the tasks mostly do, for the recommended pool (as O(authops.celery_tuning.worker_flags#module:workers[].workload)).
    type: str
    choices: [io, cpu, mixed]
    default: io
  cpu_count:
    description:
      - CPUs for the recommendation. Default read from the target (affinity, cgroup quota).
    type: int
  python:
    description:
      - The Python of the workers' virtualenv (Auth's C(/home/allianceserver/venv/auth/bin/python)). Default the
        interpreter of the first worker process, the C(python) next to its C(celery), or, when Celery has set
        the process title, the C(bin/python) of the virtualenv whose site-packages the process has loaded.
    type: path
  project_dir:
    description:
      - The workers' working directory (Auth's C(/home/allianceserver/myauth)), where the measurement runs.
        When given, only worker processes running there are measured; default the first worker
        process's.
    type: path
  missing_ok:
    description:
      - When no worker process of O(app) runs, return an empty RV(workers) instead of failing.
    type: bool
    default: false
seealso:
  - module: authops.celery_tuning.worker_flags
    description: Plans the workers; takes this module's result as its O(authops.celery_tuning.worker_flags#module:profile).
notes:
  - Needs C(become) when the workers run as another user (it runs the measurement as their user with
    C(runuser) or C(setpriv)).
  - Root without C(CAP_SYS_PTRACE) (a container) cannot read another user's process's working directory or
    loaded libraries; give O(python) and O(project_dir) there.
  - Celery's C(inspect stats) counts tasks when they start; over a window of a steady load that is
    the completion rate.
"""

EXAMPLES = r"""
- name: Measure Auth's workers for a minute
  authops.celery_tuning.worker_profile:
    window: 60
  become: true
  register: profile

- name: Show what was measured and what it recommends
  ansible.builtin.debug:
    msg: >-
      {{ item.name }}: {{ item.completions_per_s }} tasks/s, {{ item.in_flight_mean }} in flight,
      {{ item.task_seconds }} s per task, {{ item.cpu_seconds_per_task }} CPU s per task, backlog {{ item.backlog_mean }};
      recommends {{ item.recommended.pool }} {{ item.recommended.concurrency }} x {{ item.recommended.numprocs }}
  loop: "{{ profile.workers }}"
  loop_control:
    label: "{{ item.name }}"

- name: Plan from it
  authops.celery_tuning.worker_flags:
    profile: "{{ profile }}"
    workers:
      - name: worker
        workload: io
  register: plan
"""

RETURN = r"""
workers:
  description: One entry per supervisor program whose worker nodes answered, sorted by name.
  returned: success
  type: list
  elements: dict
  contains:
    name:
      description: Program name (the node name without its C(_NN)).
      returned: always
      type: str
      sample: worker
    nodes:
      description: Celery node names of the program.
      returned: always
      type: list
      elements: str
      sample: ["celery@worker_00"]
    numprocs:
      description: Processes (nodes) of the program.
      returned: always
      type: int
      sample: 1
    pool:
      description: The pool the program runs.
      returned: always
      type: str
      sample: threads
    concurrency:
      description: Its concurrency per process (C(max-concurrency) of C(inspect stats)).
      returned: always
      type: int
      sample: 5
    queues:
      description: Queues it consumes.
      returned: always
      type: list
      elements: str
      sample: ["celery"]
    window_seconds:
      description: Seconds between the two C(inspect stats) calls.
      returned: always
      type: float
      sample: 30.1
    tasks:
      description: Tasks started in the window (Celery's totals).
      returned: always
      type: int
      sample: 1203
    completions_per_s:
      description: Tasks per second in the window.
      returned: always
      type: float
      sample: 39.9
    in_flight_mean:
      description: Mean number of tasks executing (C(inspect active)).
      returned: always
      type: float
      sample: 4.9
    task_seconds:
      description: Mean task time by Little's law, null without completions.
      returned: always
      type: float
      sample: 0.123
    cpu_seconds:
      description: CPU seconds the program's process trees used in the window.
      returned: always
      type: float
      sample: 9.2
    cpu_seconds_per_task:
      description: CPU seconds per task, null without completions.
      returned: always
      type: float
      sample: 0.0077
    cpu_cores_per_process:
      description: Mean cores each process used (1.0 is the ceiling of a threads or gevent process).
      returned: always
      type: float
      sample: 0.31
    slot_utilization:
      description: Tasks in flight / (concurrency x numprocs).
      returned: always
      type: float
      sample: 0.98
    backlog_min:
      description: Fewest tasks waiting in its queues over the samples (above 0 - work waited all the time).
      returned: always
      type: int
      sample: 350
    backlog_mean:
      description: Mean tasks waiting in its queues.
      returned: always
      type: float
      sample: 610.5
    backlog_last:
      description: Tasks waiting at the last sample.
      returned: always
      type: int
      sample: 12
    samples:
      description: Number of C(inspect active) / backlog samples.
      returned: always
      type: int
      sample: 15
    recommended:
      description: Pool, concurrency and numprocs from the sizing model, C(measured) (sized from the
        figures, not the defaults) and C(explain), the reasoning. Before DB and memory budgets.
      returned: always
      type: dict
      sample: {"pool": "threads", "concurrency": 20, "numprocs": 2, "measured": true, "explain": ["pool=threads: ..."]}
db_driver:
  description: The database driver found in the virtualenv (C(mysqlclient), C(pymysql), C(psycopg2), C(psycopg),
    C(sqlite3), C(none) or C(unknown)).
  returned: success
  type: str
  sample: mysqlclient
db_engine:
  description: Django's C(DATABASES.default.ENGINE), null when the app has no Django settings.
  returned: success
  type: str
  sample: django.db.backends.mysql
cpu_count:
  description: CPUs used for the recommendation.
  returned: success
  type: int
  sample: 2
target_utilization:
  description: Share of one core the sizing model aims at per process.
  returned: success
  type: float
  sample: 0.8
window_seconds:
  description: Length of the window.
  returned: success
  type: float
  sample: 30.1
queues:
  description: Every queue the workers consume.
  returned: success
  type: list
  elements: str
  sample: ["celery", "services"]
processes:
  description: The worker main processes found, with C(pid) and C(uid).
  returned: success
  type: list
  elements: dict
  sample: [{"pid": 812, "uid": 1000}]
probe_seconds:
  description: Wall time of the measurement, including the start of the virtualenv's Python.
  returned: success
  type: float
  sample: 33.2
"""

import json
import os
import pwd

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.authops.celery_tuning.plugins.module_utils.host_facts import host_facts
from ansible_collections.authops.celery_tuning.plugins.module_utils.supervisor_errors import (
    HAS_SUPERVISOR,
    SupervisorError,
)
from ansible_collections.authops.celery_tuning.plugins.module_utils.supervisor_rpc import (
    connect_from_module_params,
    connection_argument_spec,
)
from ansible_collections.authops.celery_tuning.plugins.module_utils.worker_profile import (
    PROBE,
    ProfileError,
    find_workers,
    group_pids,
    probe_args,
    probe_uid,
    summarize,
)


def argument_spec():
    spec = connection_argument_spec()
    spec.update(
        app=dict(type="str", default="myauth"),
        group=dict(type="str"),
        window=dict(type="int", default=30),
        interval=dict(type="float", default=2.0),
        timeout=dict(type="float", default=1.0),
        programs=dict(type="list", elements="str"),
        workload=dict(type="str", choices=["io", "cpu", "mixed"], default="io"),
        cpu_count=dict(type="int"),
        python=dict(type="path"),
        project_dir=dict(type="path"),
        missing_ok=dict(type="bool", default=False),
    )
    return spec


def _as_user(module, uid, python, cwd):
    """The command prefix that runs the probe as the workers' user (refused when it cannot be told)."""
    try:
        uid = probe_uid(uid, os.geteuid(), python, cwd)
    except ProfileError as exc:
        module.fail_json(msg=str(exc))
    if uid == os.geteuid():
        return []
    if os.geteuid() != 0:
        module.fail_json(msg="the workers run as uid %d: run this module as root (become: true) so it can "
                             "measure as their user" % uid)
    if uid == 0:
        return []
    user = pwd.getpwuid(uid).pw_name
    runuser = module.get_bin_path("runuser")
    if runuser:
        return [runuser, "-u", user, "--"]
    return [module.get_bin_path("setpriv", required=True), "--reuid=%d" % uid,
            "--regid=%d" % pwd.getpwuid(uid).pw_gid, "--init-groups"]


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    params = module.params
    try:
        probe_args(params["app"], params["window"], params["interval"], params["timeout"])
    except ProfileError as exc:
        module.fail_json(msg=str(exc))
    pids = None
    try:
        if not HAS_SUPERVISOR:
            raise SupervisorError("the supervisor Python package is not importable")
        pids = group_pids(connect_from_module_params(params).get_all_process_info(), params["group"] or params["app"])
    except SupervisorError as exc:
        module.warn("supervisord not reached (%s): looking for the workers among all processes" % exc)
    workers = find_workers(params["app"], project_dir=params["project_dir"], pids=pids)
    if not workers:
        if params["missing_ok"]:
            module.exit_json(changed=False, workers=[], processes=[], queues=[], db_driver="unknown",
                             db_engine=None, cpu_count=params["cpu_count"], target_utilization=None,
                             window_seconds=0, probe_seconds=0,
                             msg="no Celery worker process of app %s runs" % params["app"])
        module.fail_json(msg="no Celery worker process of app %s runs on the target (looked for `celery -A %s "
                             "worker` in /proc); start the workers, or check app" % (params["app"], params["app"]))
    first = workers[0]
    python = params["python"] or first["python"]
    cwd = params["project_dir"] or first["cwd"]
    if not python or not os.access(python, os.X_OK):
        module.fail_json(msg="cannot find or run the workers' python (%s); set python to the virtualenv's python, "
                             "e.g. /home/allianceserver/venv/auth/bin/python" % python)
    if not cwd or not os.path.isdir(cwd):
        module.fail_json(msg="cannot read the workers' working directory; set project_dir (Auth: /home/allianceserver/myauth)")
    arg = probe_args(params["app"], params["window"], params["interval"], params["timeout"], first["pid"])
    # The probe takes the worker's environment from /proc itself, as the worker's user: nothing of it
    # passes through this module.
    cmd = _as_user(module, first["uid"], python, cwd) + [python, "-c", PROBE, arg]
    rc, out, err = module.run_command(cmd, cwd=cwd, environ_update={"PYTHONDONTWRITEBYTECODE": "1"})
    if rc != 0:
        module.fail_json(msg="the measurement failed (rc %d) running %s in %s: %s"
                             % (rc, python, cwd, (err or out).strip()[-2000:]))
    try:
        raw = json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError):
        module.fail_json(msg="the measurement printed no result: %s" % (out + err)[-2000:])
    cpu_count = params["cpu_count"] or host_facts()["cpu_count"]
    try:
        result = summarize(raw, params["workload"], cpu_count, params["programs"])
    except ProfileError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=False, processes=[dict(pid=w["pid"], uid=w["uid"]) for w in workers],
                     probe_seconds=raw.get("probe_seconds"), **result)


if __name__ == "__main__":
    main()
