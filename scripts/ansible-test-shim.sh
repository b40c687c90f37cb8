#!/usr/bin/env bash
# ansible-test bootstraps pip in its virtual environments with a get-pip.py it downloads from a
# host this machine cannot reach. Put a small stand-in in its cache: ensurepip, then pip itself.
set -euo pipefail
cache=${HOME}/.ansible/test/cache
mkdir -p "$cache"
for version in 24_2 24_0 23_1; do
  cat >"$cache/get_pip_${version}.py" <<'PY'
"""Stand-in for get-pip.py: bootstrap pip with ensurepip, then let pip install what was asked."""
import subprocess
import sys

subprocess.check_call([sys.executable, "-m", "ensurepip", "--upgrade", "--default-pip"])
# get-pip.py's own options mean nothing to pip install.
own = ("--disable-pip-version-check", "--no-setuptools", "--no-wheel")
args = [a for a in sys.argv[1:] if a not in own]
if args:
    subprocess.check_call([sys.executable, "-m", "pip", "install", "--disable-pip-version-check"] + args)
PY
done
