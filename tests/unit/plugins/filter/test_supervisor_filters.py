# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The controller-side gate: sizes in one grammar, values bound for supervisor files."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.authops.celery_tuning.plugins.filter.supervisor import FilterModule, memmon_size, supervisor_safe
from ansible_collections.authops.celery_tuning.plugins.module_utils.plan_errors import WorkerFlagsError
from ansible_collections.authops.celery_tuning.plugins.module_utils.sizes import parse_size
from ansible_collections.authops.celery_tuning.plugins.module_utils.programs import plan_group

byte_size = pytest.importorskip("supervisor.datatypes").byte_size

#: One table for both: every size worker_flags accepts, the memmon role accepts, and memmon reads back the same.
SIZES = ["256MB", "262144KB", "1GB", "512MiB", "512mib", "2G", "512m", "1.5GB", "268435456", 268435456, "300 MB"]
BAD_SIZES = ["256XB", "", "MB", "-1MB", "1e3MB", "256MB\n-a 1", None, True]


@pytest.mark.parametrize("size", SIZES)
def test_memmon_role_accepts_every_size_worker_flags_accepts(size):
    plan = plan_group([{"name": "worker", "pool": "threads", "memory_limit": size}],
                      dict(directory="/srv/a", user="nobody", log_dir="/var/log/a", group_name="a"),
                      cpu_count=2, memory_total="64GB", allow_small_memory_limit=True)
    from_module = plan["memmon_limits"]["worker_00"]
    from_role = memmon_size(size)
    assert from_role == from_module
    assert byte_size(from_role) == parse_size(size)


@pytest.mark.parametrize("size", BAD_SIZES)
def test_both_refuse_the_same_sizes(size):
    with pytest.raises(WorkerFlagsError):
        parse_size(size)
    with pytest.raises(AnsibleFilterError):
        memmon_size(size)


@pytest.mark.parametrize("value,kind,match", [
    ("/var/run/supervisor.sock\n[program:evil]", "path", "newline"),
    ("0700\n", "line", "newline"),
    ("relative/dir", "path", "absolute"),
    ("/var/log/../../etc", "path", "'..'"),
    ("root\n", "name", "non-empty name"),
    ("127.0.0.1:9001 ;x", "line", "cut"),
    (["/opt/memmon/bin/memmon", "-m", "a@b\n[program:evil]"], "command", "newline"),
    ("x", "bogus", "unknown kind"),
])
def test_supervisor_safe_refuses(value, kind, match):
    with pytest.raises(AnsibleFilterError, match=match):
        supervisor_safe(value, "option", kind)


def test_supervisor_safe_quotes_a_command():
    assert supervisor_safe(["/opt/m/bin/memmon", "-p", "worker_00=256MB", "-m", "ops team@x"], "memmon", "command") \
        == "/opt/m/bin/memmon -p worker_00=256MB -m 'ops team@x'"


def test_in_place_filter_is_the_module_utils_rule():
    filters = FilterModule().filters()
    state = dict(exists=True, isdir=False, islnk=False, mode="0640", uid=0, gid=0, checksum="abc")
    assert filters["in_place"](state, "0640", checksum="abc") is True
    assert filters["in_place"](state, "0640", checksum="abd") is False
    assert filters["in_place"](None, "0640") is False


SIZES = ["0", "1", "256MB", "256mb", "262144KB", "1GB", " 2 gb ", "512Mb", "7", "1024kb"]


@pytest.mark.parametrize("text", SIZES)
def test_sizes_are_read_by_supervisor_where_it_is_installed(text, monkeypatch):
    """supervisor's byte_size reads its own sizes; the fallback grammar (a controller without supervisor)
    reads them the same."""
    from supervisor.datatypes import byte_size

    from ansible_collections.authops.celery_tuning.plugins.module_utils import sizes

    assert sizes.supervisor_byte_size is byte_size
    assert parse_size(text) == byte_size(text.replace(" ", ""))
    monkeypatch.setattr(sizes, "supervisor_byte_size", None)
    assert parse_size(text) == byte_size(text.replace(" ", ""))
