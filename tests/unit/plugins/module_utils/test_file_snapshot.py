# -*- coding: utf-8 -*-
# Copyright: authops.celery_tuning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""file_snapshot: taken once before the first change, restored as it was, refused when not trustworthy."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import time

import pytest

from ansible_collections.authops.celery_tuning.plugins.module_utils import file_snapshot as fs

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason='snapshots are root-only')


@pytest.fixture
def place(tmp_path):
    os.chmod(str(tmp_path), 0o700)
    etc = tmp_path / 'etc'
    etc.mkdir(mode=0o755)
    return dict(state=str(tmp_path / 'state'), etc=etc, home=tmp_path / 'home')


def params(place, path, **kw):
    p = dict(path=str(path), directory=place['state'], state='saved', managed_marker=None, remove_tree=False)
    p.update(kw)
    return p


def test_a_link_is_kept_once_and_made_again(place):
    auth = place['home']
    auth.mkdir()
    (auth / 'supervisor.conf').write_text('[program:beat]\n')
    link = place['etc'] / 'myauth.conf'
    os.symlink(str(auth / 'supervisor.conf'), str(link))
    first = fs.run_file_snapshot(params(place, link))
    assert first['changed'] and first['snapshot']['kind'] == 'link'
    record = fs.record_file(place['state'], str(link))
    assert oct(os.stat(record).st_mode & 0o777) == '0o600'
    assert oct(os.stat(place['state']).st_mode & 0o777) == '0o700'
    # the tuned file replaces the link; a second save keeps the first snapshot
    link.unlink()
    link.write_text('; tuned\n')
    again = fs.run_file_snapshot(params(place, link))
    assert not again['changed'] and again['snapshot']['kind'] == 'link'
    check = fs.run_file_snapshot(params(place, link, state='restored'), check_mode=True)
    assert check['changed'] and link.read_text() == '; tuned\n'
    assert 'symbolic link -> %s' % (auth / 'supervisor.conf') in check['diff']['after']
    done = fs.run_file_snapshot(params(place, link, state='restored'))
    assert done['changed'] and os.readlink(str(link)) == str(auth / 'supervisor.conf')
    assert not fs.run_file_snapshot(params(place, link, state='restored'))['changed']
    assert fs.run_file_snapshot(params(place, link, state='absent'))['changed']
    assert not os.path.exists(record)


def test_a_file_comes_back_with_its_content_mode_and_owner(place):
    conf = place['etc'] / 'supervisord.conf'
    conf.write_text('[unix_http_server]\nfile=/var/run/supervisor.sock\n')
    os.chmod(str(conf), 0o644)
    fs.run_file_snapshot(params(place, conf))
    conf.write_text('; rewritten\n')
    os.chmod(str(conf), 0o600)
    res = fs.run_file_snapshot(params(place, conf, state='restored'))
    assert res['changed'] and 'content' not in res['snapshot']
    assert conf.read_text() == '[unix_http_server]\nfile=/var/run/supervisor.sock\n'
    assert oct(os.stat(str(conf)).st_mode & 0o777) == '0o644'
    assert [n for n in os.listdir(str(place['etc'])) if 'restore' in n] == []


def test_what_was_absent_is_removed_and_a_tree_only_when_asked(place):
    dropin = place['etc'] / 'stop-timeout.conf'
    venv = place['etc'] / 'venv'
    fs.run_file_snapshot(params(place, dropin))
    fs.run_file_snapshot(params(place, venv))
    dropin.write_text('[Service]\n')
    venv.mkdir()
    (venv / 'bin').mkdir()
    assert fs.run_file_snapshot(params(place, dropin, state='restored'))['changed'] and not dropin.exists()
    kept = fs.run_file_snapshot(params(place, venv, state='restored'))
    assert not kept['changed'] and 'left in place' in kept['warning'] and venv.exists()
    assert fs.run_file_snapshot(params(place, venv, state='restored', remove_tree=True))['changed']
    assert not venv.exists()


def test_a_file_already_tuned_is_marked_and_refused(place):
    conf = place['etc'] / 'myauth.conf'
    conf.write_text('# authops.celery_tuning.celery_workers: the myauth group\n')
    res = fs.run_file_snapshot(params(place, conf, managed_marker='authops.celery_tuning.celery_workers'))
    assert res['snapshot']['managed'] is True
    with pytest.raises(fs.SnapshotError, match='already written by this collection'):
        fs.run_file_snapshot(params(place, conf, state='restored'))


def test_no_snapshot_is_a_clear_refusal_unless_the_collection_never_changed_the_path(place):
    marker = 'authops.celery_tuning.memmon'
    conf = place['etc'] / 'x.conf'
    # absent (never written, or rolled back already): nothing to restore, also a second time
    results = [fs.run_file_snapshot(params(place, conf, state='restored', managed_marker=marker)) for attempt in (1, 2)]
    assert all(not r['changed'] and r['snapshot'] is None and 'nothing to restore' in r['msg'] for r in results)
    conf.write_text('; the packaged file\n')
    assert not fs.run_file_snapshot(params(place, conf, state='restored', managed_marker=marker))['changed']
    link = place['etc'] / 'myauth.conf'
    os.symlink('/home/allianceserver/myauth/supervisor.conf', str(link))
    assert not fs.run_file_snapshot(params(place, link, state='restored', managed_marker=marker))['changed']
    # the collection's file, or one the marker cannot tell: refused, and left as it is
    conf.write_text('; written by %s\n' % marker)
    with pytest.raises(fs.SnapshotError, match='no snapshot of .* Nothing was changed'):
        fs.run_file_snapshot(params(place, conf, state='restored', managed_marker=marker))
    with pytest.raises(fs.SnapshotError, match='no snapshot of'):
        fs.run_file_snapshot(params(place, conf, state='restored'))
    assert marker in conf.read_text()


def test_a_snapshot_is_not_taken_from_a_place_others_can_change(place):
    shared = place['etc'] / 'shared'
    shared.mkdir()
    (shared / 'a.conf').write_text('secret\n')
    os.chmod(str(shared), 0o777)
    with pytest.raises(fs.SnapshotError, match='cannot be snapshotted safely'):
        fs.run_file_snapshot(params(place, shared / 'a.conf'))
    assert not os.path.exists(fs.record_file(place['state'], str(shared / 'a.conf')))


def test_a_file_swapped_while_it_is_read_is_not_copied(place, monkeypatch):
    conf = place['etc'] / 'a.conf'
    conf.write_text('x\n')
    other = place['etc'] / 'other'
    other.write_text('y\n')
    real_lstat = os.lstat
    monkeypatch.setattr(fs.os, 'lstat', lambda p: real_lstat(str(other)) if p == str(conf) else real_lstat(p))
    with pytest.raises(fs.SnapshotError, match='changed while it was read'):
        fs.describe(str(conf))


@pytest.mark.parametrize('mode, uid', [(0o644, 0), (0o600, 1000)])
def test_a_record_others_could_write_is_not_trusted(place, mode, uid):
    conf = place['etc'] / 'a.conf'
    conf.write_text('x\n')
    fs.run_file_snapshot(params(place, conf))
    record = fs.record_file(place['state'], str(conf))
    os.chmod(record, mode)
    os.chown(record, uid, 0)
    with pytest.raises(fs.SnapshotError, match='not trusted'):
        fs.run_file_snapshot(params(place, conf, state='restored'))


def test_a_record_with_a_foreign_path_or_bad_checksum_is_refused(place):
    conf = place['etc'] / 'a.conf'
    conf.write_text('x\n')
    fs.run_file_snapshot(params(place, conf))
    record = fs.record_file(place['state'], str(conf))
    data = json.loads(open(record).read())
    data['sha1'] = '0' * 40
    with open(record, 'w') as handle:
        handle.write(json.dumps(data))
    with pytest.raises(fs.SnapshotError, match='damaged'):
        fs.run_file_snapshot(params(place, conf, state='restored'))
    data['path'] = '/etc/shadow'
    with open(record, 'w') as handle:
        handle.write(json.dumps(data))
    with pytest.raises(fs.SnapshotError, match='not a snapshot of'):
        fs.run_file_snapshot(params(place, conf, state='restored'))


def test_a_parent_others_can_write_is_refused(place):
    shared = place['etc'] / 'shared'
    shared.mkdir()
    target = shared / 'a.conf'
    fs.run_file_snapshot(params(place, target))
    target.write_text('x\n')
    os.chmod(str(shared), 0o777)
    with pytest.raises(fs.SnapshotError, match='cannot be restored safely'):
        fs.run_file_snapshot(params(place, target, state='restored'))
    assert target.exists()


@pytest.mark.parametrize('path', ['relative', '/etc/../etc/x', '/etc/x/', '/etc//x', '/etc/x\n[program:y]', '/'])
def test_paths_with_tricks_are_refused_before_anything(place, path):
    with pytest.raises(fs.SnapshotError, match='absolute path'):
        fs.check_params(dict(path=path, directory=place['state'], state='saved'))


def test_an_unsafe_snapshot_directory_is_refused(place, tmp_path):
    unsafe = tmp_path / 'open'
    unsafe.mkdir()
    os.chmod(str(unsafe), 0o777)
    with pytest.raises(fs.SnapshotError, match='not root-safe'):
        fs.run_file_snapshot(dict(path=str(place['etc'] / 'a'), directory=str(unsafe / 'state'), state='saved'))


def test_only_the_backups_made_since_the_snapshot_are_removed(place):
    conf = place['etc'] / 'supervisord.conf'
    conf.write_text('; the packaged file\n')
    old = place['etc'] / 'supervisord.conf.100.2001-01-01@00:00:00~'
    old.write_text('an admin backup\n')
    fs.run_file_snapshot(params(place, conf), clock=lambda: 1e9)  # 2001-09-09
    stamp = time.strftime('%Y-%m-%d@%H:%M:%S', time.localtime(2e9))
    new = place['etc'] / ('supervisord.conf.4711.%s~' % stamp)
    new.write_text('; the packaged file\n')
    other = place['etc'] / ('other.conf.4711.%s~' % stamp)
    other.write_text('x\n')
    conf.write_text('; tuned\n')
    check = fs.run_file_snapshot(params(place, conf, state='restored', remove_backups=True), check_mode=True)
    assert check['backups'] == [str(new)] and new.exists()
    done = fs.run_file_snapshot(params(place, conf, state='restored', remove_backups=True))
    assert done['changed'] and done['backups'] == [str(new)] and 'removed 1 backup' in done['msg']
    assert not new.exists() and old.exists() and other.exists()
    assert conf.read_text() == '; the packaged file\n'
