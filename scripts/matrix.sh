#!/usr/bin/env bash
# Units and ansible-test sanity on each ansible-core minor version that meta/runtime.yml declares.
#
#   scripts/matrix.sh [VERSION...]      (default: 2.16 2.17 2.18 2.19 2.20 2.21; `make matrix` runs it)
#
# Each version gets its own Python venv: requirements/ansible-core-VERSION.txt is installed into
# .cache/matrix/VERSION/venv, re-created only when that file (or the Python version) changes. A version
# without such a file uses .venv when .venv's ansible-core is of that version (2.19, from requirements/dev.txt).
#
# 2.16 to 2.19 run on this machine's python3.11. 2.20 and later need Python >= 3.12 on the controller: their
# legs run whole (venv, units, sanity on --python 3.13) inside a throwaway Debian 13 container
# (scripts/controller.sh: the repository and $TMPDIR's matrix copies are mounted at their own paths, so
# the cached venvs are the same inside and out). MATRIX_PYTHON_2_21=/path/to/python3.13 (or CONTROLLER_PYTHON
# for every such version) runs that leg on this machine with that interpreter instead.
#
# The work tree is snapshotted once (tracked and untracked, not ignored, files, as `make sanity` copies it)
# and every version tests that same snapshot, in its own copy under $TMPDIR, so that edits made while the
# matrix runs do not mix into it. Each version also gets its own HOME (.cache/matrix/VERSION/home): the
# caches that ansible-test keeps under ~/.ansible/test are keyed by a hash of pip commands that two
# ansible-test versions can share, and two runs creating the same venv at once would break each other.
#
# Environment: MATRIX_JOBS   versions run at once (default 2)
#              MATRIX_PYTHON the interpreter of the venvs of 2.16 to 2.19 (default python3.11; sanity runs
#                            on --python of its version)
#              MATRIX_PYTHON_X_Y, CONTROLLER_PYTHON  see above (2.20 and later)
#              MATRIX_SANITY_ARGS extra arguments for ansible-test sanity
# Logs: .cache/matrix/VERSION/{venv,units,sanity}.log (and controller.log for a container leg). Exit status 1
# when any version failed.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=$ROOT/.cache/matrix
WORK=${MATRIX_WORK:-${TMPDIR:-/tmp}/authops-celery-tuning-matrix}
JOBS=${MATRIX_JOBS:-2}
# The interpreter of the venvs and of ansible-test sanity --python; set per version (python_for).
PYTHON=${MATRIX_PYTHON:-python3.11}
SANITY_PYTHON=3.11
# The oldest ansible-core that needs a newer controller Python than this machine's python3.11.
CONTROLLER_FROM=2.20
REAL_HOME=${HOME:-/root}
read -r -a SANITY_ARGS <<<"${MATRIX_SANITY_ARGS:-}"
declare -A pid_of=()

# Internal: `scripts/matrix.sh --leg VERSION` runs one leg here (what the controller container runs).
leg_only=''
if [ "${1:-}" = --leg ]; then leg_only=${2:?--leg VERSION}; shift 2; fi
if [ $# -gt 0 ]; then versions=("$@"); else versions=(2.16 2.17 2.18 2.19 2.20 2.21); fi

log() { printf '[matrix %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

# Whether VERSION needs a controller Python newer than 3.11 (2.20 and later).
needs_controller() {
  [ "$(printf '%s\n' "$CONTROLLER_FROM" "$1" | sort -V | head -n 1)" = "$CONTROLLER_FROM" ]
}

# The host interpreter that VERSION's leg uses here; empty for a leg that runs in the controller container.
python_for() {
  local v=$1 var=MATRIX_PYTHON_${1//./_}
  if needs_controller "$v"; then
    printf '%s' "${!var:-${CONTROLLER_PYTHON:-}}"
  else
    printf '%s' "${!var:-${MATRIX_PYTHON:-python3.11}}"
  fi
}

# Which venv serves VERSION: prints its path, or fails with a message.
venv_for() {
  local v=$1
  if [ -f "$ROOT/requirements/ansible-core-$v.txt" ]; then
    echo "$CACHE/$v/venv"
  elif [ -x "$ROOT/.venv/bin/python" ] &&
       [ "$("$ROOT/.venv/bin/python" -c 'import ansible.release as r; print(".".join(r.__version__.split(".")[:2]))' 2>/dev/null)" = "$v" ]; then
    echo "$ROOT/.venv"
  else
    echo "no requirements/ansible-core-$v.txt, and .venv's ansible-core is not $v (make venv?)" >&2
    return 1
  fi
}

# Create or reuse the cached venv of VERSION (only for versions with a requirements file).
ensure_venv() {
  local v=$1 venv=$2 req=$ROOT/requirements/ansible-core-$1.txt stamp want
  [ "$venv" = "$ROOT/.venv" ] && return 0
  stamp=$venv/.installed
  want=$({ "$PYTHON" -c 'import sys; print("python", sys.version.split()[0])' && cat "$req"; })
  if [ -f "$stamp" ] && [ "$want" = "$(cat "$stamp")" ] && [ -x "$venv/bin/ansible-test" ]; then
    echo "cached venv $venv"
    return 0
  fi
  echo "creating $venv from $req"
  rm -rf "$venv"
  "$PYTHON" -m venv "$venv" &&
    "$venv/bin/pip" install -q -r "$req" &&
    printf '%s\n' "$want" >"$stamp"
}

# Prepare VERSION's HOME for ansible-test, which runs pip with HOME and PATH only (no PIP_* variables):
#  - pip's user configuration is this machine's (copied), with the download cache shared with the real HOME;
#  - ansible-test bootstraps pip in each venv it makes with a get-pip.py it would download from a host this
#    machine cannot reach, cached as ~/.ansible/test/cache/get_pip_<pip version>.py. Like
#    scripts/ansible-test-shim.sh (whose names cover pip 24.2 for 2.18 and 2.19, not the 23.1.2 of 2.16 and
#    2.17), put a stand-in there, under the name this ansible-test asks for. This one has the version's own
#    venv's pip install into the new venv (pip --python), which costs half of ensurepip-then-pip; it falls
#    back to ensurepip.
prepare_home() {
  local venv=$1 home=$2 pipv cache want
  mkdir -p "$home/.config/pip"
  # ansible-test's own venvs (~/.ansible/test/venv) link to the interpreter that made them: one made in the
  # container is no use on this machine (MATRIX_PYTHON_X_Y) and the other way round. Start afresh on a change.
  want=$("$PYTHON" -c 'import os, sys; print(os.path.realpath(sys.executable), sys.version.split()[0])') || return 1
  if [ "$want" != "$(cat "$home/.interpreter" 2>/dev/null)" ]; then
    rm -rf "$home/.ansible/test/venv"
    printf '%s\n' "$want" >"$home/.interpreter"
  fi
  "$PYTHON" - "$REAL_HOME" "$home/.config/pip/pip.conf" "${PIP_CACHE_DIR:-}" <<'PY' || return 1
import configparser
import os
import sys

real, out, cache = sys.argv[1:]
conf = configparser.RawConfigParser()
conf.read([os.path.join(real, ".pip", "pip.conf"),
           os.path.join(os.environ.get("XDG_CONFIG_HOME") or os.path.join(real, ".config"), "pip", "pip.conf")])
if not conf.has_section("global"):
    conf.add_section("global")
if not conf.has_option("global", "cache-dir"):
    conf.set("global", "cache-dir", cache or os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.join(real, ".cache"), "pip"))
with open(out, "w") as handle:
    conf.write(handle)
PY
  pipv=$("$venv/bin/python" -c '
import types
from ansible_test._internal.python_requirements import get_venv_packages
print(get_venv_packages(types.SimpleNamespace(version="'"$SANITY_PYTHON"'"))["pip"])') || return 1
  cache=$home/.ansible/test/cache
  mkdir -p "$cache"
  sed "s|@OUTER@|$venv/bin/python|" >"$cache/get_pip_${pipv//./_}.py" <<'PY'
"""Stand-in for get-pip.py (written by scripts/matrix.sh): install what was asked with another venv's pip."""
import os
import subprocess
import sys

OUTER = "@OUTER@"
# get-pip.py's own options mean nothing to pip install.
OWN = ("--disable-pip-version-check", "--no-setuptools", "--no-wheel")
args = [a for a in sys.argv[1:] if a not in OWN] or ["pip"]
if os.path.exists(OUTER):
    if subprocess.call([OUTER, "-m", "pip", "--python", sys.executable, "install", "--disable-pip-version-check"] + args) == 0:
        sys.exit(0)
subprocess.check_call([sys.executable, "-m", "ensurepip", "--upgrade", "--default-pip"])
subprocess.check_call([sys.executable, "-m", "pip", "install", "--disable-pip-version-check"] + args)
PY
  echo "get-pip stand-in for pip $pipv: $cache/get_pip_${pipv//./_}.py"
}

# One version: venv, a copy of the snapshot, units, sanity. Writes .cache/matrix/VERSION/result.
run_leg() {
  local v=$1 dir=$CACHE/$1 start
  mkdir -p "$dir"
  rm -f "$dir/result" "$dir/controller.log"
  PYTHON=$(python_for "$v")
  if [ -z "$PYTHON" ]; then
    # The whole leg in a Debian 13 container; it writes the same logs and result, through the mounts.
    start=$(date +%s)
    "$ROOT/scripts/controller.sh" --name "matrix-$v" --mount "$WORK" --env "MATRIX_WORK=$WORK" \
      --env "MATRIX_LEG_PYTHON=python3" --env MATRIX_IN_CONTROLLER=1 --env MATRIX_SANITY_ARGS -- "$ROOT/scripts/matrix.sh" --leg "$v" \
      >"$dir/controller.log" 2>&1
    [ -f "$dir/result" ] ||
      echo "version=$v controller=FAIL venv=SKIP units=SKIP sanity=SKIP seconds=$(($(date +%s) - start))" \
           "(.cache/matrix/$v/controller.log)" >"$dir/result"
    return
  fi
  run_leg_here "$v"
}

run_leg_here() {
  local v=$1 dir=$CACHE/$1 venv home base tree start t units=FAIL sanity=FAIL have tv tu ts
  mkdir -p "$dir"
  rm -f "$dir/result"
  start=$(date +%s)
  SANITY_PYTHON=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])') || {
    echo "version=$v venv=FAIL units=SKIP sanity=SKIP seconds=0 (no interpreter $PYTHON)" >"$dir/result"
    return
  }
  home=$dir/home
  base=$WORK/$v
  tree=$base/ansible_collections/authops/celery_tuning
  mkdir -p "$home"
  {
    venv=$(venv_for "$v") && ensure_venv "$v" "$venv" && prepare_home "$venv" "$home"
  } >"$dir/venv.log" 2>&1 || {
    echo "version=$v venv=FAIL units=SKIP sanity=SKIP seconds=$(($(date +%s) - start))" >"$dir/result"
    return
  }
  tv=$(($(date +%s) - start))
  have=$("$venv/bin/python" -c 'import ansible.release as r; print(r.__version__)')
  case $have in
    "$v".*) ;;
    *) echo "$venv has ansible-core $have, not $v" >>"$dir/venv.log"
       echo "version=$v venv=FAIL units=SKIP sanity=SKIP seconds=$(($(date +%s) - start))" >"$dir/result"
       return ;;
  esac
  rm -rf "$base" && mkdir -p "$tree" && tar -x -f "$WORK/snapshot.tar" -C "$tree"

  # Everything the tests start resolves to this version: its venv first on PATH, the snapshot as the
  # collection (not the live tree that .cache/collections links to), its own HOME for ansible-test's caches.
  local -a env=(env "HOME=$home" "PATH=$venv/bin:$PATH" "PYTHONPATH=$base" "ANSIBLE_COLLECTIONS_PATH=$base")
  t=$(date +%s)
  if (cd "$tree" && "${env[@]}" "$venv/bin/python" -m pytest -q -p no:cacheprovider tests/unit) >"$dir/units.log" 2>&1
  then units=PASS; fi
  tu=$(($(date +%s) - t))
  t=$(date +%s)
  if (cd "$tree" && "${env[@]}" "$venv/bin/ansible-test" sanity --venv --python "$SANITY_PYTHON" --color no \
        "${SANITY_ARGS[@]}") >"$dir/sanity.log" 2>&1
  then sanity=PASS; fi
  ts=$(($(date +%s) - t))
  echo "version=$v ansible-core=$have python=$SANITY_PYTHON${MATRIX_IN_CONTROLLER:+ (container)} venv=PASS units=$units sanity=$sanity seconds=$(($(date +%s) - start))" \
       "(venv ${tv}s, units ${tu}s, sanity ${ts}s)" >"$dir/result"
}

report_leg() {
  local v=$1 dir=$CACHE/$1 line
  line=$(cat "$dir/result" 2>/dev/null || echo "version=$v result=MISSING")
  log "$v: ${line#version="$v" }"
  case $line in
    *controller=FAIL*) sed 's/^/    controller| /' "$dir/controller.log" | tail -n 30 ;;
    *venv=FAIL*) sed 's/^/    venv| /' "$dir/venv.log" | tail -n 30 ;;
  esac
  if [ -f "$dir/units.log" ]; then
    case $line in
      *units=FAIL*) grep -E '^(FAILED|ERROR)|Error|error' "$dir/units.log" | head -n 40 | sed 's/^/    units| /' ;;
    esac
    # pytest's closing line, as it printed it
    grep -E '[0-9]+ (passed|failed|error)|no tests ran' "$dir/units.log" | tail -n 1 | sed "s/^/    units $v| /"
  fi
  case $line in
    *sanity=FAIL*) grep -E '^(ERROR|FATAL)' "$dir/sanity.log" | head -n 60 | sed 's/^/    sanity| /' ;;
  esac
}

stop_all() {
  local p
  for p in "${pid_of[@]}"; do kill -TERM -- "-$p" 2>/dev/null; done
  log "interrupted by SIG$1"
  exit 130
}

main() {
  local v start rc=0 need_image=false
  start=$(date +%s)
  mkdir -p "$CACHE" "$WORK"
  # The copies under $WORK are shared by every checkout on this machine: one matrix run at a time.
  exec 9>"$WORK/.lock"
  if ! flock -n 9; then
    log "waiting for another matrix run (lock $WORK/.lock)"
    flock 9
  fi
  for v in "${versions[@]}"; do
    venv_for "$v" >/dev/null || exit 1
    [ -n "$(python_for "$v")" ] || need_image=true
  done
  if $need_image && ! docker image inspect "${CELERY_TUNING_IMAGE_DEBIAN13:-authops/debian13-systemd}" >/dev/null 2>&1; then
    log "the legs of ansible-core >= $CONTROLLER_FROM run in ${CELERY_TUNING_IMAGE_DEBIAN13:-authops/debian13-systemd}, which does not exist:" \
        "scripts/ensure-docker.sh && scripts/build-images.sh debian13 (or MATRIX_PYTHON_X_Y / CONTROLLER_PYTHON)"
    exit 1
  fi
  # One snapshot for every version, taken as `make sanity` copies the tree.
  (cd "$ROOT" && git ls-files -z --cached --others --exclude-standard |
     tar -c --null --ignore-failed-read -T - -f "$WORK/snapshot.tar" 2>/dev/null)
  log "snapshot of $(cd "$ROOT" && git rev-parse --short HEAD)$(cd "$ROOT" && [ -z "$(git status --porcelain --untracked-files=normal)" ] || echo ' plus uncommitted changes'); versions: ${versions[*]}; $JOBS at once"

  # Newest first: their sanity takes longest (newer pylint), so the older ones fill in beside them.
  local -a queue
  mapfile -t queue < <(printf '%s\n' "${versions[@]}" | sort -rV)
  # Each version in a process group of its own (set -m), so that an interrupt stops all that it started.
  set -m
  trap 'stop_all INT' INT
  trap 'stop_all TERM' TERM
  trap 'stop_all HUP' HUP
  while [ ${#queue[@]} -gt 0 ] || [ ${#pid_of[@]} -gt 0 ]; do
    while [ ${#queue[@]} -gt 0 ] && [ ${#pid_of[@]} -lt "$JOBS" ]; do
      v=${queue[0]}; queue=("${queue[@]:1}")
      run_leg "$v" &
      pid_of[$v]=$!
      log "$v: started (logs in .cache/matrix/$v/)"
    done
    wait -n 2>/dev/null || true
    for v in "${!pid_of[@]}"; do
      if ! kill -0 "${pid_of[$v]}" 2>/dev/null; then
        wait "${pid_of[$v]}" 2>/dev/null
        unset "pid_of[$v]"
        report_leg "$v"
      fi
    done
  done

  log "summary ($(($(date +%s) - start)) s wall):"
  for v in "${versions[@]}"; do
    line=$(cat "$CACHE/$v/result" 2>/dev/null || echo "version=$v result=MISSING")
    printf '  %s\n' "$line"
    case $line in *FAIL*|*MISSING*) rc=1 ;; esac
  done
  if [ $rc -eq 0 ]; then
    log "all versions passed"
  else
    log "FAILED: see the lines above and .cache/matrix/VERSION/*.log"
  fi
  return $rc
}

if [ -n "$leg_only" ]; then
  PYTHON=${MATRIX_LEG_PYTHON:-python3}
  run_leg_here "$leg_only"
  exit 0
fi
main
