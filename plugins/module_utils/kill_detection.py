# -*- coding: utf-8 -*-
# Copyright: authops.celery_tuning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Kill detection: whether supervisor had to SIGKILL a process that outlived its ``stopwaitsecs``."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


from ansible_collections.authops.celery_tuning.plugins.module_utils.supervisor_ops import DEFAULT_STOPWAITSECS


#: supervisor 4.x's main-log line for a process it had to SIGKILL (a format string, not a regex).
KILL_LOG_LINE = "killing '%s' (%s) with SIGKILL"


def was_killed(report, main_log=None):
    """Decide whether supervisor had to SIGKILL a process that outlived ``stopwaitsecs``.

    supervisor 4.x logs ``killing '<name>' (<pid>) with SIGKILL`` in its main log, and a killed
    process has ``exitstatus`` -1 (terminated by a signal; supervisor cannot tell which) after at
    least ``stopwaitsecs``.  The log line is decisive; without it the timing + exit status decide.
    """
    pid = report.get('pid_before')
    if main_log and pid:
        if KILL_LOG_LINE % (report.get('process'), pid) in main_log:
            return True
    seconds = report.get('stop_seconds')
    if seconds is None:
        return False
    return report.get('exitstatus') == -1 and seconds >= report.get('stopwaitsecs', DEFAULT_STOPWAITSECS)
