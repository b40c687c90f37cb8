#!/usr/bin/env bash
# Run molecule scenarios, MOLECULE_JOBS at a time (default 2): each scenario's containers carry its name
# (extensions/molecule/config.yml), so scenarios do not share instances. Each log goes to
# .cache/molecule/<scenario>.log and is printed whole when the scenario ends; the exit status is 1 when
# any scenario failed, and the failed ones are named at the end.
#   scripts/molecule-parallel.sh SCENARIO[@VERSION]...
# SCENARIO@VERSION runs that scenario with ansible-core VERSION: molecule, ansible-playbook and the
# collections come from the venv scripts/molecule-venv.sh makes (requirements/molecule-ansible-core-VERSION.txt).
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
LOGS=$ROOT/.cache/molecule
JOBS=${MOLECULE_JOBS:-2}
MOLECULE=${MOLECULE:-molecule}
mkdir -p "$LOGS"

run_one() {
  local spec=$1 s=${1%@*} v='' start rc venv
  [ "$spec" != "$s" ] && v=${spec#*@}
  start=$(date +%s)
  if [ -n "$v" ]; then
    if venv=$("$ROOT/scripts/molecule-venv.sh" "$v" 2>"$LOGS/$s.log"); then
      PATH=$venv/bin:$PATH "$venv/bin/molecule" test -s "$s" >>"$LOGS/$s.log" 2>&1
      rc=$?
    else
      rc=1
    fi
  else
    "$MOLECULE" test -s "$s" >"$LOGS/$s.log" 2>&1
    rc=$?
  fi
  printf '\n===== molecule scenario %s: %s in %ss (ansible-core %s) =====\n' "$s" \
    "$([ $rc -eq 0 ] && echo passed || echo FAILED)" "$(($(date +%s) - start))" "${v:-of .venv}" >>"$LOGS/$s.log"
  cat "$LOGS/$s.log"
  echo "$rc" >"$LOGS/$s.rc"
}
export -f run_one
export LOGS MOLECULE ROOT

rm -f "$LOGS"/*.rc
# A copy installed by an earlier molecule prerun would shadow the work tree (it comes first on the path).
rm -rf "${HOME:-/root}/.ansible/collections/ansible_collections/authops/celery_tuning"
printf '%s\n' "$@" | xargs -P "$JOBS" -I{} bash -c 'run_one {}'
failed=()
for spec in "$@"; do
  s=${spec%@*}
  [ "$(cat "$LOGS/$s.rc" 2>/dev/null || echo 1)" = 0 ] || failed+=("$spec")
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "molecule: FAILED scenarios: ${failed[*]} (logs in $LOGS)"
  exit 1
fi
echo "molecule: all ${#} scenarios passed"
