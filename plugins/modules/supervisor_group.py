#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: authops.celery_tuning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: supervisor_group
short_description: Gracefully stop, start or restart a supervisor group (and the daemon) over XML-RPC
version_added: 0.1.0
description:
  - Brings a supervisor group (Alliance Auth uses C(myauth)) or a single program to the state
    O(state) by talking to C(supervisord) through its XML-RPC API on the unix socket.
  - O(state=restarted) runs the safe restart sequence of the Alliance Auth guide as one task - stop the
    whole group gracefully (every member is signalled at once and gets its own C(stopwaitsecs) to
    finish running tasks, Celery's warm shutdown), optionally restart the daemon (O(daemon=restarted))
    and wait until it answers again, then start the group and wait until every process is RUNNING
    past its C(startsecs).
  - Restarting the daemon directly is not safe - the service manager's stop timeout can kill workers
    mid-task. This module always stops the group first.
  - O(rolling=true) restarts the processes one at a time, each back to RUNNING before the next, so a
    group with two or more workers never stops consuming.
  - Reports, per process, the state before and after, the pid, how long it took to stop and whether
    supervisor had to SIGKILL it because it outlived C(stopwaitsecs).
  - Talks to supervisord with supervisor's own client code (C(ClientOptions), C(SupervisorTransport),
    C(Faults)), as C(supervisorctl) does, plus a timeout per call.
author:
  - authops maintainers (@authops)
extends_documentation_fragment:
  - authops.celery_tuning.connection
  - authops.celery_tuning.attributes
attributes:
  check_mode:
    support: full
    details:
      - Nothing is signalled; RV(actions) and RV(processes) say what would happen.
  diff_mode:
    support: full
    details:
      - The diff shows the state of every process before and after.
  idempotent:
    support: full
    details:
      - O(state=started) and O(state=stopped) report no change when every process already is in that state.
      - O(state=restarted) and O(daemon=restarted) always change (except in check mode).
options:
  name:
    description:
      - The supervisor group (for example V(myauth)) or program to manage.
      - A trailing colon (V(myauth:)) is accepted, as is V(group:process) for a single process.
    type: str
    required: true
  state:
    description:
      - V(started) starts the processes that are not running and waits until all are RUNNING.
      - V(stopped) stops the running processes gracefully (all at once) and waits until all are stopped.
      - V(restarted) stops all processes gracefully, then starts them all again.
    type: str
    choices: [started, stopped, restarted]
    default: started
  daemon:
    description:
      - V(restarted) restarts C(supervisord) itself between stopping and starting the group (as the
        guide does after changing the supervisor config), and waits until it answers again.
      - With O(state=stopped) the group is stopped again after the daemon restart if autostart started it.
      - "V(reloaded) applies the daemon's files to this one group without restarting the daemon: supervisord
        re-reads its files (C(reloadConfig)); when the group changed, its processes are stopped gracefully
        (O(stop_last) after the others have drained), the group is replaced and started again (O(stop_last)
        first). Other groups keep running. An unchanged group is only started where it is not running.
        Cannot be combined with O(rolling=true)."
    type: str
    choices: [unchanged, restarted, reloaded]
    default: unchanged
  stop_last:
    description:
      - With O(daemon=reloaded), programs of the group stopped only once the others have stopped, and
        started before them (Auth's C(gunicorn), so the website stays up while the workers drain).
      - With O(daemon=restarted), the others stop gracefully first while these keep serving; the daemon's
        restart then stops them, so the website is down only for the restart.
    type: list
    elements: str
    default: []
  ready_url:
    description:
      - With O(stop_last), a URL the O(stop_last) programs serve (Auth's gunicorn, for example
        C(http://127.0.0.1:8000/)). The other programs start only once it answers with a status below 500 (a
        redirect to the login page counts, a 5xx does not, the website runs but cannot serve), or after
        O(ready_timeout), so the website boots without competing with them for the CPU.
    type: str
  ready_timeout:
    description:
      - Seconds to wait for O(ready_url) before starting the other programs anyway.
    type: int
    default: 60
  service_manager:
    description:
      - How to restart the daemon when O(daemon=restarted).
      - V(auto) uses V(systemd) when C(/run/systemd/system) exists and the unit O(service_name) is known to
        C(systemctl), else V(service) when C(/etc/init.d/<service_name>) exists, else V(rpc).
      - V(rpc) calls C(supervisor.restart()); supervisord re-reads its config in the same process.
    type: str
    choices: [auto, systemd, service, rpc]
    default: auto
  service_name:
    description:
      - Name of the supervisor service (systemd unit or init script).
      - Default the service of the OS family whose supervisord config exists on the target (C(supervisor) on Debian and
        Ubuntu, C(supervisord) on the RHEL family).
    type: str
  rolling:
    description:
      - With O(state=restarted), restart the processes one at a time, each back to RUNNING before the next one
        is stopped. Processes that were not running are started first.
      - Cannot be combined with O(daemon=restarted). Ignored for O(state=started) and O(state=stopped).
    type: bool
    default: false
  stop_timeout:
    description:
      - Seconds to wait until every process is stopped.
      - Default is the largest C(stopwaitsecs) of the group's programs plus 10 (per process with O(rolling=true)).
    type: int
  daemon_timeout:
    description:
      - Seconds to wait until the daemon answers again after its restart.
      - Default is the largest C(stopwaitsecs) of all processes still running (the daemon stops them) plus 30.
    type: int
  start_timeout:
    description:
      - Seconds to wait until every process is RUNNING (supervisor only calls a process RUNNING once it stayed up
        for C(startsecs)).
      - Default is the largest C(startsecs) of the group's programs plus 10 (per process with O(rolling=true)).
      - A process that is FATAL, EXITED or still in BACKOFF at the end fails the task, with the tail of its stderr log.
    type: int
  lock_directory:
    description:
      - The run lock's directory (M(authops.celery_tuning.run_lock)). Outside check mode, while the module
        changes the group it holds the group's busy file there (C(<group>.busy), an C(flock) the kernel drops
        when the process dies) and renews the live run lock of the group (C(<group>.lock)) every 20 s, so no
        other run takes over the lock of a run whose controller died while this step still works.
      - Another step holding the busy file is waited for up to 900 s, then the module fails naming its pid.
      - Not root, and the directory cannot be made - the step works without the busy file.
    type: path
    default: /run/authops-celery-tuning
    version_added: 0.3.0
  poll_interval:
    description:
      - Seconds between two polls of the process states.
    type: float
    default: 0.5
notes:
  - "The socket is mode 0700 owned by root on Debian: run the task with C(become: true)."
  - Stop durations are measured by polling, so they are accurate to O(poll_interval).
  - A process counts as killed when supervisor's main log says C(killing '<name>' (<pid>) with SIGKILL), or, when
    the log is not readable over XML-RPC, when it ended by a signal (exit status -1) after at least C(stopwaitsecs).
seealso:
  - name: supervisor XML-RPC API
    description: The API this module uses.
    link: https://supervisord.org/api.html
requirements:
  - supervisord 4.x listening on a unix socket (or inet HTTP server).
  - The C(supervisor) Python package for the target's Python (Debian's and Ubuntu's C(supervisor) package
    installs it for C(/usr/bin/python3)).
"""

EXAMPLES = r"""
- name: Restart Alliance Auth's workers the safe way (graceful stop, daemon restart, start)
  authops.celery_tuning.supervisor_group:
    name: myauth
    state: restarted
    daemon: restarted
  become: true

- name: Rolling restart, one worker at a time, without a consumption gap
  authops.celery_tuning.supervisor_group:
    name: myauth
    state: restarted
    rolling: true
  become: true

- name: Make sure the group runs (no change when it already does)
  authops.celery_tuning.supervisor_group:
    name: myauth
    state: started
  become: true

- name: Stop the workers gracefully, giving Celery up to 10 minutes
  authops.celery_tuning.supervisor_group:
    name: myauth
    state: stopped
    stop_timeout: 600
  become: true
  register: stop_result

- name: Show which workers had to be killed
  ansible.builtin.debug:
    msg: "{{ stop_result.processes | selectattr('killed') | map(attribute='name') | list }}"

- name: Talk to a supervisord with its own socket and credentials
  authops.celery_tuning.supervisor_group:
    name: myauth
    state: started
    socket: /run/supervisor-auth.sock
    username: admin
    password: "{{ vault_supervisor_password }}"
"""

RETURN = r"""
msg:
  description: Summary of what was done (or would be done in check mode), or the error.
  returned: always
  type: str
  sample: "stopped group myauth gracefully, all at once (myauth:beat, myauth:worker_00); started group myauth (...)"
phase:
  description:
    - The phase that failed - V(connect), V(inspect), V(validate), V(stop), V(daemon_restart) or V(start).
  returned: failure
  type: str
  sample: start
actions:
  description: The steps taken (prefixed with C(would) in check mode).
  returned: always
  type: list
  elements: str
name:
  description: The O(name) that was asked for.
  returned: always
  type: str
  sample: myauth
target_type:
  description: Whether O(name) designated a V(group) or a single V(process).
  returned: success
  type: str
  sample: group
target:
  description: The group name or C(group:process) that was managed.
  returned: success
  type: str
  sample: myauth
state:
  description: The requested O(state).
  returned: success
  type: str
  sample: restarted
daemon:
  description: The requested O(daemon).
  returned: success
  type: str
  sample: unchanged
rolling:
  description: Whether a rolling restart was requested.
  returned: success
  type: bool
timeouts:
  description: The effective timeouts in seconds.
  returned: always
  type: dict
  sample: {stop: 610, start: 20, daemon: 630}
  contains:
    stop:
      description: Stop timeout.
      type: int
      returned: always
    start:
      description: Start timeout.
      type: int
      returned: always
    daemon:
      description: Daemon restart timeout.
      type: int
      returned: always
daemon_restart:
  description: What happened to the daemon, when O(daemon=restarted); C(null) otherwise.
  returned: always
  type: dict
  contains:
    method:
      description: Service manager used - V(systemd), V(service) or V(rpc).
      type: str
      returned: when daemon restarted
    reason:
      description: Why that service manager was chosen.
      type: str
      returned: when daemon restarted
    restarted:
      description: Whether the restart completed.
      type: bool
      returned: when daemon restarted
    pid_before:
      description: The daemon's pid before the restart.
      type: int
      returned: when daemon restarted
    pid_after:
      description: The daemon's pid after the restart (the same pid after an RPC restart).
      type: int
      returned: when daemon restarted
    seconds:
      description: Time the daemon took to answer again.
      type: float
      returned: when daemon restarted
    evidence:
      description: What showed that the daemon really restarted (V(pid_changed), V(went_down), V(socket_recreated)).
      type: list
      elements: str
      returned: when the restart completed
processes:
  description: One entry per process of the group, as far as known (also on failure).
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Process name as supervisorctl shows it (C(group:process), or C(process) when group and process are the same).
      type: str
      returned: always
      sample: myauth:worker_00
    group:
      description: The process' group.
      type: str
      returned: always
    process:
      description: The process name inside its group.
      type: str
      returned: always
    state_before:
      description: State before the run (C(null) for processes that appeared with a daemon restart).
      type: str
      returned: always
      sample: RUNNING
    pid_before:
      description: Pid before the run (C(null) when not running).
      type: int
      returned: always
    state_after:
      description: State after the run (predicted in check mode).
      type: str
      returned: always
      sample: RUNNING
    pid:
      description: Pid after the run (C(null) when not running or unknown).
      type: int
      returned: always
    stopped:
      description: Whether the module waited for this process to stop.
      type: bool
      returned: always
    stop_seconds:
      description: Seconds from the stop request until the process was seen stopped.
      type: float
      returned: always
    killed:
      description: Whether supervisor had to SIGKILL the process because it outlived C(stopwaitsecs).
      type: bool
      returned: always
    exitstatus:
      description: Exit status after the stop (V(-1) means ended by a signal).
      type: int
      returned: always
    started:
      description: Whether the module asked supervisor to start this process.
      type: bool
      returned: always
    start_seconds:
      description: Seconds from the start request until the process was RUNNING.
      type: float
      returned: always
    stopwaitsecs:
      description: The program's C(stopwaitsecs).
      type: int
      returned: always
    startsecs:
      description: The program's C(startsecs).
      type: int
      returned: always
    error:
      description: Why this process failed.
      type: str
      returned: when the process failed
    stderr_tail:
      description: Tail of the process' stderr log (stdout when stderr is redirected).
      type: str
      returned: when the process failed to start
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.authops.celery_tuning.plugins.module_utils.supervisor_errors import (
    HAS_SUPERVISOR,
    SUPERVISOR_IMPORT_ERROR,
    SupervisorError,
    missing_supervisor_message,
)
from ansible_collections.authops.celery_tuning.plugins.module_utils.supervisor_rpc import (
    connect_from_module_params,
    connection_argument_spec,
)
from ansible_collections.authops.celery_tuning.plugins.module_utils.group_apply import run_supervisor_group


def main():
    spec = connection_argument_spec()
    spec.update(
        name=dict(type='str', required=True),
        state=dict(type='str', default='started', choices=['started', 'stopped', 'restarted']),
        daemon=dict(type='str', default='unchanged', choices=['unchanged', 'restarted', 'reloaded']),
        stop_last=dict(type='list', elements='str', default=[]),
        ready_url=dict(type='str'),
        ready_timeout=dict(type='int', default=60),
        service_manager=dict(type='str', default='auto', choices=['auto', 'systemd', 'service', 'rpc']),
        service_name=dict(type='str'),
        rolling=dict(type='bool', default=False),
        stop_timeout=dict(type='int'),
        daemon_timeout=dict(type='int'),
        start_timeout=dict(type='int'),
        poll_interval=dict(type='float', default=0.5),
        lock_directory=dict(type='path', default='/run/authops-celery-tuning'),
    )
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    if not HAS_SUPERVISOR:
        module.fail_json(msg=missing_supervisor_message(), exception=SUPERVISOR_IMPORT_ERROR)
    p = module.params
    try:
        client = connect_from_module_params(p)
        result = run_supervisor_group(
            client, p, check_mode=module.check_mode,
            run_command=module.run_command,
            get_bin_path=lambda name: module.get_bin_path(name, required=False),
        )
    except SupervisorError as exc:
        details = dict(exc.details or {})
        details.setdefault('processes', [])
        details.setdefault('actions', [])
        details.setdefault('changed', False)
        details.setdefault('timeouts', {})
        details.setdefault('daemon_restart', None)
        details.pop('diff', None)
        module.fail_json(msg=exc.msg, phase=exc.phase or 'connect', **details)
    diff = result.pop('diff')
    if module._diff:
        result['diff'] = diff
    module.exit_json(**result)


if __name__ == '__main__':
    main()
