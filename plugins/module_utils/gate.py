# -*- coding: utf-8 -*-
# Copyright: authops.celery_tuning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The one gate: every value that reaches a supervisor file or a command line passes here.

supervisor reads its files with Python's ``configparser``: a newline starts a new line (and can
start a new ``[section]``), whitespace followed by ``;`` or ``#`` starts an inline comment even
inside quotes, leading and trailing whitespace is stripped, and ``%`` starts an expansion. A value
that carries any of these would be written as something else than what the user meant, or as a
section nobody asked for. Each checker below takes the option's name (for the message) and the
value, and returns the value or raises :class:`GateError` naming the option and the character.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import posixpath
import re

#: The expansions supervisor offers in program options (plus ``ENV_<name>``).
SUPERVISOR_EXPANSIONS = ("program_name", "process_num", "group_name", "host_node_name",
                         "numprocs", "here")

_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
_COMMENT_RE = re.compile(r"\s[;#]")
_PERCENT_RE = re.compile(r"%(%|\((\w+)\)[#0 +-]*\d*(?:\.\d+)?[sdiouxXeEfFgGcr])")
_NAME_RE = re.compile(r"[A-Za-z0-9_.\-]+\Z")
_APP_RE = re.compile(r"[A-Za-z0-9_.:\-]+\Z")
_ENV_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_CHAR_NAMES = {"\n": "a newline", "\r": "a carriage return", "\x00": "a NUL byte", "\t": "a tab"}


class GateError(ValueError):
    """A value that must not reach a supervisor file or a command line; the message says why."""


def _char(ch):
    return _CHAR_NAMES.get(ch, "the control character U+%04X" % ord(ch))


def _text(option, value):
    if isinstance(value, bool) or value is None or isinstance(value, (list, dict)):
        raise GateError("%s: %r is not a single value" % (option, value))
    return value if isinstance(value, str) else str(value)


def _no_breaks(option, value, shown, where):
    """No control character (a new line, maybe a new section) and no inline comment marker."""
    match = _CONTROL_RE.search(value)
    if match:
        raise GateError("%s: %s contains %s; %s must stay on one line" % (option, shown, _char(match.group(0)), where))
    match = _COMMENT_RE.search(value)
    if match:
        raise GateError("%s: %s contains %r: supervisor's parser would cut %s there (whitespace followed by %s "
                        "starts a comment, even inside quotes)" % (option, shown, match.group(0), where, match.group(0)[1]))
    return value


def check_line(option, value, secret=False):
    """A value for one line of a supervisor file: no control character, no inline comment.

    With ``secret`` the message names the option but never shows the value.
    """
    value = _text(option, value)
    shown = "its value" if secret else repr(value)
    _no_breaks(option, value, shown, "a value in a supervisor file")
    if value != value.strip():
        raise GateError("%s: %s starts or ends with whitespace, which supervisor's parser drops; remove it"
                        % (option, shown))
    return value


def check_expansions(option, value, allowed=SUPERVISOR_EXPANSIONS):
    """Every ``%`` is ``%%`` or one of supervisor's expansions (``%(program_name)s``, ``%(ENV_X)s``)."""
    pos = 0
    while True:
        idx = value.find("%", pos)
        if idx < 0:
            return value
        match = _PERCENT_RE.match(value, idx)
        if not match:
            raise GateError("%s: %r has a '%%' that is not an expansion supervisor knows; write %%%% for a "
                            "literal %%" % (option, value))
        key = match.group(2)
        if key is not None and key not in allowed and not key.startswith("ENV_"):
            raise GateError("%s: %r uses %%(%s)s; supervisor offers %s and ENV_<name> here"
                            % (option, value, key, ", ".join(allowed)))
        pos = match.end()


def check_value(option, value):
    """A supervisor option value as the user wrote it (expansions allowed, ``%%`` for ``%``)."""
    return check_expansions(option, check_line(option, value))


def check_name(option, value):
    """A program, group, process or queue name: letters, digits, ``_``, ``.``, ``-``."""
    if not isinstance(value, str) or not _NAME_RE.match(value):
        raise GateError("%s: %r must be a non-empty name of letters, digits, '_', '.' or '-'"
                        % (option, value))
    return value


def check_app(option, value):
    """Celery's ``-A``: a module path, optionally ``module:attribute``."""
    if not isinstance(value, str) or not _APP_RE.match(value):
        raise GateError("%s: %r must be a Celery app such as myauth or myauth.celery:app" % (option, value))
    return value


def check_path(option, value, expansions=False):
    """An absolute path without ``..`` components (``%(program_name)s`` with ``expansions``)."""
    value = check_line(option, value)
    if not posixpath.isabs(value):
        raise GateError("%s: %r must be an absolute path" % (option, value))
    if ".." in value.split("/"):
        raise GateError("%s: %r must not contain '..'; give the real path" % (option, value))
    if expansions:
        return check_expansions(option, value)
    if "%" in value:
        raise GateError("%s: %r must not contain '%%'" % (option, value))
    return value


def check_arg(option, value):
    """One command-line argument. The command is shell-quoted and ``%``-escaped when written, so
    only what quoting cannot carry is refused: control characters and inline comment markers."""
    value = _text(option, value)
    return _no_breaks(option, value, repr(value), "a command line in a supervisor file")


def check_env(option, name, value):
    """One variable of supervisor's ``environment=`` line, written as ``NAME="value"``.

    Values may be secrets: messages name the variable, never the value.
    """
    if not isinstance(name, str) or not _ENV_NAME_RE.match(name):
        raise GateError("%s: %r is not a variable name (letters, digits and '_', not starting with a digit)"
                        % (option, name))
    value = _text("%s.%s" % (option, name), value)
    if value[:1] == "'" or value[-1:] == "'":
        raise GateError("%s.%s: its value starts or ends with a single quote, which supervisor strips from "
                        "environment= values; put such a value in a file the program reads" % (option, name))
    for ch in ('"', "\\"):
        if ch in value:
            raise GateError("%s.%s: its value contains %r, which supervisor's environment= line cannot carry; "
                            "put such a value in a file the program reads" % (option, name, ch))
    option = "%s.%s" % (option, name)
    return _no_breaks(option, value, "its value", "supervisor's environment= line (put such a value in a file "
                      "the program reads)")
