# -*- coding: utf-8 -*-
# Copyright: authops.celery_tuning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""supervisor_info and supervisor_conf_info report what is in place, also on a host without supervisor."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.authops.celery_tuning.plugins.modules import supervisor_conf_info, supervisor_info

from ansible_collections.authops.celery_tuning.tests.unit.plugins.modules.module_harness import AnsibleExitJson, AnsibleFailJson, module_args


def run(module, args):
    with module_args(args):
        with pytest.raises((AnsibleExitJson, AnsibleFailJson)) as exc:
            module.main()
    return exc.type, exc.value.args[0]


def test_supervisor_info_reports_paths_and_pins_with_supervisord_absent(tmp_path):
    conf = tmp_path / "supervisord.conf"
    conf.write_text("[supervisord]\n")
    site = tmp_path / "venv" / "lib" / "python3.11" / "site-packages" / "superlance-2.0.0.dist-info"
    site.mkdir(parents=True)
    kind, result = run(supervisor_info, dict(
        socket=str(tmp_path / "absent.sock"), missing_ok=True,
        paths=[str(conf), str(tmp_path / "nothing")], venv=str(tmp_path / "venv"),
        venv_requirements=["superlance==2.0.0", "gevent==24.2.1"]))
    assert kind is AnsibleExitJson, result
    assert result["found"] is False and result["processes"] == []
    assert result["paths"][str(conf)]["exists"] and result["paths"][str(conf)]["checksum"]
    assert result["paths"][str(tmp_path / "nothing")]["exists"] is False
    assert result["venv_missing"] == ["gevent==24.2.1"]
    assert result["packages_missing"] == []
    assert "service" not in result


def test_supervisor_conf_info_reports_its_paths(tmp_path):
    kind, result = run(supervisor_conf_info, dict(path=str(tmp_path / "myauth.conf"), paths=[str(tmp_path)]))
    assert kind is AnsibleExitJson, result
    assert result["exists"] is False
    assert result["paths"][str(tmp_path)]["isdir"] is True


def test_supervisor_conf_info_fails_at_once_on_a_fifo_and_leaks_no_content(tmp_path):
    import os

    fifo = tmp_path / "myauth.conf"
    os.mkfifo(str(fifo))
    kind, result = run(supervisor_conf_info, dict(path=str(fifo), paths=[str(fifo)]))
    assert kind is AnsibleFailJson and "not a regular file" in result["msg"]
    secret = tmp_path / "secret"
    secret.write_text("root:$6$never-shown:19000\n")
    link = tmp_path / "linked.conf"
    link.symlink_to(secret)
    kind, result = run(supervisor_conf_info, dict(path=str(link)))
    assert kind is AnsibleFailJson and "never-shown" not in result["msg"]


def test_supervisor_info_reports_root_safe_paths(tmp_path):
    kind, result = run(supervisor_info, dict(socket=str(tmp_path / "absent.sock"), missing_ok=True,
                                             root_safe=["/usr/bin", "relative"]))
    assert kind is AnsibleExitJson, result
    assert result["root_safe"]["/usr/bin"] == []
    assert result["root_safe"]["relative"] == ["'relative' is not an absolute path"]
