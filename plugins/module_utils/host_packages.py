# -*- coding: utf-8 -*-
# Copyright: authops.celery_tuning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Which of the wanted distribution packages are missing on the host (dpkg on the Debian family, rpm on the
RHEL family), read without changing anything.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import fnmatch
import re


def _split_spec(spec):
    """'supervisor' or 'supervisor=4.2.5-1' (apt's name=version, version may hold a glob)."""
    name, sep, version = spec.partition("=")
    return name.strip(), version.strip() if sep else None


def deb_packages_missing(run_command, get_bin_path, specs):
    """The apt specs among ``specs`` that dpkg does not have installed (in the asked version).

    All of them without dpkg-query (not a Debian host) or when it fails: the install task then runs and
    says why.
    """
    if not specs:
        return []
    dpkg_query = get_bin_path("dpkg-query")
    if not dpkg_query:
        return list(specs)
    names = [_split_spec(spec)[0] for spec in specs]
    rc, out, dummy = run_command([dpkg_query, "-W", "-f=${Package}\t${db:Status-Abbrev}\t${Version}\n"] + names)
    # rc 1 only says some package is unknown: it is missing below.
    if rc not in (0, 1):
        return list(specs)
    installed = {}
    for line in (out or "").splitlines():
        parts = line.split("\t")
        if len(parts) == 3 and parts[1].strip() == "ii":
            installed[parts[0]] = parts[2]
    missing = []
    for spec in specs:
        name, version = _split_spec(spec)
        have = installed.get(name)
        if have is None or (version and not fnmatch.fnmatchcase(have, version)):
            missing.append(spec)
    return missing


def rpm_packages_missing(run_command, get_bin_path, specs):
    """The dnf specs among ``specs`` (``name`` or ``name-version``, the version may hold a glob) that the
    rpm database does not have. All of them without rpm (not an RPM host) or when it fails."""
    if not specs:
        return []
    rpm = get_bin_path("rpm")
    if not rpm:
        return list(specs)
    names = [_split_rpm_spec(spec)[0] for spec in specs]
    rc, out, dummy = run_command([rpm, "-q", "--queryformat", "%{NAME}\t%{VERSION}-%{RELEASE}\n"] + names)
    # rc is the number of packages not installed: those print "package x is not installed" instead.
    if rc < 0 or rc > len(names):
        return list(specs)
    installed = {}
    for line in (out or "").splitlines():
        parts = line.split("\t")
        if len(parts) == 2:
            installed.setdefault(parts[0], []).append(parts[1])
    missing = []
    for spec in specs:
        name, version = _split_rpm_spec(spec)
        have = installed.get(name)
        if not have or (version and not any(fnmatch.fnmatchcase(v, version + "*") for v in have)):
            missing.append(spec)
    return missing


def _split_rpm_spec(spec):
    """'supervisor' or 'supervisor-4.2.5' (dnf's name-version: the version starts with a digit)."""
    match = re.match(r"^(.+?)-([0-9*][^-]*(?:-[^-]+)?)$", spec.strip())
    return (match.group(1), match.group(2)) if match else (spec.strip(), None)


def packages_missing(run_command, get_bin_path, specs, manager="apt"):
    """``specs`` that the package database of ``manager`` (apt: dpkg, dnf: rpm) does not have installed."""
    if manager == "dnf":
        return rpm_packages_missing(run_command, get_bin_path, specs)
    return deb_packages_missing(run_command, get_bin_path, specs)
