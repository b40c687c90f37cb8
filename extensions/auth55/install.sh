#!/usr/bin/env bash
# Install a stock Alliance Auth 5.5 (or 4.x: AUTH_VERSION) the way Auth's install guide ("Alliance Auth installation",
# Auth 5.x docs) does it, with no tuning, inside a running Debian 12 systemd container.
# Run as root by scripts/build-auth-image.sh (which copies this folder to /opt/authops-auth55):
#   bash /opt/authops-auth55/install.sh
# Environment (all optional):
#   AUTH_VERSION  allianceauth version to pip install (default 5.5.0)
#   AUTH_DB_PASSWORD  password of the MariaDB user allianceserver@localhost (default: random,
#                 kept only in local.py, as in the guide)
# Idempotent: a second run re-applies every step without creating anything twice.
#
# Deviations from the guide, all forced by the container or the distribution:
#   * Debian 12 instead of Ubuntu: Debian's packages (default-libmysqlclient-dev, MariaDB 10.11
#     and Python 3.11 from the distribution, no PPA or MariaDB repository).
#   * systemd drop-ins with PrivateUsers=false for redis-server (and mariadb when its unit asks
#     for user namespaces): containers here cannot create user namespaces.
#   * mysql_secure_installation (interactive) is not run: Debian's MariaDB already has
#     unix-socket-only root and no anonymous users or test database.
#   * The guide's `supervisorctl reload` happens at the image's first boot (supervisor enabled).
#   * Test bed only, after the stock install and clearly marked: the authops_probe app and one
#     INSTALLED_APPS line in local.py.
set -euo pipefail

AUTH_VERSION=${AUTH_VERSION:-5.5.0}
SRC=$(cd "$(dirname "$0")" && pwd)
AA_USER=allianceserver
AA_HOME=/home/allianceserver
VENV=$AA_HOME/venv/auth
PROJECT=$AA_HOME/myauth
LOCAL_PY=$PROJECT/myauth/settings/local.py
STATIC=/var/www/myauth/static
export DEBIAN_FRONTEND=noninteractive

step() { printf '\n==> [%4ss] %s\n' "$SECONDS" "$*"; }
# The guide works as allianceserver (`sudo su allianceserver`) with the venv activated.
as_aa() { su "$AA_USER" -s /bin/bash -c "cd ~ && source $VENV/bin/activate 2>/dev/null; $1"; }

step "waiting for systemd"
for _ in $(seq 1 120); do  # is-system-running --wait fails at once while the bus is not up yet
  state=$(systemctl is-system-running 2>/dev/null || true)
  case "$state" in running | degraded) break ;; esac
  sleep 1
done
echo "system state: ${state:-no bus}"

step "container drop-ins (before the packages: their postinst starts the services)"
mkdir -p /etc/systemd/system/redis-server.service.d
printf '[Service]\nPrivateUsers=false\n' >/etc/systemd/system/redis-server.service.d/container.conf
systemctl daemon-reload

step "OS packages (guide: OS maintenance, database, redis and other tools, supervisor)"
apt-get update -q
apt-get upgrade -y -q
apt-get install -y -q default-libmysqlclient-dev pkg-config build-essential python3-dev \
  python3-venv mariadb-server redis-server supervisor curl

# MariaDB's unit: add the same drop-in only if it asks for user namespaces.
if systemctl cat mariadb.service | grep -Eq '^PrivateUsers=(true|yes|1)'; then
  mkdir -p /etc/systemd/system/mariadb.service.d
  printf '[Service]\nPrivateUsers=false\n' >/etc/systemd/system/mariadb.service.d/container.conf
  systemctl daemon-reload
fi
systemctl enable --now redis-server mariadb supervisor
systemctl is-active redis-server mariadb supervisor
redis-cli ping

step "database (guide: Database Setup)"
if [ -z "${AUTH_DB_PASSWORD:-}" ] && [ -f "$LOCAL_PY" ]; then
  # keep the password of an earlier run
  AUTH_DB_PASSWORD=$(sed -n "s/^    'PASSWORD': '\(.*\)',$/\1/p" "$LOCAL_PY" | head -n 1)
fi
AUTH_DB_PASSWORD=${AUTH_DB_PASSWORD:-$(python3 -c 'import secrets; print(secrets.token_urlsafe(18))')}
mysql -u root <<SQL
CREATE USER IF NOT EXISTS 'allianceserver'@'localhost' IDENTIFIED BY '${AUTH_DB_PASSWORD}';
ALTER USER 'allianceserver'@'localhost' IDENTIFIED BY '${AUTH_DB_PASSWORD}';
CREATE DATABASE IF NOT EXISTS alliance_auth CHARACTER SET utf8mb4;
GRANT ALL PRIVILEGES ON alliance_auth . * TO 'allianceserver'@'localhost';
SQL
if [ -d /usr/share/zoneinfo ]; then
  # guide: add timezone tables (it warns that some errors here are harmless)
  mysql_tzinfo_to_sql /usr/share/zoneinfo 2>/dev/null | mysql -u root mysql
else
  echo "no /usr/share/zoneinfo: timezone tables skipped"
fi

step "user and directories (guide: User Account, Prepare Directories)"
id "$AA_USER" >/dev/null 2>&1 || adduser --disabled-login --gecos '' "$AA_USER"
mkdir -p "$STATIC"
chown -R "$AA_USER:$AA_USER" "$STATIC"

step "virtual environment and packages (guide: Virtual Environment, Install Python packages)"
# Created by allianceserver, so the venv belongs to allianceserver, as in the guide.
[ -x "$VENV/bin/python" ] || as_aa "python3 -m venv $VENV/"
as_aa "pip install -q -U pip setuptools wheel"
as_aa "pip install -q allianceauth==$AUTH_VERSION superlance gunicorn"
as_aa "pip freeze" >"$SRC/pip-freeze.txt"

step "project (guide: Create the Alliance Auth project)"
# The venv is active (VIRTUAL_ENV, bin on PATH): `start` writes the paths of celery, gunicorn and
# memmon it finds on PATH into supervisor.conf.
[ -f "$PROJECT/manage.py" ] || as_aa "cd $AA_HOME && allianceauth start myauth"

step "settings (guide: Update settings)"
AUTH_DB_PASSWORD=$AUTH_DB_PASSWORD python3 - "$LOCAL_PY" <<'PY'
import os, re, sys
path = sys.argv[1]
text = open(path, encoding="utf-8").read()
def put(pattern, line):
    global text
    text, n = re.subn(pattern, lambda m: line, text, count=1, flags=re.M)
    if n != 1:
        sys.exit(f"local.py: no line matching {pattern!r}")
def put_or_add(pattern, line, added=None):  # Auth 4.x's local.py has no such line: it goes at the end
    global text
    text, n = re.subn(pattern, lambda m: line, text, count=1, flags=re.M)
    if n != 1:
        text += "\n" + (added or line) + "\n"
put(r"^SITE_NAME = .*$", "SITE_NAME = 'myauth'")
put(r"^SITE_URL = .*$", 'SITE_URL = "http://localhost:8000"')
put_or_add(r"^ALLOWED_HOSTS = .*$", 'ALLOWED_HOSTS = [urlparse(SITE_URL).hostname, "127.0.0.1"]',
           'ALLOWED_HOSTS = ["localhost", "127.0.0.1"]')
put(r"^    'USER': '.*',$", "    'USER': 'allianceserver',")
put(r"^    'PASSWORD': '.*',$", "    'PASSWORD': '%s'," % os.environ["AUTH_DB_PASSWORD"])
put(r"^ESI_SSO_CLIENT_ID = .*$", "ESI_SSO_CLIENT_ID = 'dummy-test-bed-client-id'")
put(r"^ESI_SSO_CLIENT_SECRET = .*$", "ESI_SSO_CLIENT_SECRET = 'dummy-test-bed-client-secret'")
put_or_add(r"^ESI_USER_CONTACT_EMAIL = .*?(  #.*)?$", "ESI_USER_CONTACT_EMAIL = 'admin@example.com'")
open(path, "w", encoding="utf-8").write(text)
PY
chown "$AA_USER:$AA_USER" "$LOCAL_PY"
mkdir -p "$PROJECT/log"

step "database tables and static files (guide: Install database & static files)"
as_aa "python $PROJECT/manage.py migrate --no-input"
as_aa "python $PROJECT/manage.py collectstatic --noinput"
as_aa "python $PROJECT/manage.py check"
chown -R "$AA_USER:$AA_USER" "$PROJECT"  # the guide's hint for installs done as root

step "supervisor (guide: Services, Supervisor)"
[ -L /etc/supervisor/conf.d/myauth.conf ] ||
  ln -s /home/allianceserver/myauth/supervisor.conf /etc/supervisor/conf.d/myauth.conf
systemctl enable supervisor

step "TEST BED ONLY: authops_probe app (not part of a stock install)"
rm -rf "$PROJECT/authops_probe"
cp -r "$SRC/authops_probe" "$PROJECT/authops_probe"
find "$PROJECT/authops_probe" -name __pycache__ -prune -exec rm -rf {} +
chown -R "$AA_USER:$AA_USER" "$PROJECT/authops_probe"
probe_line="INSTALLED_APPS += ['authops_probe']  # authops test bed only (extensions/auth55)"
grep -qxF "$probe_line" "$LOCAL_PY" || printf '\n%s\n' "$probe_line" >>"$LOCAL_PY"
as_aa "cd $PROJECT && python manage.py check"

step "clean shutdown state"
systemctl stop supervisor
systemctl stop redis-server mariadb
rm -rf "$AA_HOME/.cache/pip" /root/.cache/pip
apt-get clean
rm -rf /var/lib/apt/lists/*
: >/etc/machine-id  # systemd makes a new one at each container's first boot
echo "install done: allianceauth $AUTH_VERSION"
