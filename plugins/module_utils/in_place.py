# -*- coding: utf-8 -*-
# Copyright: authops.celery_tuning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""What is already in place on the host, read in one module run so a re-run can skip its tasks.

A no-change re-run of ``tune.yml`` costs one remote Python per task, and Ansible's ``template`` and
``copy`` cost two each (a stat, then ``file`` for the attributes) even when nothing changes. The
supervisor role asks ``supervisor_info`` once for the state of its own files, packages and service;
the tasks that would write them run only when ``in_place`` says they are not as wanted yet. A skip is
never a guess: anything missing, of another type, owner, mode or content runs the task as before.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import fnmatch
import glob
import hashlib
import os
import re
import stat


def path_state(path):
    """exists, isdir, mode ('0644'), uid, gid and the SHA-1 of a regular file (None otherwise)."""
    try:
        st = os.lstat(path)
    except OSError:
        return dict(exists=False, isdir=False, islnk=False, mode=None, uid=None, gid=None, checksum=None)
    checksum = None
    if stat.S_ISREG(st.st_mode):
        digest = hashlib.sha1()
        try:
            with open(path, "rb") as handle:
                for block in iter(lambda: handle.read(65536), b""):
                    digest.update(block)
            checksum = digest.hexdigest()
        except (IOError, OSError):
            checksum = None
    return dict(exists=True, isdir=stat.S_ISDIR(st.st_mode), islnk=stat.S_ISLNK(st.st_mode),
                mode="%04o" % stat.S_IMODE(st.st_mode), uid=st.st_uid, gid=st.st_gid, checksum=checksum)


def path_states(paths):
    return dict((path, path_state(path)) for path in paths)


def is_in_place(state, mode, checksum=None, directory=False):
    """True when ``state`` (from path_state) is a root-owned file or directory with ``mode`` (and content).

    ``mode`` is an octal string as the roles write it ("0644"); ``checksum`` the SHA-1 of the wanted
    content (a file only). Anything else, or no state at all, is False: the task runs.
    """
    if not isinstance(state, dict) or not state.get("exists") or state.get("islnk"):
        return False
    if bool(state.get("isdir")) != bool(directory):
        return False
    if state.get("uid") != 0 or state.get("gid") != 0:
        return False
    try:
        if int(str(state.get("mode")), 8) != int(str(mode), 8):
            return False
    except ValueError:
        return False
    if not directory and checksum is not None and state.get("checksum") != checksum:
        return False
    return True


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


def unit_name(service_name):
    """systemd's name for a service: ``supervisor`` is ``supervisor.service``."""
    return service_name if "." in service_name else service_name + ".service"


ENABLED = ("enabled", "enabled-runtime", "alias")
NOT_ENABLED = ("disabled", "masked", "masked-runtime", "static", "indirect", "linked", "linked-runtime")


def service_state(run_command, get_bin_path, name):
    """Whether systemd has the unit enabled (None when it cannot say) and active; both None without
    systemctl. One ``systemctl show``, as supervisor_ops asks for the unit's LoadState."""
    systemctl = get_bin_path("systemctl")
    if not systemctl:
        return dict(name=name, enabled=None, active=None)
    rc, out, dummy = run_command([systemctl, "show", "--property=UnitFileState,ActiveState", unit_name(name)])
    props = dict(line.partition("=")[::2] for line in (out or "").splitlines() if "=" in line)
    state = props.get("UnitFileState", "").strip() if rc == 0 else ""
    enabled = True if state in ENABLED else False if state in NOT_ENABLED else None
    return dict(name=name, enabled=enabled, active=rc == 0 and props.get("ActiveState", "").strip() == "active")


def _canonical(name):
    """A distribution name as pip compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def venv_distributions(venv):
    """{canonical name: version} of what is installed in the virtualenv at ``venv`` (from *.dist-info)."""
    found = {}
    pattern = os.path.join(venv, "lib", "python*", "site-packages", "*.dist-info")
    for path in glob.glob(pattern):
        stem = os.path.basename(path)[:-len(".dist-info")]
        name, sep, version = stem.rpartition("-")
        if sep and name:
            found[_canonical(name)] = version
    return found


def venv_requirements_missing(venv, requirements):
    """The requirements that ``venv`` does not satisfy as written: ``name==version`` pins are checked,
    anything else (no venv, other specifiers, extras, URLs) counts as missing, so pip runs and decides."""
    if not requirements:
        return []
    installed = venv_distributions(venv) if venv and os.path.isdir(venv) else {}
    missing = []
    for requirement in requirements:
        match = re.match(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*==\s*([A-Za-z0-9.+!_-]+)\s*$", requirement)
        if not match or installed.get(_canonical(match.group(1))) != match.group(2):
            missing.append(requirement)
    return missing
