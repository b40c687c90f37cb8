# -*- coding: utf-8 -*-
# Copyright: authops.celery_tuning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.authops.celery_tuning.plugins.module_utils.host_facts import (
    cgroup_cpu_limit,
    cgroup_memory_limit,
    cpu_count,
    host_facts,
    meminfo_total,
    memory_total,
    read_self_cgroups,
)

MEMINFO = "MemTotal:        8000000 kB\nMemFree:         1000000 kB\n"


def write(root, rel, text):
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def v2_root(tmp_path, cgroup="/system.slice/x.service"):
    write(tmp_path, "proc/self/cgroup", "0::%s\n" % cgroup)
    write(tmp_path, "sys/fs/cgroup/cgroup.controllers", "cpu memory\n")
    write(tmp_path, "proc/meminfo", MEMINFO)
    return tmp_path


def four():
    return {0, 1, 2, 3}


def test_read_self_cgroups(tmp_path):
    write(tmp_path, "proc/self/cgroup",
          "12:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n0::/\n")
    assert read_self_cgroups(str(tmp_path)) == {
        "memory": "/docker/abc", "cpu": "/docker/abc", "cpuacct": "/docker/abc", "": "/"}
    assert read_self_cgroups(str(tmp_path / "missing")) == {}


def test_meminfo_total(tmp_path):
    write(tmp_path, "proc/meminfo", MEMINFO)
    assert meminfo_total(str(tmp_path)) == 8000000 * 1024
    assert meminfo_total(str(tmp_path / "nothing")) is None


def test_cpu_affinity_without_cgroup(tmp_path):
    assert cpu_count(str(tmp_path), affinity=four) == (4, "sched_getaffinity")


def test_cpu_cpuinfo_fallback(tmp_path):
    write(tmp_path, "proc/cpuinfo", "processor\t: 0\nmodel\t: x\n\nprocessor\t: 1\n")
    assert cpu_count(str(tmp_path), affinity=None) == (2, "/proc/cpuinfo")


def test_cpu_os_fallback(tmp_path):
    count, source = cpu_count(str(tmp_path), affinity=None)
    assert count >= 1 and source == "os.cpu_count"


def test_cgroup_v2_cpu_max(tmp_path):
    root = v2_root(tmp_path)
    write(root, "sys/fs/cgroup/system.slice/x.service/cpu.max", "150000 100000\n")
    assert cgroup_cpu_limit(str(root)) == (1.5, "cgroup v2 cpu.max")
    assert cpu_count(str(root), affinity=four) == (2, "cgroup v2 cpu.max")


def test_cgroup_v2_cpu_max_unlimited_and_ancestor(tmp_path):
    root = v2_root(tmp_path)
    write(root, "sys/fs/cgroup/system.slice/x.service/cpu.max", "max 100000\n")
    assert cgroup_cpu_limit(str(root)) == (None, None)
    write(root, "sys/fs/cgroup/system.slice/cpu.max", "300000 100000\n")
    assert cpu_count(str(root), affinity=four) == (3, "cgroup v2 cpu.max")


def test_cgroup_quota_above_affinity_keeps_affinity(tmp_path):
    root = v2_root(tmp_path, "/")
    write(root, "sys/fs/cgroup/cpu.max", "800000 100000\n")
    assert cpu_count(str(root), affinity=four) == (4, "sched_getaffinity")


def test_cgroup_v1_cpu(tmp_path):
    write(tmp_path, "proc/self/cgroup", "4:cpu,cpuacct:/docker/abc\n")
    write(tmp_path, "sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us", "200000\n")
    write(tmp_path, "sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us", "100000\n")
    assert cpu_count(str(tmp_path), affinity=four) == (2, "cgroup v1 cpu.cfs_quota_us")
    write(tmp_path, "sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us", "-1\n")
    assert cgroup_cpu_limit(str(tmp_path)) == (None, None)


def test_cgroup_v2_memory(tmp_path):
    root = v2_root(tmp_path)
    write(root, "sys/fs/cgroup/system.slice/x.service/memory.max", "2147483648\n")
    assert cgroup_memory_limit(str(root)) == (2147483648, "cgroup v2 memory.max")
    assert memory_total(str(root)) == (2147483648, "cgroup v2 memory.max")


def test_cgroup_v2_memory_max_is_unlimited(tmp_path):
    root = v2_root(tmp_path)
    write(root, "sys/fs/cgroup/system.slice/x.service/memory.max", "max\n")
    assert memory_total(str(root)) == (8000000 * 1024, "/proc/meminfo MemTotal")


def test_cgroup_limit_above_meminfo_ignored(tmp_path):
    root = v2_root(tmp_path, "/")
    write(root, "sys/fs/cgroup/memory.max", str(64 * 1024 ** 3))
    assert memory_total(str(root)) == (8000000 * 1024, "/proc/meminfo MemTotal")


def test_cgroup_v1_memory(tmp_path):
    write(tmp_path, "proc/meminfo", MEMINFO)
    write(tmp_path, "proc/self/cgroup", "9:memory:/docker/abc\n")
    write(tmp_path, "sys/fs/cgroup/memory/memory.limit_in_bytes", "1073741824\n")
    assert memory_total(str(tmp_path)) == (1073741824, "cgroup v1 memory.limit_in_bytes")
    write(tmp_path, "sys/fs/cgroup/memory/memory.limit_in_bytes", "9223372036854771712\n")
    assert memory_total(str(tmp_path)) == (8000000 * 1024, "/proc/meminfo MemTotal")


def test_memory_unknown(tmp_path):
    assert memory_total(str(tmp_path)) == (None, None)


def test_host_facts(tmp_path):
    root = v2_root(tmp_path)
    write(root, "sys/fs/cgroup/system.slice/x.service/cpu.max", "100000 100000\n")
    assert host_facts(str(root), affinity=four) == {
        "cpu_count": 1,
        "cpu_count_source": "cgroup v2 cpu.max",
        "memory_bytes": 8000000 * 1024,
        "memory_source": "/proc/meminfo MemTotal",
    }


def test_host_facts_real_host():
    facts = host_facts()
    assert facts["cpu_count"] >= 1


def test_limits_of_the_unit_that_runs_supervisord(tmp_path):
    """The workers run in supervisor.service's cgroup, not in the module's own (an SSH session's)."""
    from ansible_collections.authops.celery_tuning.plugins.module_utils.host_facts import host_facts

    root = tmp_path
    cg = root / "sys/fs/cgroup"
    (cg / "system.slice/supervisor.service").mkdir(parents=True)
    (cg / "user.slice/session-1.scope").mkdir(parents=True)
    (cg / "cgroup.controllers").write_text("cpu memory\n")
    (cg / "system.slice/supervisor.service/memory.max").write_text("2147483648\n")
    (cg / "system.slice/supervisor.service/cpu.max").write_text("100000 100000\n")
    (root / "proc").mkdir()
    (root / "proc/self").mkdir()
    (root / "proc/self/cgroup").write_text("0::/user.slice/session-1.scope\n")
    (root / "proc/meminfo").write_text("MemTotal:       8388608 kB\n")
    own = host_facts(str(root), affinity=lambda: set(range(4)))
    assert own["memory_bytes"] == 8 * 1024 ** 3 and own["cpu_count"] == 4
    unit = host_facts(str(root), affinity=lambda: set(range(4)), unit="supervisor.service",
                      control_group="/system.slice/supervisor.service")
    assert unit["memory_bytes"] == 2 * 1024 ** 3
    assert unit["memory_source"] == "cgroup v2 memory.max from supervisor.service"
    assert unit["cpu_count"] == 1 and unit["cpu_count_source"] == "cgroup v2 cpu.max from supervisor.service"
