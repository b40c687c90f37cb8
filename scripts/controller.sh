#!/usr/bin/env bash
# Run a command on a Python 3.13 controller: a throwaway Debian 13 container (the systemd base image that
# scripts/build-images.sh debian13 builds, CELERY_TUNING_IMAGE_DEBIAN13 overrides its name). ansible-core
# 2.20 and later need Python >= 3.12 on the controller, and Debian 12's python3 is 3.11.
#
#   scripts/controller.sh [--name NAME] [--docker] [--mount DIR]... [--env VAR]... -- COMMAND [ARG...]
#
# The repository is bind-mounted at its own absolute path (venvs made inside, with their absolute
# shebangs, stay valid outside and the other way round) and COMMAND starts in the current directory
# (which must be under the repository or a --mount). Also mounted at their own paths: each --mount DIR,
# and pip's download cache (PIP_CACHE_DIR or ~/.cache/pip), shared with the host. The host's pip
# configuration is not: its local package indexes do not exist in the container, which reaches PyPI
# directly (--network host). --docker adds what a molecule run needs: the host's docker socket and its
# docker CLI (read-only). --env VAR passes VAR from this environment (also VAR=VALUE); HOME, PATH,
# TERM, TZ, ANSIBLE_* and PIP_{DEFAULT_TIMEOUT,RETRIES,DISABLE_PIP_VERSION_CHECK} always pass.
# The container runs as the calling user, under docker's init; it is removed when COMMAND ends (--rm), and
# also when this script is interrupted or killed by a signal (trap). The exit status is COMMAND's.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
IMAGE=${CELERY_TUNING_IMAGE_DEBIAN13:-authops/debian13-systemd}
name=celery-tuning-controller-$$
docker_access=false
mounts=("$ROOT")
passenv=()
while [ $# -gt 0 ]; do
  case $1 in
    --name) name=celery-tuning-controller-$2-$$; shift 2 ;;
    --docker) docker_access=true; shift ;;
    --mount) mounts+=("$2"); shift 2 ;;
    --env) passenv+=("$2"); shift 2 ;;
    --) shift; break ;;
    *) echo "controller.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
[ $# -gt 0 ] || { echo "usage: scripts/controller.sh [--name NAME] [--docker] [--mount DIR]... [--env VAR]... -- COMMAND..." >&2; exit 2; }

if ! docker image inspect "$IMAGE" >/dev/null 2>&1; then
  echo "controller.sh: no image $IMAGE (scripts/ensure-docker.sh && scripts/build-images.sh debian13)" >&2
  exit 1
fi

args=(run --rm --init --name "$name" --network host --user "$(id -u):$(id -g)" -w "$PWD"
      --label authops.celery_tuning.controller=1)
pipcache=${PIP_CACHE_DIR:-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/pip}
mkdir -p "$pipcache"
mounts+=("$pipcache")
for m in "${mounts[@]}"; do
  mkdir -p "$m"
  m=$(cd "$m" && pwd -P)
  args+=(-v "$m:$m")
done
# HOME as the caller has it; a HOME that is not mounted is a fresh, empty directory of the container.
args+=(-e "HOME=${HOME:-/root}" -e "PIP_CACHE_DIR=$pipcache"
       -e "PATH=${CONTROLLER_PATH:-/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin}")
for var in TERM TZ PIP_DEFAULT_TIMEOUT PIP_RETRIES PIP_DISABLE_PIP_VERSION_CHECK; do
  [ -n "${!var:-}" ] && args+=(-e "$var")
done
while IFS='=' read -r var _; do
  case $var in ANSIBLE_*) args+=(-e "$var") ;; esac
done < <(env)
for var in "${passenv[@]}"; do args+=(-e "$var"); done
if $docker_access; then
  sock=/var/run/docker.sock
  args+=(-v "$sock:$sock" -v "$(command -v docker):/usr/bin/docker:ro"
         --group-add "$(stat -c %g "$(readlink -f "$sock")")")
fi

cleanup() { docker rm -f "$name" >/dev/null 2>&1 || true; }
on_signal() {
  trap - INT TERM HUP
  cleanup
  kill "$client" 2>/dev/null || true
  exit "$1"
}
trap cleanup EXIT
trap 'on_signal 130' INT
trap 'on_signal 143' TERM
trap 'on_signal 129' HUP
# In the background, so that a signal reaches the trap at once and not when the container ends.
docker "${args[@]}" "$IMAGE" "$@" </dev/null &
client=$!
set +e
wait "$client"
rc=$?
# wait returns early (>128) when a trapped signal arrives; on_signal has exited by then.
exit "$rc"
