# -*- coding: utf-8 -*-
# Copyright: authops.celery_tuning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Fixtures that run a real supervisord (from the Python env running pytest) in a temp dir,
and run ``authops.celery_tuning.supervisor_group`` through the ``ansible`` CLI."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time

import pytest

from ansible_collections.authops.celery_tuning.plugins.module_utils.supervisor_errors import SupervisorError
from ansible_collections.authops.celery_tuning.plugins.module_utils.supervisor_rpc import SupervisorClient

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COLLECTIONS = os.path.join(ROOT, '.cache', 'collections')
BIN_DIR = os.path.dirname(sys.executable)
SUPERVISORD = os.path.join(BIN_DIR, 'supervisord')
ANSIBLE = os.path.join(BIN_DIR, 'ansible')
USERNAME = 'admin'
PASSWORD = 's3cret'

BASE_CONFIG = """\
[unix_http_server]
file=%(here)s/s.sock
chmod=0700
username={user}
password={password}

[supervisord]
logfile=%(here)s/supervisord.log
pidfile=%(here)s/supervisord.pid
childlogdir=%(here)s/logs
nodaemon=true
loglevel=info

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://%(here)s/s.sock
username={user}
password={password}
"""


def _ensure_collection_link():
    ns_dir = os.path.join(COLLECTIONS, 'ansible_collections', 'authops')
    link = os.path.join(ns_dir, 'celery_tuning')
    if not os.path.exists(ns_dir):
        os.makedirs(ns_dir)
    if not os.path.lexists(link):
        os.symlink(ROOT, link)


class Supervisord(object):
    """A supervisord in its own temp dir; ``programs`` is the config text after the base sections."""

    def __init__(self, programs, auth=True):
        # short path: unix socket paths are limited to ~107 bytes
        self.dir = tempfile.mkdtemp(prefix='sg', dir='/tmp')
        os.mkdir(os.path.join(self.dir, 'logs'))
        self.conf = os.path.join(self.dir, 'supervisord.conf')
        self.socket = os.path.join(self.dir, 's.sock')
        self.auth = auth
        self.proc = None
        self._stderr = None
        self.write_config(programs)

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def write_config(self, programs):
        base = BASE_CONFIG.replace('{user}', USERNAME).replace('{password}', PASSWORD)
        if not self.auth:
            base = '\n'.join(line for line in base.splitlines()
                             if not line.startswith(('username=', 'password='))) + '\n'
        text = base + '\n' + textwrap.dedent(programs).replace('{dir}', self.dir).replace('{python}', sys.executable)
        with open(self.conf, 'w') as handle:
            handle.write(text)

    def write_script(self, name, body):
        path = self.path(name)
        with open(path, 'w') as handle:
            handle.write(textwrap.dedent(body))
        return path

    def client(self, **kwargs):
        kwargs.setdefault('username', USERNAME if self.auth else None)
        kwargs.setdefault('password', PASSWORD if self.auth else None)
        return SupervisorClient('unix://' + self.socket, timeout=5, **kwargs)

    def start(self, timeout=10):
        self._stderr = open(self.path('supervisord.stderr'), 'w')
        self.proc = subprocess.Popen([SUPERVISORD, '-n', '-c', self.conf], stdout=subprocess.DEVNULL,
                                     stderr=self._stderr)
        deadline = time.monotonic() + timeout
        client = self.client()
        while time.monotonic() < deadline:
            try:
                if client.get_state()['statename'] == 'RUNNING':
                    return self
            except SupervisorError:
                pass
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError('supervisord did not start: %s' % open(self.path('supervisord.stderr')).read())

    def states(self):
        return dict(('%s:%s' % (i['group'], i['name']), i) for i in self.client().get_all_process_info())

    def wait_states(self, wanted, timeout=15):
        """Wait until every process named in ``wanted`` (namespec -> statename) is in that state."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            current = self.states()
            if all(current.get(k, {}).get('statename') == v for k, v in wanted.items()):
                return current
            time.sleep(0.1)
        raise AssertionError('states not reached: wanted %s, have %s'
                             % (wanted, dict((k, v['statename']) for k, v in self.states().items())))

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._stderr is not None:
            self._stderr.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def supervisord_factory():
    if not os.path.exists(SUPERVISORD):
        pytest.skip('supervisord not found next to %s (pip install supervisor into the test env)' % sys.executable)
    if not os.path.exists(ANSIBLE):
        pytest.skip('ansible CLI not found next to %s' % sys.executable)
    _ensure_collection_link()
    started = []

    def make(programs, auth=True, start=True):
        sd = Supervisord(programs, auth=auth)
        started.append(sd)
        if start:
            sd.start()
        return sd

    yield make
    for sd in started:
        sd.stop()


def run_module(args, check=False, diff=False, prefix=None, timeout=120):
    """Run the module the way users do; return (result dict, CompletedProcess)."""
    _ensure_collection_link()
    env = dict(os.environ)
    env.update(
        ANSIBLE_COLLECTIONS_PATH=COLLECTIONS,
        ANSIBLE_STDOUT_CALLBACK='json',
        ANSIBLE_LOAD_CALLBACK_PLUGINS='1',
        ANSIBLE_CALLBACK_RESULT_FORMAT='json',
        ANSIBLE_LOCALHOST_WARNING='0',
        ANSIBLE_INVENTORY_UNPARSED_WARNING='0',
        ANSIBLE_PYTHON_INTERPRETER=sys.executable,
        ANSIBLE_NOCOLOR='1',
        ANSIBLE_FORCE_COLOR='0',
    )
    cmd = [ANSIBLE, 'localhost', '-i', 'localhost,', '-c', 'local',
           '-e', 'ansible_python_interpreter=%s' % sys.executable,
           '-m', 'authops.celery_tuning.supervisor_group', '-a', json.dumps(args)]
    if check:
        cmd.append('--check')
    if diff:
        cmd.append('--diff')
    if prefix:
        cmd = list(prefix) + cmd
    proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=timeout, check=False)
    out = proc.stdout
    try:
        data = json.loads(out[out.index('{'):])
        result = data['plays'][0]['tasks'][0]['hosts']['localhost']
    except (ValueError, KeyError, IndexError):
        raise AssertionError('cannot parse ansible output (rc=%s):\nSTDOUT:\n%s\nSTDERR:\n%s'
                             % (proc.returncode, proc.stdout, proc.stderr))
    return result, proc


@pytest.fixture
def module_runner():
    return run_module
