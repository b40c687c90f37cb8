# -*- coding: utf-8 -*-
"""The supervisor location contract: each OS family's layout, overrides, the supported list, and the
order of the package steps (apt; dnf with EPEL first)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.authops.celery_tuning.plugins.module_utils import supervisor_layout as layout
from ansible_collections.authops.celery_tuning.plugins.module_utils.host_packages import (
    packages_missing,
    rpm_packages_missing,
)


def _facts(family, dist, version):
    return dict(os_family=family, distribution=dist, distribution_version=version,
                distribution_major_version=version.split(".")[0])


DEBIAN12 = _facts("Debian", "Debian", "12")
JAMMY = _facts("Debian", "Ubuntu", "22.04")
ROCKY9 = _facts("RedHat", "Rocky", "9.5")


def test_debian_family_is_debians_package():
    got = layout.resolve(DEBIAN12)
    assert got["config"] == "/etc/supervisor/supervisord.conf"
    assert got["include_glob"] == "/etc/supervisor/conf.d/*.conf"
    assert got["service_name"] == "supervisor"
    assert got["package_manager"] == "apt"
    assert got["repo_packages"] == []
    assert got["check_command"] == "/usr/bin/python3 " + layout.CHECKER


def test_redhat_family_is_epels_package():
    got = layout.resolve(ROCKY9)
    assert got["config"] == "/etc/supervisord.conf"
    assert got["include_dir"] == "/etc/supervisord.d"
    assert got["include_ext"] == "ini"
    assert got["include_glob"] == "/etc/supervisord.d/*.ini"
    assert got["service_name"] == "supervisord"
    assert got["socket"] == "/run/supervisor/supervisor.sock"
    assert got["package_manager"] == "dnf"
    assert got["repo_packages"] == ["epel-release"]
    assert got["family"] == "RedHat"


def test_each_key_can_be_overridden_and_empty_keeps_the_family():
    overrides = dict((key, "") for key in layout.KEYS if not isinstance(layout.LAYOUTS["Debian"][key], list))
    assert layout.resolve(ROCKY9, overrides) == layout.resolve(ROCKY9)
    for key in layout.KEYS:
        value = ["x"] if isinstance(layout.LAYOUTS["Debian"][key], list) else "/custom/" + key
        assert layout.resolve(DEBIAN12, {key: value})[key] == value


def test_overrides_shape_the_derived_values():
    got = layout.resolve(DEBIAN12, dict(include_dir="/srv/sup/", include_ext=".ini", python="/opt/py/bin/python3"))
    assert got["include_glob"] == "/srv/sup/*.ini"
    assert got["check_command"].startswith("/opt/py/bin/python3 ")


def test_an_empty_list_overrides_the_epel_step():
    assert layout.resolve(ROCKY9, dict(repo_packages=[]))["repo_packages"] == []
    assert layout.resolve(ROCKY9, dict(repo_packages=None))["repo_packages"] == ["epel-release"]


def test_the_family_itself_can_be_chosen():
    assert layout.resolve(DEBIAN12, dict(family="RedHat"))["config"] == "/etc/supervisord.conf"


@pytest.mark.parametrize("facts,overrides,needle", [
    ({}, None, "OS family is not known"),
    (_facts("Archlinux", "Archlinux", "rolling"), None, "no layout for the OS family Archlinux"),
    (DEBIAN12, dict(sockett="/x"), "unknown key(s) sockett"),
    (DEBIAN12, dict(packages="supervisor"), "packages must be a list"),
])
def test_unresolvable_layouts_say_what_to_set(facts, overrides, needle):
    with pytest.raises(layout.LayoutError) as err:
        layout.resolve(facts, overrides)
    assert needle in str(err.value)


def test_the_family_tables_do_not_share_lists():
    got = layout.resolve(ROCKY9)
    got["repo_packages"].append("mutated")
    assert layout.LAYOUTS["RedHat"]["repo_packages"] == ["epel-release"]


@pytest.mark.parametrize("facts", [
    DEBIAN12, _facts("Debian", "Debian", "12.15"), _facts("Debian", "Debian", "13"), JAMMY, _facts("Debian", "Ubuntu", "24.04"), ROCKY9,
    _facts("RedHat", "AlmaLinux", "9.4"), _facts("RedHat", "CentOS", "9"), _facts("RedHat", "RedHat", "9.4"),
])
def test_supported_platforms(facts):
    assert layout.platform(facts)["supported"] is True


@pytest.mark.parametrize("facts,name", [
    (_facts("Debian", "Debian", "11"), "Debian 11"),
    (_facts("Debian", "Ubuntu", "20.04"), "Ubuntu 20.04"),
    (_facts("Debian", "Ubuntu", "22.10"), "Ubuntu 22.10"),
    (_facts("Debian", "Debian", "11.11"), "Debian 11.11"),
    (_facts("RedHat", "Rocky", "8.10"), "Rocky 8.10"),
    (_facts("Archlinux", "Archlinux", "rolling"), "Archlinux rolling"),
    (_facts("Suse", "openSUSE Leap", "15.6"), "openSUSE Leap 15.6"),
    ({}, "an unknown OS"),
])
def test_other_platforms_are_named_with_the_supported_list(facts, name):
    got = layout.platform(facts)
    assert got["supported"] is False
    assert got["message"].startswith(name)
    for supported in ("Debian 12/13", "Ubuntu 22.04/24.04", "Rocky 9"):
        assert supported in got["message"]


def test_apt_installs_in_one_step():
    steps = layout.install_steps(layout.resolve(DEBIAN12), ["supervisor"])
    assert steps == [dict(manager="apt", names=["supervisor"], purpose="supervisor")]


def test_dnf_enables_epel_first_then_installs_supervisor():
    steps = layout.install_steps(layout.resolve(ROCKY9), ["epel-release", "supervisor"])
    assert [(s["manager"], s["names"]) for s in steps] == [("dnf", ["epel-release"]), ("dnf", ["supervisor"])]


def test_dnf_order_holds_whatever_order_the_missing_list_has():
    steps = layout.install_steps(layout.resolve(ROCKY9), ["supervisor", "epel-release"])
    assert [s["names"] for s in steps] == [["epel-release"], ["supervisor"]]


def test_dnf_with_epel_in_place_installs_supervisor_only():
    steps = layout.install_steps(layout.resolve(ROCKY9), ["supervisor"])
    assert [s["names"] for s in steps] == [["supervisor"]]


def test_nothing_missing_is_no_step():
    assert layout.install_steps(layout.resolve(ROCKY9), []) == []
    assert layout.install_steps(layout.resolve(DEBIAN12), []) == []


def test_unknown_package_manager_is_refused():
    with pytest.raises(layout.LayoutError):
        layout.install_steps(layout.resolve(DEBIAN12, dict(package_manager="zypper")), ["supervisor"])


class _Rpm(object):
    """rpm -q as it answers: one line per installed package, a message per missing one, rc = missing count."""

    def __init__(self, installed):
        self.installed = installed
        self.calls = []

    def __call__(self, argv):
        self.calls.append(argv)
        names = argv[4:]
        out, missing = [], 0
        for name in names:
            if name in self.installed:
                out.append("%s\t%s" % (name, self.installed[name]))
            else:
                out.append("package %s is not installed" % name)
                missing += 1
        return missing, "\n".join(out) + "\n", ""


def _bin(name):
    return "/usr/bin/" + name


def test_rpm_reports_what_is_missing():
    rpm = _Rpm({"supervisor": "4.2.5-6.el9"})
    assert rpm_packages_missing(rpm, _bin, ["epel-release", "supervisor"]) == ["epel-release"]
    assert rpm.calls[0][:2] == ["/usr/bin/rpm", "-q"]


def test_rpm_versions_match_as_a_prefix_or_glob():
    rpm = _Rpm({"supervisor": "4.2.5-6.el9"})
    assert rpm_packages_missing(rpm, _bin, ["supervisor-4.2.5"]) == []
    assert rpm_packages_missing(rpm, _bin, ["supervisor-4.2.*"]) == []
    assert rpm_packages_missing(rpm, _bin, ["supervisor-4.3.0"]) == ["supervisor-4.3.0"]


def test_without_rpm_everything_is_missing():
    assert rpm_packages_missing(_Rpm({}), lambda name: None, ["supervisor"]) == ["supervisor"]


def test_packages_missing_asks_the_managers_database():
    rpm = _Rpm({"supervisor": "4.2.5-6.el9", "epel-release": "9-8.el9"})
    assert packages_missing(rpm, _bin, ["epel-release", "supervisor"], "dnf") == []
    assert rpm.calls
