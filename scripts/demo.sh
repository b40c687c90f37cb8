#!/usr/bin/env bash
# make demo: run the real playbooks/tune.yml against a local, disposable stand-in Alliance Auth under
# .demo/ (no Docker): a venv with Auth's Celery stack, supervisor and superlance, the stand-in project
# `myauth`, supervisord run as the current user from the venv and owning its socket, and Auth's own
# supervisor.conf in its conf.d. The same supervisord runs a private Redis (loopback, own port and dir)
# as broker and a private MariaDB (own data dir and unix socket, no TCP) for the esi_db tasks, both
# from Debian's packages (bench/services.py installs them when root); without Redis the stand-in uses
# kombu's filesystem broker, without MariaDB the throughput lines use io_call instead of esi_db.
# The roles get everything through their normal variables (paths, service manager = RPC restart).
# Re-running changes nothing; `make demo-clean` stops supervisord (and so Redis and MariaDB) and removes it all.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DEMO=${DEMO_DIR:-$ROOT/.demo}
BIN=$ROOT/.venv/bin
VENV=$DEMO/venv
PROJECT=$DEMO/myauth
USER_NAME=$(id -un)
say() { printf '\n== %s\n' "$*"; }

mkdir -p "$DEMO/conf.d" "$DEMO/log" "$DEMO/data"
if [ ! -x "$VENV/bin/celery" ]; then
  say "creating the stand-in Auth venv (Celery stack of allianceauth 5.5, supervisor)"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q -r "$ROOT/extensions/standin/requirements.txt" supervisor==4.3.0
fi
if [ ! -d "$PROJECT" ]; then
  cp -r "$ROOT/extensions/standin/myauth" "$PROJECT"
  rm -rf "$PROJECT/log" && mkdir -p "$PROJECT/log"
fi

if [ ! -f "$DEMO/services.env" ]; then
  say "private Redis and MariaDB for the stand-in, run by the demo's supervisord"
  "$VENV/bin/python" "$ROOT/bench/services.py" demo-prepare "$DEMO" --python "$VENV/bin/python"
fi
# The stand-in's own settings, as an admin's environment would hold them: broker, result backend, database.
cp "$DEMO/services.env" "$PROJECT/standin.env"

if [ ! -f "$DEMO/supervisord.conf" ]; then
  cat >"$DEMO/supervisord.conf" <<CONF
[unix_http_server]
file=$DEMO/supervisor.sock
chmod=0700

[supervisord]
logfile=$DEMO/log/supervisord.log
pidfile=$DEMO/supervisord.pid
childlogdir=$DEMO/log

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://$DEMO/supervisor.sock

[include]
files = $DEMO/conf.d/*.conf $DEMO/services.conf
CONF
fi

if [ ! -e "$DEMO/conf.d/myauth.conf" ]; then
  say "installing Auth's own supervisor.conf, symlinked into conf.d as Auth's guide says"
  "$BIN/ansible" localhost -c local -m ansible.builtin.template \
    -a "src=$ROOT/extensions/standin/supervisor.conf.j2 dest=$PROJECT/supervisor.conf mode=0644" \
    -e "standin_project_dir=$PROJECT standin_venv=$VENV standin_user=$USER_NAME standin_log_dir=$PROJECT/log" >/dev/null
  ln -s "$PROJECT/supervisor.conf" "$DEMO/conf.d/myauth.conf"
fi

if ! "$VENV/bin/supervisorctl" -c "$DEMO/supervisord.conf" pid >/dev/null 2>&1; then
  say "starting supervisord as $USER_NAME"
  "$VENV/bin/supervisord" -c "$DEMO/supervisord.conf"
  sleep 3
fi
"$VENV/bin/python" "$ROOT/bench/services.py" demo-wait "$DEMO"

say "a stand-in for ESI answering after 100 ms"
rm -f "$DEMO/esi.port"
"$VENV/bin/python" "$ROOT/extensions/standin/esi_stub.py" --port-file "$DEMO/esi.port" >/dev/null 2>&1 &
STUB=$!
trap 'kill $STUB 2>/dev/null || true' EXIT
for _ in $(seq 1 50); do [ -s "$DEMO/esi.port" ] && break; sleep 0.1; done
URL="http://127.0.0.1:$(cat "$DEMO/esi.port")/latest/status/"
TASK=io_call
grep -q '^MYAUTH_DB_SOCKET=' "$DEMO/services.env" && TASK=esi_db
throughput() {
  (cd "$PROJECT" && "$VENV/bin/python" throughput.py "$URL" --task "$TASK" --tasks "${DEMO_TASKS:-300}")
}
if [ ! -s "$DEMO/before.json" ]; then
  say "$TASK throughput before tuning (Auth's shipped worker: threads, concurrency 5)"
  "$VENV/bin/supervisorctl" -c "$DEMO/supervisord.conf" start myauth:worker_00 >/dev/null 2>&1 || true
  throughput | tee "$DEMO/before.json"
fi

cat >"$DEMO/inventory.yml" <<INV
auth_servers:
  hosts:
    demo:
      ansible_connection: local
      ansible_python_interpreter: $VENV/bin/python
  vars:
    celery_tuning_become: false
    celery_tuning_lock_dir: $DEMO/run
    celery_workers_state_dir: $DEMO/state
    supervisor_install_method: none
    supervisor_manage_config: false
    supervisor_service_manager: rpc
    supervisor_python: $VENV/bin/python
    supervisor_checker_path: $DEMO/libexec/supervisor_check_config.py
    supervisor_config_path: $DEMO/supervisord.conf
    supervisor_include_dir: $DEMO/conf.d
    supervisor_socket_path: $DEMO/supervisor.sock
    supervisor_log_dir: $DEMO/log
    celery_workers_project_dir: $PROJECT
    celery_workers_venv: $VENV
    celery_workers_user: $USER_NAME
    celery_workers_allow_root: $([ "$(id -u)" -eq 0 ] && echo true || echo false)
    celery_workers_workers:
      - name: worker
        workload: io
        memory_limit: 256MB
      - name: worker_services
        queues: [services]
        single_threaded: true
    memmon_user: $USER_NAME
    memmon_venv: $VENV
    memmon_supervisorctl: $VENV/bin/supervisorctl
INV

say "running the main job: ansible-playbook playbooks/tune.yml"
ANSIBLE_COLLECTIONS_PATH=$ROOT/.cache/collections "$BIN/ansible-playbook" -i "$DEMO/inventory.yml" \
  "$ROOT/playbooks/tune.yml" | tee "$DEMO/tune.log"

say "the supervisor file the role owns ($DEMO/conf.d/myauth.conf)"
cat "$DEMO/conf.d/myauth.conf"

say "live processes"
ANSIBLE_COLLECTIONS_PATH=$ROOT/.cache/collections "$BIN/ansible-playbook" -i "$DEMO/inventory.yml" \
  "$ROOT/playbooks/status.yml" | grep -E '"msg"|^ok|changed=' || true

say "$TASK throughput after tuning"
throughput | tee "$DEMO/after.json"
"$VENV/bin/python" - "$DEMO/before.json" "$DEMO/after.json" "$PROJECT/standin.env" <<'PY'
import json, sys
before, after = (json.load(open(p)) for p in sys.argv[1:3])
broker = "Redis" if "MYAUTH_BROKER_URL=redis" in open(sys.argv[3]).read() else "the filesystem broker"
what = {"io_call": "a 100 ms GET", "esi_db": "a 100 ms GET + 4 MariaDB queries through mysqlclient"}[after["task"]]
def pools(run):
    return " + ".join("%s %s" % (w["pool"], w["concurrency"]) for w in run["workers"]) or "?"
print("%s x%d (%s, on %s): before %.1f tasks/s with %s (Auth's shipped config), after %.1f tasks/s "
      "with %s (the automatic plan): x%.1f" % (
          after["task"], after["tasks"], what, broker, before["tasks_per_second"], pools(before),
          after["tasks_per_second"], pools(after), after["tasks_per_second"] / before["tasks_per_second"]))
PY

say "a task on each queue"
for queue in celery services; do
  (cd "$PROJECT" && "$VENV/bin/python" call_task.py ping --queue "$queue" --timeout 60)
done
