# -*- coding: utf-8 -*-
# Copyright: authops.celery_tuning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Auth's own ``myauth/supervisor.conf`` stays the source of intent, on every run.

Auth's guide links the project's file into supervisor's include directory; the celery_workers role replaces
that link with a file of its own (root's, 0640). Before it does, the path the link pointed to is written into
a record (root-only, 0600, under the role's state directory) together with the text that run followed. Every
later run reads that path again: when its text differs from the record's, the run reports what changed (a
line per section and option, the environment's values masked) and follows it, or refuses when asked to.

The file belongs to the Auth user, the website's user: it is read with the same care as at adoption
(:func:`supervisor_conf.read_conf_file`: no FIFO, no device, no file only root may read, at most 1 MiB), and
what it asks for goes through the same gate as the inventory's values.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import difflib
import hashlib
import json
import os
import stat

from ansible_collections.authops.celery_tuning.plugins.module_utils.supervisor_conf import (
    MAX_CONF_BYTES,
    AdoptionError,
    canonical_sections,
    canonical_text,
    read_conf_file,
    section_changes,
)

RECORD_FORMAT = 1
#: A record holds one group file's text and a path.
MAX_RECORD_BYTES = 4 * MAX_CONF_BYTES + 8192
CHANGE_ACTIONS = ("follow", "refuse")


def sha1(text):
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def link_target(path):
    """Where the link at ``path`` points, as an absolute path (a relative target is relative to its directory)."""
    return os.path.normpath(os.path.join(os.path.dirname(path), os.readlink(path)))


def read_record(path):
    """The record at ``path`` (``{"format", "source", "text"}``), or None when there is none.

    Not followed through a link, and refused unless it is a regular file of the running user (root) that no
    one else may read or write: it decides which file a root process reads next.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
    except OSError as exc:
        if not os.path.lexists(path):
            return None
        raise AdoptionError("the record %s cannot be opened (%s; a link is never followed): remove it, and the "
                            "next run records Auth's file again" % (path, exc.strerror))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o077:
            raise AdoptionError("the record %s is not a regular file only its owner (uid %d) reads and writes "
                                "(uid %d, mode %04o): remove it, and the next run records Auth's file again"
                                % (path, os.geteuid(), st.st_uid, stat.S_IMODE(st.st_mode)))
        data = os.read(fd, MAX_RECORD_BYTES + 1)
    finally:
        os.close(fd)
    try:
        record = json.loads(data.decode("utf-8")) if len(data) <= MAX_RECORD_BYTES else None
    except ValueError:
        record = None
    if (not isinstance(record, dict) or record.get("format") != RECORD_FORMAT
            or not isinstance(record.get("text"), str)
            or not (record.get("source") is None or (isinstance(record["source"], str)
                                                     and os.path.isabs(record["source"])))):
        raise AdoptionError("the record %s is not one this role wrote (format %d): remove it, and the next run "
                            "records Auth's file again" % (path, RECORD_FORMAT))
    return record


def record_content(source, text):
    """The record's text: the source of intent and the text this run follows."""
    return json.dumps(dict(format=RECORD_FORMAT, source=source, sha1=sha1(text), text=text),
                      indent=1, sort_keys=True) + "\n"


def _read_source(path):
    """Auth's file, read as at adoption; a file only root can read is never Auth's (see read_conf_file)."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise AdoptionError("%s cannot be read (%s)" % (path, exc.strerror))
    if st.st_uid == 0 and not st.st_mode & stat.S_IROTH:
        raise AdoptionError("%s is a file only root can read (mode %04o); Auth's supervisor.conf belongs to the "
                            "Auth user. Not read: make it the project's supervisor.conf again"
                            % (path, stat.S_IMODE(st.st_mode)))
    return read_conf_file(path)


def intent(path, adopted_path, record_path, auth_file=None, managed=False):
    """Which file says what the group runs, and what changed in it since the last run.

    ``path``: the group file; ``managed``: whether the role wrote it. Returns a dict with ``source`` (the
    file read), ``text``, ``auth_file`` (Auth's file followed, or None), ``changes`` (lines, empty when
    nothing changed or on the first adoption), ``diff`` (for Ansible's diff mode, or None), ``warnings``,
    ``record_content`` and ``record_current`` (whether the record on the host already says this).
    """
    warnings = []
    record = read_record(record_path) if record_path else None
    if not managed:
        # Adopting: Auth's link (or a file put there by hand) is what runs now.
        source, text, previous = path, read_conf_file(path), None
        recorded = followed = link_target(path) if os.path.islink(path) else None
    else:
        if record:
            recorded, previous = record["source"], record["text"]
        else:
            # Tuned before the record existed: the copy kept at adoption is what the last run followed.
            recorded = auth_file
            previous = read_conf_file(adopted_path) if os.path.exists(adopted_path) else None
        followed = recorded if recorded and os.path.lexists(recorded) else None
        if followed:
            source, text = followed, _read_source(followed)
        elif record:
            if recorded:
                warnings.append("%s, the Auth file recorded as the source of intent, is gone: the programs of the "
                                "last run are kept (from %s). Restore it, or give its new place with "
                                "celery_workers_auth_file and remove %s" % (recorded, record_path, record_path))
            source, text = record_path, previous
        elif previous is not None:
            source, text, recorded = adopted_path, previous, None
        else:
            source, text, recorded = None, "", None
    changes, diff = [], None
    if previous is not None and sha1(previous) != sha1(text):
        before = canonical_sections(record_path, previous)
        after = canonical_sections(source, text)
        changes = section_changes(before, after)
        if changes:
            diff = dict(before_header="%s (last run)" % (recorded or source), after_header="%s (now)" % source,
                        before=canonical_text(before), after=canonical_text(after))
    content = record_content(recorded, text) if source is not None else None
    current = record is not None and record.get("source") == recorded and record["text"] == text
    return dict(source=source, text=text, auth_file=followed, changes=changes, diff=diff, warnings=warnings,
                record_content=content, record_current=current or content is None)


def unified(diff):
    """The diff as text (for messages and tests)."""
    if not diff:
        return ""
    return "".join(difflib.unified_diff(diff["before"].splitlines(True), diff["after"].splitlines(True),
                                        diff["before_header"], diff["after_header"]))
