#!/usr/bin/env bash
# Build a local Docker image of a REAL, stock Alliance Auth 5.5 server on Debian 12 (MariaDB,
# Redis, supervisor, gunicorn, Auth's own generated supervisor.conf), installed the way Auth's
# install guide does it, plus the test-bed-only `authops_probe` task app. Used by molecule
# scenarios and the benchmark. No registry needed: it starts from the locally built systemd base
# image, runs extensions/auth55/install.sh in a booted container and commits the result.
#
# Usage:
#   scripts/build-auth-image.sh            build unless the image exists (warns when stale)
#   scripts/build-auth-image.sh --force    rebuild even if the image exists
#   scripts/build-auth-image.sh --smoke    check the image: start a container from it, run
#                                          extensions/auth55/smoke.sh inside, remove it
# Environment:
#   AUTH_VERSION                   allianceauth version (default 5.5.0; 4.13.1 for the auth4 scenario)
#   CELERY_TUNING_IMAGE_AUTH55     image of Auth 5.5.0 (default authops/allianceauth55-debian12)
#   CELERY_TUNING_IMAGE_AUTH4      image of Auth 4.x (default authops/allianceauth4-debian12), built when
#                                  AUTH_VERSION is 4.*
#   CELERY_TUNING_IMAGE_DEBIAN12   base image (default authops/debian12-systemd; built with
#                                  scripts/build-images.sh debian12 when missing)
#   CELERY_TUNING_IMAGE_WORKDIR    where the install log goes (default /var/tmp/celery-tuning-images)
# Containers need systemd: these run flags work here (--privileged does not):
#   --cap-add SYS_ADMIN --cgroupns=host -v /sys/fs/cgroup:/sys/fs/cgroup:rw --tmpfs /run --tmpfs /run/lock
# The build rewrites extensions/auth55/versions.txt (versions-4.x.txt for Auth 4) from the image's `pip freeze`.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
EXT=$ROOT/extensions/auth55
AUTH_VERSION=${AUTH_VERSION:-5.5.0}
case "$AUTH_VERSION" in
  4.*) IMAGE=${CELERY_TUNING_IMAGE_AUTH4:-authops/allianceauth4-debian12} VERSIONS=$EXT/versions-4.x.txt ;;
  *) IMAGE=${CELERY_TUNING_IMAGE_AUTH55:-authops/allianceauth55-debian12} VERSIONS=$EXT/versions.txt ;;
esac
BASE=${CELERY_TUNING_IMAGE_DEBIAN12:-authops/debian12-systemd}
WORK=${CELERY_TUNING_IMAGE_WORKDIR:-/var/tmp/celery-tuning-images}
RUN_FLAGS=(--cap-add SYS_ADMIN --cgroupns=host -v /sys/fs/cgroup:/sys/fs/cgroup:rw
  --tmpfs /run --tmpfs /run/lock)
LABEL=org.authops.auth55.source

log() { printf 'build-auth-image: %s\n' "$*" >&2; }

# Hash of what goes into the image (not smoke.sh, versions.txt, README), to spot a stale image.
source_hash() {
  (cd "$EXT" && find install.sh authops_probe -type f -name '*.py' -o -type f -name '*.sh' |
    grep -v __pycache__ | LC_ALL=C sort | xargs sha256sum; echo "AUTH_VERSION=$AUTH_VERSION") |
    sha256sum | cut -c1-16
}

CONTAINER=
cleanup() {
  if [ -n "$CONTAINER" ]; then
    docker rm -f "$CONTAINER" >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT

start_container() {  # image name-prefix
  local state=
  CONTAINER=$(docker run -d --name "$2-$$" "${RUN_FLAGS[@]}" "$1")
  # Until systemd has finished booting (its bus appears only after a moment, so poll).
  for _ in $(seq 1 120); do
    state=$(docker exec "$CONTAINER" systemctl is-system-running 2>/dev/null || true)
    case "$state" in running | degraded) return 0 ;; esac
    sleep 1
  done
  log "systemd in $CONTAINER did not finish booting in 120 s (state: ${state:-no bus})"
  exit 1
}

# systemd's own clean shutdown for containers (SIGRTMIN+3), then wait for the container to exit.
stop_container() {
  docker kill -s RTMIN+3 "$CONTAINER" >/dev/null
  if ! timeout 120 docker wait "$CONTAINER" >/dev/null; then
    log "systemd did not halt within 120 s; docker stop"
    docker stop -t 30 "$CONTAINER" >/dev/null
  fi
}

smoke() {
  docker image inspect "$IMAGE" >/dev/null 2>&1 || { log "no image $IMAGE: build it first"; exit 1; }
  start_container "$IMAGE" authops-auth55-smoke
  docker cp "$EXT/smoke.sh" "$CONTAINER:/root/smoke.sh"
  docker exec "$CONTAINER" bash /root/smoke.sh
}

build() {
  local force=$1 hash old started logfile previous freeze
  hash=$(source_hash)
  if [ "$force" = no ] && docker image inspect "$IMAGE" >/dev/null 2>&1; then
    old=$(docker image inspect -f "{{ index .Config.Labels \"$LABEL\" }}" "$IMAGE" 2>/dev/null || true)
    if [ "$old" = "$hash" ]; then
      log "$IMAGE exists, skipping"
    else
      log "$IMAGE exists but was built from other sources ($old, now $hash): rerun with --force"
    fi
    return
  fi
  if ! docker image inspect "$BASE" >/dev/null 2>&1; then
    log "base image $BASE missing: building it"
    CELERY_TUNING_IMAGE_DEBIAN12=$BASE "$ROOT/scripts/build-images.sh" debian12
  fi
  previous=$(docker image inspect -f '{{.Id}}' "$IMAGE" 2>/dev/null || true)
  mkdir -p "$WORK"
  logfile=$WORK/auth-$AUTH_VERSION-install.log
  started=$SECONDS
  log "starting a $BASE container"
  start_container "$BASE" authops-auth55-build
  docker cp "$EXT" "$CONTAINER:/opt/authops-auth55"
  # The one ESI stub of the test bed (the stand-in's), for the probe's esi_db task.
  docker cp "$ROOT/extensions/standin/esi_stub.py" "$CONTAINER:/opt/authops-auth55/esi_stub.py"
  log "installing Alliance Auth $AUTH_VERSION (log: $logfile; takes several minutes)"
  if ! docker exec -e "AUTH_VERSION=$AUTH_VERSION" "$CONTAINER" \
    bash /opt/authops-auth55/install.sh >"$logfile" 2>&1; then
    log "install failed; last lines of $logfile:"
    tail -n 60 "$logfile" >&2
    exit 1
  fi
  freeze=$(docker exec "$CONTAINER" cat /opt/authops-auth55/pip-freeze.txt)
  {
    echo "# Resolved in $IMAGE by scripts/build-auth-image.sh (rewritten at each build)."
    echo "# pip install allianceauth==$AUTH_VERSION superlance gunicorn; nothing else pinned."
    echo "# key: $(grep -iE '^(celery|kombu|mysqlclient|django|gunicorn|superlance)==' <<<"$freeze" | paste -sd ' ')"
    echo "# debian: $(docker exec "$CONTAINER" dpkg-query -W -f '${Package}=${Version} ' \
      python3 mariadb-server redis-server supervisor | sed "s/ *$//")"
    echo "# pip freeze of /home/allianceserver/venv/auth:"
    printf '%s\n' "$freeze"
  } >"$VERSIONS"
  log "stopping the container cleanly"
  stop_container
  docker commit --change 'CMD ["/lib/systemd/systemd"]' --change "LABEL $LABEL=$hash" \
    "$CONTAINER" "$IMAGE" >/dev/null
  if [ -n "$previous" ] && [ "$previous" != "$(docker image inspect -f '{{.Id}}' "$IMAGE")" ]; then
    docker image rm "$previous" >/dev/null 2>&1 || log "the replaced image $previous is still in use"
  fi
  log "$IMAGE built in $((SECONDS - started)) s ($(docker image inspect -f '{{.Size}}' "$IMAGE" |
    awk '{printf "%.0f MB", $1 / 1e6}'))"
}

case "${1:-}" in
  "") build no ;;
  --force) build yes ;;
  --smoke) smoke ;;
  *) log "usage: $0 [--force|--smoke]"; exit 2 ;;
esac
