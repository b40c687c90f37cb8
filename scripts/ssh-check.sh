#!/usr/bin/env bash
# The main job as an admin runs it: the newest ansible-core (2.21, on Python 3.13 in the Debian 13
# controller container of scripts/controller.sh) runs playbooks/tune.yml with no variables over SSH,
# as an unprivileged sudo user with become, against a stock Alliance Auth 5.5 server (a container of
# the image scripts/build-auth-image.sh builds, with openssh-server added). Then a second run must
# report changed=0; then rollback.yml and tune.yml once more must pass, and no run may print ansible-core's
# "does not support Ansible version" warning.
#
#   scripts/ssh-check.sh        (make ssh-check; logs in .cache/ssh-check/)
#
# Test bed only: the SSH user, its key and sshd exist in the throwaway target container.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
IMAGE=${CELERY_TUNING_IMAGE_AUTH55:-authops/allianceauth55-debian12}
VERSION=${SSH_CHECK_ANSIBLE:-2.21}
WORK=$ROOT/.cache/ssh-check
VENV=$ROOT/.cache/matrix/$VERSION/venv
TARGET=celery-tuning-ssh-target-$$
log() { printf '[ssh-check %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

cleanup() { docker rm -f "$TARGET" >/dev/null 2>&1 || true; }
trap cleanup EXIT

[ -x "$VENV/bin/ansible-playbook" ] || { log "no $VENV (make matrix MATRIX_VERSIONS=$VERSION builds it)"; exit 1; }
docker image inspect "$IMAGE" >/dev/null 2>&1 || { log "no image $IMAGE (scripts/build-auth-image.sh)"; exit 1; }
rm -rf "$WORK" && mkdir -p "$WORK" "$ROOT/.cache/collections/ansible_collections/authops"
ln -sfn "$ROOT" "$ROOT/.cache/collections/ansible_collections/authops/celery_tuning"
ssh-keygen -q -t ed25519 -N '' -f "$WORK/id_ed25519" -C ssh-check

log "starting the stock Auth 5.5 server"
docker run -d --name "$TARGET" --cap-add SYS_ADMIN --cgroupns=host -v /sys/fs/cgroup:/sys/fs/cgroup:rw \
  --tmpfs /run --tmpfs /run/lock "$IMAGE" >/dev/null
for _ in $(seq 1 120); do
  state=$(docker exec "$TARGET" systemctl is-system-running 2>/dev/null || true)
  case $state in running | degraded) break ;; esac
  sleep 1
done
docker cp "$WORK/id_ed25519.pub" "$TARGET:/root/admin.pub"
docker cp "$ROOT/extensions/auth55/smoke.sh" "$TARGET:/root/smoke.sh"
docker exec "$TARGET" bash -euc '
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq openssh-server >/dev/null
  useradd -m -s /bin/bash admin
  install -d -m 0700 -o admin -g admin /home/admin/.ssh
  install -m 0600 -o admin -g admin /root/admin.pub /home/admin/.ssh/authorized_keys
  echo "admin ALL=(ALL) NOPASSWD: ALL" >/etc/sudoers.d/admin && chmod 0440 /etc/sudoers.d/admin
  systemctl enable --now ssh >/dev/null 2>&1
  bash /root/smoke.sh' >"$WORK/target.log" 2>&1 ||
  { tail -n 30 "$WORK/target.log"; log "the target did not come up"; exit 1; }
ip=$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$TARGET")
printf '[auth_servers]\nauth1 ansible_host=%s ansible_user=admin ansible_ssh_private_key_file=%s\n' \
  "$ip" "$WORK/id_ed25519" >"$WORK/inventory.ini"

log "tune.yml twice, rollback.yml, tune.yml again: ansible-core $VERSION on the controller container, SSH as admin with become"
# shellcheck disable=SC2016  # expanded in the controller container
"$ROOT/scripts/controller.sh" --name ssh-check --env "ANSIBLE_COLLECTIONS_PATH=$ROOT/.cache/collections" \
  --env ANSIBLE_HOST_KEY_CHECKING=False --env ANSIBLE_FORCE_COLOR=0 --env "WORK=$WORK" --env "VENV=$VENV" -- bash -euc '
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq openssh-client >/dev/null
  "$VENV/bin/python" --version
  "$VENV/bin/ansible-playbook" --version | head -n 1
  run=0
  for playbook in tune tune rollback tune; do
    run=$((run + 1))
    "$VENV/bin/ansible-playbook" -i "$WORK/inventory.ini" "playbooks/$playbook.yml" >"$WORK/run$run.log" 2>&1 ||
      { tail -n 60 "$WORK/run$run.log"; echo "run $run ($playbook.yml) failed"; exit 1; }
  done' 2>&1 | tee "$WORK/controller.log"

recap1=$(grep -E '^auth1 +:' "$WORK/run1.log")
recap2=$(grep -E '^auth1 +:' "$WORK/run2.log")
log "first run:  $recap1"
log "second run: $recap2"
fail=0
grep -q 'failed=0' <<<"$recap1" || fail=1
grep -q 'changed=0 .*failed=0' <<<"$recap2" || { log "the second run changed something"; fail=1; }
for run in 3 4; do
  log "run $run ($([ $run = 3 ] && echo rollback.yml || echo tune.yml again)): $(grep -E '^auth1 +:' "$WORK/run$run.log" || echo none)"
  grep -Eq '^auth1 +:.*failed=0' "$WORK/run$run.log" || fail=1
done
if grep -h 'does not support Ansible version' "$WORK"/run[1-4].log; then
  log "ansible-core warned that the collection does not support it"
  fail=1
fi
[ $fail -eq 0 ] && log "passed" || log "FAILED (logs in $WORK)"
exit $fail
