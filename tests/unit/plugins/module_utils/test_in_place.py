# -*- coding: utf-8 -*-
"""What is already in place: the states a re-run skips its tasks on, and the cases where it must not."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import os

import pytest

from ansible_collections.authops.celery_tuning.plugins.module_utils.host_packages import deb_packages_missing
from ansible_collections.authops.celery_tuning.plugins.module_utils.in_place import is_in_place, path_state
from ansible_collections.authops.celery_tuning.plugins.module_utils.systemd_units import service_state
from ansible_collections.authops.celery_tuning.plugins.module_utils.venv_state import (
    venv_requirements_missing,
)


def _root(state):
    return dict(state, uid=0, gid=0)


def test_path_state_of_a_file_has_mode_and_checksum(tmp_path):
    target = tmp_path / "f.conf"
    target.write_bytes(b"[program:x]\n")
    os.chmod(str(target), 0o640)
    state = path_state(str(target))
    assert state["exists"] and not state["isdir"] and not state["islnk"]
    assert state["mode"] == "0640"
    assert state["checksum"] == hashlib.sha1(b"[program:x]\n").hexdigest()


def test_path_state_of_nothing_and_of_a_link(tmp_path):
    assert path_state(str(tmp_path / "absent"))["exists"] is False
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "absent")
    state = path_state(str(link))
    assert state["exists"] and state["islnk"] and state["checksum"] is None


def test_in_place_file_needs_root_mode_and_content(tmp_path):
    target = tmp_path / "f"
    target.write_bytes(b"x")
    os.chmod(str(target), 0o644)
    state = _root(path_state(str(target)))
    good = hashlib.sha1(b"x").hexdigest()
    assert is_in_place(state, "0644", checksum=good)
    assert not is_in_place(state, "0640", checksum=good)
    assert not is_in_place(state, "0644", checksum=hashlib.sha1(b"y").hexdigest())
    assert not is_in_place(dict(state, uid=1000), "0644", checksum=good)
    assert not is_in_place(dict(state, gid=1000), "0644", checksum=good)
    assert not is_in_place(state, "0644", checksum=good, directory=True)


@pytest.mark.parametrize("state", [None, {}, "text", {"exists": False}])
def test_in_place_without_a_state_runs_the_task(state):
    assert not is_in_place(state, "0644")


def test_in_place_refuses_a_link_even_to_the_right_file(tmp_path):
    target = tmp_path / "f"
    target.write_bytes(b"x")
    link = tmp_path / "l"
    link.symlink_to(target)
    state = _root(path_state(str(link)))
    assert not is_in_place(state, "0777")


def test_in_place_directory(tmp_path):
    os.chmod(str(tmp_path), 0o755)
    state = _root(path_state(str(tmp_path)))
    assert is_in_place(state, "0755", directory=True)
    assert not is_in_place(state, "0750", directory=True)
    assert not is_in_place(state, "0755")
    assert not is_in_place(state, "not octal", directory=True)


def _dpkg(out, rc=0):
    calls = []

    def run(argv):
        calls.append(argv)
        return rc, out, ""
    return run, calls


def _bin(path):
    return lambda program: path and "%s/%s" % (path, program)


def test_deb_packages_missing_reads_dpkg_status_and_versions():
    run, calls = _dpkg("supervisor\tii \t4.2.5-1\npython3\tii \t3.11.2-1\nold\trc \t1.0\n", rc=1)
    specs = ["supervisor", "python3=3.11.2-1", "supervisor=4.3*", "old", "absent"]
    assert deb_packages_missing(run, _bin("/usr/bin"), specs) == ["supervisor=4.3*", "old", "absent"]
    assert calls[0][0] == "/usr/bin/dpkg-query"
    assert calls[0][-5:] == ["supervisor", "python3", "supervisor", "old", "absent"]


def test_deb_packages_missing_without_dpkg_or_on_error_installs_all():
    run, calls = _dpkg("")
    assert deb_packages_missing(run, _bin(None), ["supervisor"]) == ["supervisor"]
    assert not calls
    run, calls = _dpkg("supervisor\tii \t4.2.5-1\n", rc=2)
    assert deb_packages_missing(run, _bin("/usr/bin"), ["supervisor"]) == ["supervisor"]
    assert deb_packages_missing(run, _bin("/usr/bin"), []) == []


def test_service_state():
    answers = {"UnitFileState": "enabled", "ActiveState": "active", "NeedDaemonReload": "no"}
    calls = []

    def run(argv):
        calls.append(argv)
        return 0, "".join("%s=%s\n" % item for item in answers.items()), ""
    assert service_state(run, _bin("/bin"), "supervisor") == dict(
        name="supervisor", enabled=True, active=True, active_state="active", need_daemon_reload=False)
    assert calls[0] == ["/bin/systemctl", "show", "--property=UnitFileState,ActiveState,NeedDaemonReload",
                        "supervisor.service"]
    answers.update({"UnitFileState": "disabled", "ActiveState": "inactive"})
    assert service_state(run, _bin("/bin"), "supervisor") == dict(
        name="supervisor", enabled=False, active=False, active_state="inactive", need_daemon_reload=False)
    answers["ActiveState"] = "deactivating"  # a restart under way
    assert service_state(run, _bin("/bin"), "supervisor")["active_state"] == "deactivating"
    answers["ActiveState"] = "inactive"
    answers["UnitFileState"] = "something new"
    assert service_state(run, _bin("/bin"), "supervisor")["enabled"] is None
    # A drop-in written by a run that died before daemon-reload.
    answers["NeedDaemonReload"] = "yes"
    assert service_state(run, _bin("/bin"), "supervisor")["need_daemon_reload"] is True
    del answers["NeedDaemonReload"]
    assert service_state(run, _bin("/bin"), "supervisor")["need_daemon_reload"] is None
    assert service_state(run, _bin(None), "supervisor") == dict(name="supervisor", enabled=None, active=None,
                                                                active_state=None, need_daemon_reload=None)


def _venv(tmp_path, *dists):
    site = tmp_path / "lib" / "python3.11" / "site-packages"
    site.mkdir(parents=True)
    for dist in dists:
        (site / (dist + ".dist-info")).mkdir()
    return str(tmp_path)


def test_venv_requirements_pins_only(tmp_path):
    venv = _venv(tmp_path, "superlance-2.0.0", "Django-4.2.16", "zope.interface-7.0")
    assert venv_requirements_missing(venv, ["superlance==2.0.0", "django==4.2.16", "zope-interface == 7.0"]) == []
    assert venv_requirements_missing(venv, ["superlance==1.0.0"]) == ["superlance==1.0.0"]
    # Anything pip would have to resolve is left to pip.
    for requirement in ["superlance", "superlance>=2", "superlance[x]==2.0.0", "gevent==24.2.1"]:
        assert venv_requirements_missing(venv, [requirement]) == [requirement]
    assert venv_requirements_missing(str(tmp_path / "nothing"), ["superlance==2.0.0"]) == ["superlance==2.0.0"]
    assert venv_requirements_missing(venv, []) == []
