# -*- coding: utf-8 -*-
# Copyright: authops.celery_tuning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The run lock: one tuning run at a time per host and group, a lease in a root-only file under ``/run``.

A run takes the lock before its first change, renews it between its steps, and gives it back at its end. A
second run waits for it, up to its ``wait``, and then refuses with a message that names the holder. A run
that dies (its controller killed) cannot give the lock back. Its lock then ends:

- at once for a re-run from the same controller, which sees that the dead run's ``ansible-playbook`` process
  is gone (``break_owner``, decided on the controller: the host cannot see the controller's processes);
- else with its lease, which counts from the run's last step on the host (``lease`` seconds, renewed by
  every step and, while the group is replaced, by the step that replaces it);
- or with ``break_lock``, which takes it over whoever holds it.

A step that changes the group (``supervisor_group``) holds the group's *busy* file (``<name>.busy``, an
``flock`` that the kernel drops when the process dies) for as long as it works, and renews the run's lease
meanwhile. A dead run's step can outlive its controller (over SSH the module goes on when the connection
drops): no run takes over a lock, by lease, break or dead controller, while the group is busy.

The lock file's own ``flock`` is held only while the record is read and rewritten, so two runs never both
see it free.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import fcntl
import json
import os
import re
import stat
import threading
import time

DEFAULT_DIRECTORY = '/run/authops-celery-tuning'
POLL_SECONDS = 2
#: The lease of a lock record written before the lease was kept in it (and the module's default).
DEFAULT_LEASE = 300
#: How often a busy step renews the run's lease.
RENEW_SECONDS = 20
_NAME_RE = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}\Z')


class LockError(Exception):
    """The lock cannot be taken or is unsafe; the message says what to do. ``holder`` is the run that holds
    it, when that is why."""

    def __init__(self, msg, holder=None):
        super(LockError, self).__init__(msg)
        self.holder = holder


def lock_name_ok(name):
    """Whether ``name`` can name a lock (the group name, such as myauth)."""
    return bool(_NAME_RE.match(name or ''))


def check_params(params):
    """The options' own rules, before anything on the host is touched."""
    if not _NAME_RE.match(params['name'] or ''):
        raise LockError('name %r: letters, digits, ".", "_" and "-" only (the group name, such as myauth)'
                        % (params['name'],))
    directory = params['directory']
    if not os.path.isabs(directory) or os.path.normpath(directory) != directory.rstrip('/') or '\n' in directory:
        raise LockError('directory %r: an absolute path without "..", "." or a newline' % (directory,))
    if params['state'] in ('acquired', 'released') and not (params.get('owner') or '').strip():
        raise LockError('owner is needed to take or give back the lock (a token unique to the run)')
    for key in ('lease', 'wait'):
        if params.get(key) is not None and params[key] < 0:
            raise LockError('%s must be 0 or more seconds, not %s' % (key, params[key]))
    for key in ('controller_run', 'break_owner', 'description'):
        if '\n' in (params.get(key) or ''):
            raise LockError('%s: one line, no newline' % key)
    if params['state'] == 'acquired' and params['lease'] < 60:
        raise LockError('lease %s: at least 60 s, longer than the longest step of a run that does not renew it '
                        '(a package install, say)' % params['lease'])


def _safe_directory(directory, uid):
    """Make sure the directory is a real directory of ``uid`` that nobody else can write to."""
    try:
        os.mkdir(directory, 0o700)
    except OSError as exc:
        if exc.errno != errno.EEXIST:
            raise LockError('cannot create %s: %s' % (directory, exc))
    st = os.lstat(directory)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != uid or st.st_mode & 0o022:
        raise LockError('%s must be a directory of uid %s that no one else can write to (found mode %04o, uid %s): '
                        'remove it, and the next run makes it' % (directory, uid, stat.S_IMODE(st.st_mode), st.st_uid))


def describe(record, now):
    """One line about a holder, for the other run's message."""
    if not record:
        return 'nobody'
    if 'expires' not in record:  # a busy step, not a lease
        return record.get('description') or 'a step of another run'
    left = int(record.get('expires', 0) - now)
    return '%s (since %s; its lease ends in %s s)' % (
        record.get('description') or record.get('owner'),
        time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(record.get('acquired', 0))), max(left, 0))


class RunLock(object):
    """One lock file; ``clock`` and ``sleep`` are injectable for the tests."""

    def __init__(self, params, clock=time.time, sleep=time.sleep, uid=None):
        self.params = params
        self.clock = clock
        self.sleep = sleep
        self.uid = os.geteuid() if uid is None else uid
        self.path = os.path.join(params['directory'], params['name'] + '.lock')

    def _open(self, create):
        flags = os.O_RDWR | getattr(os, 'O_NOFOLLOW', 0)
        if create:
            _safe_directory(self.params['directory'], self.uid)
            flags |= os.O_CREAT
        try:
            fd = os.open(self.path, flags, 0o600)
        except OSError as exc:
            if exc.errno == errno.ENOENT and not create:
                return None
            raise LockError('cannot open %s: %s' % (self.path, exc))
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_uid != self.uid or st.st_mode & 0o077:
            os.close(fd)
            raise LockError('%s must be a file of uid %s, mode 0600: remove it, and the next run makes it'
                            % (self.path, self.uid))
        return fd

    @staticmethod
    def _read(fd):
        os.lseek(fd, 0, os.SEEK_SET)
        data = b''
        while True:
            block = os.read(fd, 65536)
            if not block:
                break
            data += block
        try:
            record = json.loads(data.decode('utf-8')) if data.strip() else None
        except ValueError:
            return None
        return record if isinstance(record, dict) else None

    @staticmethod
    def _write(fd, record):
        os.lseek(fd, 0, os.SEEK_SET)
        os.ftruncate(fd, 0)
        if record:
            os.write(fd, json.dumps(record, sort_keys=True).encode('utf-8'))
        os.fsync(fd)

    def _live(self, record, now):
        return record if record and record.get('expires', 0) > now else None

    def query(self):
        fd = self._open(create=False)
        if fd is None:
            return dict(held=False, holder=None)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)
            record = self._live(self._read(fd), self.clock())
        finally:
            os.close(fd)
        return dict(held=record is not None, holder=record)

    def _try(self, fd, now):
        """Take the lock when it is free, expired, ours, or to be broken, and no step of another run still
        changes the group: (taken, the live holder taken over or the one that keeps it)."""
        p = self.params
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            record = self._live(self._read(fd), now)
            mine = record if record and record.get('owner') == p['owner'] else None
            breaks = p['break_lock'] or (p.get('break_owner') and record and record.get('owner') == p['break_owner'])
            if record and not mine and not breaks:
                return False, record
            if not mine:
                pid = busy_pid(p['directory'], p['name'], self.uid)
                if pid is not None:
                    return False, dict(owner=None, busy_pid=pid, description=(
                        'a step of an earlier run that still changes the group on this host (pid %s; %s)'
                        % (pid, busy_path(p['directory'], p['name']))))
            self._write(fd, dict(owner=p['owner'], description=p.get('description') or p['owner'],
                                 acquired=mine['acquired'] if mine else now, expires=now + p['lease'],
                                 lease=p['lease'], run=p.get('controller_run') or None))
            return True, (record if not mine else None)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)

    def acquire(self):
        p = self.params
        start = self.clock()
        fd = self._open(create=True)
        waited_for = None
        try:
            while True:
                now = self.clock()
                taken, other = self._try(fd, now)
                if taken:
                    return dict(held=True, waited=round(now - start, 1), broken=other, waited_for=waited_for,
                                holder=dict(owner=p['owner'], description=p.get('description') or p['owner']))
                waited_for = waited_for or (other.get('description') or other.get('owner'))
                if now - start >= p['wait']:
                    if 'expires' not in other:
                        raise LockError(
                            'the lock of %s on this host is free, but %s. Waited %s s. Let it end (it stops when its '
                            'work is done) and run again' % (p['name'], describe(other, now), int(now - start)),
                            holder=other)
                    raise LockError(
                        'another run holds the lock of %s on this host: %s. Waited %s s. Let that run end and run '
                        'again. If it is dead (its controller was killed): a re-run from its controller takes the '
                        'lock over at once; from elsewhere, the lock ends with its lease (counted from its last step '
                        'on the host), or run again with -e celery_tuning_lock_break=true to take it over (file %s)'
                        % (p['name'], describe(other, now), int(now - start), self.path), holder=other)
                self.sleep(POLL_SECONDS)
        finally:
            os.close(fd)

    def release(self):
        fd = self._open(create=False)
        if fd is None:
            return dict(held=False, released=False, holder=None)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            record = self._read(fd)
            if record and record.get('owner') == self.params['owner']:
                self._write(fd, None)
                return dict(held=False, released=True, holder=None)
            return dict(held=self._live(record, self.clock()) is not None, released=False,
                        holder=self._live(record, self.clock()))
        finally:
            os.close(fd)


def busy_path(directory, name):
    """The group's busy file: held (flock) by a step that changes the group, for as long as it works."""
    return os.path.join(directory, name + '.busy')


def _open_busy(directory, name, uid):
    _safe_directory(directory, uid)
    path = busy_path(directory, name)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, 'O_NOFOLLOW', 0), 0o600)
    except OSError as exc:
        raise LockError('cannot open %s: %s' % (path, exc))
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_uid != uid or st.st_mode & 0o077:
        os.close(fd)
        raise LockError('%s must be a file of uid %s, mode 0600: remove it, and the next run makes it' % (path, uid))
    return fd


def _take_busy(fd):
    """Take the busy file's flock without waiting: None when taken, else the pid its holder wrote ('?' when none)."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return None
    except (IOError, OSError) as exc:
        if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
            raise
    os.lseek(fd, 0, os.SEEK_SET)
    return os.read(fd, 64).decode('ascii', 'replace').strip() or '?'


def busy_pid(directory, name, uid=None):
    """The pid written by the step that holds the group's busy file (``'?'`` when it wrote none), else None."""
    fd = _open_busy(directory, name, os.geteuid() if uid is None else uid)
    try:
        pid = _take_busy(fd)
        if pid is None:
            fcntl.flock(fd, fcntl.LOCK_UN)
        return pid
    finally:
        os.close(fd)


def renew_live_lease(directory, name, clock=time.time):
    """Push the live lock's end to its lease from now (whichever run holds it); True when there was one."""
    path = os.path.join(directory, name + '.lock')
    try:
        fd = os.open(path, os.O_RDWR | getattr(os, 'O_NOFOLLOW', 0))
    except OSError:
        return False
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o077:
            return False
        fcntl.flock(fd, fcntl.LOCK_EX)
        now = clock()
        record = RunLock._read(fd)
        if not record or record.get('expires', 0) <= now:
            return False
        record['expires'] = max(record['expires'], now + record.get('lease', DEFAULT_LEASE))
        RunLock._write(fd, record)
        return True
    finally:
        os.close(fd)


class GroupBusy(object):
    """Held by a step while it changes the group: the busy file's flock (waiting up to ``wait`` seconds for
    another step to end), with the run's lease renewed every ``RENEW_SECONDS`` meanwhile.

    ``usable`` is False (and nothing is held) when this process cannot use the lock directory (not root, and
    the default directory under ``/run``): the step then works unguarded, as before the busy file existed.
    """

    def __init__(self, directory, name, wait=900, clock=time.time, sleep=time.sleep):
        self.directory, self.name, self.wait = directory, name, wait
        self.clock, self.sleep = clock, sleep
        self.fd = None
        self.usable = True
        self._stop = threading.Event()
        self._thread = None

    def __enter__(self):
        try:
            self.fd = _open_busy(self.directory, self.name, os.geteuid())
        except LockError:
            if os.geteuid() != 0:
                self.usable = False
                return self
            raise
        start = self.clock()
        while True:
            pid = _take_busy(self.fd)
            if pid is None:
                break
            if self.clock() - start >= self.wait:
                os.close(self.fd)
                self.fd = None
                raise LockError('another step (pid %s) still changes the group %s on this host; waited %s s. Let it '
                                'end, then run again (file %s)'
                                % (pid, self.name, int(self.wait), busy_path(self.directory, self.name)))
            self.sleep(POLL_SECONDS)
        os.ftruncate(self.fd, 0)
        os.lseek(self.fd, 0, os.SEEK_SET)
        os.write(self.fd, str(os.getpid()).encode('ascii'))
        renew_live_lease(self.directory, self.name, self.clock)
        self._thread = threading.Thread(target=self._renew)
        self._thread.daemon = True
        self._thread.start()
        return self

    def _renew(self):
        while not self._stop.wait(RENEW_SECONDS):
            try:
                renew_live_lease(self.directory, self.name, self.clock)
            except (IOError, OSError):
                pass

    def __exit__(self, *exc_info):
        self._stop.set()
        if self._thread:
            self._thread.join()
        if self.fd is not None:
            renew_live_lease(self.directory, self.name, self.clock)
            os.ftruncate(self.fd, 0)
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None
        return False


def run_lock(params, check_mode=False, **kwargs):
    """The module's work: the result dict, or LockError. In check mode the lock is only read."""
    check_params(params)
    lock = RunLock(params, **kwargs)
    if check_mode or params['state'] == 'query':
        result = lock.query()
        if params['state'] == 'acquired' and result['held'] and result['holder'].get('owner') != params['owner']:
            result['warning'] = 'another run holds the lock: %s' % describe(result['holder'], lock.clock())
        return result
    if params['state'] == 'acquired':
        return lock.acquire()
    return lock.release()
