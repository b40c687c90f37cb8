# -*- coding: utf-8 -*-
# Copyright: authops.celery_tuning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""A virtualenv's state: the distributions installed in it, and the pinned requirements it does not satisfy.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import glob
import os
import re


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
