# -*- coding: utf-8 -*-
# Copyright: authops.celery_tuning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Read a supervisor include file the way supervisord does, for adoption.

What the Auth group file runs is carried over, not guessed: the file is parsed with supervisor's
own parser (``UnhosedConfigParser``: inline comments, continuation lines), ``%(ENV_X)s`` references
are resolved from the file's own ``[supervisord] environment=``, and superlance memmon's
arguments are read back into limits per name. Whatever cannot be carried over raises
:class:`AdoptionError` naming the file and line.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re
import shlex
import stat

from ansible_collections.authops.celery_tuning.plugins.module_utils.memory_limits import check_limit_floor
from ansible_collections.authops.celery_tuning.plugins.module_utils.sizes import format_size, parse_size

_ENV_REF_RE = re.compile(r"%\(ENV_(\w+)\)s")
_HEADER_RE = re.compile(r"^\s*\[([^\]]+)\]")
_WORKERS_RE = re.compile(r"^(?:--workers(?:=(\d+))?|-w(\d+)?)$")
CARRIED_SUPERVISORD_OPTIONS = ("environment",)


#: The largest group file read (Auth's is 3 KB).
MAX_CONF_BYTES = 1024 * 1024


class AdoptionError(ValueError):
    """Something in the adopted file that cannot be carried over; the message names the line."""


def read_conf_file(path):
    """The text of a group file, read as root without trusting it; :class:`AdoptionError` otherwise.

    Opened with ``O_NONBLOCK`` and checked with ``fstat`` on the open file: a directory, FIFO, socket or
    device is refused (a FIFO would block forever). A path that goes through a symbolic link (Auth's guide
    links the project's file there, and the Auth user owns the project) is not read when it ends at a file
    only root can read. At most :data:`MAX_CONF_BYTES`, UTF-8. No message quotes the file's content.
    """
    linked = os.path.islink(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except OSError as exc:
        raise AdoptionError("%s cannot be opened: %s" % (path, exc.strerror))
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise AdoptionError("%s is a directory, not a supervisor file; give the group file's path" % path)
        if not stat.S_ISREG(st.st_mode):
            raise AdoptionError("%s is not a regular file (a FIFO, socket or device); supervisor's include files "
                                "are regular files. Replace it with Auth's supervisor.conf or a link to it" % path)
        if linked and st.st_uid == 0 and not st.st_mode & stat.S_IROTH:
            raise AdoptionError("%s is a link to %s, a file only root can read (mode %04o); Auth's supervisor.conf "
                                "belongs to the Auth user. Not read: point the link at the project's "
                                "supervisor.conf" % (path, os.path.realpath(path), stat.S_IMODE(st.st_mode)))
        if st.st_size > MAX_CONF_BYTES:
            raise AdoptionError("%s is %d bytes; a group file is at most %d" % (path, st.st_size, MAX_CONF_BYTES))
        chunks, size = [], 0
        while size <= MAX_CONF_BYTES:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > MAX_CONF_BYTES:
        raise AdoptionError("%s is more than %d bytes; a group file is not that long" % (path, MAX_CONF_BYTES))
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise AdoptionError("%s is not UTF-8 text (line %d); supervisor reads its files as UTF-8: save it as UTF-8"
                            % (path, data.count(b"\n", 0, exc.start) + 1))


def _parse_error(path, exc):
    """A parser's refusal by line number only: configparser quotes the offending line, which may be a
    secret (the file behind a link can be any file)."""
    lines = [num for num, dummy in getattr(exc, "errors", [])] or [getattr(exc, "lineno", None)]
    lines = [str(num) for num in lines if num]
    where = " line %s" % ", ".join(lines) if lines else ""
    return AdoptionError("%s cannot be parsed as a supervisor file%s (%s); check the file with "
                         "'supervisord -c' or compare it with Auth's supervisor.conf" % (path, where, type(exc).__name__))


def _parser():
    try:
        from supervisor.options import UnhosedConfigParser
        return UnhosedConfigParser(), "supervisor"
    except ImportError:
        import configparser
        return (configparser.RawConfigParser(inline_comment_prefixes=(";", "#"), strict=False,
                                             interpolation=None), "configparser (supervisor is not importable)")


def env_pairs(text):
    """``NAME=value,...`` as supervisor reads an ``environment=`` line (its own parser when importable)."""
    try:
        from supervisor.datatypes import dict_of_key_value_pairs
    except ImportError:
        dict_of_key_value_pairs = None
    if dict_of_key_value_pairs is not None:
        return dict_of_key_value_pairs(text)
    out = {}
    for item in shlex.split(text.replace(",", " ")):
        key, sep, value = item.partition("=")
        if sep:
            out[key.strip()] = value.strip()
    return out


class Locator(object):
    """Line numbers of sections and options in the raw text (the parser keeps none)."""

    def __init__(self, path, text):
        self.path = path
        self.lines = text.splitlines()
        self.headers = {}
        for num, line in enumerate(self.lines, 1):
            match = _HEADER_RE.match(line)
            if match:
                self.headers.setdefault(match.group(1).strip(), num)

    def where(self, section, option=None):
        start = self.headers.get(section)
        if start is None:
            return self.path
        if option:
            pattern = re.compile(r"^\s*%s\s*[=:]" % re.escape(option))
            for num in range(start, len(self.lines)):
                if _HEADER_RE.match(self.lines[num]):
                    break
                if pattern.match(self.lines[num]):
                    return "%s line %d" % (self.path, num + 1)
        return "%s line %d" % (self.path, start)


def _one_line(value):
    return " ".join(part.strip() for part in value.splitlines() if part.strip())


def resolve_env(value, env, where):
    """Replace ``%(ENV_X)s`` with the file's own environment (``%`` in a value stays literal)."""
    def sub(match):
        name = match.group(1)
        if name not in env:
            raise AdoptionError("%s: %%(ENV_%s)s is not set in the file's [supervisord] environment=, so the "
                                "role cannot tell what it runs; write the value into the file or set it there"
                                % (where, name))
        return env[name].replace("%", "%%")
    return _ENV_REF_RE.sub(sub, value)


def parse_memmon(argv, where):
    """superlance memmon's options back into limits: ``{"process": {name: size}, ...}``."""
    out = dict(process={}, group={}, any=None, cumulative=False, uptime=None, email=None, sendmail=None)
    with_value = {"-p": "process", "--program": "process", "-g": "group", "--group": "group",
                  "-a": "any", "--any": "any", "-u": "uptime", "--uptime": "uptime", "-m": "email",
                  "--email": "email", "-s": "sendmail", "--sendmail_program": "sendmail"}
    args = list(argv[1:])
    while args:
        arg = args.pop(0)
        flag, sep, inline = arg.partition("=") if arg.startswith("--") else (arg, "", "")
        if flag in ("-c", "--cumulative"):
            out["cumulative"] = True
            continue
        if flag not in with_value:
            raise AdoptionError("%s: memmon argument %r is not one the role can carry over (-p, -g, -a, -c, -u, "
                                "-m, -s)" % (where, arg))
        if sep:
            value = inline
        elif args:
            value = args.pop(0)
        else:
            raise AdoptionError("%s: memmon argument %s has no value" % (where, arg))
        key = with_value[flag]
        if key in ("process", "group"):
            name, eq, size = value.partition("=")
            if not eq or not name or not size:
                raise AdoptionError("%s: memmon %s %r is not NAME=SIZE" % (where, flag, value))
            out[key][name] = size
        else:
            out[key] = value
    return out


def gunicorn_workers(command):
    """Worker processes of a gunicorn command line (``--workers=N``, ``-w N``; gunicorn's default 1)."""
    try:
        argv = shlex.split(command)
    except ValueError:
        return 1
    for idx, arg in enumerate(argv):
        match = _WORKERS_RE.match(arg)
        if match:
            value = match.group(1) or match.group(2) or (argv[idx + 1] if idx + 1 < len(argv) else "1")
            try:
                return max(1, int(value))
            except ValueError:
                return 1
    return 1


def read_conf(path, text, tuned, marker=None):
    """Everything of ``text`` (the file at ``path``) the role carries over.

    ``tuned``: the program names the plan writes itself (beat and the workers). Returns a dict with
    ``parser``, ``managed``, ``environment``, ``group``, ``carry_over``, ``memmon`` and ``programs``.
    """
    parser, parser_name = _parser()
    try:
        parser.read_string(text, source=path)
    except Exception as exc:  # configparser errors, supervisor's own ValueErrors
        raise _parse_error(path, exc)
    loc = Locator(path, text)
    env = {}
    groups = {}
    programs = {}
    listeners = {}
    for section in parser.sections():
        kind, sep, name = section.partition(":")
        where = loc.where(section)
        if section == "supervisord":
            for option in parser.options(section):
                if option not in CARRIED_SUPERVISORD_OPTIONS:
                    raise AdoptionError("%s: [supervisord] %s= in an included file cannot be carried over; move "
                                        "it to supervisord.conf" % (loc.where(section, option), option))
            if parser.has_option(section, "environment"):
                env = env_pairs(_one_line(parser.get(section, "environment")))
            continue
        if not sep or kind not in ("program", "group", "eventlistener"):
            raise AdoptionError("%s: [%s] cannot be carried over (the group file holds programs, their group "
                                "and Auth's memmon listener); move it to a file of its own" % (where, section))
        options = dict((opt, _one_line(parser.get(section, opt))) for opt in parser.options(section))
        target = {"program": programs, "group": groups, "eventlistener": listeners}[kind]
        target[name] = options
    result = dict(parser=parser_name, managed=bool(marker and marker in text), environment=env,
                  group=None, carry_over=[], memmon=None, programs=sorted(programs))
    if len(groups) > 1:
        raise AdoptionError("%s defines %d groups (%s); the role owns one" % (path, len(groups), ", ".join(sorted(groups))))
    members = []
    if groups:
        gname, goptions = list(groups.items())[0]
        members = [p.strip() for p in goptions.get("programs", "").split(",") if p.strip()]
        result["group"] = dict(name=gname, programs=members)
    for name in sorted(programs):
        if name in tuned:
            continue
        where = loc.where("program:%s" % name)
        if members and name not in members:
            raise AdoptionError("%s: [program:%s] is not in the file's [group:%s]; carrying it into the group would "
                                "rename its processes. Move it to a file of its own" % (where, name, result["group"]["name"]))
        options = dict((k, resolve_env(v, env, loc.where("program:%s" % name, k)))
                       for k, v in programs[name].items())
        result["carry_over"].append(dict(name=name, options=options, source=where))
    for name, options in sorted(listeners.items()):
        where = loc.where("eventlistener:%s" % name, "command")
        command = resolve_env(options.get("command", ""), env, where)
        try:
            argv = shlex.split(command)
        except ValueError as exc:
            raise AdoptionError("%s: cannot split the command (%s)" % (where, exc))
        if not argv or argv[0].rsplit("/", 1)[-1] != "memmon":
            raise AdoptionError("%s: [eventlistener:%s] is not superlance's memmon; the role cannot carry it over. "
                                "Move it to a file of its own" % (where, name))
        if result["memmon"] is not None:
            raise AdoptionError("%s: a second memmon listener; keep one" % where)
        memmon = parse_memmon(argv, where)
        memmon.update(listener=name, source=where)
        result["memmon"] = memmon
    return result


def translate_memmon(memmon, programs, allow_small=False):
    """Auth's memmon intent, keyed by the real process names.

    ``programs``: ``{program name: {"process_names": [...], "children": N}}`` for everything the new
    group file runs. ``-p worker=256MB`` names a program whose process is ``worker_00``: the limit
    goes to every process of that program. memmon runs with ``-c`` (children counted), so a program
    whose children hold the memory (gunicorn's workers) gets the per-process size times its
    processes. Returns ``(limits, explain, unmatched)``.
    """
    limits, explain, unmatched = {}, [], []
    if not memmon:
        return limits, explain, unmatched
    by_process = {}
    for prog, info in programs.items():
        for proc in info["process_names"]:
            by_process[proc] = prog
    wanted = []
    for name, size in sorted(memmon.get("process", {}).items()):
        if name in programs:
            wanted.append((name, programs[name]["process_names"], size, "-p %s=%s" % (name, size)))
        elif name in by_process:
            wanted.append((by_process[name], [name], size, "-p %s=%s" % (name, size)))
        else:
            unmatched.append("-p %s=%s" % (name, size))
    if memmon.get("any"):
        for prog, info in sorted(programs.items()):
            wanted.append((prog, info["process_names"], memmon["any"], "-a %s" % memmon["any"]))
    for prog, procs, size, origin in wanted:
        what = "adopted memmon limit %s (%s)" % (origin, memmon.get("source") or "the adopted file")
        nbytes = parse_size(size, what)
        check_limit_floor(what, nbytes, allow_small)
        children = int(programs[prog].get("children") or 0)
        total = nbytes * (1 + children)
        for proc in procs:
            limits.setdefault(proc, format_size(total))
        explain.append("%s (%s) -> %s for %s%s" % (origin, memmon.get("source"), format_size(total), ", ".join(procs),
                                                   " (%d children counted with -c)" % children if children else ""))
    return limits, explain, unmatched


def canonical_sections(path, text):
    """``{section: {option: value}}`` of a group file, as supervisor's parser reads it (one-line values)."""
    parser, dummy = _parser()
    try:
        parser.read_string(text, source=path)
    except Exception as exc:  # configparser errors, supervisor's own ValueErrors
        raise _parse_error(path, exc)
    return dict((section, dict((opt, _one_line(parser.get(section, opt))) for opt in parser.options(section)))
                for section in parser.sections())


def _shown(section, option, value):
    """A value as a change may show it: the environment's names only (its values may be secrets)."""
    if option == "environment":
        try:
            names = sorted(env_pairs(value))
        except ValueError:
            names = []
        return ",".join("%s=***" % name for name in names)
    return value


def canonical_text(sections):
    """The sections one option a line, sorted, the environment's values masked: what a diff shows."""
    lines = []
    for section in sorted(sections):
        lines.append("[%s]" % section)
        for option in sorted(sections[section]):
            lines.append("%s = %s" % (option, _shown(section, option, sections[section][option])))
        lines.append("")
    return "\n".join(lines)


def section_changes(before, after):
    """What changed from ``before`` to ``after`` (canonical sections), a line each, no secret values."""
    changes = []
    for section in sorted(set(before) | set(after)):
        if section not in before:
            changes.append("[%s] added" % section)
        elif section not in after:
            changes.append("[%s] removed" % section)
        else:
            old, new = before[section], after[section]
            for option in sorted(set(old) | set(new)):
                if option not in old:
                    changes.append("[%s] %s= added: %s" % (section, option, _shown(section, option, new[option])))
                elif option not in new:
                    changes.append("[%s] %s= removed" % (section, option))
                elif old[option] != new[option]:
                    if option == "environment":
                        oldn, newn = set(env_pairs(old[option])), set(env_pairs(new[option]))
                        what = ["%s added" % n for n in sorted(newn - oldn)] + [
                            "%s removed" % n for n in sorted(oldn - newn)]
                        what += ["%s changed" % n for n in sorted(oldn & newn)
                                 if env_pairs(old[option])[n] != env_pairs(new[option])[n]]
                        changes.append("[%s] environment= changed (%s)" % (section, ", ".join(what) or "spelling"))
                    else:
                        changes.append("[%s] %s= changed to: %s" % (section, option, new[option]))
    return changes
