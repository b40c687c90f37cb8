# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The supervisor role's configuration checker, run as the roles run it (a subprocess)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import subprocess
import sys

import pytest

CHECKER = os.path.join(os.path.dirname(__file__), "..", "..", "..", "roles", "supervisor", "files",
                       "supervisor_check_config.py")

pytest.importorskip("supervisor")


@pytest.fixture
def conf(tmp_path):
    (tmp_path / "conf.d").mkdir()
    main = tmp_path / "supervisord.conf"
    main.write_text(
        "[unix_http_server]\nfile=%(here)s/s.sock\n"
        "[supervisord]\nlogfile=%(here)s/d.log\npidfile=%(here)s/d.pid\n"
        "[rpcinterface:supervisor]\nsupervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n"
        "[include]\nfiles = conf.d/*.conf\n".replace("%(here)s", str(tmp_path)))
    (tmp_path / "conf.d" / "a.conf").write_text("[program:a]\ncommand=/bin/sleep 100\n")
    return tmp_path


def run(*args):
    return subprocess.run([sys.executable, CHECKER] + list(args), capture_output=True, text=True, check=False)


def test_good_config(conf):
    result = run("--config", str(conf / "supervisord.conf"))
    assert result.returncode == 0, result.stderr
    assert "1 included file" in result.stdout


def test_new_file_is_checked_in_place(conf):
    cand = conf / "cand"
    cand.write_text("[program:b]\ncommand=/bin/sleep 100\n")
    result = run("--config", str(conf / "supervisord.conf"), "--replace", "%s=%s" % (conf / "conf.d" / "b.conf", cand))
    assert result.returncode == 0, result.stderr
    assert "2 included file" in result.stdout


def test_program_defined_twice_is_refused_naming_both_files(conf):
    cand = conf / "cand"
    cand.write_text("[program:a]\ncommand=/bin/sleep 5\n")
    result = run("--config", str(conf / "supervisord.conf"), "--replace", "%s=%s" % (conf / "conf.d" / "b.conf", cand))
    assert result.returncode == 1
    assert "[program:a]" in result.stderr and "a.conf" in result.stderr and str(cand) in result.stderr


def test_replacing_the_same_file_is_not_a_duplicate(conf):
    cand = conf / "cand"
    cand.write_text("[program:a]\ncommand=/bin/sleep 5\n")
    result = run("--config", str(conf / "supervisord.conf"), "--replace", "%s=%s" % (conf / "conf.d" / "a.conf", cand))
    assert result.returncode == 0, result.stderr


def test_supervisord_section_may_be_extended_from_an_include(conf):
    # Auth's own supervisor.conf sets [supervisord] environment from conf.d.
    cand = conf / "cand"
    cand.write_text("[supervisord]\nenvironment=AA_USER=\"x\"\n[program:b]\ncommand=/bin/sleep 5\n")
    result = run("--config", str(conf / "supervisord.conf"), "--replace", "%s=%s" % (conf / "conf.d" / "b.conf", cand))
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("body, words", [
    ("[program:b]\ncommand=/bin/true\nstopwaitsecs=soon\n", "program:b"),
    ("[program:b]\ncommand=/bin/true\nuser=no-such-user-here\n", "no-such-user-here"),
    ("[program:b]\n", "command"),
])
def test_supervisor_parser_errors_are_reported(conf, body, words):
    cand = conf / "cand"
    cand.write_text(body)
    result = run("--config", str(conf / "supervisord.conf"), "--replace", "%s=%s" % (conf / "conf.d" / "b.conf", cand))
    assert result.returncode == 1
    assert words in result.stderr


def test_main_candidate(conf):
    result = run("--main-candidate", str(conf / "supervisord.conf"))
    assert result.returncode == 0, result.stderr


def test_missing_main_config(conf):
    result = run("--config", str(conf / "nope.conf"))
    assert result.returncode == 1
    assert "does not exist" in result.stderr
