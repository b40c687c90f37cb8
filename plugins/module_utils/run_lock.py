# -*- coding: utf-8 -*-
# Copyright: authops.celery_tuning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The run lock: one tuning run at a time per host and group, a lease in a root-only file under ``/run``.

A run takes the lock before its first change and gives it back at its end. A second run waits for it, up to
its ``wait``, and then refuses with a message that names the holder. A run that dies (its controller killed)
cannot give the lock back: the lock then ends with its lease, or a run with ``break_lock`` takes it over. The
file's own ``flock`` is held only while the record is read and rewritten, so two runs never both see it free.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import fcntl
import json
import os
import re
import stat
import time

DEFAULT_DIRECTORY = '/run/authops-celery-tuning'
POLL_SECONDS = 2
_NAME_RE = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}\Z')


class LockError(Exception):
    """The lock cannot be taken or is unsafe; the message says what to do. ``holder`` is the run that holds
    it, when that is why."""

    def __init__(self, msg, holder=None):
        super(LockError, self).__init__(msg)
        self.holder = holder


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
    if params['state'] == 'acquired' and params['lease'] < 60:
        raise LockError('lease %s: at least 60 s, longer than the longest run (a graceful stop waits up to '
                        "the workers' stopwaitsecs)" % params['lease'])


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
        """Take the lock when it is free, expired, ours, or to be broken: (taken, previous live holder)."""
        p = self.params
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            record = self._live(self._read(fd), now)
            if record and record.get('owner') != p['owner'] and not p['break_lock']:
                return False, record
            mine = record if record and record.get('owner') == p['owner'] else None
            self._write(fd, dict(owner=p['owner'], description=p.get('description') or p['owner'],
                                 acquired=mine['acquired'] if mine else now, expires=now + p['lease']))
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
                    raise LockError(
                        'another run holds the lock of %s on this host: %s. Waited %s s. Let that run end and run '
                        'again; if it is dead (its controller was killed), its lock ends with its lease, or run '
                        'again with -e celery_tuning_lock_break=true to take it over (file %s)'
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
