"""Write the README's benchmark sections from one `make bench` report (default docs/bench.json).

    python3 scripts/bench-readme.py [docs/bench.json]         # rewrite README.md between the bench markers
    python3 scripts/bench-readme.py --check [docs/bench.json]  # exit 1 when README.md differs

Copy a run's results/bench.json, results/bench.png and results/auth_tasks.svg to docs/ first: bench.py's sets go
between the bench markers, the auth_tasks set (the headline, its table and chart) between the auth_tasks markers.
Figures are printed as measured.
"""

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
import spreads  # noqa: E402  pylint: disable=wrong-import-position
README = ROOT / "README.md"
BEGIN, END = "<!-- bench:begin (scripts/bench-readme.py) -->", "<!-- bench:end -->"
AUTH_BEGIN, AUTH_END = "<!-- auth_tasks:begin (scripts/bench-readme.py) -->", "<!-- auth_tasks:end -->"
HEAD_BEGIN, HEAD_END = "<!-- headline:begin (scripts/bench-readme.py) -->", "<!-- headline:end -->"


def label(row):
    text = row["label"]
    for prefix in ("db: ", "cpu: "):
        if text.startswith(prefix):
            return text[len(prefix):]
    return text


def conc(row):
    return "%d x %d" % (row["concurrency"], row["numprocs"]) if row["numprocs"] > 1 else "%d" % row["concurrency"]


def pool_table(title, rows, ratio_title, ratio_key, db=False):
    head = "| %s | kind | pool | concurrency | tasks/s | spread | %s | peak RSS MiB |%s" % (
        title, ratio_title, " DB connections |" if db else "")
    out = [head, "| --- | --- | --- | ---: | ---: | --- | ---: | ---: |%s" % (" ---: |" if db else "")]
    for r in rows:
        out.append("| %s | %s | %s | %s | %.1f | %s | %.2f | %.0f |%s" % (
            label(r), r["kind"], r["pool"], conc(r), r["tasks_per_s"], spreads.describe(r), r[ratio_key], r["peak_rss_mib"],
            " %d |" % r["db_connections_peak"] if db else ""))
    return "\n".join(out)


def ranking_line(ranking, rows_by_key):
    """Where the automatic plan stands against the fastest row, per set."""
    parts = []
    for name, r in ranking.items():
        parts.append("%s: %s (auto %.1f-%.1f, fastest %s %.1f-%.1f tasks/s)" % (
            name, r["relation"], r["auto_spread"][0], r["auto_spread"][1], label(rows_by_key[name][r["best"]]),
            r["best_spread"][0], r["best_spread"][1]))
    return "The automatic plan against the fastest row (median of its runs; min-max): " + "; ".join(parts) + "."


def section(report):
    h, v = report["host"], report["versions"]
    db, cpu = report["db"], report["cpu"]
    busy = max(report["loadavg_1m_start"], report["loadavg_1m_end"]) > 0.5 * h["cpu_count"]
    out = [
        "One full run (%d CPUs, %.0f GiB, Celery %s, MariaDB %s, %s; %.0f s on %s; load average %.1f at the start, "
        "%.1f at the end%s; [chart](docs/bench.png), [data](docs/bench.json)):" % (
            h["cpu_count"], h["memory_bytes"] / 1024 ** 3, v["celery"], db["mariadb"], db["mysqlclient"],
            report["bench_seconds"], report["date"][:10], report["loadavg_1m_start"], report["loadavg_1m_end"],
            ": above half the CPUs, the machine was not idle (another run had just ended or other work ran), so the "
            "figures may be lower than on an idle one" if busy
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
    if report.get("ranking"):
        by_key = {"io": {r["key"]: r for r in report["io"]}, "db": {r["key"]: r for r in db["rows"]},
                  "cpu": {r["key"]: r for r in cpu["rows"]}}
        out += ["", ranking_line(report["ranking"], by_key)]
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


def headline(report):
    """The burst in the admin's terms, from the auth_tasks set."""
    shipped = next(r for r in report["rows"] if r["kind"] == "auth_shipped")
    auto = next(r for r in report["rows"] if r["kind"] == "auto")
    return ("{:,} characters ({:,} update tasks): {:.0f} s with Auth's stock workers (threads 5), {:.0f} s with the "
            "automatic plan (threads {} x {}): {:.1f}x faster".format(
                report["n"], shipped["tasks"], shipped["drain_s"], auto["drain_s"], auto["concurrency"], auto["numprocs"],
                shipped["drain_s"] / auto["drain_s"]))


def auth_section(report, bench_date):
    """The auth_tasks set: the headline in the admin's terms, the table, the chart, issue 23's thresholds."""
    rows = report["rows"]
    shipped = next(r for r in rows if r["kind"] == "auth_shipped")
    auto = next(r for r in rows if r["kind"] == "auto")
    v, h = report["versions"], report["host"]
    out = [
        "One `make bench` run (the same as the tables above, %s; this set %.0f s; %d CPUs; load average %.1f at its "
        "start, %.1f at its end; Auth %s, django-esi %s, Celery %s, MariaDB %s; [chart](docs/auth_tasks.svg), "
        "[data](docs/bench.json), key `auth_tasks`):" % (
            bench_date[:10], report["seconds"], h["cpu_count"], report["loadavg_1m_start"], report["loadavg_1m_end"],
            v.get("allianceauth"), v.get("django-esi"), v.get("celery"), (v.get("mariadb") or "").split("-")[0]),
        "",
        "**%s**" % headline(report),
        "",
        "![auth_tasks](docs/auth_tasks.svg)",
        "",
        "| config | kind | conc. x procs | drain s | tasks/s | spread | x Auth | peak RSS MiB | plan's RSS estimate MiB "
        "| DB conns | lost | task ms | CPU ms/task |",
        "| --- | --- | --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        out.append("| %s | %s | %d x %d | %.1f | %.1f | %s | %.2f | %.0f | %s | %d | %d | %.0f | %.1f |" % (
            r["label"].split(": ", 1)[-1], r["kind"], r["concurrency"], r["numprocs"], r["drain_s"], r["tasks_per_s"],
            spreads.describe(r), r["ratio_to_auth"], r["peak_rss_mib"],
            "%.0f" % r["rss_estimate_mib"] if r.get("rss_estimate_mib") else "-", r["db_connections"], r["lost"],
            r["task_ms_mean"] or 0, r["cpu_ms_per_task"]))
    prof = report["profile"]
    b, s = prof["builtin"], prof["auth_shipped"]
    agree = prof["agree"]
    out += ["", "Auth's tasks: %.0f ms per task under threads 5 (the built-in profile: %.0f ms, x%.2f); %.1f ms CPU per "
            "task at the plan's throughput, the automatic row (built-in %.1f ms, x%.2f), %.1f ms under threads 5, "
            "mostly idle (x%.2f)." % (
                s["task_ms"], b["task_ms"], s["task_ratio"], agree["cpu_ms_per_task_at_plan"], b["cpu_ms"],
                agree["cpu_ratio"], s["cpu_ms_per_task"], s["cpu_ratio"])]
    seen = report.get("observe_agreement")
    if seen:
        out[-1] += (" `celery_workers_profile: observe` (the `worker_profile` module, %d s window, on Auth's own "
                    "`myauth:worker` under supervisor draining the same burst): %.0f ms per task (x%.2f of the bench's), "
                    "%.1f ms CPU per task (x%.2f); it recommends %s %d x %d." % (
                        seen["window_s"], seen["task_ms"], seen["task_ratio"], seen["cpu_ms_per_task"], seen["cpu_ratio"],
                        seen["recommended"]["pool"], seen["recommended"]["concurrency"],
                        seen["recommended"]["numprocs"]))
    fit = report.get("two_gb")
    if fit:
        out[-1] += (" With `celery_workers_memory_total: 2GB` the default plan (%s) estimates workers %.0f + gunicorn %.0f "
                    "+ reserve %.0f = %.0f MiB of 2048." % (
                        fit["worker"], fit["workers_estimate_mib"], fit["carried_estimate_mib"], fit["reserve_mib"],
                        fit["host_estimate_mib"]))
    out += ["", "| issue 23 | this run | target | met |", "| --- | ---: | --- | --- |"]
    for t in report.get("thresholds", []):
        met = "" if t["met"] is None else "yes" if t["met"] else "**no**"
        out.append("| %s | %s | %s | %s |" % (t["what"], t["value"], t["target"], met))
    return "\n".join(out)


def replace(text, begin, end, body):
    if begin not in text or end not in text:
        sys.exit("README.md has no %s ... %s markers" % (begin, end))
    return text[:text.index(begin) + len(begin)] + "\n" + body + "\n" + text[text.index(end):]


def main(argv):
    check = "--check" in argv
    args = [a for a in argv if a != "--check"]
    report = json.loads(Path(args[0] if args else ROOT / "docs" / "bench.json").read_text(encoding="utf-8"))
    text = README.read_text(encoding="utf-8")
    new = replace(text, BEGIN, END, section(report))
    if report.get("auth_tasks"):
        new = replace(new, AUTH_BEGIN, AUTH_END, auth_section(report["auth_tasks"], report["date"]))
        new = replace(new, HEAD_BEGIN, HEAD_END, (
            "On Auth 5.5's own update tasks (`make bench`, %s, %d CPUs, ESI answered by a stub after 100 to 300 ms): "
            "%s. See Benchmark." % (
                report["date"][:10], report["auth_tasks"]["host"]["cpu_count"], headline(report["auth_tasks"]))))
    if check:
        if new != text:
            print("README.md's bench section is out of date: run python scripts/bench-readme.py")
            return 1
        return 0
    README.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
