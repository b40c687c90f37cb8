#!/bin/sh
# Print a fingerprint of everything a run may change: /etc/supervisor, the Auth venv, the systemd
# drop-ins and the memmon venv (paths, link targets, modes, owners and file contents).
set -eu
for root in /etc/supervisor /home/allianceserver/venv/auth /etc/systemd/system /opt/authops-celery-tuning; do
  [ -e "$root" ] || { echo "absent $root"; continue; }
  find "$root" -xdev -printf '%p %y %l %m %u %g\n' | LC_ALL=C sort
  find "$root" -xdev -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
done
