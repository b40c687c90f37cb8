"""Test bed only: send a steady stream of Auth probe tasks until STOPFILE exists.

Usage (as the Auth user, in the project directory, with the Auth venv's python):
  python stream.py MARKER_DIR STOPFILE SENT_LOG [INTERVAL [SECONDS]]
Every INTERVAL s (default 0.2) sends authops_probe.tasks.sleep(SECONDS (default 1.0), MARKER_DIR) to
the default queue `celery`; every tenth is a 0.1 s sleep to `services` instead (it runs one at a time). Each sent task is one JSON line in SENT_LOG
(id, queue, t). The task writes MARKER_DIR/<id>.done on the host that ran it, with its end time t.
"""
import json
import os
import sys
import time

sys.path.insert(0, os.getcwd())
from myauth.celery import app  # noqa: E402  (sets DJANGO_SETTINGS_MODULE itself)


def main():
    marker_dir, stopfile, sent_log = sys.argv[1:4]
    interval = float(sys.argv[4]) if len(sys.argv) > 4 else 0.2
    seconds = float(sys.argv[5]) if len(sys.argv) > 5 else 1.0
    count = 0
    with open(sent_log, "a", encoding="utf-8") as log:
        while not os.path.exists(stopfile):
            queue = "services" if count % 10 == 9 else "celery"
            result = app.send_task("authops_probe.tasks.sleep", queue=queue,
                                   args=[seconds if queue == "celery" else 0.1, marker_dir])
            log.write(json.dumps(dict(id=result.id, queue=queue, t=time.time())) + "\n")
            log.flush()
            count += 1
            time.sleep(interval)


if __name__ == "__main__":
    main()
