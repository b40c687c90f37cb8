# -*- coding: utf-8 -*-
# Copyright: authops.celery_tuning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.authops.celery_tuning.plugins.modules import worker_flags

from ansible_collections.authops.celery_tuning.tests.unit.plugins.modules.module_harness import AnsibleExitJson, AnsibleFailJson, module_args


@pytest.fixture
def fake_host(monkeypatch):
    calls = []

    def host_facts(unit=None, control_group=None):
        calls.append((unit, control_group))
        return {"cpu_count": 2, "cpu_count_source": "sched_getaffinity",
                "memory_bytes": 4 * 1024 ** 3, "memory_source": "/proc/meminfo MemTotal"}

    monkeypatch.setattr(worker_flags, "host_facts", host_facts)
    return calls


def run(args):
    """The module on ``args``; without Auth's beat unless asked for (these tests look at the workers)."""
    args = dict({"beat": False}, **args)
    with module_args(args):
        with pytest.raises((AnsibleExitJson, AnsibleFailJson)) as exc:
            worker_flags.main()
    return exc.type, exc.value.args[0]


def test_gevent_worker(fake_host):
    kind, result = run({"workers": [{"name": "worker", "pool": "gevent", "concurrency": 10}]})
    assert kind is AnsibleExitJson
    assert result["changed"] is False
    worker = result["workers"][0]
    assert "--pool=gevent" in worker["argv"]
    assert "--concurrency=10" in worker["argv"]
    assert result["packages"] == ["gevent"]
    assert result["host"] == {"cpu_count": 2, "cpu_count_source": "sched_getaffinity",
                              "memory_bytes": 4 * 1024 ** 3,
                              "memory_source": "/proc/meminfo MemTotal",
                              "limits_from": {"unit": None, "control_group": None}}
    assert "warnings" not in result


def test_concurrency_given_as_string(fake_host):
    kind, result = run({"workers": [{"name": "worker", "pool": "threads", "concurrency": "3"}]})
    assert kind is AnsibleExitJson
    assert result["workers"][0]["concurrency"] == 3


def test_check_mode_same_result(fake_host):
    args = {"workers": [{"name": "worker", "pool": "prefork", "concurrency": 2,
                         "max_memory_per_child": "256MB"}]}
    kind, normal = run(args)
    assert kind is AnsibleExitJson
    kind, checked = run(dict(args, _ansible_check_mode=True))
    assert kind is AnsibleExitJson
    assert checked["changed"] is False
    assert checked["check_mode_seen"] is True
    assert normal["check_mode_seen"] is False
    assert checked["workers"] == normal["workers"]
    assert "--max-memory-per-child=262144" in checked["workers"][0]["argv"]


def test_host_overrides_skip_host_facts(fake_host):
    kind, result = run({"cpu_count": 8, "memory_total": "16GB",
                        "workers": [{"name": "worker", "workload": "cpu"}]})
    assert kind is AnsibleExitJson
    assert fake_host == []
    assert result["host"]["cpu_count"] == 8
    assert result["host"]["cpu_count_source"] == "parameter"
    assert result["host"]["memory_bytes"] == 16 * 1024 ** 3
    assert result["workers"][0]["concurrency"] == 8


def test_warnings_go_through_module_warn(fake_host):
    kind, result = run({"workers": [{"name": "worker", "pool": "gevent",
                                     "max_memory_per_child": "512MB"}]})
    assert kind is AnsibleExitJson
    assert result["memmon_limits"] == {"worker_00": "512MB", "worker_01": "512MB"}
    assert any(w.startswith("worker: max_memory_per_child ignored")
               for w in result["warnings_emitted"])


def test_domain_error_fails(fake_host):
    kind, result = run({"workers": [{"name": "worker", "pool": "gevent",
                                     "max_memory_per_child": "512MB"}], "strict": True})
    assert kind is AnsibleFailJson
    assert "memory_limit" in result["msg"]


def test_small_limit_fails(fake_host):
    kind, result = run({"workers": [{"name": "worker", "pool": "prefork",
                                     "max_memory_per_child": "64MB"}]})
    assert kind is AnsibleFailJson
    assert "allow_small_memory_limit" in result["msg"]


def test_argument_spec_rejects_unknown_pool(fake_host):
    kind, result = run({"workers": [{"name": "worker", "pool": "bogus"}]})
    assert kind is AnsibleFailJson
    assert "pool" in result["msg"]


def test_missing_memory_fails(monkeypatch):
    monkeypatch.setattr(worker_flags, "host_facts", lambda **kw: {
        "cpu_count": 1, "cpu_count_source": "os.cpu_count", "memory_bytes": None,
        "memory_source": None})
    kind, result = run({"workers": [{"name": "worker"}]})
    assert kind is AnsibleFailJson
    assert "memory_total" in result["msg"]


def test_argument_spec_matches_documentation():
    import yaml

    doc = yaml.safe_load(worker_flags.DOCUMENTATION)["options"]
    spec = worker_flags.argument_spec()

    def compare(doc_opts, spec_opts, path):
        assert set(doc_opts) == set(spec_opts), path
        for key, spec_opt in spec_opts.items():
            doc_opt = doc_opts[key]
            where = path + key
            assert doc_opt.get("type", "str") == spec_opt.get("type", "str"), where
            assert doc_opt.get("default") == spec_opt.get("default"), where
            assert doc_opt.get("choices") == spec_opt.get("choices"), where
            assert doc_opt.get("elements") == spec_opt.get("elements"), where
            assert bool(doc_opt.get("required")) == bool(spec_opt.get("required")), where
            if "options" in spec_opt:
                compare(doc_opt["suboptions"], spec_opt["options"], where + ".")

    compare(doc, spec, "")


def test_worker_option_table_matches_documentation():
    """The option table is the one source: its defaults are the documented ones."""
    import yaml

    from ansible_collections.authops.celery_tuning.plugins.module_utils.worker_options import WORKER_OPTIONS

    doc = yaml.safe_load(worker_flags.DOCUMENTATION)["options"]["workers"]["suboptions"]
    assert set(doc) == set(WORKER_OPTIONS)
    for name, spec in WORKER_OPTIONS.items():
        lines = [line for line in doc[name]["description"] if line.startswith("Default: ")]
        if spec.get("default") is None:
            assert not lines, name
        else:
            shown = str(spec["default"]).lower() if isinstance(spec["default"], bool) else str(spec["default"])
            assert lines == ["Default: C(%s), or the O(worker_defaults) value." % shown], name


@pytest.mark.parametrize("given,asked", [("supervisord", "supervisord.service"), ("supervisor", "supervisor.service"),
                                         ("supervisord.service", "supervisord.service")])
def test_limits_come_from_the_cgroup_of_the_unit_named(fake_host, monkeypatch, given, asked):
    """A service name (EPEL's supervisord) is asked for as its unit, and that unit's cgroup is what is read."""
    commands = []

    def run_command(self, argv, **kwargs):
        commands.append(argv)
        return 0, "/system.slice/%s\n" % asked, ""

    monkeypatch.setattr(worker_flags.AnsibleModule, "get_bin_path", lambda self, name, *a, **k: "/usr/bin/" + name)
    monkeypatch.setattr(worker_flags.AnsibleModule, "run_command", run_command)
    kind, result = run({"workers": [{"name": "worker", "pool": "threads", "concurrency": 3}], "service_unit": given})
    assert kind is AnsibleExitJson
    assert [argv[-1] for argv in commands if "--property=ControlGroup" in argv] == [asked]
    assert fake_host[-1] == (asked, "/system.slice/%s" % asked)


def test_the_whole_plan_for_a_web_host(fake_host):
    """Auth's beat first, node names as given, the measured RSS of the group's processes only."""
    processes = [dict(name="worker_00", group="myauth", rss_bytes=200 * 1024 * 1024),
                 dict(name="worker_00", group="other", rss_bytes=900 * 1024 * 1024)]
    kind, result = run({"beat": True, "processes": processes, "carry_over": [{"name": "gunicorn", "options": {
        "command": "/venv/bin/gunicorn myauth.wsgi", "user": "allianceserver"}}],
        "workers": [{"name": "worker", "pool": "threads", "concurrency": 4, "memory_limit": "512MB"}]})
    assert kind is AnsibleExitJson, result
    assert [w["name"] for w in result["workers"]] == ["beat", "worker"]
    assert [p["name"] for p in result["programs"]] == ["beat", "worker", "gunicorn"]
    assert any("above memory_baseline 224.0 MiB" in line for line in result["workers"][1]["explain"])
    assert result["left_out"] == []


def test_a_worker_host_runs_no_web_only_program(fake_host):
    kind, result = run({"beat": True, "host_role": "worker", "cluster": True,
                        "carry_over": [{"name": "gunicorn",
                                        "options": {"command": "/venv/bin/gunicorn x", "user": "allianceserver"}}],
                        "workers": [{"name": "worker", "pool": "threads", "concurrency": 4},
                                    {"name": "worker_services", "queues": ["services"], "single_threaded": True}]})
    assert kind is AnsibleExitJson, result
    assert [p["name"] for p in result["programs"]] == ["worker"]
    assert "--hostname=%(program_name)s_%(process_num)02d@%h" in result["workers"][0]["argv"]
    assert result["left_out"] == ["%s: not run on a worker host (web_only_programs)" % name
                                  for name in ("beat", "gunicorn", "worker_services")]


def test_environment_line_of_supervisord_is_escaped(fake_host):
    kind, result = run({"workers": [{"name": "worker", "pool": "threads", "concurrency": 2}],
                        "supervisord_environment": {"AA_X": "50%", "AA_A": "a"}})
    assert kind is AnsibleExitJson, result
    assert result["supervisord_environment_line"] == 'AA_A="a",AA_X="50%%"'


def test_memory_total_2gb_with_auths_gunicorn_fits_with_the_reserve(fake_host):
    gunicorn = {"name": "gunicorn", "options": {"command": "/venv/bin/gunicorn myauth.wsgi --workers=3",
                                                "directory": "/home/allianceserver/myauth", "user": "allianceserver"}}
    kind, result = run({"workers": [{"name": "worker", "workload": "io"}], "memory_total": "2GB",
                        "carry_over": [gunicorn], "beat": True})
    assert kind is AnsibleExitJson
    budget = result["budget"]
    assert budget["memory_reserve_bytes"] == 512 * 1024 ** 2
    assert budget["memory_carried_bytes"] > 0
    assert budget["memory_host_estimate_bytes"] <= 2 * 1024 ** 3
    assert any(line.startswith("gunicorn: about ") for line in budget["explain"])


def test_memory_reserve_refuses_a_host_without_room(fake_host):
    kind, result = run({"workers": [{"name": "worker", "workload": "io"}], "memory_total": "1GB",
                        "memory_reserve": "1GB"})
    assert kind is AnsibleFailJson
    assert "memory_reserve 1.0 GiB" in result["msg"]
