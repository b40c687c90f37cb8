"""Do two `make bench` runs rank the automatic plan the same way against the fastest row, on every set?

    python3 bench/compare.py A/bench.json B/bench.json

For each set (bench.py's io, db and cpu, and auth_tasks when both reports have it) it prints the automatic
plan's relation to the fastest row in each run (spreads.ranking: the fastest, within the fastest row's
spread, or below it) and its median tasks/s over the fastest row's. The fastest and "within the spread" are
one place: their runs overlap (the middle runs of rows of 5 runs or more, else min-max: spreads.band), so there
is no order between the automatic plan and the fastest row. The runs
agree on a set when the automatic plan has the same place in both. Exit status 1 when they disagree on a set.
"""

import json
import sys

import spreads


def sets(report):
    """Per set: the rows and the report's ranking."""
    out = {}
    for name, rows in (("io", report.get("io")), ("db", (report.get("db") or {}).get("rows")),
                       ("cpu", (report.get("cpu") or {}).get("rows"))):
        if rows and name in report.get("ranking", {}):
            out[name] = (rows, report["ranking"][name])
    auth = report.get("auth_tasks")
    if auth and auth.get("ranking"):
        out["auth_tasks"] = (auth["rows"], auth["ranking"])
    return out


def place(ranking):
    return "below" if ranking["relation"] == spreads.BELOW else "top"


def describe(rows, ranking):
    by_key = {r["key"]: r for r in rows}
    auto, best = by_key[ranking["auto"]], by_key[ranking["best"]]
    return "%s (auto %.1f, fastest %s %.1f: x%.2f)" % (
        ranking["relation"], auto["tasks_per_s"], best["key"], best["tasks_per_s"],
        auto["tasks_per_s"] / best["tasks_per_s"])


def compare(first, second):
    """Rows of (set, first run, second run, agree) for the sets both reports have."""
    left, right = sets(first), sets(second)
    out = []
    for name in [n for n in left if n in right]:
        out.append((name, describe(*left[name]), describe(*right[name]),
                    place(left[name][1]) == place(right[name][1])))
    return out


def main(argv):
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    reports = []
    for path in argv:
        with open(path, encoding="utf-8") as handle:
            reports.append(json.load(handle))
    rows = compare(*reports)
    dates = [report.get("date", "?")[:16] for report in reports]
    print("| set | %s (%s) | %s (%s) | same place |" % (argv[0], dates[0], argv[1], dates[1]))
    print("| --- | --- | --- | --- |")
    for name, one, two, agree in rows:
        print("| %s | %s | %s | %s |" % (name, one, two, "yes" if agree else "**no**"))
    return 0 if rows and all(row[3] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
