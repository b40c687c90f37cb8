"""How long a no-change re-run of playbooks/tune.yml takes against a real Auth 5.5 server.

`make bench` runs it after bench.py (`make bench-noop` alone). It starts a container from the real Auth 5.5
image (CELERY_TUNING_IMAGE_AUTH55, default authops/allianceauth55-debian12, built by `make images`), runs
tune.yml once with no variables to converge it, then alternates, --runs times each (default 3), a timed
no-change tune.yml and a timed bare gather-facts play against the same container, and reports the medians
and their ratio (issue: at most 3). Every timed tune.yml run must report changed=0. The container is
removed at the end, also on error or interrupt.

Output: a Markdown line on stdout and results/noop.json (runs, medians, ratio, load averages, versions).
Exit status 1 when a re-run changed something or a play failed; 0 otherwise (the ratio is reported, not
asserted: it depends on the machine and on what else runs on it).
"""

import argparse
import json
import os
import pathlib
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
BIN = ROOT / ".venv" / "bin"
COLLECTIONS = ROOT / ".cache" / "collections"
IMAGE = os.environ.get("CELERY_TUNING_IMAGE_AUTH55", "authops/allianceauth55-debian12")
FACTS_PLAY = """\
- name: Bare gather-facts play (the yardstick)
  hosts: auth_servers
  gather_facts: true
  tasks: []
"""


def load():
    return round(os.getloadavg()[0], 2)


def play(args, inventory, env):
    """Run ansible-playbook; (seconds, changed count, output)."""
    cmd = [str(BIN / "ansible-playbook"), "-i", inventory] + args
    started = time.monotonic()
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    seconds = time.monotonic() - started
    if out.returncode != 0:
        raise RuntimeError("%s failed (rc %d):\n%s\n%s"
                           % (" ".join(cmd), out.returncode, out.stdout[-4000:], out.stderr[-2000:]))
    changed = sum(int(n) for n in re.findall(r"changed=(\d+)", out.stdout))
    return seconds, changed, out.stdout


def wait_for_supervisor(name, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = subprocess.run(["docker", "exec", name, "supervisorctl", "status"], capture_output=True, text=True,
                             check=False)
        if "RUNNING" in out.stdout and "STARTING" not in out.stdout:
            return
        time.sleep(2)
    raise RuntimeError("supervisord in %s did not run its programs within %ss" % (name, timeout))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--runs", type=int, default=3, help="timed runs of each play (default 3)")
    parser.add_argument("--out", default=str(ROOT / "results"), help="where noop.json goes")
    opts = parser.parse_args()
    if not shutil.which("docker") or subprocess.run(["docker", "image", "inspect", IMAGE], capture_output=True,
                                                    check=False).returncode != 0:
        print("bench-noop: skipped: docker or the image %s is missing (make images builds it)" % IMAGE)
        return 0
    name = "authops-bench-noop-%d" % os.getpid()
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="authops-noop-"))
    inventory = tmp / "inventory.ini"
    inventory.write_text("[auth_servers]\n%s ansible_connection=community.docker.docker\n" % name)
    facts = tmp / "facts.yml"
    facts.write_text(FACTS_PLAY)
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS), ANSIBLE_NOCOLOR="1",
               ANSIBLE_PYTHON_INTERPRETER="auto_silent", PATH="%s:%s" % (BIN, os.environ.get("PATH", "")))
    tune = [str(ROOT / "playbooks" / "tune.yml")]
    report = dict(image=IMAGE, runs=opts.runs, connection="community.docker.docker",
                  cpus=os.cpu_count(), load_start=load())
    try:
        subprocess.run(["docker", "run", "-d", "--name", name, "--cap-add", "SYS_ADMIN", "--cgroupns=host",
                        "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw", "--tmpfs", "/run", "--tmpfs", "/run/lock",
                        IMAGE, "/lib/systemd/systemd"], check=True, capture_output=True)
        wait_for_supervisor(name)
        seconds, changed, dummy = play(tune, str(inventory), env)
        report["converge_seconds"] = round(seconds, 1)
        wait_for_supervisor(name)
        tune_runs, facts_runs, changed_runs = [], [], []
        for dummy in range(opts.runs):
            seconds, changed, dummy = play(tune, str(inventory), env)
            tune_runs.append(round(seconds, 2))
            changed_runs.append(changed)
            seconds, dummy, dummy = play([str(facts)], str(inventory), env)
            facts_runs.append(round(seconds, 2))
        report.update(tune_noop_seconds=tune_runs, tune_noop_changed=changed_runs, gather_facts_seconds=facts_runs,
                      tune_noop_median=statistics.median(tune_runs),
                      gather_facts_median=statistics.median(facts_runs))
        report["ratio"] = round(report["tune_noop_median"] / report["gather_facts_median"], 2)
        report["load_end"] = load()
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)
        shutil.rmtree(str(tmp), ignore_errors=True)
    report["ansible_core"] = subprocess.run([str(BIN / "ansible"), "--version"], capture_output=True, text=True,
                                            check=False).stdout.split("\n")[0]
    report["date"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    out = pathlib.Path(opts.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "noop.json").write_text(json.dumps(report, indent=2) + "\n")
    print("| no-change tune.yml (median of %d) | bare gather-facts play | ratio | changed | load |" % opts.runs)
    print("| ---: | ---: | ---: | --- | --- |")
    print("| %.1f s | %.1f s | %.2fx | %s | %s to %s |" % (
        report["tune_noop_median"], report["gather_facts_median"], report["ratio"],
        ", ".join(str(c) for c in changed_runs), report["load_start"], report["load_end"]))
    if any(changed_runs):
        print("bench-noop: a re-run changed something: %s" % changed_runs, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
