#!/usr/bin/env bash
# Create or reuse the molecule venv of another ansible-core: requirements/molecule-ansible-core-VERSION.txt
# into .cache/matrix/VERSION/molecule, re-created only when that file (or the Python version) changes.
# Prints nothing on success but the venv's path on stdout.
#   scripts/molecule-venv.sh VERSION
# The interpreter: MOLECULE_VENV_PYTHON, else MATRIX_PYTHON, else python3.11. For 2.20 and later (Python
# >= 3.12) scripts/molecule-parallel.sh runs this inside the Debian 13 controller container with python3.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
v=${1:?usage: scripts/molecule-venv.sh VERSION}
req=$ROOT/requirements/molecule-ansible-core-$v.txt
venv=$ROOT/.cache/matrix/$v/molecule
PYTHON=${MOLECULE_VENV_PYTHON:-${MATRIX_PYTHON:-python3.11}}
[ -f "$req" ] || { echo "molecule-venv: no $req" >&2; exit 1; }
want=$({ "$PYTHON" -c 'import sys; print("python", sys.version.split()[0])' && cat "$req"; })
if ! { [ -f "$venv/.installed" ] && [ "$want" = "$(cat "$venv/.installed")" ] && [ -x "$venv/bin/molecule" ]; }; then
  echo "molecule-venv: creating $venv from $req" >&2
  rm -rf "$venv"
  "$PYTHON" -m venv "$venv"
  "$venv/bin/pip" install -q -r "$req" >&2
  printf '%s\n' "$want" >"$venv/.installed"
fi
echo "$venv"
