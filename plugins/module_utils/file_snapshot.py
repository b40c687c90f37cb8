# -*- coding: utf-8 -*-
# Copyright: authops.celery_tuning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Snapshots of the host's files before the collection first changes them, and their restore (rollback.yml).

A snapshot is taken once per path, just before the first write to it: what the path was (absent, a symbolic
link and its target, a regular file with its content, mode and owner, or a directory). It is never taken
again while it exists, so a second run, or a run after one that died, keeps the state from before the first
change. Restoring puts the path back as the snapshot says: the link re-made, the file rewritten (in a
temporary file renamed over it), or the path removed when it did not exist.

Records live in a root-only directory (0700) as 0600 JSON files; a record that is not root's and 0600, or a
directory anyone else can write to, is refused. The restored path's parent must be root-safe
(:mod:`root_safe`), so nobody else can swap what root writes there.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import calendar
import errno
import grp
import hashlib
import json
import os
import re
import pwd
import shutil
import stat
import tempfile
import time

from ansible_collections.authops.celery_tuning.plugins.module_utils.root_safe import root_safe_problems

FORMAT = 1
DEFAULT_DIRECTORY = '/var/lib/authops-celery-tuning'
SUBDIR = 'pristine'
#: Larger files are not snapshotted (supervisor files are a few KiB).
MAX_BYTES = 1024 * 1024
KINDS = ('absent', 'link', 'file', 'directory')
#: The name ending of the backups Ansible's copy and template make (``backup: true``): .PID.YYYY-MM-DD@HH:MM:SS~
#: (the host's local time).
BACKUP_SUFFIX = re.compile(r'\.[0-9]+\.([0-9]{4}-[0-9]{2}-[0-9]{2}@[0-9]{2}:[0-9]{2}:[0-9]{2})~$')
TAKEN_AT = '%Y-%m-%d %H:%M:%S UTC'


class SnapshotError(Exception):
    """The snapshot cannot be taken, read or restored; the message says what to do."""


def _clean_path(name, value):
    if not isinstance(value, str) or not value.startswith('/') or '\n' in value or '\x00' in value \
            or os.path.normpath(value) != value or value == '/':
        raise SnapshotError('%s %r: an absolute path without "..", ".", "//", a trailing "/" or a newline'
                            % (name, value))
    return value


def check_params(params):
    """The options' own rules, before anything on the host is read or changed."""
    _clean_path('path', params.get('path'))
    _clean_path('directory', params.get('directory'))
    if params.get('state') not in ('saved', 'restored', 'absent'):
        raise SnapshotError('state %r: saved, restored or absent' % (params.get('state'),))
    marker = params.get('managed_marker')
    if marker is not None and ('\n' in marker or not marker.strip()):
        raise SnapshotError('managed_marker %r: one non-empty line' % (marker,))


def record_file(directory, path):
    """Where the snapshot of ``path`` lives: one file per path, its name the path with ``/`` spelt ``%2F``."""
    return os.path.join(directory, SUBDIR, path.replace('%', '%25').replace('/', '%2F') + '.json')


def _names(st):
    try:
        owner = pwd.getpwuid(st.st_uid).pw_name
    except KeyError:
        owner = None
    try:
        group = grp.getgrgid(st.st_gid).gr_name
    except KeyError:
        group = None
    return owner, group


def describe(path, with_content=True):
    """What ``path`` is now, as a snapshot records it (without following a final symbolic link)."""
    try:
        st = os.lstat(path)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            return dict(path=path, kind='absent')
        raise SnapshotError('cannot read %s: %s' % (path, exc.strerror))
    owner, group = _names(st)
    base = dict(path=path, uid=st.st_uid, gid=st.st_gid, owner=owner, group=group, mode='%04o' % stat.S_IMODE(st.st_mode))
    if stat.S_ISLNK(st.st_mode):
        base.update(kind='link', target=os.readlink(path))
        return base
    if stat.S_ISDIR(st.st_mode):
        base.update(kind='directory')
        return base
    if not stat.S_ISREG(st.st_mode):
        raise SnapshotError('%s is neither a file, a link nor a directory: not snapshotted' % path)
    if st.st_size > MAX_BYTES:
        raise SnapshotError('%s is larger than %d bytes: not snapshotted' % (path, MAX_BYTES))
    # Read what lstat saw, not what a swap put there since: no link followed, the same inode.
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, 'O_NOFOLLOW', 0) | getattr(os, 'O_NONBLOCK', 0))
    except OSError as exc:
        raise SnapshotError('cannot read %s: %s' % (path, exc.strerror))
    try:
        now = os.fstat(fd)
        if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino) or not stat.S_ISREG(now.st_mode):
            raise SnapshotError('%s changed while it was read: run again' % path)
        data = os.read(fd, MAX_BYTES + 1)
    finally:
        os.close(fd)
    base.update(kind='file', sha1=hashlib.sha1(data).hexdigest(), size=len(data))
    if with_content:
        base['content'] = base64.b64encode(data).decode('ascii')
    return base


def summary(record):
    """The record without its content (which may hold secrets), for results and messages."""
    return dict((k, v) for k, v in record.items() if k != 'content')


def label(record):
    """One line for the diff and the messages."""
    kind = record.get('kind')
    if kind == 'absent':
        return 'absent'
    owner = '%s:%s %s' % (record.get('owner') or record.get('uid'), record.get('group') or record.get('gid'),
                          record.get('mode'))
    if kind == 'link':
        return 'symbolic link -> %s' % record.get('target')
    if kind == 'directory':
        return 'directory %s' % owner
    return 'file %s, %d bytes, sha1 %s' % (owner, record.get('size', 0), record.get('sha1'))


def _safe_directory(directory, create):
    problems = root_safe_problems(directory)
    if problems:
        raise SnapshotError('the snapshot directory is not root-safe: %s. Make it root-only (0700) or set '
                            'another directory.' % problems[0])
    sub = os.path.join(directory, SUBDIR)
    for path in (directory, sub):
        try:
            st = os.lstat(path)
        except OSError:
            if not create:
                return False
            os.mkdir(path, 0o700)
            os.chown(path, 0, 0)
            st = os.lstat(path)
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != 0 or st.st_mode & 0o077:
            raise SnapshotError('%s must be a directory of root, mode 0700 (found mode %04o, uid %s)'
                                % (path, stat.S_IMODE(st.st_mode), st.st_uid))
    return True


def read_record(directory, path):
    """The snapshot of ``path``, or None when none was taken. Refuses a record anyone else could have written."""
    if not _safe_directory(directory, create=False):
        return None
    name = record_file(directory, path)
    try:
        fd = os.open(name, os.O_RDONLY | getattr(os, 'O_NOFOLLOW', 0))
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return None
        raise SnapshotError('cannot open the snapshot %s: %s' % (name, exc.strerror))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_uid != 0 or st.st_mode & 0o077:
            raise SnapshotError('the snapshot %s must be root\'s, mode 0600 (found mode %04o, uid %s): it is not '
                                'trusted. Remove it only if you know what the path was before the first run.'
                                % (name, stat.S_IMODE(st.st_mode), st.st_uid))
        data = os.read(fd, 4 * MAX_BYTES)
    finally:
        os.close(fd)
    try:
        record = json.loads(data.decode('utf-8'))
    except ValueError:
        raise SnapshotError('the snapshot %s is not JSON: remove it only if you know what %s was before the '
                            'first run' % (name, path))
    if not isinstance(record, dict) or record.get('format') != FORMAT or record.get('path') != path \
            or record.get('kind') not in KINDS:
        raise SnapshotError('the snapshot %s is not a snapshot of %s (format %s)' % (name, path, FORMAT))
    if record['kind'] == 'link':
        target = record.get('target')
        if not isinstance(target, str) or not target or '\n' in target or '\x00' in target:
            raise SnapshotError('the snapshot %s names an unusable link target %r' % (name, target))
    if record['kind'] == 'file':
        try:
            content = base64.b64decode(record.get('content') or '', validate=True)
        except (TypeError, ValueError):
            raise SnapshotError('the snapshot %s holds no readable content' % name)
        if hashlib.sha1(content).hexdigest() != record.get('sha1'):
            raise SnapshotError('the snapshot %s does not match its own checksum: it is damaged' % name)
    return record


def _write_record(directory, record):
    _safe_directory(directory, create=True)
    name = record_file(directory, record['path'])
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(name), prefix='.snapshot-')
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, json.dumps(record, sort_keys=True).encode('utf-8'))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(tmp, name)
    return name


def save(params, check_mode=False, clock=time.time):
    """Take the snapshot of ``path`` unless one exists. Returns (changed, record, note)."""
    directory, path = params['directory'], params['path']
    existing = read_record(directory, path)
    if existing is not None:
        return False, existing, 'kept the snapshot taken %s' % existing.get('taken_at', 'earlier')
    # What root copies into its snapshot comes from a place nobody else can swap (absent places are safe).
    if os.path.lexists(os.path.dirname(path)):
        _parent_safe(path, 'snapshotted')
    record = describe(path)
    record.update(format=FORMAT, taken_at=time.strftime(TAKEN_AT, time.gmtime(clock())))
    marker = params.get('managed_marker')
    if marker and record['kind'] == 'file' \
            and marker.encode('utf-8') in base64.b64decode(record['content']):
        # Already this collection's (a host tuned before snapshots existed): not the state before the first run.
        record['managed'] = True
    if not check_mode:
        _write_record(directory, record)
    return True, record, 'took the snapshot (%s)' % label(record)


def _parent_safe(path, what='restored'):
    problems = root_safe_problems(os.path.dirname(path))
    if problems:
        raise SnapshotError('%s cannot be %s safely: %s' % (path, what, problems[0]))


def _untouched(path, marker):
    """Why ``path``, which has no snapshot, needs no restore (None when that cannot be told: it is absent, or it
    does not hold the collection's ``marker``), and what it is now (without content)."""
    now = describe(path, with_content=marker is not None)
    content = base64.b64decode(now.pop('content', ''))
    if now['kind'] == 'absent':
        return 'no snapshot, and %s is absent: nothing to restore' % path, now
    if marker is None or now['kind'] == 'directory':
        return None, now
    if now['kind'] == 'link':
        return 'no snapshot, and %s is a link (%s), not a file of the collection: nothing to restore' \
            % (path, now['target']), now
    if marker.encode('utf-8') not in content:
        return 'no snapshot, and %s was not written by the collection: nothing to restore' % path, now
    return None, now


def _same(record, now):
    if record['kind'] != now['kind']:
        return False
    if record['kind'] == 'absent':
        return True
    if record['kind'] == 'link':
        return record['target'] == now['target']
    if record['kind'] == 'directory':
        return True  # an existing directory is left as it is
    return all(record.get(k) == now.get(k) for k in ('sha1', 'mode', 'uid', 'gid'))


def _uid_gid(record):
    uid, gid = record.get('uid', 0), record.get('gid', 0)
    if record.get('owner'):
        try:
            uid = pwd.getpwnam(record['owner']).pw_uid
        except KeyError:
            pass
    if record.get('group'):
        try:
            gid = grp.getgrnam(record['group']).gr_gid
        except KeyError:
            pass
    return uid, gid


def _replace_with_link(path, target):
    tmp = os.path.join(os.path.dirname(path), '.%s.restore-%d' % (os.path.basename(path), os.getpid()))
    try:
        os.unlink(tmp)
    except OSError:
        pass
    os.symlink(target, tmp)
    os.rename(tmp, path)


def _replace_with_file(path, record):
    uid, gid = _uid_gid(record)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix='.%s.restore-' % os.path.basename(path))
    try:
        os.fchown(fd, uid, gid)
        os.fchmod(fd, int(record['mode'], 8))
        os.write(fd, base64.b64decode(record['content']))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(tmp, path)


def backups_since(record, path):
    """Ansible's backups of ``path`` beside it that were made since ``record`` was taken (older ones, an admin's
    own, are not the collection's to remove)."""
    try:
        taken = calendar.timegm(time.strptime(record.get('taken_at', ''), TAKEN_AT))
    except ValueError:
        return []
    parent, base = os.path.split(path)
    try:
        names = sorted(os.listdir(parent))
    except OSError:
        return []
    found = []
    for name in names:
        match = BACKUP_SUFFIX.search(name)
        if not match or name[:match.start()] != base:
            continue
        try:
            made = time.mktime(time.strptime(match.group(1), '%Y-%m-%d@%H:%M:%S'))
        except (ValueError, OverflowError):
            continue
        full = os.path.join(parent, name)
        if made >= taken - 1 and stat.S_ISREG(os.lstat(full).st_mode):
            found.append(full)
    return found


def _remove_backups(record, path, check_mode):
    found = backups_since(record, path) if record else []
    if not check_mode:
        for name in found:
            os.unlink(name)
    return found


def restore(params, check_mode=False):
    """Put ``path`` back as its snapshot says. Returns (changed, record, now_before, note, warning)."""
    directory, path = params['directory'], params['path']
    record = read_record(directory, path)
    if record is None:
        untouched, now = _untouched(path, params.get('managed_marker'))
        if untouched:
            # Never changed by the collection (or rolled back already): nothing to restore.
            return False, None, now, untouched, None
        raise SnapshotError('no snapshot of %s under %s: this host was not tuned by a version that keeps them '
                            '(0.3.0 or later), or the snapshot was removed. Nothing was changed; restore %s by '
                            'hand.' % (path, os.path.join(directory, SUBDIR), path))
    if record.get('managed'):
        raise SnapshotError('the snapshot of %s was taken when the file was already written by this collection '
                            '(the host was tuned before snapshots were kept): it is not the state before the first '
                            'run. Nothing was changed; restore %s by hand (a backup may lie beside it as %s.*~).'
                            % (path, path, os.path.basename(path)))
    now = describe(path, with_content=False)
    if _same(record, now):
        return False, record, now, 'already as before the first run (%s)' % label(record), None
    if now['kind'] == 'directory' and record['kind'] in ('file', 'link'):
        raise SnapshotError('%s is a directory now, and was a %s before the first run: remove it by hand first'
                            % (path, record['kind']))
    _parent_safe(path)
    warning = None
    if check_mode:
        return True, record, now, 'would restore %s (%s, now %s)' % (path, label(record), label(now)), None
    if record['kind'] == 'absent':
        if now['kind'] == 'directory':
            if params.get('remove_tree'):
                shutil.rmtree(path)
            else:
                try:
                    os.rmdir(path)
                except OSError:
                    warning = '%s did not exist before the first run, but holds files now: left in place' % path
                    return False, record, now, 'left %s in place' % path, warning
        else:
            os.unlink(path)
    elif record['kind'] == 'link':
        _replace_with_link(path, record['target'])
    elif record['kind'] == 'file':
        _replace_with_file(path, record)
    elif now['kind'] != 'directory':  # pragma: no cover - a directory in the record and a file now
        raise SnapshotError('%s was a directory before the first run and is a %s now: restore it by hand'
                            % (path, now['kind']))
    return True, record, now, 'restored %s (%s, was %s)' % (path, label(record), label(now)), warning


def forget(params, check_mode=False):
    """Remove the snapshot of ``path`` (after a rollback, so the next run takes a new one)."""
    directory, path = params['directory'], params['path']
    if not _safe_directory(directory, create=False):
        return False, None
    name = record_file(directory, path)
    if not os.path.lexists(name):
        return False, None
    record = read_record(directory, path)
    if not check_mode:
        os.unlink(name)
    return True, record


def run_file_snapshot(params, check_mode=False, clock=time.time):
    """The module's work: the result dict, or SnapshotError."""
    check_params(params)
    state = params['state']
    if state == 'saved':
        changed, record, note = save(params, check_mode=check_mode, clock=clock)
        return dict(changed=changed, snapshot=summary(record), msg=note,
                    record_file=record_file(params['directory'], params['path']))
    if state == 'restored':
        changed, record, now, note, warning = restore(params, check_mode=check_mode)
        backups = _remove_backups(record, params['path'], check_mode) if params.get('remove_backups') else []
        if backups:
            changed, note = True, '%s; %s %d backup(s) made since the snapshot' % (
                note, 'would remove' if check_mode else 'removed', len(backups))
        result = dict(backups=backups, changed=changed, snapshot=summary(record) if record else None, msg=note,
                      record_file=record_file(params['directory'], params['path']),
                      diff=dict(before='%s: %s\n' % (params['path'], label(now)),
                                after='%s: %s\n' % (params['path'], label(record) if changed else label(now))))
        if warning:
            result['warning'] = warning
        return result
    changed, record = forget(params, check_mode=check_mode)
    return dict(changed=changed, snapshot=summary(record) if record else None,
                msg='removed the snapshot' if changed else 'no snapshot to remove',
                record_file=record_file(params['directory'], params['path']))
