# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Hostile input, second round (issue 21): variants of every class, not only the quoted inputs.

Every refusal happens in the module_utils the modules call before they change anything: ``plan_group``
(worker_flags, before the template), ``read_conf``/``read_conf_file`` (supervisor_conf_info),
``run_supervisor_group`` (before the first stop), ``probe_uid`` (before the probe runs), the filters (on the
controller). A refusal raises, so nothing reaches a supervisor file, a command line or a root process; the
supervisor_group cases also check that no call changed anything. ``HOSTILE_KINDS`` counts the kinds.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import os
import socket

import pytest

from ansible_collections.authops.celery_tuning.plugins.module_utils import gate
from ansible_collections.authops.celery_tuning.plugins.module_utils.celery_cli import check_extra_args
from ansible_collections.authops.celery_tuning.plugins.module_utils.plan_errors import WorkerFlagsError
from ansible_collections.authops.celery_tuning.plugins.module_utils.sizes import parse_size
from ansible_collections.authops.celery_tuning.plugins.module_utils.gate import GateError
from ansible_collections.authops.celery_tuning.plugins.module_utils.root_safe import (
    root_safe_problems,
    root_safe_tree_problems,
)
from ansible_collections.authops.celery_tuning.plugins.module_utils.supervisor_conf import (
    AdoptionError,
    read_conf,
    read_conf_file,
)
from ansible_collections.authops.celery_tuning.plugins.module_utils.supervisor_errors import SupervisorError
from ansible_collections.authops.celery_tuning.plugins.module_utils.worker_profile import ProfileError, probe_uid
from ansible_collections.authops.celery_tuning.tests.unit.plugins.module_utils.test_hostile_input import (
    GUNICORN,
    LAYOUT,
    WORKERS,
    plan,
    worker,
)
from ansible_collections.authops.celery_tuning.tests.unit.plugins.module_utils.test_supervisor_ops import (
    FakeClock,
    FakeSupervisor,
    myauth,
    run,
)

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="ownership checks need root (chown)")
LONG = "w" * 300


def carried(**options):
    return [dict(GUNICORN, options=dict(GUNICORN["options"], **options))]


def beat(**kw):
    out = copy.deepcopy(WORKERS)
    out[0].update(kw)
    return out


def unsafe(path):
    """A root-safe check that finds every path under /home unsafe (a user's)."""
    return ["%s is owned by uid 1000, not root" % path] if path.startswith("/home") else []


# ------------------------------------------------------------------------------------------------
# plan_group (worker_flags): (kind, plan kwargs, message pattern)
# ------------------------------------------------------------------------------------------------
PLAN_REFUSED = [
    # root by another spelling: supervisord reads user= with int() first
    ("user 0", dict(layout=dict(LAYOUT, user="0")), "root"),
    ("user 00", dict(layout=dict(LAYOUT, user="00")), "root"),
    ("user 000", dict(layout=dict(LAYOUT, user="000")), "root"),
    ("user +0", dict(layout=dict(LAYOUT, user="+0")), "root"),
    ("user -0", dict(layout=dict(LAYOUT, user="-0")), "root"),
    ("user ' 0'", dict(layout=dict(LAYOUT, user=" 0")), "root"),
    ("user '0 '", dict(layout=dict(LAYOUT, user="0 ")), "root"),
    ("user 0_0", dict(layout=dict(LAYOUT, user="0_0")), "root"),
    ("user arabic-indic zero", dict(layout=dict(LAYOUT, user=u"\u0660")), "root"),
    ("user devanagari zeros", dict(layout=dict(LAYOUT, user=u"\u0966\u0966")), "root"),
    ("user int 0", dict(layout=dict(LAYOUT, user=0)), "root"),
    ("user empty", dict(layout=dict(LAYOUT, user="")), "root"),
    ("user blank", dict(layout=dict(LAYOUT, user="  ")), "root"),
    ("adopted user=000", dict(carry_over=carried(user="000")), "root"),
    ("adopted user=+0", dict(carry_over=carried(user="+0")), "root"),
    ("adopted user=root", dict(carry_over=carried(user="root")), "root"),
    ("adopted user= empty", dict(carry_over=carried(user="")), "root"),
    # names that become paths, process names and log files: one grammar, 64 characters
    ("program name 300 chars", dict(workers=worker(name=LONG)), "at most 64"),
    ("program name 65 chars", dict(workers=worker(name="w" * 65)), "at most 64"),
    ("beat name 300 chars", dict(workers=beat(name=LONG)), "at most 64"),
    ("group name 300 chars", dict(layout=dict(LAYOUT, group_name=LONG)), "at most 64"),
    ("adopted program name 300 chars", dict(carry_over=[dict(GUNICORN, name=LONG)]), "at most 64"),
    ("program name ../x", dict(workers=worker(name="../x")), "non-empty name"),
    ("program name ..", dict(workers=worker(name="..")), "non-empty name"),
    ("program name .hidden", dict(workers=worker(name=".hidden")), "non-empty name"),
    ("program name -x", dict(workers=worker(name="-x")), "non-empty name"),
    ("program name a/b", dict(workers=worker(name="a/b")), "non-empty name"),
    ("group name ../../tmp", dict(layout=dict(LAYOUT, group_name="../../tmp")), "non-empty name"),
    ("group_name option -g", dict(workers=worker(group_name="-g")), "non-empty name"),
    ("process_name long expansion", dict(workers=worker(process_name="%(program_name)s_" + "x" * 90)), "at most"),
    ("adopted process_name ../x", dict(carry_over=carried(process_name="../%(program_name)s")), "name"),
    ("adopted numprocs 0", dict(carry_over=carried(numprocs="0")), "numprocs"),
    ("adopted numprocs x", dict(carry_over=carried(numprocs="x")), "whole numbers"),
    ("queue with a space", dict(workers=worker(queues=["a b"])), "queue"),
    ("queue with a comma", dict(workers=worker(queues=["a,b"])), "queue"),
    ("queue with %", dict(workers=worker(queues=["%(program_name)s"])), "queue name"),
    ("queue 300 chars", dict(workers=worker(queues=["q" * 300])), "queue name"),
    ("queue starting with -", dict(workers=worker(queues=["-Q"])), "queue name"),
    # quiet losses: names that collide with the memmon listener or the group
    ("group named memmon", dict(layout=dict(LAYOUT, group_name="memmon")), "memmon listener"),
    ("worker named memmon", dict(workers=worker(name="memmon")), "memmon listener"),
    ("adopted program named memmon", dict(carry_over=[dict(GUNICORN, name="memmon")]), "memmon listener"),
    ("group named like a reserved listener", dict(layout=dict(LAYOUT, group_name="crashmail"),
                                                  reserved_names=["memmon", "crashmail"]), "memmon listener"),
    ("worker named like the group", dict(workers=worker(name="myauth")), "name of its group"),
    # sizes that round to 0 or fall below the floors
    ("memory_limit 0.0001KB", dict(workers=worker(memory_limit="0.0001KB"), allow_small_memory_limit=True), "0 bytes"),
    ("max_memory_per_child 0.0001KB", dict(workers=worker(pool="prefork", max_memory_per_child="0.0001KB"),
                                           allow_small_memory_limit=True), "0 bytes"),
    ("memory_limit 0", dict(workers=worker(memory_limit="0"), allow_small_memory_limit=True), "below 16MB"),
    ("memory_limit 1KB allowed small", dict(workers=worker(memory_limit="1KB"), allow_small_memory_limit=True),
     "below 16MB"),
    ("max_memory_per_child 1000 bytes", dict(workers=worker(pool="prefork", max_memory_per_child="1000"),
                                             allow_small_memory_limit=True), "below 16MB"),
    ("memory_limit 0.5 bytes", dict(workers=worker(memory_limit="0.5"), allow_small_memory_limit=True), "0 bytes"),
    ("memory_limit 15MB allowed small", dict(workers=worker(memory_limit="15MB"), allow_small_memory_limit=True),
     "below 16MB"),
    ("adopted memmon -p worker=1KB", dict(adopted_memmon=dict(process={"worker": "1KB"}, source="/x.conf line 40")),
     "x.conf line 40"),
    ("adopted memmon -p worker=100MB", dict(adopted_memmon=dict(process={"worker": "100MB"}, source="f line 9")),
     "below 128MB"),
    ("adopted memmon -a 1KB", dict(adopted_memmon=dict(process={}, any="1KB", source="f line 9")), "below 16MB"),
    ("adopted memmon -p worker_00=0.0001KB", dict(adopted_memmon=dict(process={"worker_00": "0.0001KB"},
                                                                      source="f line 9")), "0 bytes"),
    # loader variables in [supervisord] environment= (every process, memmon as root too)
    ("supervisord env LD_PRELOAD", dict(supervisord_environment={"LD_PRELOAD": "/home/a/x.so"}), "load code"),
    ("supervisord env LD_LIBRARY_PATH", dict(supervisord_environment={"LD_LIBRARY_PATH": "/home/a"}), "load code"),
    ("supervisord env LD_AUDIT", dict(supervisord_environment={"LD_AUDIT": "/tmp/a.so"}), "load code"),
    ("supervisord env LD_BIND_NOW-like LD_X", dict(supervisord_environment={"LD_ANYTHING": "1"}), "load code"),
    ("supervisord env PYTHONPATH", dict(supervisord_environment={"PYTHONPATH": "/home/a"}), "load code"),
    ("supervisord env PYTHONHOME", dict(supervisord_environment={"PYTHONHOME": "/home/a"}), "load code"),
    ("supervisord env PYTHONSTARTUP", dict(supervisord_environment={"PYTHONSTARTUP": "/home/a/s.py"}), "load code"),
    ("supervisord env PYTHONUSERBASE", dict(supervisord_environment={"PYTHONUSERBASE": "/home/a"}), "load code"),
    ("supervisord env PYTHONWARNINGS", dict(supervisord_environment={"PYTHONWARNINGS": "ignore::evil.W"}),
     "load code"),
    ("supervisord env PYTHONBREAKPOINT", dict(supervisord_environment={"PYTHONBREAKPOINT": "evil.f"}), "load code"),
    ("supervisord env unknown PYTHON var", dict(supervisord_environment={"PYTHONFOO": "x"}), "load code"),
    ("supervisord env GCONV_PATH", dict(supervisord_environment={"GCONV_PATH": "/home/a"}), "load code"),
    ("supervisord env GLIBC_TUNABLES", dict(supervisord_environment={"GLIBC_TUNABLES": "x=1"}), "load code"),
    ("supervisord env BASH_ENV", dict(supervisord_environment={"BASH_ENV": "/home/a/rc"}), "load code"),
    ("supervisord env PERL5OPT", dict(supervisord_environment={"PERL5OPT": "-Mevil"}), "load code"),
    ("supervisord env NODE_OPTIONS", dict(supervisord_environment={"NODE_OPTIONS": "-r evil"}), "load code"),
    ("supervisord env PATH relative", dict(supervisord_environment={"PATH": "bin:/usr/bin"}), "absolute"),
    ("supervisord env PATH user's dir",
     dict(supervisord_environment={"PATH": "/usr/bin:/home/a/bin"}, path_problems=unsafe), "uid 1000"),
    ("supervisord env null value", dict(supervisord_environment={"AA_X": None}), "null"),
    ("adopted root program env LD_PRELOAD", dict(allow_root=True, carry_over=[dict(GUNICORN, options=dict(
        command="/bin/true", environment='LD_PRELOAD="/home/a/x.so"'))]), "load code"),
    ("adopted uid-0 program env PYTHONPATH", dict(allow_root=True, carry_over=carried(
        user="00", environment='PYTHONPATH="/home/a"')), "load code"),
    ("root programs' environment LD_PRELOAD", dict(allow_root=True, layout=dict(LAYOUT, user="root"),
                                                   environment={"LD_PRELOAD": "/home/a/x.so"}), "load code"),
    ("environment list value", dict(environment={"X": ["a"]}), "not a single value"),
    # %(ENV_X)s supervisord does not have: it would refuse the whole file when it re-reads it
    ("ENV ref in node_name", dict(workers=worker(node_name="%(ENV_NOPE)s@%h"), daemon_environment=["HOME"]),
     "ENV_NOPE"),
    ("ENV ref in extra_args", dict(workers=worker(extra_args=["--statedb=%(ENV_NOPE)s/db"]),
                                   daemon_environment=["HOME"]), "ENV_NOPE"),
    ("ENV ref in supervisor dict", dict(workers=worker(supervisor={"stopsignal": "%(ENV_SIG)s"}),
                                        daemon_environment=["HOME"]), "ENV_SIG"),
    ("ENV ref in adopted command", dict(carry_over=carried(command="%(ENV_GUNICORN)s x.wsgi"),
                                        daemon_environment=[]), "ENV_GUNICORN"),
    ("ENV ref in beat extra_args", dict(workers=beat(extra_args=["--schedule=%(ENV_NOPE)s"]),
                                        daemon_environment=["PATH"]), "ENV_NOPE"),
]


@pytest.mark.parametrize("what,kwargs,match", PLAN_REFUSED, ids=[r[0] for r in PLAN_REFUSED])
def test_plan_refuses(what, kwargs, match):
    with pytest.raises((GateError, WorkerFlagsError)) as exc:
        plan(**kwargs)
    assert pytest.importorskip("re").search(match, str(exc.value)), str(exc.value)
    assert LONG not in str(exc.value), "a 300-character value is not repeated whole"


def test_a_user_whose_uid_is_0_by_another_name(monkeypatch):
    class Rec(object):
        pw_uid = 0

    def getpwnam(name):
        if name == "toor":
            return Rec()
        raise KeyError(name)

    monkeypatch.setattr(gate.pwd, "getpwnam", getpwnam)
    with pytest.raises(GateError, match="root"):
        plan(layout=dict(LAYOUT, user="toor"))


# ------------------------------------------------------------------------------------------------
# extra_args read as Celery reads them: (kind, args, beat, message pattern)
# ------------------------------------------------------------------------------------------------
ARGS_REFUSED = [
    ("--queue (the flag is --queues)", ["--queue=x"], False, "did you mean --queues"),
    ("--concurency typo", ["--concurency=4"], False, "has no option"),
    ("-EB: embedded beat in disguise", ["-EB"], False, "embedded beat"),
    ("-BE", ["-BE"], False, "embedded beat"),
    ("-E -B apart", ["-E -B"], False, "embedded beat"),
    ("-ED: detach in disguise", ["-ED"], False, "detaches"),
    ("-EDB", ["-EDB"], False, "detaches"),
    ("-Ec 7: managed concurrency in disguise", ["-Ec 7"], False, "managed by the module"),
    ("-Ec7", ["-Ec7"], False, "managed by the module"),
    ("-EQ x: managed queues in disguise", ["-EQ x"], False, "managed by the module"),
    ("-Bc2", ["-Bc2"], False, "embedded beat"),
    ("-EP threads", ["-EP threads"], False, "managed by the module"),
    ("-El debug", ["-El", "debug"], False, "managed by the module"),
    ("-En host", ["-En host"], False, "managed by the module"),
    ("-EA other", ["-EA other"], False, "managed by the module"),
    ("--purge", ["--purge"], False, "deletes every task"),
    ("--discard", ["--discard"], False, "deletes every task"),
    ("-E --discard", ["-E --discard"], False, "deletes every task"),
    ("--uid=0", ["--uid=0"], False, "user the program runs as"),
    ("--gid 0", ["--gid 0"], False, "user the program runs as"),
    ("--help", ["--help"], False, "exits"),
    ("a positional argument", ["worker2"], False, "not an option"),
    ("-- then anything", ["--", "-B"], False, "not an option"),
    ("a value without its option", ["--without-gossip", "fair"], False, "not an option"),
    ("a flag given a value", ["--without-gossip=yes"], False, "takes no value"),
    ("an option without its value", ["--statedb"], False, "needs a value"),
    ("a short option without its value", ["-S"], False, "needs a value"),
    ("-O bogus", ["-O bogus"], False, "one of default, fair"),
    ("-Obogus", ["-Obogus"], False, "one of default, fair"),
    ("--pool-start-method=x", ["--pool-start-method=x"], False, "fork, spawn"),
    ("--heartbeat-interval=x", ["--heartbeat-interval=x"], False, "number"),
    ("a global option after the subcommand", ["--broker=redis://x"], False, "has no option"),
    ("beat --detach", ["--detach"], True, "detaches"),
    ("beat -B (not a beat option)", ["-B"], True, "has no option"),
    ("beat --queues", ["--queues=x"], True, "has no option"),
    ("beat --uid", ["--uid", "0"], True, "user the program runs as"),
    ("beat -l (managed)", ["-l debug"], True, "managed by the module"),
    ("beat --max-interval=x", ["--max-interval=x"], True, "number"),
]


@pytest.mark.parametrize("what,args,is_beat,match", ARGS_REFUSED, ids=[r[0] for r in ARGS_REFUSED])
def test_extra_args_refused(what, args, is_beat, match):
    with pytest.raises(WorkerFlagsError, match=match):
        check_extra_args(args, "worker", beat=is_beat)


def test_combined_flags_are_refused_through_the_plan_too():
    with pytest.raises(WorkerFlagsError, match="embedded beat"):
        plan(workers=worker(extra_args=["-EB"]))
    with pytest.raises(WorkerFlagsError, match="detaches"):
        plan(workers=beat(extra_args=["--detach"]))


# ------------------------------------------------------------------------------------------------
# supervisor_group: service names, and a service that does not exist, before anything stops
# ------------------------------------------------------------------------------------------------
def _bins(name):
    return "/usr/bin/%s" % name


def _not_found(argv):
    return 0, "LoadState=not-found\n", ""


SERVICE_REFUSED = [
    ("service_name ../../tmp/x.sh, service", dict(service_name="../../tmp/x.sh", service_manager="service"), "service name"),
    ("service_name ../../tmp/x.sh, auto", dict(service_name="../../tmp/x.sh", service_manager="auto"), "service name"),
    ("service_name /tmp/x", dict(service_name="/tmp/x", service_manager="systemd"), "service name"),
    ("service_name .hidden", dict(service_name=".x", service_manager="service"), "service name"),
    ("service_name -x", dict(service_name="-x", service_manager="service"), "service name"),
    ("service_name with a space", dict(service_name="a b", service_manager="service"), "service name"),
    ("service_name 300 chars", dict(service_name="s" * 300, service_manager="service"), "service name"),
    ("service_name nosuchsvc, systemd", dict(service_name="nosuchsvc", service_manager="systemd"), "knows no unit"),
    ("service_name nosuchsvc, service", dict(service_name="nosuchsvc", service_manager="service"),
     "no init script"),
    ("service_name nosuchsvc, auto", dict(service_name="nosuchsvc", service_manager="auto"), "names no systemd"),
    ("name ../x", dict(name="../x", service_manager="rpc"), "non-empty name"),
    ("name group:../x", dict(name="myauth:../x", service_manager="rpc"), "non-empty name"),
    ("name 300 chars", dict(name="g" * 300, service_manager="rpc"), "at most"),
    ("stop_last ../x", dict(stop_last=["../x"], service_manager="rpc"), "non-empty name"),
]


@pytest.mark.parametrize("what,kwargs,match", SERVICE_REFUSED, ids=[r[0] for r in SERVICE_REFUSED])
def test_supervisor_group_refuses_before_anything_stops(what, kwargs, match):
    clock = FakeClock()
    sup = FakeSupervisor(clock, myauth())
    commands = []

    def run_command(argv):
        commands.append(argv)
        return _not_found(argv)

    def only_systemd(path):
        return path == "/run/systemd/system"

    with pytest.raises(SupervisorError, match=match) as exc:
        run(sup, clock, state="restarted", daemon="restarted", run_command=run_command, get_bin_path=_bins,
            path_exists=only_systemd, **kwargs)
    assert exc.value.phase == "validate"
    assert not [c for c in sup.signal_calls() if c[0] not in ("getAllProcessInfo", "getAllConfigInfo", "getPID")]
    assert all("restart" not in argv for argv in commands)
    assert all(p.state == "RUNNING" for p in sup.procs.values())


# ------------------------------------------------------------------------------------------------
# files that are not what they seem (supervisor_conf_info)
# ------------------------------------------------------------------------------------------------
SECRET = "root:$6$secret-hash-never-shown:19000:0:99999:7:::"


def _fifo(tmp_path):
    path = tmp_path / "fifo.conf"
    os.mkfifo(str(path))
    return str(path)


def _directory(tmp_path):
    (tmp_path / "dir.conf").mkdir()
    return str(tmp_path / "dir.conf")


def _latin1(tmp_path):
    path = tmp_path / "latin1.conf"
    path.write_bytes(b"[program:x]\ncommand=/bin/caf\xe9\n")
    return str(path)


def _socket(tmp_path):
    path = str(tmp_path / "s.sock")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(path)
    return path


def _device(tmp_path):
    link = tmp_path / "zero.conf"
    link.symlink_to("/dev/zero")
    return str(link)


def _huge(tmp_path):
    path = tmp_path / "huge.conf"
    path.write_text("; x\n" * 300000)
    return str(path)


def _link_to_root_only(tmp_path):
    secret = tmp_path / "shadow"
    secret.write_text(SECRET + "\n")
    os.chmod(str(secret), 0o600)
    link = tmp_path / "myauth.conf"
    link.symlink_to(secret)
    return str(link)


def _link_to_root_only_with_group(tmp_path):
    secret = tmp_path / "gshadow"
    secret.write_text(SECRET + "\n")
    os.chmod(str(secret), 0o640)
    link = tmp_path / "myauth.conf"
    link.symlink_to(secret)
    return str(link)


FILES_REFUSED = [
    ("a FIFO (would block forever)", _fifo, "not a regular file"),
    ("a directory", _directory, "is a directory"),
    ("not UTF-8", _latin1, "not UTF-8 text \\(line 2\\)"),
    ("a socket", _socket, "cannot be opened|not a regular file"),
    ("a link to a device", _device, "not a regular file"),
    ("a file over 1 MiB", _huge, "bytes"),
    ("a missing file", lambda tmp_path: str(tmp_path / "missing.conf"), "cannot be opened"),
]
if os.geteuid() == 0:
    FILES_REFUSED += [
        ("a link to a root-only file", _link_to_root_only, "only root can read"),
        ("a link to a root:group file", _link_to_root_only_with_group, "only root can read"),
    ]


@pytest.mark.parametrize("what,make,match", FILES_REFUSED, ids=[r[0] for r in FILES_REFUSED])
def test_group_file_refused_without_its_content(tmp_path, what, make, match):
    path = make(tmp_path)
    with pytest.raises(AdoptionError, match=match) as exc:
        read_conf_file(path)
    assert "secret-hash" not in str(exc.value)


@pytest.mark.parametrize("text", [
    SECRET + "\n",
    "[" + SECRET + "\n",
    "[supervisord]\n= " + SECRET + "\n",
], ids=["no section header", "an unterminated header", "an option without a name"])
def test_parse_errors_name_the_line_never_the_content(text):
    with pytest.raises(AdoptionError, match="cannot be parsed") as exc:
        read_conf("/etc/supervisor/conf.d/myauth.conf", text, set())
    assert "secret-hash" not in str(exc.value) and "root:" not in str(exc.value)


ADOPTED_HEAD = "[supervisord]\nenvironment = AA_USER = allianceserver\n\n"


@pytest.mark.parametrize("what,text,match", [
    ("adopted [program:gunicorn] user=000", ADOPTED_HEAD + "[program:gunicorn]\ncommand=/v/gunicorn x\nuser=000\n",
     "root"),
    ("adopted program without user=", ADOPTED_HEAD + "[program:gunicorn]\ncommand=/v/gunicorn x\n", "no user="),
    ("adopted [supervisord] LD_PRELOAD", "[supervisord]\nenvironment = LD_PRELOAD=/home/a/x.so\n", "load code"),
    ("adopted [supervisord] PYTHONPATH", "[supervisord]\nenvironment = AA_USER=a,PYTHONPATH=\"/home/a\"\n",
     "load code"),
    ("adopted memmon -p worker=1KB", ADOPTED_HEAD + "[eventlistener:memmon]\ncommand=/v/bin/memmon -p worker=1KB\n"
                                                    "events=TICK_60\n", "myauth.conf line 5"),
    ("adopted program name 300 chars", ADOPTED_HEAD + "[program:%s]\ncommand=/bin/true\nuser=a\n" % LONG,
     "at most 64"),
], ids=lambda value: value if len(value) < 60 and "\n" not in value else None)
def test_values_read_from_the_target_go_through_the_same_gate(what, text, match):
    adoption = read_conf("/etc/supervisor/conf.d/myauth.conf", text, {"beat", "worker", "worker_services"})
    with pytest.raises((GateError, WorkerFlagsError), match=match):
        plan(carry_over=adoption["carry_over"], supervisord_environment=adoption["environment"],
             adopted_memmon=adoption["memmon"])


# ------------------------------------------------------------------------------------------------
# root-safe paths (memmon's venv, log directories, the probe's python)
# ------------------------------------------------------------------------------------------------
def _user_dir(tmp_path, name="venv"):
    path = tmp_path / name
    path.mkdir()
    os.chown(str(path), 1000, 1000)
    return path


def _user_venv(tmp_path):
    return str(_user_dir(tmp_path))


def _link_to_user_venv(tmp_path):
    target = _user_dir(tmp_path)
    (tmp_path / "opt").mkdir()
    link = tmp_path / "opt" / "memmon"
    link.symlink_to(target)
    return str(link)


def _log_dir_below_user_dir(tmp_path):
    return str(_user_dir(tmp_path, "home") / "logs" / "supervisor" / "myauth")


def _group_writable(tmp_path):
    path = tmp_path / "venv"
    path.mkdir()
    os.chmod(str(path), 0o775)
    return str(path)


def _world_writable(tmp_path):
    path = tmp_path / "venv"
    path.mkdir()
    os.chmod(str(path), 0o757)
    return str(path)


def _missing_in_sticky(tmp_path):
    sticky = tmp_path / "tmp"
    sticky.mkdir()
    os.chmod(str(sticky), 0o1777)
    return str(sticky / "memmon")


def _user_file_in_root_venv(tmp_path):
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    memmon = venv / "bin" / "memmon"
    memmon.write_text("#!/bin/sh\n")
    os.chown(str(memmon), 1000, 1000)
    return str(venv)


def _user_link(tmp_path):
    target = tmp_path / "real"
    target.mkdir()
    link = tmp_path / "venv"
    link.symlink_to(target)
    os.lchown(str(link), 1000, 1000)
    return str(link)


ROOT_UNSAFE = [
    ("a venv owned by a user", _user_venv, "uid 1000"),
    ("a root-owned link to a user's venv", _link_to_user_venv, "uid 1000"),
    ("a log dir whose ancestor is a user's (parents made by root)", _log_dir_below_user_dir, "uid 1000"),
    ("a group-writable dir", _group_writable, "writable by its group or others"),
    ("an other-writable dir", _world_writable, "writable by its group or others"),
    ("a missing dir in a sticky dir", _missing_in_sticky, "others can create it first"),
    ("a user's file inside a root venv", _user_file_in_root_venv, "uid 1000"),
    ("a link owned by a user", _user_link, "link owned by uid 1000"),
]


@needs_root
@pytest.mark.parametrize("what,make,match", ROOT_UNSAFE, ids=[r[0] for r in ROOT_UNSAFE])
def test_root_safe_refuses(tmp_path, what, make, match):
    os.chmod(str(tmp_path), 0o755)
    path = make(tmp_path)
    problems = root_safe_tree_problems(path)
    assert problems and pytest.importorskip("re").search(match, problems[0]), problems


@needs_root
def test_root_safe_accepts_roots_own_paths(tmp_path):
    os.chmod(str(tmp_path), 0o755)
    (tmp_path / "venv" / "bin").mkdir(parents=True)
    (tmp_path / "venv" / "bin" / "python").symlink_to("/usr/bin/env")
    assert root_safe_tree_problems(str(tmp_path / "venv")) == []
    assert root_safe_problems(str(tmp_path / "not" / "yet")) == []
    assert root_safe_problems("/usr/bin") == []


def test_root_safe_refuses_relative_paths():
    assert root_safe_problems("venv") == ["'venv' is not an absolute path"]


def test_worker_flags_refuses_a_log_dir_below_a_users_directory(tmp_path):
    from ansible_collections.authops.celery_tuning.plugins.module_utils.host_facts import root_only_dir_problems

    if os.geteuid() != 0:
        pytest.skip("needs chown")
    os.chmod(str(tmp_path), 0o755)
    home = _user_dir(tmp_path, "home")
    assert "uid 1000" in root_only_dir_problems(str(home / "a" / "b" / "myauth"))[0]


@pytest.mark.parametrize("what,uid,python,cwd,match", [
    ("owner unreadable", None, "/usr/bin/python3", "/srv", "cannot read which user"),
    ("root worker, user's python", 0, "/home/a/venv/bin/python", "/srv", "uid 1000"),
    ("root worker, user's project", 0, "/usr/bin/python3", "/home/a/myauth", "uid 1000"),
], ids=lambda value: value if isinstance(value, str) and " " in value else None)
def test_no_probe_as_root_from_where_a_user_writes(what, uid, python, cwd, match):
    with pytest.raises(ProfileError, match=match):
        probe_uid(uid, 0, python, cwd, root_safe=unsafe)


# ------------------------------------------------------------------------------------------------
# the filters (controller): the programs' environment and memmon's sizes
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("what,environment,root,match", [
    ("LD_PRELOAD for root programs", {"LD_PRELOAD": "/home/a/x.so"}, True, "load code"),
    ("PYTHONSTARTUP for root programs", {"PYTHONSTARTUP": "/home/a/x.py"}, True, "load code"),
    ("a null value", {"X": None}, False, "null"),
    ("a dict value", {"X": {"a": 1}}, False, "not a single value"),
], ids=lambda value: value if isinstance(value, str) and " " in value else None)
def test_environment_filter_refuses(what, environment, root, match):
    from ansible_collections.authops.celery_tuning.plugins.filter.supervisor import supervisor_env_problems

    problems = supervisor_env_problems(environment, root=root)
    assert len(problems) == 1 and pytest.importorskip("re").search(match, problems[0])
    assert "/home/a" not in problems[0]


@pytest.mark.parametrize("size,allow_small,match", [
    ("0.0001KB", True, "0 bytes"), ("1KB", True, "below 16MB"), ("100MB", False, "below 128MB"),
], ids=["memmon_size 0.0001KB", "memmon_size 1KB", "memmon_size 100MB without allow_small"])
def test_memmon_size_floors(size, allow_small, match):
    from ansible.errors import AnsibleFilterError

    from ansible_collections.authops.celery_tuning.plugins.filter.supervisor import memmon_size

    with pytest.raises(AnsibleFilterError, match=match):
        memmon_size(size, "memmon limit worker_00", allow_small)


def test_supervisor_root_user_filter():
    from ansible_collections.authops.celery_tuning.plugins.filter.supervisor import supervisor_root_user

    for user in ("root", "0", "00", "+0", " 0", None, "", 0):
        assert supervisor_root_user(user) is True, user
    for user in ("allianceserver", "1000", "nobody"):
        assert supervisor_root_user(user) is False, user


HOSTILE_KINDS = (len(PLAN_REFUSED) + 1 + len(ARGS_REFUSED) + len(SERVICE_REFUSED) + len(FILES_REFUSED) + 3 + 6
                 + len(ROOT_UNSAFE) + 1 + 3 + 4 + 3)


def test_the_suite_has_at_least_100_kinds():
    assert HOSTILE_KINDS >= 100


# ------------------------------------------------------------------------------------------------
# good input that must be accepted (false positives of the first round)
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["a\\b", "C:\\path\\", "\\", "x\\\\y", "re\\d+"])
def test_environment_values_with_a_backslash_are_kept_as_written(value):
    from supervisor.datatypes import dict_of_key_value_pairs

    from ansible_collections.authops.celery_tuning.plugins.filter.supervisor import (
        supervisor_env_line,
        supervisor_env_problems,
    )

    assert supervisor_env_problems({"PW": value}) == []
    assert dict_of_key_value_pairs(supervisor_env_line({"PW": value}).replace("%%", "%")) == {"PW": value}
    result = plan(supervisord_environment={"AA_X": value})
    assert result["supervisord_environment"] == [["AA_X", value]]


@pytest.mark.parametrize("value,written", [(True, "true"), (False, "false"), (3, "3"), (1.5, "1.5"), ("", "")])
def test_yaml_scalars_as_environment_values(value, written):
    from supervisor.datatypes import dict_of_key_value_pairs

    from ansible_collections.authops.celery_tuning.plugins.filter.supervisor import supervisor_env_line

    assert dict_of_key_value_pairs(supervisor_env_line({"DEBUG": value})) == {"DEBUG": written}
    assert plan(supervisord_environment={"AA_DEBUG": value})["supervisord_environment"] == [["AA_DEBUG", written]]


@pytest.mark.parametrize("queue", ["celery@auth1.dq", "tenant:jobs", "a.b-c_d", "services", "x@y:z"])
def test_queue_names_with_colon_and_at(queue):
    result = plan(workers=worker(queues=[queue]))
    assert "--queues=%s" % queue in result["workers"][1]["argv"]


@pytest.mark.parametrize("args,is_beat", [
    (["-Ofair"], False), (["-O", "fair"], False), (["-E"], False), (["--without-gossip --without-mingle"], False),
    (["-X", "slow"], False), (["-Xslow"], False), (["--exclude-queues=a,b"], False), (["--statedb", "/var/lib/w"], False),
    (["-E", "--without-heartbeat", "--heartbeat-interval=10"], False), (["--logfile=/var/log/x.log"], False),
    (["--disable-prefetch"], False), (["--pool-start-method=spawn"], False), (["--task-events"], False),
    (["--schedule", "/var/lib/beat"], True), (["-S", "django_celery_beat.schedulers:DatabaseScheduler"], True),
    (["--max-interval", "10"], True), (["--scheduler=x.y:Z"], True),
])
def test_celery_options_that_are_fine(args, is_beat):
    assert check_extra_args(args, "worker", beat=is_beat)


@pytest.mark.parametrize("kwargs", [
    dict(layout=dict(LAYOUT, user="allianceserver")),
    dict(layout=dict(LAYOUT, user="1000")),
    dict(workers=worker(name="w" * 64)),
    dict(layout=dict(LAYOUT, group_name="g" * 64)),
    dict(workers=worker(memory_limit="128MB")),
    dict(workers=worker(memory_limit="64MB"), allow_small_memory_limit=True),
    dict(workers=worker(memory_limit="16MB"), allow_small_memory_limit=True),
    dict(supervisord_environment={"PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1"}),
    dict(supervisord_environment={"PATH": "/usr/bin:/bin"}, path_problems=unsafe),
    dict(workers=worker(node_name="%(ENV_HOST)s_%(process_num)02d"), daemon_environment=["HOST"]),
    dict(workers=worker(node_name="%(ENV_AA_USER)s_%(process_num)02d"), daemon_environment=[],
         supervisord_environment={"AA_USER": "allianceserver"}),
    dict(workers=worker(extra_args=["--statedb=%(ENV_DB)s"]), daemon_environment=[], environment_names=["DB"]),
    dict(carry_over=carried(command="%(ENV_GB)s x.wsgi", environment='GB="/v/gunicorn"'), daemon_environment=[]),
    dict(environment={"PYTHONPATH": "/srv/lib"}),
    dict(carry_over=carried(user="allianceserver", environment='PYTHONPATH="/srv/lib"')),
    dict(layout=dict(LAYOUT, user="00"), allow_root=True),
    dict(adopted_memmon=dict(process={"worker": "256MB"}, source="f line 3")),
], ids=["user by name", "user by a non-zero uid", "64-character program name", "64-character group name",
        "128MB limit", "64MB limit, allowed small", "16MB limit, allowed small", "harmless PYTHON variables",
        "PATH of root's directories", "ENV of the daemon", "ENV of [supervisord] environment=",
        "ENV of the programs' environment", "ENV of the adopted program's own environment",
        "PYTHONPATH for the Auth user's programs", "PYTHONPATH for an adopted Auth user's program",
        "uid 0 with allow_root", "adopted memmon limit above the floor"])
def test_good_input_is_accepted(kwargs):
    plan(**kwargs)


@pytest.mark.parametrize("service_name", ["supervisor", "supervisor.service", "supervisor@main", "supervisord"])
def test_good_service_names(service_name):
    from ansible_collections.authops.celery_tuning.plugins.module_utils.service_manager import (
        detect_service_manager,
    )

    def loaded(argv):
        return 0, "LoadState=loaded\n", ""

    assert detect_service_manager("systemd", service_name, loaded, _bins, lambda p: True)[0] == "systemd"


def test_a_link_to_the_auth_users_file_is_read(tmp_path):
    real = tmp_path / "supervisor.conf"
    real.write_text(ADOPTED_HEAD)
    os.chmod(str(real), 0o644)
    link = tmp_path / "myauth.conf"
    link.symlink_to(real)
    assert read_conf_file(str(link)) == ADOPTED_HEAD
    assert parse_size("0") == 0  # a literal 0 is not "rounded to 0"
