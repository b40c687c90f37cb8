# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""docs/architecture.md's hops name functions that exist in the files they name, and the count it states is
the number of hops it lists."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")


def hops():
    with open(os.path.join(ROOT, "docs", "architecture.md")) as handle:
        text = handle.read()
    rows = re.findall(r"^\| (\d+) \| `([^`]+)` \| `([^`]+)` \|", text, re.M)
    stated = int(re.search(r"takes (\d+) hops", text).group(1))
    return rows, stated


def test_hop_count_is_the_hops_listed():
    rows, stated = hops()
    assert [int(n) for n, _f, _w in rows] == list(range(1, stated + 1))


def test_every_hop_names_what_its_file_has():
    rows, _stated = hops()
    for _n, path, what in rows:
        with open(os.path.join(ROOT, path)) as handle:
            source = handle.read()
        if path.endswith(".py"):
            assert re.search(r"^def %s\(" % re.escape(what), source, re.M), (path, what)
        else:
            assert what in source, (path, what)
