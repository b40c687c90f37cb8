# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The controller side of the run lock (playbooks/files/controller_run.py): the id names the ansible-playbook
process above the task worker that runs the lookup, and that id is alive while it runs and dead after."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import subprocess
import sys
import textwrap

import pytest

SCRIPT = os.path.join(os.path.dirname(__file__), '..', '..', '..', 'playbooks', 'files', 'controller_run.py')

pytestmark = pytest.mark.skipif(not os.path.exists('/proc/self/stat'), reason='needs /proc')


def _run(*args):
    return subprocess.check_output([sys.executable, SCRIPT] + list(args)).decode().strip()


def test_the_id_is_the_playbook_process_not_its_worker(tmp_path):
    # A stand-in ansible-playbook: its worker is a fork (same command line) whose lookup runs the script
    # through a shell, as the pipe lookup does; then it waits until told to end.
    fake = tmp_path / 'ansible-playbook'
    fake.write_text(textwrap.dedent('''\
        import os, subprocess, sys
        pid = os.fork()
        if pid == 0:
            out = subprocess.check_output(['/bin/sh', '-c', '%s %s id' % (sys.executable, sys.argv[1])])
            sys.stdout.write(out.decode())
            sys.stdout.flush()
            os._exit(0)
        os.waitpid(pid, 0)
        sys.stdin.read()
        '''))
    proc = subprocess.Popen([sys.executable, str(fake), SCRIPT], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    ident = proc.stdout.readline().decode().strip()
    try:
        host, boot, pid, start = ident.split('/')
        assert int(pid) == proc.pid
        assert _run('alive', ident) == 'alive'
    finally:
        proc.communicate(b'')
    assert _run('alive', ident) == 'dead'
    # the same pid with another start time is another process
    assert _run('alive', '%s/%s/%d/1' % (host, boot, os.getpid())) == 'dead'


@pytest.mark.parametrize('ident', ['', 'garbage', 'otherhost/boot/1/2', 'a/b/c/d/e'])
def test_another_controller_or_boot_is_unknown(ident):
    assert _run('alive', ident) == 'unknown'


def test_outside_ansible_playbook_there_is_no_id():
    assert _run('id') == ''
