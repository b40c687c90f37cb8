# -*- coding: utf-8 -*-
# Copyright: authops.celery_tuning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The supervisor location contract: where supervisor lives on a host, from its OS family.

One table per OS family (its files, include glob, socket, unit, packages and package manager), the list
of platforms the collection supports, and the package steps that install supervisor there. The roles ask
only this file (through the ``supervisor_layout``, ``supervisor_platform`` and ``supervisor_install_steps``
filters); a role user overrides any single entry.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

#: The collection's own configuration checker (the same place on every family).
CHECKER = "/usr/local/libexec/authops-celery-tuning/supervisor_check_config.py"

#: OS family -> supervisor's layout as that family's package ships it.
LAYOUTS = {
    # Debian and Ubuntu: Debian's supervisor package.
    "Debian": dict(
        config="/etc/supervisor/supervisord.conf",
        include_dir="/etc/supervisor/conf.d",
        include_ext="conf",
        socket="/var/run/supervisor.sock",
        pidfile="/var/run/supervisord.pid",
        log_dir="/var/log/supervisor",
        service_name="supervisor",
        service_manager="systemd",
        package_manager="apt",
        packages=["supervisor"],
        repo_packages=[],
        python="/usr/bin/python3",
        checker=CHECKER,
    ),
    # Rocky, AlmaLinux, CentOS Stream, RHEL: EPEL's supervisor package (Auth's install guide).
    "RedHat": dict(
        config="/etc/supervisord.conf",
        include_dir="/etc/supervisord.d",
        include_ext="ini",
        socket="/run/supervisor/supervisor.sock",
        pidfile="/run/supervisord.pid",
        log_dir="/var/log/supervisor",
        service_name="supervisord",
        service_manager="systemd",
        package_manager="dnf",
        packages=["supervisor"],
        # EPEL first: supervisor is not in the base repositories.
        repo_packages=["epel-release"],
        python="/usr/bin/python3",
        checker=CHECKER,
    ),
}

#: Keys a role user may override (an empty value keeps the family's).
KEYS = tuple(sorted(LAYOUTS["Debian"]))

#: (OS family, distribution, versions) the collection is tested or documented on. Ubuntu is matched on its
#: version (22.04), Debian (12.15 is 12) and the RHEL family (9.5 is 9) on their major version.
SUPPORTED = (
    ("Debian", "Debian", ("12", "13")),
    ("Debian", "Ubuntu", ("22.04", "24.04")),
    ("RedHat", "Rocky", ("9",)),
    ("RedHat", "AlmaLinux", ("9",)),
    ("RedHat", "CentOS", ("9",)),
    ("RedHat", "RedHat", ("9",)),
)


class LayoutError(Exception):
    """A layout that cannot be resolved; the message says what to set."""


def _facts(facts):
    facts = facts if isinstance(facts, dict) else {}
    return (str(facts.get("os_family") or ""), str(facts.get("distribution") or ""),
            str(facts.get("distribution_version") or ""), str(facts.get("distribution_major_version") or ""))


def supported_list():
    """The supported platforms as one readable line."""
    return ", ".join("%s %s" % (dist, "/".join(versions)) for dummy, dist, versions in SUPPORTED)


def platform(facts):
    """Whether the host (Ansible's distribution facts) is a supported platform, with a message naming it."""
    family, dist, version, major = _facts(facts)
    name = " ".join(part for part in (dist or "an unknown OS", version) if part)
    for want_family, want_dist, versions in SUPPORTED:
        if family == want_family and dist == want_dist:
            key = version if dist == "Ubuntu" else major
            if key in versions:
                return dict(supported=True, name=name, family=family, supported_list=supported_list(),
                            message="%s is supported" % name)
    return dict(supported=False, name=name, family=family, supported_list=supported_list(),
                message="%s (OS family %s) is not a platform this collection supports: it supports %s."
                        % (name, family or "unknown", supported_list()))


def resolve(facts, overrides=None):
    """The layout of the host's OS family with the set ``overrides`` on top.

    ``overrides`` may also name ``family`` (Debian or RedHat) to take another family's layout. Keys other
    than those of the table are refused, as is a family without a layout.
    """
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(KEYS) - set(["family"]))
    if unknown:
        raise LayoutError("supervisor layout: unknown key(s) %s (known: %s)" % (", ".join(unknown), ", ".join(KEYS)))
    family = overrides.pop("family", None) or _facts(facts)[0]
    if not family:
        raise LayoutError("supervisor layout: the host's OS family is not known. Run the supervisor role's preflight "
                          "first (tune.yml does), or gather the distribution facts before the role (gather_facts: true, "
                          "or ansible.builtin.setup with gather_subset: [distribution]).")
    if family not in LAYOUTS:
        raise LayoutError("supervisor layout: no layout for the OS family %s (known: %s). Set each of supervisor's "
                          "paths, its unit and its package manager, or the family to take one of the known layouts."
                          % (family, ", ".join(sorted(LAYOUTS))))
    layout = dict(LAYOUTS[family])
    layout["packages"] = list(layout["packages"])
    layout["repo_packages"] = list(layout["repo_packages"])
    # None and "" keep the family's value; a list, even an empty one, replaces the family's list.
    for key, value in overrides.items():
        if value is None or (isinstance(value, str) and value == ""):
            continue
        if isinstance(LAYOUTS[family][key], list):
            if not isinstance(value, (list, tuple)):
                raise LayoutError("supervisor layout: %s must be a list of package names" % key)
            layout[key] = [str(item) for item in value]
        else:
            layout[key] = str(value)
    layout["family"] = family
    layout["include_ext"] = str(layout["include_ext"]).lstrip(".")
    layout["include_glob"] = "%s/*.%s" % (str(layout["include_dir"]).rstrip("/"), layout["include_ext"])
    layout["check_command"] = "%s %s" % (layout["python"], layout["checker"])
    return layout


def installed(exists=None):
    """On the target, without facts: the layout of the family whose supervisord config exists here (Debian's
    when none does, as supervisorctl would look for it)."""
    exists = exists or os.path.exists
    for family in sorted(LAYOUTS):
        if exists(LAYOUTS[family]["config"]):
            return resolve({"os_family": family})
    return resolve({"os_family": "Debian"})


def install_steps(layout, missing):
    """The package steps that install supervisor, in order: a list of ``{manager, names}``.

    ``missing`` is what the host lacks (the preflight asks the package database). With apt there is one
    step. With dnf the repository packages (EPEL's ``epel-release``) come first, in a step of their own,
    because dnf resolves supervisor only once EPEL is enabled. Steps with nothing missing are left out.
    """
    missing = list(missing or [])
    manager = layout["package_manager"]
    if manager not in ("apt", "dnf"):
        raise LayoutError("supervisor layout: unknown package manager %r (use apt or dnf)" % (manager,))
    repo = [name for name in layout.get("repo_packages") or [] if name in missing] if manager == "dnf" else []
    rest = [name for name in missing if name not in repo]
    steps = []
    if repo:
        steps.append(dict(manager=manager, names=repo, purpose="repositories"))
    if rest:
        steps.append(dict(manager=manager, names=rest, purpose="supervisor"))
    return steps
