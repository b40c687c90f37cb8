"""Send one stand-in task and print its result as JSON (used by the molecule verify playbooks).

    python call_task.py TASK [--args JSON] [--queue QUEUE] [--timeout SECONDS] [--no-wait]

Run from the project directory with the venv's python, like `celery -A myauth`.
"""

import argparse
import json
import sys

from myauth import tasks


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("task")
    parser.add_argument("--args", default="[]")
    parser.add_argument("--queue")
    parser.add_argument("--timeout", type=float, default=60)
    parser.add_argument("--no-wait", action="store_true")
    opts = parser.parse_args()
    task = getattr(tasks, opts.task)
    options = {"queue": opts.queue} if opts.queue else {}
    result = task.apply_async(args=json.loads(opts.args), **options)
    if opts.no_wait:
        print(json.dumps({"id": result.id}))
        return 0
    print(json.dumps({"id": result.id, "result": result.get(timeout=opts.timeout)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
