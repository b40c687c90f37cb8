"""Send N io_call (or esi_db) tasks to a URL and print the throughput as JSON (used by make demo).

    python throughput.py URL [--tasks 100] [--task io_call|esi_db] [--queue celery] [--timeout 300]

The workers that consume the queue stop consuming it while the tasks are sent, and start again once
all are queued; the clock runs from the first task that ran (its ``started_at``) to the last result. It
measures the workers draining a backlog (as after beat queues a burst of ESI updates), not how fast this
one producer sends. The JSON also names those workers, with their pool and concurrency.
"""

import argparse
import json
import sys
import time

from myauth import tasks

POOLS = {"celery.concurrency.thread": "threads", "celery.concurrency.prefork": "prefork",
         "celery.concurrency.gevent": "gevent", "celery.concurrency.eventlet": "eventlet",
         "celery.concurrency.solo": "solo"}


def consumers(queue, timeout):
    """``[{"node", "pool", "concurrency"}]`` of the workers that consume ``queue``; waits for the first one."""
    inspect = tasks.app.control.inspect(timeout=2)
    deadline = time.monotonic() + timeout
    while True:
        nodes = [node for node, queues in (inspect.active_queues() or {}).items()
                 if any(q.get("name") == queue for q in queues)]
        if nodes or time.monotonic() > deadline:
            break
    stats = inspect.stats() or {}
    out = []
    for node in sorted(nodes):
        pool = stats.get(node, {}).get("pool", {})
        implementation = str(pool.get("implementation", "")).partition(":")[0]
        out.append({"node": node, "pool": POOLS.get(implementation, implementation),
                    "concurrency": pool.get("max-concurrency")})
    return out


def consume(queue, nodes, on):
    """Make ``nodes`` stop (or start again) consuming ``queue``."""
    control = tasks.app.control.add_consumer if on else tasks.app.control.cancel_consumer
    # limit: return once every node replied, not after the whole timeout
    control(queue, destination=nodes, reply=True, timeout=10.0, limit=len(nodes))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--tasks", type=int, default=100)
    parser.add_argument("--task", choices=("io_call", "esi_db"), default="io_call")
    parser.add_argument("--queue", default="celery")
    parser.add_argument("--timeout", type=float, default=300)
    opts = parser.parse_args()
    task = getattr(tasks, opts.task)
    workers = consumers(opts.queue, opts.timeout)
    nodes = [worker["node"] for worker in workers]
    try:
        if nodes:
            consume(opts.queue, nodes, False)
        results = [task.apply_async(args=[opts.url], queue=opts.queue) for _index in range(opts.tasks)]
    finally:
        started = time.time()  # without started_at in the results, the clock starts here
        if nodes:  # also after an error: a paused worker would not consume again until restarted
            consume(opts.queue, nodes, True)
    ok, errors, starts = 0, set(), []
    for result in results:
        value = result.get(timeout=max(1.0, opts.timeout - (time.time() - started)))
        if value.get("status") == 200 and "error" not in value:
            ok += 1
        else:
            errors.add(str(value.get("error") or value.get("status")))
        if "started_at" in value:
            starts.append(value["started_at"])
    # the backlog is queued: the clock runs from the first task that ran to the last result
    elapsed = time.time() - (min(starts) if starts else started)
    print(json.dumps({"task": opts.task, "tasks": opts.tasks, "ok": ok, "seconds": round(elapsed, 2),
                      "tasks_per_second": round(opts.tasks / elapsed, 1), "workers": workers,
                      "errors": sorted(errors)}))
    return 0 if ok == opts.tasks else 1


if __name__ == "__main__":
    sys.exit(main())
