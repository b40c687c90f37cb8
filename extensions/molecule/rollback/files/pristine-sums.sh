#!/bin/sh
# Print a fingerprint of what rollback.yml must put back: /etc/supervisor, /etc/systemd/system, the memmon
# venv's place (paths, link targets, modes, owners, file contents) and the target of Auth's link.
set -eu
for root in /etc/supervisor /etc/systemd/system /opt/authops-celery-tuning; do
  [ -e "$root" ] || { echo "absent $root"; continue; }
  find "$root" -xdev -printf '%p %y %l %m %u %g\n' | LC_ALL=C sort
  find "$root" -xdev -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum
done
echo "link $(readlink /etc/supervisor/conf.d/myauth.conf || echo none)"
