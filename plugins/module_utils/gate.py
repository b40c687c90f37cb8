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
import pwd
import re

from ansible_collections.authops.celery_tuning.plugins.module_utils.supervisor_format import PERCENT_RE

#: The expansions supervisor offers in program options (plus ``ENV_<name>``).
SUPERVISOR_EXPANSIONS = ("program_name", "process_num", "group_name", "host_node_name",
                         "numprocs", "here")

_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
_COMMENT_RE = re.compile(r"\s[;#]")
_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*\Z")
#: Queue names: Celery and kombu take ``:`` and ``@`` too (``celery@host.dq``, ``tenant:jobs``), never ``,``
#: (the separator of --queues) or whitespace.
_QUEUE_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:@\-]*\Z")
#: systemd unit and init script names: no ``/`` (service_name is joined to /etc/init.d/), no ``\``.
_SERVICE_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:@\-]*\Z")
_APP_RE = re.compile(r"[A-Za-z0-9_.:\-]+\Z")
_ENV_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
#: The one length limit of a program, group, listener or service name. supervisor makes process names
#: (``<name>_%(process_num)02d``) and log files (``<name>.log``, rotated ``.log.10``) from them; 64 keeps
#: every one well under the 255 bytes of NAME_MAX.
NAME_MAX = 64
#: Expanded process names: a program name plus a number suffix.
PROCESS_NAME_MAX = NAME_MAX + 16
#: Queue names (AMQP allows 255 bytes).
QUEUE_NAME_MAX = 200
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
        match = PERCENT_RE.match(value, idx)
        if not match:
            raise GateError("%s: %r has a '%%' that is not an expansion supervisor knows; write %%%% for a "
                            "literal %%" % (option, value))
        key = match.group(1)
        if key is not None and key not in allowed and not key.startswith("ENV_"):
            raise GateError("%s: %r uses %%(%s)s; supervisor offers %s and ENV_<name> here"
                            % (option, value, key, ", ".join(allowed)))
        pos = match.end()


def check_value(option, value):
    """A supervisor option value as the user wrote it (expansions allowed, ``%%`` for ``%``)."""
    return check_expansions(option, check_line(option, value))


def _shown(value):
    """A value for a message: long ones are cut (a 300-character name is not repeated whole)."""
    text = repr(value)
    return text if len(text) <= 80 else "%s...' (%d characters)" % (text[:60], len(value))


def check_name(option, value, max_len=NAME_MAX):
    """A program, group, process, listener or user name: the one grammar of names.

    Letters, digits, ``_``, ``.`` and ``-``, starting with a letter, digit or ``_`` (so never ``.``,
    ``..`` or an option such as ``-x``), at most ``max_len`` characters (:data:`NAME_MAX`).
    """
    if not isinstance(value, str) or not _NAME_RE.match(value):
        raise GateError("%s: %s must be a non-empty name of letters, digits, '_', '.' or '-', starting with a "
                        "letter, digit or '_'" % (option, _shown(value)))
    if len(value) > max_len:
        raise GateError("%s: %s is %d characters long; names are at most %d (supervisor builds process and "
                        "log file names from them)" % (option, _shown(value), len(value), max_len))
    return value


def check_queue(option, value):
    """A Celery queue name: the name grammar plus ``:`` and ``@``; no ``,`` or whitespace."""
    if not isinstance(value, str) or not _QUEUE_RE.match(value) or len(value) > QUEUE_NAME_MAX:
        raise GateError("%s: %s must be a queue name of at most %d letters, digits, '_', '.', '-', ':' or '@' "
                        "(no commas or spaces: give queues as a list)" % (option, _shown(value), QUEUE_NAME_MAX))
    return value


def check_service_name(option, value):
    """A systemd unit or init script name (``supervisor``, ``supervisor.service``, ``supervisor@x``).

    It is joined to ``/etc/init.d/`` and run as root by service(8): no ``/``, no leading ``.`` or ``-``.
    """
    if not isinstance(value, str) or not _SERVICE_RE.match(value) or len(value) > NAME_MAX:
        raise GateError("%s: %s must be a service name of at most %d letters, digits, '_', '.', '-', ':' or '@', "
                        "starting with a letter, digit or '_' (no '/': it is looked up in /etc/init.d and "
                        "systemd)" % (option, _shown(value), NAME_MAX))
    return value


def supervisor_uid(user, getpwnam=None, getpwuid=None):
    """The uid supervisord runs a program as, resolved the way ``supervisor.datatypes.name_to_uid`` does:
    ``int()`` first (so ``00``, ``+0``, `` 0`` and ``\u0660`` are uid 0), then the user database.

    Returns the uid, or None when the name is not known here (supervisord itself then refuses the file).
    """
    try:
        return int(user)
    except (TypeError, ValueError):
        pass
    try:
        return (getpwnam or pwd.getpwnam)(user).pw_uid
    except (KeyError, TypeError, ValueError):
        return None


def is_root_user(user, getpwnam=None):
    """Whether ``user=`` makes supervisord run the program as root: no user, ``root``, or any spelling of
    uid 0 (or a name whose uid is 0, such as ``toor``)."""
    if user is None or (isinstance(user, str) and not user.strip()):
        return True
    if isinstance(user, str) and user.strip() == "root":
        return True
    return supervisor_uid(user, getpwnam) == 0


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


#: Variables that make a process load code from where they point: the dynamic loader's and Python's (and
#: those of the shells and interpreters a program may start). In ``[supervisord] environment=`` they reach
#: every process supervisord starts, memmon (root) included.
LOADER_VARIABLES = ("LD_PRELOAD", "LD_LIBRARY_PATH", "LD_AUDIT", "GCONV_PATH", "GLIBC_TUNABLES", "BASH_ENV",
                    "ENV", "PERL5LIB", "PERL5OPT", "PERLLIB", "RUBYLIB", "RUBYOPT", "NODE_OPTIONS", "NODE_PATH",
                    "PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONUSERBASE", "PYTHONEXECUTABLE",
                    "PYTHONPLATLIBDIR", "PYTHONBREAKPOINT", "PYTHONWARNINGS", "PYTHONINSPECT", "PYTHONPYCACHEPREFIX")
#: Python variables that load nothing (they are accepted everywhere).
SAFE_PYTHON_VARIABLES = ("PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE", "PYTHONHASHSEED", "PYTHONIOENCODING",
                         "PYTHONUTF8", "PYTHONFAULTHANDLER", "PYTHONOPTIMIZE", "PYTHONNOUSERSITE", "PYTHONSAFEPATH",
                         "PYTHONTRACEMALLOC", "PYTHONDEVMODE", "PYTHONLEGACYWINDOWSSTDIO", "PYTHONCOERCECLOCALE",
                         "PYTHONMALLOC", "PYTHONVERBOSE", "PYTHONDEBUG", "PYTHONNODEBUGRANGES",
                         "PYTHONINTMAXSTRDIGITS", "PYTHONWARNDEFAULTENCODING")


def is_loader_variable(name):
    """``LD_*``, ``PYTHON*`` (but the harmless ones of :data:`SAFE_PYTHON_VARIABLES`) and the others of
    :data:`LOADER_VARIABLES` (compared as the loader does: exactly, upper case)."""
    if not isinstance(name, str):
        return False
    if name in LOADER_VARIABLES or name.startswith("LD_"):
        return True
    return name.startswith("PYTHON") and name not in SAFE_PYTHON_VARIABLES


def env_value(option, value):
    """An environment value as text. The inventory's YAML scalars are converted as they were written in the
    usual spelling: ``true``/``false`` for booleans (not Python's ``True``), numbers as numbers; a missing
    value (null), a list or a dict is refused."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None or isinstance(value, (list, dict, tuple, set)):
        raise GateError("%s: its value is %s, not a single value; quote it (\"\" for an empty value)"
                        % (option, "null" if value is None else "a %s" % type(value).__name__))
    return value if isinstance(value, str) else str(value)


def check_env(option, name, value, loaders=True):
    """One variable of supervisor's ``environment=`` line, written as ``NAME="value"``.

    supervisor reads the line with ``shlex`` in non-POSIX mode: a backslash is kept as written, a ``"``
    cannot be carried, outer single quotes are stripped. Returns the value as text (:func:`env_value`).
    With ``loaders=False`` loader variables (:func:`is_loader_variable`) are refused.
    Values may be secrets: messages name the variable, never the value.
    """
    if not isinstance(name, str) or not _ENV_NAME_RE.match(name):
        raise GateError("%s: %r is not a variable name (letters, digits and '_', not starting with a digit)"
                        % (option, name))
    if not loaders and is_loader_variable(name):
        raise GateError("%s.%s: a variable that makes a process load code from where it points; it would reach "
                        "processes that run as root (memmon). Remove it (a program that needs it can set it in "
                        "its own environment as its own user)" % (option, name))
    value = env_value("%s.%s" % (option, name), value)
    if value[:1] == "'" or value[-1:] == "'":
        raise GateError("%s.%s: its value starts or ends with a single quote, which supervisor strips from "
                        "environment= values; put such a value in a file the program reads" % (option, name))
    if '"' in value:
        raise GateError("%s.%s: its value contains '\"', which supervisor's environment= line cannot carry; "
                        "put such a value in a file the program reads" % (option, name))
    option = "%s.%s" % (option, name)
    return _no_breaks(option, value, "its value", "supervisor's environment= line (put such a value in a file "
                      "the program reads)")


def env_references(value):
    """The names of the ``%(ENV_X)s`` expansions in ``value`` (``%%(ENV_X)s`` is a literal, not one)."""
    names = []
    for match in PERCENT_RE.finditer(value or ""):
        key = match.group(1)
        if key and key.startswith("ENV_"):
            names.append(key[4:])
    return names
