"""Send N io_call tasks to a URL and print the throughput as JSON (used by make demo).

    python throughput.py URL [--tasks 100] [--queue celery] [--timeout 300]
"""

import argparse
import json
import sys
import time

from myauth import tasks


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--tasks", type=int, default=100)
    parser.add_argument("--queue", default="celery")
    parser.add_argument("--timeout", type=float, default=300)
    opts = parser.parse_args()
    started = time.monotonic()
    results = [tasks.io_call.apply_async(args=[opts.url], queue=opts.queue) for _index in range(opts.tasks)]
    ok = 0
    for result in results:
        value = result.get(timeout=max(1.0, opts.timeout - (time.monotonic() - started)))
        ok += 1 if value.get("status") == 200 else 0
    elapsed = time.monotonic() - started
    print(json.dumps({"tasks": opts.tasks, "ok": ok, "seconds": round(elapsed, 2),
                      "tasks_per_second": round(opts.tasks / elapsed, 1)}))
    return 0 if ok == opts.tasks else 1


if __name__ == "__main__":
    sys.exit(main())
