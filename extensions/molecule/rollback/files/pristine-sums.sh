#!/bin/sh
# Print a fingerprint of what rollback.yml must put back: supervisor's configuration, /etc/systemd/system, the
# memmon venv's place (paths, link targets, modes, owners, file contents) and the target of Auth's link.
#   pristine-sums.sh [LINK [ROOT...]]   (default: Debian's layout)
set -eu
link=${1:-/etc/supervisor/conf.d/myauth.conf}
[ $# -gt 0 ] && shift
[ $# -gt 0 ] || set -- /etc/supervisor /etc/systemd/system /opt/authops-celery-tuning
for root in "$@"; do
  [ -e "$root" ] || { echo "absent $root"; continue; }
  find "$root" -xdev -printf '%p %y %l %m %u %g\n' | LC_ALL=C sort
  find "$root" -xdev -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum
done
echo "link $(readlink "$link" || echo none)"
