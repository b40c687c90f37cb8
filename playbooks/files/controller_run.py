# -*- coding: utf-8 -*-
# Copyright: authops.celery_tuning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The controller side of the run lock (playbooks/tasks/lock.yml), run by a pipe lookup on the controller.

``controller_run.py id`` prints this run's controller process: host name, boot id, pid and start time of the
``ansible-playbook`` process the lookup runs under (its task worker is a fork with the same command line: the
top of that chain). Nothing (an empty line) where /proc is missing (a macOS controller): the lock then ends
with its lease.

``controller_run.py alive ID`` prints ``dead`` when ID names a process of this host and boot that is gone (or
is another process now), ``alive`` when it still runs, ``unknown`` for another controller or boot.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import socket
import sys


def _read(path):
    try:
        with open(path, 'rb') as handle:
            return handle.read()
    except (IOError, OSError):
        return None


def _stat(pid):
    """(ppid, start time in clock ticks) of a process, else None."""
    data = _read('/proc/%d/stat' % pid)
    if data is None:
        return None
    fields = data[data.rindex(b')') + 2:].split()
    return int(fields[1]), fields[19].decode('ascii')


def _boot_id():
    data = _read('/proc/sys/kernel/random/boot_id')
    return data.decode('ascii').strip() if data else None


def _playbook_process():
    """The pid of the ansible-playbook process above this one: the highest of the chain of ancestors with
    the same command line, starting at the nearest whose command line names ansible-playbook."""
    pid, found = os.getppid(), None
    while pid > 1:
        cmdline = _read('/proc/%d/cmdline' % pid)
        info = _stat(pid)
        if cmdline is None or info is None:
            break
        if found is None:
            if any(os.path.basename(arg).startswith(b'ansible-playbook') for arg in cmdline.split(b'\0')[:3]):
                found = (pid, cmdline)
        elif cmdline == found[1]:
            found = (pid, cmdline)
        else:
            break
        pid = info[0]
    return found[0] if found else None


def run_id():
    boot, pid = _boot_id(), _playbook_process()
    if not boot or not pid:
        return ''
    return '%s/%s/%s/%s' % (socket.gethostname(), boot, pid, _stat(pid)[1])


def alive(ident):
    parts = (ident or '').split('/')
    if len(parts) != 4 or parts[0] != socket.gethostname() or parts[1] != _boot_id() or not parts[2].isdigit():
        return 'unknown'
    info = _stat(int(parts[2]))
    return 'alive' if info is not None and info[1] == parts[3] else 'dead'


def main(argv):
    if len(argv) == 2 and argv[1] == 'id':
        print(run_id())
    elif len(argv) == 3 and argv[1] == 'alive':
        print(alive(argv[2]))
    else:
        sys.stderr.write('usage: controller_run.py id | alive ID\n')
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
