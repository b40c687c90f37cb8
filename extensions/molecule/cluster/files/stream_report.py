"""Test bed only: what happened to the stream of tasks stream.py sent (run on the controller).

Usage: python3 stream_report.py SENT_LOG DONE_DIR START END
SENT_LOG: stream.py's JSON lines (id, queue, t). DONE_DIR: one file per host, named after the host, of
JSON lines {"id": ..., "t": <end time>}. START/END: the change's window (epoch seconds; the containers
share the machine's clock). Prints one JSON object:
  sent, done, lost (sent but never completed, per queue), completed per host and queue,
  gap_s: the longest time in the window without a completed task of the queue `celery` anywhere,
  host_gap_s: the same per host (a host's own out-of-service time), services_gap_s: the same for `services`,
  outages_overlap: whether two hosts' longest gaps overlap (they must not when hosts go one at a time).
"""
import json
import os
import sys


def longest_gap_window(times, start, end):
    """The longest interval inside [start, end] without an event (the window's edges count as events)."""
    points = [start] + sorted(t for t in times if start < t < end) + [end]
    return max(zip(points, points[1:]), key=lambda pair: pair[1] - pair[0])


def longest_gap(times, start, end):
    first, last = longest_gap_window(times, start, end)
    return round(last - first, 2)


def main():
    sent_log, done_dir, start, end = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
    with open(sent_log, encoding="utf-8") as handle:
        sent = dict((r["id"], r) for r in map(json.loads, filter(None, handle.read().splitlines())))
    done = {}
    for host in sorted(os.listdir(done_dir)):
        with open(os.path.join(done_dir, host), encoding="utf-8") as handle:
            for record in map(json.loads, filter(None, handle.read().splitlines())):
                done[record["id"]] = dict(host=host, t=record["t"])
    ids = [i for i in sent if i in done]
    lost = [i for i in sent if i not in done]
    by = {}
    for i in ids:
        key = "%s %s" % (done[i]["host"], sent[i]["queue"])
        by[key] = by.get(key, 0) + 1

    def times(queue, host=None):
        return [done[i]["t"] for i in ids if sent[i]["queue"] == queue and host in (None, done[i]["host"])]

    hosts = sorted(set(d["host"] for d in done.values()))
    # Each host's own outage (its longest gap): host by host, they must not overlap.
    outages = sorted(longest_gap_window(times("celery", h), start, end) for h in hosts)
    overlap = any(b[0] < a[1] for a, b in zip(outages, outages[1:]))
    print(json.dumps(dict(
        sent=len(sent), done=len(ids), lost=len(lost),
        lost_by_queue=dict((q, sum(1 for i in lost if sent[i]["queue"] == q)) for q in ("celery", "services")),
        completed=by, window_s=round(end - start, 1),
        gap_s=longest_gap(times("celery"), start, end),
        host_gap_s=dict((h, longest_gap(times("celery", h), start, end)) for h in hosts),
        services_gap_s=longest_gap(times("services"), start, end), outages_overlap=overlap), sort_keys=True))


if __name__ == "__main__":
    main()
