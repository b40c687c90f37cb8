#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: authops.celery_tuning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: worker_flags
short_description: Compute Celery worker flags for Alliance Auth supervisor programs
version_added: "0.1.0"
description:
  - Computes the Celery command line (argv and a supervisor-ready C(command=) string), the
    effective settings, the Python packages the pool needs and the superlance memmon limits for
    one or more Celery worker programs of an Alliance Auth installation.
  - Reads the CPU count (CPU affinity and cgroup v1/v2 CPU quota aware) and the memory
    (C(/proc/meminfo) C(MemTotal) limited by the cgroup v1/v2 memory limit) of the target; both
    can be overridden to plan for another host.
  - "Auto pool. O(workers[].pool=auto): O(workers[].single_threaded=true) gives C(prefork) with
    concurrency 1 (not C(solo), so C(--max-memory-per-child) and C(--max-tasks-per-child) keep
    working); otherwise workload and database driver decide: C(cpu) -> C(prefork); C(io) ->
    C(threads), or C(gevent) only when every blocking library is cooperative under gevent's patching
    (O(db_driver=pymysql) or O(db_driver=none)); C(mixed) -> C(threads). Auth's driver, mysqlclient,
    is a C extension that gevent cannot make cooperative: each query blocks every greenlet of the
    process. A given C(gevent)/C(eventlet) pool with such a driver gives a warning."
  - "Sizing model for O(workers[].concurrency=auto) and O(workers[].numprocs=auto), the same one
    M(authops.celery_tuning.worker_profile) recommends with. C(prefork): one child per CPU, one process.
    C(threads), C(gevent), C(eventlet) (one core per process, the GIL): slots per process = 0.8 (target
    utilisation) x task wall time / worker CPU time per task, at least 1; the process is then 80% busy.
    The task profile comes from O(profile) (a measurement of the running worker); without one,
    workload C(io) uses Auth 5.5's own update tasks as the bench measured them under Auth's threads 5
    (480 ms per task, 12 ms CPU per task: 32 slots) with one process per CPU (Auth's periodic updates
    come in bursts), and C(mixed) Auth's stock 5 in one process. With a measurement numprocs grows to
    the CPU count when work waited in the queue through the whole window, else to what the measured
    tasks in flight need. When the DB connection budget cannot hold every process at the model's size,
    auto numprocs shrinks first (to as few processes as hold the worker's share of the connections at
    the model's size), then concurrency (24 x 4 on 4 or more CPUs with the default budget of 100), and
    C(explain) says so. C(solo), single-threaded workers and beat -> 1; a given concurrency keeps
    numprocs C(auto) at 1."
  - Every pool slot (prefork child, thread, greenlet) may hold one database connection. Auto
    concurrency values are scaled down proportionally so that the sum over all workers fits
    O(db_connection_budget) (in a cluster, this host's share of it, see O(db_connection_hosts)), and prefork auto values are scaled down so that concurrency x
    per-child memory (O(workers[].max_memory_per_child), else the baseline) fits the memory
    budget. Each cap is reported in the worker's C(explain) list. Explicit concurrency values are
    never changed; exceeding a budget with them is an error.
  - "Memory estimate per program (the RSS it is expected to use; a memmon limit is the ceiling that
    restarts a process, not an estimate): prefork -> numprocs x (baseline + concurrency x
    (max_memory_per_child or baseline)); threads, gevent, eventlet -> numprocs x (baseline +
    concurrency x 0.25 MiB); solo and beat -> numprocs x baseline. The baseline is
    O(workers[].memory_baseline), else 128 MiB (a stock Auth 5.5 worker measured 103-121 MiB RSS; a
    threads process running Auth's tasks 121-130 MiB at 5 to 35 threads)."
  - "Memory budget: the planned programs together get the smaller of O(memory_budget_percent) of
    O(memory_total) and what O(memory_total) leaves after O(memory_reserve) (MariaDB, Redis, the OS) and
    the carried-over programs (gunicorn: its master and O(carry_over)'s C(--workers), 32 MiB + 128 MiB
    each). RV(budget.explain) shows the sum against the host's memory. A plan that does not fit shrinks
    (numprocs, prefork concurrency) and says why in C(explain), or is refused with the figures."
  - Memory protection. Celery honours C(--max-memory-per-child) (in KiB) and
    C(--max-tasks-per-child) for the C(prefork) pool only. For C(threads), C(gevent),
    C(eventlet) and C(solo) they are never emitted; the limit (O(workers[].memory_limit), else
    O(workers[].max_memory_per_child)) is returned in RV(memmon_limits) for superlance memmon,
    keyed by the real supervisor process names (for example C(worker_00)).
  - A memory limit below 128MB is an error unless O(allow_small_memory_limit=true). With
    O(workers[].memory_baseline) a limit below baseline + headroom, where headroom is the larger
    of 25% of the baseline and 64 MiB, is an error (or a warning with
    O(baseline_headroom_action=warn)); without a baseline a limit below 185 MiB (121 MiB + 64 MiB)
    gives a warning.
  - "Time limits the pool ignores: C(threads) and C(solo) enforce neither C(--time-limit) nor
    C(--soft-time-limit); C(gevent) and C(eventlet) enforce no soft limit. Such a limit gives a
    warning (the flag is still passed), or with O(strict=true) an error."
  - Stop safety. Supervisor kills a worker that outlives C(stopwaitsecs) and tasks running then
    are lost. With a hard O(workers[].time_limit) the module returns
    C(stopwaitsecs_recommended) = max(stopwaitsecs, time_limit + 30) and warns when
    O(workers[].stopwaitsecs) is lower than time_limit + 30.
  - All input is validated before anything is computed; errors say what to change.
  - The module never changes anything on the target.
author:
  - authops maintainers (@authops)
extends_documentation_fragment:
  - authops.celery_tuning.attributes.INFO_MODULE
options:
  workers:
    description:
      - The supervisor programs running Celery, for example C(worker) and C(worker_services).
      - Results are returned in the same order.
    type: list
    elements: dict
    required: true
    suboptions:
      # BEGIN generated from worker_options.WORKER_OPTIONS by scripts/module-docs.py: edit the table
      name:
        description:
          - Supervisor program name (C([program:<name>])).
        type: str
        required: true
      app:
        description:
          - Celery app passed as C(-A).
          - 'Default: C(myauth), or the O(worker_defaults) value.'
        type: str
      celery_bin:
        description:
          - Celery executable, normally C(<venv>/bin/celery).
          - 'Default: C(celery), or the O(worker_defaults) value.'
        type: str
      beat:
        description:
          - The program runs C(celery -A <app> beat) instead of a worker. Pool, concurrency, queues, Celery memory flags,
            prefetch and time limits must not be set; numprocs must be 1.
          - 'Default: C(false), or the O(worker_defaults) value.'
        type: bool
      loglevel:
        description:
          - Celery log level, emitted as C(--loglevel=<level>). The guide uses C(info).
          - 'Default: C(info), or the O(worker_defaults) value.'
        type: str
        choices:
          - debug
          - info
          - warning
          - error
          - critical
          - fatal
      pool:
        description:
          - Celery execution pool. V(auto) applies the rules in the description.
          - C(gevent) and C(eventlet) need the package of that name in the virtualenv (see RV(packages)).
          - 'Default: C(auto), or the O(worker_defaults) value.'
        type: str
        choices:
          - auto
          - prefork
          - threads
          - gevent
          - eventlet
          - solo
      concurrency:
        description:
          - V(auto) or an integer >= 1.
          - 'Default: C(auto), or the O(worker_defaults) value.'
        type: raw
      node_name:
        description:
          - Celery node name, emitted as C(--hostname=<node_name>) and left unescaped for supervisor's expansion. An empty
            string omits the flag.
          - 'Default: C(%(program_name)s_%(process_num)02d), or the O(worker_defaults) value.'
        type: str
      queues:
        description:
          - Queues to consume (C(--queues=a,b)). Omit for Celery's default queue.
        type: list
        elements: str
      prefetch_multiplier:
        description:
          - Emitted as C(--prefetch-multiplier=N). C(0) means unlimited (warning).
        type: int
      time_limit:
        description:
          - Hard task time limit in seconds (C(--time-limit=N)). Enforced by C(prefork), C(gevent) and C(eventlet) only;
            with C(threads) or C(solo) a warning, or an error with O(strict=true).
        type: int
      soft_time_limit:
        description:
          - Soft task time limit in seconds (C(--soft-time-limit=N)); must be lower than O(workers[].time_limit). Enforced
            by C(prefork) only; with other pools a warning, or an error with O(strict=true).
        type: int
      max_memory_per_child:
        description:
          - Size such as C(256MB), C(262144KB) or C(1GB) (supervisor C(byte_size) rules; KB/MB/GB are 1024 multiples,
            case-insensitive, plain integers are bytes; KiB/MiB/GiB and K/M/G are accepted too).
          - 'C(prefork) pool: emitted as C(--max-memory-per-child=<KiB>) (256MB -> 262144).'
          - Other pools ignore it; with O(strict=true) that is an error, otherwise a warning and the size becomes the
            memmon limit (unless O(workers[].memory_limit) is set).
        type: str
      max_tasks_per_child:
        description:
          - Emitted as C(--max-tasks-per-child=N) for the C(prefork) pool. Other pools ignore it (error with O(strict=true),
            otherwise a warning and it is dropped).
        type: int
      workload:
        description:
          - What the tasks mostly do; used when O(workers[].pool=auto). Auth's tasks are mostly I/O (ESI HTTP calls and
            database updates).
          - 'Default: C(io), or the O(worker_defaults) value.'
        type: str
        choices:
          - io
          - cpu
          - mixed
      memory_limit:
        description:
          - Memmon limit (a size) for every process of this program, returned in RV(memmon_limits). The way to protect
            C(threads), C(gevent), C(eventlet) and C(solo) workers; with C(prefork) memmon only measures the main process
            unless run with C(--cumulative); with it (the memmon role default) the limit covers the parent and all children,
            and a limit below (concurrency + 1) x baseline plus headroom gives a warning.
        type: str
      memory_baseline:
        description:
          - Measured RSS of an idle worker process (a size). Memory limits below baseline + max(25%, 64 MiB) are refused
            (see O(baseline_headroom_action)). Also used for the memory estimate.
        type: str
      single_threaded:
        description:
          - Run one task at a time, as C(worker_services) on queue C(services) must (Discord role sync breaks otherwise).
            With V(auto) pool this is C(prefork) with concurrency 1. A concurrency or numprocs above 1 is an error.
          - 'Default: C(false), or the O(worker_defaults) value.'
        type: bool
      only_if_in_auth_file:
        description:
          - 'Plan this worker only when Auth''s own file (the source of intent) has a program of this name, or when there
            is none to compare with. The role''s C(worker_services) has it: Auth 5.x ships that program and Auth 4.x does
            not.'
          - 'Default: C(false), or the O(worker_defaults) value.'
        type: bool
      numprocs:
        description:
          - Supervisor C(numprocs) of the program, V(auto) or an integer >= 1. V(auto) is sized by the model in the description
            (threads, gevent and eventlet with auto concurrency get up to one process per CPU; other workers 1).
          - 'Default: C(auto), or the O(worker_defaults) value.'
        type: raw
      numprocs_start:
        description:
          - Supervisor C(numprocs_start) of the program.
          - 'Default: C(0), or the O(worker_defaults) value.'
        type: int
      process_name:
        description:
          - Supervisor C(process_name) expression, expanded with C(program_name), C(process_num), C(group_name) and C(numprocs)
            into the real process names used for memmon.
          - 'Default: C(%(program_name)s_%(process_num)02d), or the O(worker_defaults) value.'
        type: str
      group_name:
        description:
          - Value of the C(group_name) expansion in O(workers[].process_name). Supervisor uses the name of the C([group:x])
            section the program belongs to (C(myauth) in Auth), else the program name (the default).
        type: str
      stopwaitsecs:
        description:
          - Supervisor C(stopwaitsecs) of the program (Auth uses 600), checked against O(workers[].time_limit).
          - 'Default: C(600), or the O(worker_defaults) value.'
        type: int
      extra_args:
        description:
          - Further Celery worker arguments appended to the argv. Each item is split like a shell would (C(--without-mingle
            --without-gossip) gives two arguments).
          - C(-B)/C(--beat) (a second beat) and C(-D)/C(--detach) (a process supervisor loses) are refused.
          - Flags the module manages are refused in both C(--x=v) and C(--x v) forms - C(-A)/C(--app), C(-P)/C(--pool),
            C(-c)/C(--concurrency), C(--autoscale), C(-Q)/C(--queues), C(-l)/C(--loglevel), C(-n)/C(--hostname), C(--max-memory-per-child),
            C(--max-tasks-per-child), C(--prefetch-multiplier), C(--time-limit), C(--soft-time-limit). Use O(workers[].concurrency)
            instead of C(--autoscale), which Auth's supervisor programs do not need (a fixed pool, sized by the model,
            keeps the DB connection budget predictable).
          - 'Example: C(["--without-mingle --without-gossip"]).'
        type: list
        elements: str
      supervisor:
        description:
          - Further C([program:x]) options of this program (for example C(startsecs) or C(priority)), over O(program_defaults).
            Options written from the plan (command, directory, user, numprocs, process_name, stopwaitsecs, logs, environment)
            are refused.
        type: dict
      # END generated
  worker_defaults:
    description:
      - Worker options applied to every worker that does not set them (not to beat).
    type: dict
    default: {}
  beat:
    description:
      - Add Auth's beat program (C(celery -A <app> beat)) before the workers, unless one of O(workers) is a beat
        already or this is a worker host (O(host_role=worker)).
    type: bool
    default: true
  host_role:
    description:
      - The host's part in a cluster. V(web) runs the website, beat and the workers; V(worker) runs workers only,
        and none of O(web_only_programs) is planned or carried over.
    type: str
    choices: [web, worker]
    default: web
  web_only_programs:
    description:
      - "What a worker host neither plans nor carries over (beat: one per cluster; the services worker: one task at a
        time in the whole cluster; the website)."
    type: list
    elements: str
    default: [beat, worker_services, gunicorn]
  cluster:
    description:
      - "The host shares its broker with other hosts: the default node name ends in C(@%h) (the host's name), so
        node names stay unique across the hosts. A node name in O(worker_defaults) or a worker wins."
    type: bool
    default: false
  processes:
    description:
      - The processes supervisord runs, as M(authops.celery_tuning.supervisor_info) returns them; those of
        O(group_name) give O(measured_rss).
    type: list
    elements: dict
    default: []
  app:
    description:
      - Celery app (C(-A)) of every worker that does not set O(workers[].app).
    type: str
  celery_bin:
    description:
      - Celery executable of every worker that does not set O(workers[].celery_bin).
    type: str
  group_name:
    description:
      - The supervisor C([group:x]) of the programs; the name their processes carry in
        C(%(group_name\)s).
    type: str
    default: myauth
  project_dir:
    description:
      - The programs' working directory (C(directory=)).
    type: path
    default: /home/allianceserver/myauth
  user:
    description:
      - The user every program runs as (C(user=)). C(root) is refused unless O(allow_root=true).
    type: str
    default: allianceserver
  log_dir:
    description:
      - Directory of the files supervisord (root) opens for the programs' output. It must be a
        directory only root can write, or a user could point a log file at a file of root's.
      - The module fails when it, or its parent, exists and is not a directory owned by root that
        only root can write.
      - Default C(<supervisor log dir>/<group_name>), supervisor's log directory as its OS family's package
        lays it out (C(/var/log/supervisor/myauth)).
    type: path
  program_defaults:
    description:
      - C([program:x]) options of every planned program (for example C(autostart), C(startsecs),
        C(killasgroup)). A worker's O(workers[].supervisor) wins.
      - The default is what Auth's own programs run with (restarted when they exit, a 10 s start, the
        process group killed on a hard stop, priority 998).
    type: dict
    default: {autostart: true, autorestart: true, startsecs: 10, killasgroup: true, stopasgroup: false, priority: 998}
  carry_over:
    description:
      - Programs of an adopted file that the plan does not tune (Auth's gunicorn first), as
        returned by M(authops.celery_tuning.supervisor_conf_info) in C(carry_over). They are
        written as they were, checked by the same gate; their logs move to O(log_dir).
    type: list
    elements: dict
    default: []
  source_programs:
    description:
      - Every program name of Auth's file (RV(authops.celery_tuning.supervisor_conf_info#module:source_programs)),
        or unset when there is no such file. A worker with C(only_if_in_auth_file) is planned only when
        its name is among them (RV(left_out) says why not).
    type: list
    elements: str
  source:
    description:
      - The file O(source_programs) came from, for the messages.
    type: str
  allow_root:
    description:
      - Allow a program to run as root (O(user=root), or a carried-over program without C(user=)).
    type: bool
    default: false
  measured_rss:
    description:
      - RSS in bytes of the running processes, by real process name, over those of O(processes). A worker with a memory limit and no
        O(workers[].memory_baseline) takes its largest process, rounded up to 32 MiB, as baseline.
    type: dict
    default: {}
  supervisord_environment:
    description:
      - The C([supervisord] environment=) of an adopted file (Auth's C(AA_*) variables), written
        back as it was so that nothing the programs see is lost.
      - "Not for secrets: use the role's C(celery_workers_environment)."
    type: dict
    default: {}
  adopted_memmon:
    description:
      - The memmon listener of an adopted file, as M(authops.celery_tuning.supervisor_conf_info)
        returns it in C(memmon). Its limits are translated to the real process names
        (C(-p worker=256MB) -> C(worker_00)) and kept in RV(memmon_limits) for every process the plan
        gives no limit. memmon counts children (C(-c)), so a program whose children hold the
        memory (gunicorn's workers, prefork) gets the size times its processes.
    type: dict
  reserved_names:
    description:
      - Process group names other files give supervisord (the memmon listener's). No group or program may
        take one of them (supervisord would drop one of the two silently).
    type: list
    version_added: "0.2.0"
    elements: str
    default: [memmon]
  environment_names:
    description:
      - The names (never the values) of the planned programs' C(environment=) (C(celery_workers_environment)), so
        that C(%(ENV_X\)s) may name them.
    type: list
    elements: str
    default: []
  supervisor_config:
    description:
      - supervisord's main configuration file. Every C(%(ENV_X\)s) must name a variable of the running
        supervisord's environment (read from C(/proc/<pid>/environ), preferring the daemon started with this file)
        or of C([supervisord] environment=); without a running supervisord only the latter count.
      - Default the config of the OS family whose config exists on the target (C(/etc/supervisor/supervisord.conf)
        on Debian and Ubuntu, C(/etc/supervisord.conf) on the RHEL family).
    type: path
  service_unit:
    description:
      - The systemd unit that runs supervisord. CPU and memory limits are read from its cgroup (C(cpu.max),
        C(memory.max), walking up the tree), where the workers run, not from the module's own (an SSH
        session's). Without systemd, or with an empty value, the module's own cgroup and the host are used.
        RV(host) says which source each figure came from.
      - A name without a suffix is a service (C(supervisord) is C(supervisord.service)). Default the unit of
        the OS family whose supervisord config exists on the target (C(supervisor.service), C(supervisord.service)
        on the RHEL family).
    type: str
  cpu_count:
    description:
      - CPUs available to the workers. Default read from the target (affinity, cgroup quota).
    type: int
  memory_total:
    description:
      - Memory of the host (a size such as C(8GB)). Default read from the target
        (C(MemTotal) limited by the cgroup memory limit).
    type: str
  memory_budget_percent:
    description:
      - Share of O(memory_total) the workers may use, in percent (1-100).
    type: int
    default: 50
  memory_reserve:
    description:
      - Memory (a size) the host keeps for what runs beside the group's programs, MariaDB, Redis and the OS. The
        planned workers may use the smaller of O(memory_budget_percent) of O(memory_total) and what O(memory_total)
        leaves after this reserve and the carried-over programs (gunicorn). C(0) when MariaDB and Redis run
        elsewhere and the host does nothing else.
      - Default C(512MB) (MariaDB's default 128 MiB buffer pool and per-connection buffers, Redis, the OS).
    type: str
    version_added: "0.3.0"
  db_connection_budget:
    description:
      - Database connections all workers together may hold. MariaDB's default
        C(max_connections) is 151; the default 100 leaves room for gunicorn, cron jobs and
        administrators.
    type: int
    default: 100
  db_connection_hosts:
    description:
      - The hosts that share O(db_connection_budget) (a cluster of Auth hosts with one MariaDB and its one
        C(max_connections)). The auto values are sized within this host's even share of the budget,
        O(db_connection_budget) // O(db_connection_hosts), and C(explain) says when the share capped them; a
        given concurrency is never changed and is checked against the whole budget (the
        M(authops.celery_tuning.cluster_plan) module checks the hosts' sum). RV(budget.db_connection_budget)
        stays the whole budget.
      - C(1) (the default) for a host alone, or when O(db_connection_budget) already is this host's share.
    type: int
    default: 1
    version_added: "0.3.0"
  allow_small_memory_limit:
    description:
      - Accept memory limits below 128MB (a warning instead of an error).
    type: bool
    default: false
  baseline_headroom_action:
    description:
      - What to do when a memory limit is below O(workers[].memory_baseline) plus headroom.
    type: str
    choices: [error, warn]
    default: warn
  strict:
    description:
      - Fail when memory flags or time limits are set on a pool that ignores them, instead of warning
        (memory flags then become a memmon limit).
    type: bool
    default: false
  profile:
    description:
      - A measurement of the running workers, as M(authops.celery_tuning.worker_profile) returns it
        (its C(workers) list and C(db_driver)). Workers with auto concurrency or numprocs are sized from
        their program's measured task time and CPU time per task (see the sizing model). A program with
        too few tasks in the window is sized from the defaults, and C(explain) says so.
    type: dict
  db_driver:
    description:
      - The database driver of the tasks, for the auto pool. Default the O(profile)'s C(db_driver),
        else C(mysqlclient) (Auth's).
    type: str
    choices: [mysqlclient, pymysql, psycopg2, psycopg, sqlite3, none, unknown]
seealso:
  - name: Alliance Auth Celery tuning
    description: The guide these rules follow.
    link: https://allianceauth.readthedocs.io/en/latest/maintenance/tuning/celery.html
notes:
  - Supervisor expands %(name)s expressions in C(command); the returned C(command) escapes every other
    C(%) as C(%%). The C(argv) list is unescaped.
"""

EXAMPLES = r"""
- name: Plan the stock Auth workers
  authops.celery_tuning.worker_flags:
    workers:
      - name: worker
        celery_bin: /home/allianceserver/venv/auth/bin/celery
        workload: io
        memory_limit: 512MB
      - name: worker_services
        celery_bin: /home/allianceserver/venv/auth/bin/celery
        queues: [services]
        single_threaded: true
        max_memory_per_child: 256MB
  register: flags

- name: Prefork worker with Celery's own memory protection
  authops.celery_tuning.worker_flags:
    workers:
      - name: worker
        pool: prefork
        max_memory_per_child: 256MB
        memory_baseline: 121MiB
        time_limit: 540
        soft_time_limit: 480
  register: flags

- name: Plan for another host (8 CPUs, 16 GB)
  authops.celery_tuning.worker_flags:
    cpu_count: 8
    memory_total: 16GB
    memory_budget_percent: 40
    db_connection_budget: 120
    workers:
      - name: worker
        pool: gevent
        concurrency: 10
        max_memory_per_child: 512MB
  register: plan

- name: Plan one of two hosts that share one MariaDB (auto values within 100 // 2 = 50 connections)
  authops.celery_tuning.worker_flags:
    db_connection_budget: 100
    db_connection_hosts: 2
    workers:
      - name: worker
        workload: io
  register: plan

- name: Plan from a measurement of the running workers
  authops.celery_tuning.worker_profile:
    window: 60
  register: profile

- name: Size the auto workers from it
  authops.celery_tuning.worker_flags:
    profile: "{{ profile }}"
    workers:
      - name: worker
        workload: io
  register: flags

- name: Show the supervisor command line
  ansible.builtin.debug:
    msg: "{{ flags.workers[0].command }}"
"""

RETURN = r"""
workers:
  description: One entry per input worker, in the same order.
  returned: success
  type: list
  elements: dict
  contains:
    name:
      description: Program name.
      returned: always
      type: str
      sample: worker
    argv:
      description: Celery argv, unescaped, with supervisor expansions kept.
      returned: always
      type: list
      elements: str
      sample: ["celery", "-A", "myauth", "worker", "--loglevel=info", "--pool=gevent", "--concurrency=10",
               "--hostname=%(program_name)s_%(process_num)02d"]
    command:
      description: Supervisor-ready C(command=) value (shell-quoted, literal C(%) as C(%%)).
      returned: always
      type: str
      sample: "celery -A myauth worker --loglevel=info --pool=gevent --concurrency=10 '--hostname=%(program_name)s_%(process_num)02d'"
    beat:
      description: Whether this is a beat program.
      returned: always
      type: bool
      sample: false
    pool:
      description: Effective pool; null for beat.
      returned: always
      type: str
      sample: gevent
    concurrency:
      description: Effective concurrency (1 for solo, single-threaded and beat).
      returned: always
      type: int
      sample: 10
    loglevel:
      description: Effective log level.
      returned: always
      type: str
      sample: info
    queues:
      description: Queues consumed (empty for the default queue).
      returned: always
      type: list
      elements: str
      sample: ["services"]
    node_name:
      description: Celery node name template.
      returned: always
      type: str
      sample: "%(program_name)s_%(process_num)02d"
    single_threaded:
      description: Whether the worker runs one task at a time.
      returned: always
      type: bool
      sample: false
    process_names:
      description: Real supervisor process names of the program.
      returned: always
      type: list
      elements: str
      sample: ["worker_00"]
    max_memory_per_child_kib:
      description: Value of C(--max-memory-per-child) in KiB, null when not emitted.
      returned: always
      type: int
      sample: 262144
    max_tasks_per_child:
      description: Value of C(--max-tasks-per-child), null when not emitted.
      returned: always
      type: int
      sample: 1000
    prefetch_multiplier:
      description: Value of C(--prefetch-multiplier), null when not emitted.
      returned: always
      type: int
      sample: 1
    time_limit:
      description: Hard time limit in seconds, null when not set.
      returned: always
      type: int
      sample: 540
    soft_time_limit:
      description: Soft time limit in seconds, null when not set.
      returned: always
      type: int
      sample: 480
    stopwaitsecs:
      description: The given supervisor C(stopwaitsecs).
      returned: always
      type: int
      sample: 600
    stopwaitsecs_recommended:
      description: C(stopwaitsecs) to use, max(stopwaitsecs, time_limit + 30).
      returned: always
      type: int
      sample: 600
    memmon_limits:
      description: Memmon limits of this program's processes.
      returned: always
      type: dict
      sample: {"worker_00": "512MB"}
    packages:
      description: Python packages the pool needs in the virtualenv.
      returned: always
      type: list
      elements: str
      sample: ["gevent"]
    memory_estimate_bytes:
      description: Estimated memory of all processes of the program.
      returned: always
      type: int
      sample: 536870912
    db_connections:
      description: Database connections the program may hold (numprocs x concurrency).
      returned: always
      type: int
      sample: 10
    warnings:
      description: Warnings for this worker.
      returned: always
      type: list
      elements: str
      sample: []
    explain:
      description: Why each value was chosen.
      returned: always
      type: list
      elements: str
      sample: ["pool=gevent: given", "concurrency=10: given"]
programs:
  description:
    - The finished C([program:x]) sections, planned workers first, then the carried-over programs.
      Each has C(name), C(kind) (C(worker) or C(carried)) and C(options), a list of C([key, value]) pairs in
      the order they are written, and C(environment), whether the program gets the role's C(environment=) line
      (O(environment_names); the values stay on the controller). Every value passed the gate.
  returned: success
  type: list
  elements: dict
  sample: [{"name": "worker", "kind": "worker", "environment": false,
            "options": [["command", "celery -A myauth worker"], ["numprocs", "1"]]}]
group:
  description: The C([group:x]) section, with C(name), C(programs) and C(priority).
  returned: success
  type: dict
  sample: {"name": "myauth", "programs": ["beat", "worker", "worker_services", "gunicorn"], "priority": 999}
supervisord_environment:
  description: The C([supervisord] environment=) to write, as C([name, value]) pairs.
  returned: success
  type: list
  elements: list
  sample: [["AA_USER", "allianceserver"]]
supervisord_environment_line:
  description: RV(supervisord_environment) as supervisor's C(environment=) value (C(%) escaped); empty without one.
  returned: success
  type: str
  sample: AA_USER="allianceserver",AA_PROJECT="myauth"
left_out:
  description:
    - Why a program of O(workers), O(carry_over) or Auth's beat is not planned on this host (a worker host),
      and why a worker with C(only_if_in_auth_file) is planned or not.
  returned: success
  type: list
  elements: str
  sample: ["gunicorn: not run on a worker host (web_only_programs)",
           "worker_services: not added: Auth's file (/home/allianceserver/myauth/supervisor.conf) has no
            [program:worker_services] (Auth 4.x ships none). Set only_if_in_auth_file: false on it in
            celery_workers_workers to add it"]
adopted_memmon:
  description: The adopted memmon limits by process name (C(limits)), how each was translated (C(explain)) and
    what named no process (C(dropped)).
  returned: success
  type: dict
  sample: {"limits": {"worker_00": "256MB"}, "explain": [], "dropped": []}
sections:
  description: Every section the group file defines; the config checker refuses a file with others.
  returned: success
  type: list
  elements: str
  sample: ["program:beat", "program:worker", "group:myauth"]
packages:
  description: Sorted union of the Python packages all pools need.
  returned: success
  type: list
  elements: str
  sample: ["gevent"]
memmon_limits:
  description: Memmon limits of all workers, real process name -> size string.
  returned: success
  type: dict
  sample: {"worker_00": "512MB"}
host:
  description: Host facts used for the plan.
  returned: success
  type: dict
  contains:
    cpu_count:
      description: CPUs used for the plan.
      returned: always
      type: int
      sample: 4
    cpu_count_source:
      description: Where the CPU count came from (C(parameter), C(sched_getaffinity), C(cgroup v2 cpu.max), ...).
      returned: always
      type: str
      sample: sched_getaffinity
    memory_bytes:
      description: Memory used for the plan, in bytes.
      returned: always
      type: int
      sample: 8589934592
    memory_source:
      description: Where the memory came from (C(parameter), C(/proc/meminfo MemTotal), C(cgroup v2 memory.max), ...).
      returned: always
      type: str
      sample: /proc/meminfo MemTotal
    limits_from:
      description: The systemd unit (O(service_unit)) whose cgroup's CPU and memory limits were read, and that
        cgroup; both null when the limits are not read from a unit (no systemd, or both figures given).
      returned: always
      type: dict
      sample: {"unit": "supervisord.service", "control_group": "/system.slice/supervisord.service"}
budget:
  description: Budgets and the plan's use of them.
  returned: success
  type: dict
  contains:
    memory_budget_percent:
      description: The given O(memory_budget_percent).
      returned: always
      type: int
      sample: 50
    memory_budget_bytes:
      description: Memory the workers may use.
      returned: always
      type: int
      sample: 4294967296
    memory_estimate_bytes:
      description: Estimated memory of all workers.
      returned: always
      type: int
      sample: 805306368
    memory_reserve_bytes:
      description: The O(memory_reserve) kept for MariaDB, Redis and the OS, in bytes.
      returned: always
      type: int
      sample: 536870912
    memory_carried_bytes:
      description: Estimated memory of the carried-over programs (gunicorn), in bytes.
      returned: always
      type: int
      sample: 436207616
    memory_host_estimate_bytes:
      description: The workers' estimate plus the carried-over programs plus the reserve, in bytes; at most the
        host's memory.
      returned: always
      type: int
      sample: 1664090112
    explain:
      description: How the memory budget was found and what the host's memory holds.
      returned: always
      type: list
      elements: str
      sample: ["memory budget 1.0 GiB: 50% of 2.0 GiB; the host keeps the reserve 512.0 MiB for MariaDB, Redis
                and the OS and 416.0 MiB for the carried-over programs besides"]
    db_connection_budget:
      description: The given O(db_connection_budget) (in a cluster, the whole cluster's).
      returned: always
      type: int
      sample: 100
    db_connection_hosts:
      description: The given O(db_connection_hosts).
      returned: always
      type: int
      sample: 2
      version_added: "0.3.0"
    db_connection_share:
      description: The connections this host's auto values were sized within, O(db_connection_budget) //
        O(db_connection_hosts).
      returned: always
      type: int
      sample: 50
      version_added: "0.3.0"
    db_connections:
      description: Database connections all workers may hold.
      returned: always
      type: int
      sample: 11
warnings:
  description: All warnings, each prefixed with the worker name (also shown as task warnings).
  returned: when there are warnings
  type: list
  elements: str
  sample: ["worker: max_memory_per_child ignored by Celery with pool gevent: not passed to Celery; used as the memmon limit instead"]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.authops.celery_tuning.plugins.module_utils.budgets import (
    DEFAULT_DB_CONNECTION_BUDGET,
    DEFAULT_MEMORY_BUDGET_PERCENT,
)
from ansible_collections.authops.celery_tuning.plugins.module_utils.memory_limits import HEADROOM_ACTIONS
from ansible_collections.authops.celery_tuning.plugins.module_utils.plan_errors import WorkerFlagsError
from ansible_collections.authops.celery_tuning.plugins.module_utils.sizing import DB_DRIVERS
from ansible_collections.authops.celery_tuning.plugins.module_utils.worker_options import worker_argument_spec
from ansible_collections.authops.celery_tuning.plugins.module_utils.gate import GateError
from ansible_collections.authops.celery_tuning.plugins.module_utils.host_facts import host_facts, root_only_dir_problems
from ansible_collections.authops.celery_tuning.plugins.module_utils.systemd_units import unit_name
from ansible_collections.authops.celery_tuning.plugins.module_utils.procfs import supervisord_environ_names
from ansible_collections.authops.celery_tuning.plugins.module_utils.plan_inputs import (
    HOST_ROLES,
    WEB_ONLY_PROGRAMS,
    cluster_defaults,
    host_programs,
    measured_rss,
)
from ansible_collections.authops.celery_tuning.plugins.module_utils.programs import AUTH_PROGRAM_DEFAULTS, plan_group
from ansible_collections.authops.celery_tuning.plugins.module_utils.root_safe import root_safe_problems
from ansible_collections.authops.celery_tuning.plugins.module_utils.supervisor_layout import installed


def argument_spec():
    return dict(
        workers=dict(type="list", elements="dict", required=True, options=worker_argument_spec()),
        worker_defaults=dict(type="dict", default={}),
        beat=dict(type="bool", default=True),
        host_role=dict(type="str", choices=list(HOST_ROLES), default="web"),
        web_only_programs=dict(type="list", elements="str", default=list(WEB_ONLY_PROGRAMS)),
        cluster=dict(type="bool", default=False),
        processes=dict(type="list", elements="dict", default=[]),
        app=dict(type="str"),
        celery_bin=dict(type="str"),
        group_name=dict(type="str", default="myauth"),
        project_dir=dict(type="path", default="/home/allianceserver/myauth"),
        user=dict(type="str", default="allianceserver"),
        log_dir=dict(type="path"),
        program_defaults=dict(type="dict", default=dict(AUTH_PROGRAM_DEFAULTS)),
        carry_over=dict(type="list", elements="dict", default=[]),
        source_programs=dict(type="list", elements="str"),
        source=dict(type="str"),
        allow_root=dict(type="bool", default=False),
        measured_rss=dict(type="dict", default={}),
        supervisord_environment=dict(type="dict", default={}),
        adopted_memmon=dict(type="dict"),
        cpu_count=dict(type="int"),
        memory_total=dict(type="str"),
        service_unit=dict(type="str"),
        reserved_names=dict(type="list", elements="str", default=["memmon"]),
        environment_names=dict(type="list", elements="str", default=[]),
        supervisor_config=dict(type="path"),
        memory_budget_percent=dict(type="int", default=DEFAULT_MEMORY_BUDGET_PERCENT),
        memory_reserve=dict(type="str"),
        db_connection_budget=dict(type="int", default=DEFAULT_DB_CONNECTION_BUDGET),
        db_connection_hosts=dict(type="int", default=1),
        allow_small_memory_limit=dict(type="bool", default=False),
        baseline_headroom_action=dict(type="str", choices=list(HEADROOM_ACTIONS), default="warn"),
        strict=dict(type="bool", default=False),
        profile=dict(type="dict"),
        db_driver=dict(type="str", choices=list(DB_DRIVERS)),
    )


def _host(module):
    """CPU count and memory: the parameters, else read on the target."""
    params = module.params
    cpu = (params["cpu_count"], "parameter")
    memory = (params["memory_total"], "parameter")
    limits_from = dict(unit=None, control_group=None)
    if cpu[0] is None or memory[0] is None:
        service = installed()["service_name"] if params["service_unit"] is None else params["service_unit"]
        unit, control_group = unit_name(service) if service else None, None
        systemctl = module.get_bin_path("systemctl") if unit else None
        if systemctl:
            rc, out, dummy = module.run_command([systemctl, "show", "--property=ControlGroup", "--value", unit])
            control_group = out.strip() if rc == 0 else None
        limits_from = dict(unit=unit if control_group else None, control_group=control_group or None)
        facts = host_facts(unit=unit if control_group else None, control_group=control_group)
        if cpu[0] is None:
            cpu = (facts["cpu_count"], facts["cpu_count_source"])
        if memory[0] is None:
            if facts["memory_bytes"] is None:
                module.fail_json(msg="cannot read the memory of the target (/proc/meminfo, cgroup); "
                                     "set memory_total, e.g. memory_total: 8GB")
            memory = (facts["memory_bytes"], facts["memory_source"])
    return cpu, memory, limits_from


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    params = module.params
    supervisor = installed()
    log_dir = params["log_dir"] or "%s/%s" % (supervisor["log_dir"], params["group_name"])
    log_dir_problems = root_only_dir_problems(log_dir)
    if log_dir_problems:
        module.fail_json(msg="%s: supervisord opens the programs' log files there as root, so a user who can "
                             "change it can point a log file at any file of root's. Use a directory only root "
                             "writes (the default is under supervisor's log directory)." % "; ".join(log_dir_problems))
    (cpu_count, cpu_source), (memory_total, memory_source), limits_from = _host(module)
    layout = dict(directory=params["project_dir"], user=params["user"], log_dir=log_dir,
                  group_name=params["group_name"], app=params["app"], celery_bin=params["celery_bin"])
    daemon_environment, dummy = supervisord_environ_names(config=params["supervisor_config"] or supervisor["config"])
    try:
        workers, carry_over, left_out = host_programs(params["workers"], params["carry_over"], params["beat"],
                                                      params["host_role"], params["web_only_programs"],
                                                      params["source_programs"], params["source"])
        measured = measured_rss(params["processes"], params["group_name"])
        measured.update(params["measured_rss"])
        result = plan_group(
            workers, layout, worker_defaults=cluster_defaults(params["worker_defaults"], params["cluster"]),
            program_defaults=params["program_defaults"], carry_over=carry_over,
            allow_root=params["allow_root"],
            supervisord_environment=params["supervisord_environment"], adopted_memmon=params["adopted_memmon"],
            cpu_count=cpu_count, memory_total=memory_total,
            memory_budget_percent=params["memory_budget_percent"], memory_reserve=params["memory_reserve"],
            db_connection_budget=params["db_connection_budget"], db_connection_hosts=params["db_connection_hosts"],
            allow_small_memory_limit=params["allow_small_memory_limit"],
            baseline_headroom_action=params["baseline_headroom_action"], strict=params["strict"],
            cpu_source=cpu_source, memory_source=memory_source, measured_rss=measured,
            profile=params["profile"], db_driver=params["db_driver"], reserved_names=params["reserved_names"],
            daemon_environment=daemon_environment or [], environment_names=params["environment_names"],
            path_problems=root_safe_problems)
    except (WorkerFlagsError, GateError) as exc:
        module.fail_json(msg=str(exc))
    result["left_out"] = left_out
    result["host"]["limits_from"] = limits_from

    for warning in result.pop("warnings"):
        module.warn(warning)
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
