"""Rows of repeated runs: which overlap, and where the automatic plan stands (bench.py and auth_tasks.py).

A row has ``key``, ``kind``, ``tasks_per_s`` (the median of its runs), ``tasks_per_s_spread`` ([min, max]) and
``repeats``; a row of 5 runs or more also ``tasks_per_s_band``, the middle runs (without the slowest and the fastest).
"""

FASTEST, WITHIN, BELOW = "fastest", "within the fastest row's spread", "below the fastest row's spread"


def band(row):
    """The runs two rows' overlap is judged on: the middle runs of 5 or more (one noisy run of the machine, which
    only ever slows a run down, or one lucky run does not make every row overlap), else min-max."""
    return row.get("tasks_per_s_band") or row["tasks_per_s_spread"]


def describe(row):
    """A repeated row's min-max, with its band of middle runs when it has one; "1 run" else."""
    if row.get("repeats", 1) < 2:
        return "1 run"
    text = "%.1f-%.1f (%d runs" % (row["tasks_per_s_spread"][0], row["tasks_per_s_spread"][1], row["repeats"])
    if row.get("tasks_per_s_band"):
        text += "; middle %d: %.1f-%.1f" % ((row["repeats"] - 2,) + tuple(row["tasks_per_s_band"]))
    return text + ")"


def overlaps(rows):
    """Pairs of rows (keys) whose tasks/s bands overlap, one of them repeated at least."""
    out = []
    for index, left in enumerate(rows):
        for right in rows[index + 1:]:
            (lo1, hi1), (lo2, hi2) = band(left), band(right)
            if (left["repeats"] > 1 or right["repeats"] > 1) and lo1 <= hi2 and lo2 <= hi1:
                out.append([left["key"], right["key"]])
    return out


def ranking(rows, pairs=None):
    """Where the automatic plan stands against the fastest row (median tasks/s): the fastest itself, within the
    fastest row's spread (their bands overlap, see band(): no order between them), or below it. ``pairs``:
    overlaps(rows), when the caller has it."""
    pairs = overlaps(rows) if pairs is None else pairs
    auto = next(r for r in rows if r["kind"] == "auto")
    best = max(rows, key=lambda r: r["tasks_per_s"])
    if best is auto:
        relation = FASTEST
    elif [auto["key"], best["key"]] in pairs or [best["key"], auto["key"]] in pairs:
        relation = WITHIN
    else:
        relation = BELOW
    return {"auto": auto["key"], "best": best["key"], "relation": relation,
            "auto_spread": auto["tasks_per_s_spread"], "best_spread": best["tasks_per_s_spread"],
            "auto_band": band(auto), "best_band": band(best), "within_spread": pairs}
