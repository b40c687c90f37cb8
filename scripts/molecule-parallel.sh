#!/usr/bin/env bash
# Run molecule scenarios, MOLECULE_JOBS at a time (default 2): each scenario's containers carry its name
# (extensions/molecule/config.yml), so scenarios do not share instances. Each log goes to
# .cache/molecule/<scenario>.log and is printed whole when the scenario ends; the exit status is 1 when
# any scenario failed, and the failed ones are named at the end.
#   scripts/molecule-parallel.sh SCENARIO[@VERSION]...
# SCENARIO@VERSION runs that scenario with ansible-core VERSION: molecule, ansible-playbook and the
# collections come from the venv scripts/molecule-venv.sh makes (requirements/molecule-ansible-core-VERSION.txt).
# 2.20 and later need Python >= 3.12 on the controller: molecule then runs inside a Debian 13 container
# (scripts/controller.sh: the repository at its own path, the host's docker socket and CLI, host network;
# MOLECULE_*, CELERY_TUNING_IMAGE_* and ANSIBLE_* pass through), and the scenario's instances are the host's
# containers as usual. MATRIX_PYTHON_X_Y=/path/to/python3.13 (or CONTROLLER_PYTHON) runs it here instead.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
LOGS=$ROOT/.cache/molecule
JOBS=${MOLECULE_JOBS:-2}
MOLECULE=${MOLECULE:-molecule}
mkdir -p "$LOGS"

# The oldest ansible-core that needs a controller Python newer than this machine's python3.11.
CONTROLLER_FROM=2.20
# The interpreter of VERSION's molecule venv on this machine (MATRIX_PYTHON_X_Y, CONTROLLER_PYTHON for 2.20
# and later), empty when there is none.
host_python() {
  local var=MATRIX_PYTHON_${1//./_}
  if [ "$(printf '%s\n' "$CONTROLLER_FROM" "$1" | sort -V | head -n 1)" = "$CONTROLLER_FROM" ]; then
    printf '%s' "${!var:-${CONTROLLER_PYTHON:-}}"
  else
    printf '%s' "${!var:-${MATRIX_PYTHON:-python3.11}}"
  fi
}
# Whether VERSION's molecule runs in the controller container.
in_controller() { [ -z "$(host_python "$1")" ]; }

# The name a scenario's log and result go by: SCENARIO, or SCENARIO@VERSION (one scenario may run on two versions).
log_key() { printf '%s' "$1"; }

run_one() {
  local spec=$1 s=${1%@*} v='' start rc venv key
  [ "$spec" != "$s" ] && v=${spec#*@}
  key=$(log_key "$spec")
  start=$(date +%s)
  # The auth55 scenario's instance carries the version, so that two versions of it can run at once.
  if [ -n "$v" ]; then export CELERY_TUNING_AUTH55_INSTANCE="auth55-${v//./}"; fi
  if [ -n "$v" ] && in_controller "$v"; then
    local -a pass=()
    while IFS='=' read -r var _; do
      case $var in MOLECULE_*|CELERY_TUNING_IMAGE_*|CELERY_TUNING_AUTH55_INSTANCE) pass+=(--env "$var") ;; esac
    done < <(env)
    # shellcheck disable=SC2016  # expanded in the container
    "$ROOT/scripts/controller.sh" --docker --name "molecule-$s" "${pass[@]}" --env MOLECULE_VENV_PYTHON=python3 \
      --env "ANSIBLE_COLLECTIONS_PATH=$ROOT/.cache/collections" -- \
      bash -c 'cd "$1" && venv=$(scripts/molecule-venv.sh "$2") && PATH=$venv/bin:$PATH exec molecule test -s "$3"' \
      controller "$ROOT" "$v" "$s" >"$LOGS/$key.log" 2>&1
    rc=$?
  elif [ -n "$v" ]; then
    if venv=$(MOLECULE_VENV_PYTHON=$(host_python "$v") "$ROOT/scripts/molecule-venv.sh" "$v" 2>"$LOGS/$key.log"); then
      PATH=$venv/bin:$PATH "$venv/bin/molecule" test -s "$s" >>"$LOGS/$key.log" 2>&1
      rc=$?
    else
      rc=1
    fi
  else
    "$MOLECULE" test -s "$s" >"$LOGS/$key.log" 2>&1
    rc=$?
  fi
  printf '\n===== molecule scenario %s: %s in %ss (ansible-core %s) =====\n' "$s" \
    "$([ $rc -eq 0 ] && echo passed || echo FAILED)" "$(($(date +%s) - start))" "${v:-of .venv}" >>"$LOGS/$key.log"
  cat "$LOGS/$key.log"
  echo "$rc" >"$LOGS/$key.rc"
}
export -f run_one host_python in_controller log_key
export LOGS MOLECULE ROOT CONTROLLER_FROM

rm -f "$LOGS"/*.rc
# A copy installed by an earlier molecule prerun would shadow the work tree (it comes first on the path).
rm -rf "${HOME:-/root}/.ansible/collections/ansible_collections/authops/celery_tuning"
# The collection as the scenarios find it (ANSIBLE_COLLECTIONS_PATH, extensions/molecule/config.yml), as `make link` makes it.
mkdir -p "$ROOT/.cache/collections/ansible_collections/authops"
ln -sfn "$ROOT" "$ROOT/.cache/collections/ansible_collections/authops/celery_tuning"
printf '%s\n' "$@" | xargs -P "$JOBS" -I{} bash -c 'run_one {}'
failed=()
for spec in "$@"; do
  [ "$(cat "$LOGS/$(log_key "$spec").rc" 2>/dev/null || echo 1)" = 0 ] || failed+=("$spec")
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "molecule: FAILED scenarios: ${failed[*]} (logs in $LOGS)"
  exit 1
fi
echo "molecule: all ${#} scenarios passed"
