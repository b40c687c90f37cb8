#!/usr/bin/env bash
# Smoke test of a container started from the auth55 image (scripts/build-auth-image.sh), run as
# root inside it:  bash smoke.sh   (or: scripts/build-auth-image.sh --smoke from the host)
# Checks, failing with a message on the first problem:
#   1. supervisor shows myauth:beat, myauth:worker_00, myauth:worker_services_00 (Auth 5.x), myauth:gunicorn RUNNING
#   2. gunicorn answers http://127.0.0.1:8000/ with 200 or 302
#   3. both workers answer `celery -A myauth inspect ping`
#   4. authops_probe.tasks.ping goes through the broker and runs: stock Auth has no result
#      backend, so the task writes its result to a marker file, which this script waits for.
# Then prints the processes' idle RSS. Environment: SMOKE_TIMEOUT (seconds per wait, default 180).
set -euo pipefail

TIMEOUT=${SMOKE_TIMEOUT:-180}
PROJECT=/home/allianceserver/myauth
VENV=/home/allianceserver/venv/auth
PROGRAMS=(myauth:beat myauth:worker_00 myauth:worker_services_00 myauth:gunicorn)
NODES=(celery@worker_00 celery@worker_services_00)
# Auth 4.x ships no worker_services.
if ! grep -q '^\[program:worker_services\]' "$PROJECT/supervisor.conf"; then
  PROGRAMS=(myauth:beat myauth:worker_00 myauth:gunicorn)
  NODES=(celery@worker_00)
fi

say() { printf 'smoke: %s\n' "$*"; }
fail() { printf 'smoke: FAIL: %s\n' "$*" >&2; exit 1; }
celery_aa() { su allianceserver -s /bin/bash -c "cd $PROJECT && $VENV/bin/celery -A myauth $*"; }

for _ in $(seq 1 "$TIMEOUT"); do  # systemd's bus appears only a moment after the container starts
  case "$(systemctl is-system-running 2>/dev/null || true)" in running | degraded) break ;; esac
  sleep 1
done

say "waiting for ${PROGRAMS[*]} to be RUNNING"
deadline=$((SECONDS + TIMEOUT))
while :; do
  status=$(supervisorctl status 2>&1 || true)  # exits non-zero while anything is not running
  missing=()
  for program in "${PROGRAMS[@]}"; do
    grep -Eq "^${program}[[:space:]]+RUNNING" <<<"$status" || missing+=("$program")
  done
  [ ${#missing[@]} -eq 0 ] && break
  [ $SECONDS -lt $deadline ] || fail "not RUNNING after ${TIMEOUT}s: ${missing[*]}"$'\n'"$status"
  sleep 2
done
printf '%s\n' "$status"

say "checking http://127.0.0.1:8000/"
code=000
for _ in $(seq 1 30); do
  code=$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8000/ || true)
  case "$code" in 200 | 302) break ;; esac
  sleep 1
done
case "$code" in 200 | 302) say "HTTP $code" ;; *) fail "gunicorn answered HTTP $code (log: $PROJECT/log/gunicorn.log)" ;; esac

say "celery inspect ping"
deadline=$((SECONDS + TIMEOUT))
answered() {
  local node
  for node in "${NODES[@]}"; do grep -q "$node: OK" <<<"$replies" || return 1; done
}
until replies=$(celery_aa "inspect ping --timeout 5 -d $(IFS=,; echo "${NODES[*]}")" 2>&1) && answered; do
  [ $SECONDS -lt $deadline ] || fail "workers did not answer inspect ping:"$'\n'"$replies"
  sleep 2
done
printf '%s\n' "$replies"

say "sending authops_probe.tasks.ping through the broker"
markers=$(mktemp -d /tmp/authops-smoke.XXXXXX)
chown allianceserver: "$markers"
task_id=$(celery_aa "call authops_probe.tasks.ping --kwargs '{\"marker_dir\": \"$markers\"}'" | tail -n 1)
[ -n "$task_id" ] || fail "celery call printed no task id"
deadline=$((SECONDS + 60))
until [ -s "$markers/$task_id.json" ]; do
  [ $SECONDS -lt $deadline ] || fail "task $task_id did not run within 60 s (log: $PROJECT/log/worker.log)"
  sleep 1
done
result=$(cat "$markers/$task_id.json")
rm -rf "$markers"
say "task $task_id: $result"
grep -q '"pool": "threads"' <<<"$result" || fail "expected the stock threads pool"

say "idle RSS (KiB) of the Auth processes"
pids=$(pgrep -d, -f 'bin/(celery|gunicorn|memmon)' || true)
[ -z "$pids" ] || ps -o pid,user,rss,args -p "$pids"
say "OK"
