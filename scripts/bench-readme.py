"""Write the README's benchmark tables from a bench report (default docs/bench.json).

    python3 scripts/bench-readme.py [docs/bench.json]         # rewrite README.md between the bench markers
    python3 scripts/bench-readme.py --check [docs/bench.json]  # exit 1 when README.md differs

Copy a run's results/bench.json and results/bench.png to docs/ first. Figures are printed as measured.
"""

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
BEGIN, END = "<!-- bench:begin (scripts/bench-readme.py) -->", "<!-- bench:end -->"


def label(row):
    text = row["label"]
    for prefix in ("db: ", "cpu: "):
        if text.startswith(prefix):
            return text[len(prefix):]
    return text


def conc(row):
    return "%d x %d" % (row["concurrency"], row["numprocs"]) if row["numprocs"] > 1 else "%d" % row["concurrency"]


def pool_table(title, rows, ratio_title, ratio_key, db=False):
    head = "| %s | kind | pool | concurrency | tasks/s | %s | peak RSS MiB |%s" % (
        title, ratio_title, " DB connections |" if db else "")
    out = [head, "| --- | --- | --- | ---: | ---: | ---: | ---: |%s" % (" ---: |" if db else "")]
    for r in rows:
        out.append("| %s | %s | %s | %s | %.1f | %.2f | %.0f |%s" % (
            label(r), r["kind"], r["pool"], conc(r), r["tasks_per_s"], r[ratio_key], r["peak_rss_mib"],
            " %d |" % r["db_connections_peak"] if db else ""))
    return "\n".join(out)


def section(report):
    h, v = report["host"], report["versions"]
    db, cpu = report["db"], report["cpu"]
    busy = max(report["loadavg_1m_start"], report["loadavg_1m_end"]) > 0.5 * h["cpu_count"]
    out = [
        "One full run (%d CPUs, %.0f GiB, Celery %s, MariaDB %s, %s; %.0f s on %s; load average %.1f at the start, "
        "%.1f at the end%s; [chart](docs/bench.png), [data](docs/bench.json)):" % (
            h["cpu_count"], h["memory_bytes"] / 1024 ** 3, v["celery"], db["mariadb"], db["mysqlclient"],
            report["bench_seconds"], report["date"][:10], report["loadavg_1m_start"], report["loadavg_1m_end"],
            ": the machine was shared with other work, so the figures are lower than on an idle machine" if busy
            else ", nothing else running"),
        "",
        pool_table("I/O set: %d x io_call (100 ms)" % report["n"], report["io"], "x guide default", "ratio_to_a"),
        "",
        pool_table("DB set: %d x esi_db (100 ms GET + %d queries through mysqlclient)" % (report["n"], db["queries"]),
                   db["rows"], "x Auth shipped", "ratio_to_auth", db=True),
        "",
        pool_table("CPU set: %d x cpu (~%.0f ms each)" % (report["m"], cpu["one_task_seconds"] * 1000), cpu["rows"],
                   "x guide default", "ratio_to_a"),
    ]
    prof = db.get("profile")
    if prof:
        rec = prof["recommended"]
        out += ["", "worker_profile on Auth's threads 5 under the DB load (%.0f s window, load average %.1f): "
                "%.1f tasks/s, %.1f tasks in flight, %.0f ms per task (Little's law), %.1f ms CPU per task, "
                "backlog at least %d; driver %s. It recommends %s %s, which then ran at %.1f tasks/s: %.0f%% of "
                "the best configuration of the set (%s, %.1f)." % (
                    prof["window_seconds"], prof["loadavg_1m_before"], prof["completions_per_s"], prof["in_flight_mean"],
                    1000 * (prof["task_seconds"] or 0), 1000 * (prof["cpu_seconds_per_task"] or 0), prof["backlog_min"],
                    prof["db_driver"], rec["pool"], "%d x %d" % (rec["concurrency"], rec["numprocs"]),
                    prof["recommended_tasks_per_s"], 100 * prof["ratio_to_best"], label({"label": prof["best_label"]}),
                    prof["best_tasks_per_s"])]
    if report.get("thresholds"):
        out += ["", "| threshold (issue 11) | this run | target | met |", "| --- | ---: | --- | --- |"]
        for t in report["thresholds"]:
            out.append("| %s | %.2f | %s | %s |" % (t["threshold"], t["value"], t["target"], "yes" if t["met"] else "**no**"))
    rs, mm = report["restart"], report["memmon"]
    memmon = "**did not restart the worker**."
    if mm["restarted"]:
        memmon = "a worker pushed to %.0f MiB got a new pid %s s after the leaking task finished." % (
            mm["leak_rss_mib"], mm["seconds_to_new_pid"])
    out += ["", "- Graceful restart under load (`supervisor_group state=restarted`, %d x %g s tasks): %d of %d completed, "
            "**%d lost**; the longest stretch without a completed task was %.1f s." % (
                rs["tasks"], rs["task_seconds"], rs["completed"], rs["tasks"], rs["lost"], rs["consumption_gap_seconds"] or 0),
            "- memmon (%s): %s" % (mm["limit"], memmon)]
    return "\n".join(out)


def main(argv):
    check = "--check" in argv
    args = [a for a in argv if a != "--check"]
    report = json.loads(Path(args[0] if args else ROOT / "docs" / "bench.json").read_text(encoding="utf-8"))
    text = README.read_text(encoding="utf-8")
    if BEGIN not in text or END not in text:
        sys.exit("README.md has no %s ... %s markers" % (BEGIN, END))
    new = text[:text.index(BEGIN) + len(BEGIN)] + "\n" + section(report) + "\n" + text[text.index(END):]
    if check:
        if new != text:
            print("README.md's bench section is out of date: run python scripts/bench-readme.py")
            return 1
        return 0
    README.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
