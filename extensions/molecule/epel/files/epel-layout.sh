#!/usr/bin/env bash
# Test bed only: turn the stock Auth 5.5 server (Debian's supervisor) into one laid out as on Rocky
# Linux 9 with EPEL's supervisor package, as Auth's install guide sets it up there:
#   /etc/supervisord.conf (EPEL's file), programs in /etc/supervisord.d/*.ini, Auth's supervisor.conf
#   linked as /etc/supervisord.d/myauth.ini, unit supervisord.service, socket /run/supervisor/.
# supervisor comes from PyPI (the release EPEL 9 ships), installed where EL's python3 finds it.
# The host reports itself as Rocky Linux 9 (/etc/os-release, /etc/redhat-release), and an `rpm` stand-in
# answers for the two packages that EPEL's install would have put in the rpm database.
set -euo pipefail
SUPERVISOR_VERSION=${SUPERVISOR_VERSION:-4.2.5}

systemctl disable --now supervisor.service
# Debian's package goes (its files, its unit); dpkg keeps what it does not own (Auth's link).
dpkg --purge supervisor >/dev/null
rm -rf /etc/supervisor

python3 -m venv /tmp/pip-venv
/tmp/pip-venv/bin/pip install -q --no-deps --target /usr/lib/python3/dist-packages "supervisor==$SUPERVISOR_VERSION"
rm -rf /tmp/pip-venv
for tool in supervisord supervisorctl echo_supervisord_conf pidproxy; do
  printf '#!/usr/bin/python3\nimport sys\nfrom supervisor.%s import main\nsys.exit(main())\n' \
    "$(case $tool in supervisord) echo supervisord ;; supervisorctl) echo supervisorctl ;;
       echo_supervisord_conf) echo confecho ;; pidproxy) echo pidproxy ;; esac)" >/usr/bin/$tool
  chmod 0755 /usr/bin/$tool
done

cat >/etc/supervisord.conf <<'CONF'
; Sample supervisor config file (as EPEL's supervisor package ships it).

[unix_http_server]
file=/run/supervisor/supervisor.sock   ; (the path to the socket file)

[supervisord]
logfile=/var/log/supervisor/supervisord.log  ; (main log file;default $CWD/supervisord.log)
logfile_maxbytes=50MB       ; (max main logfile bytes b4 rotation;default 50MB)
logfile_backups=10          ; (num of main logfile rotation backups;default 10)
loglevel=info               ; (log level;default info; others: debug,warn,trace)
pidfile=/run/supervisord.pid ; (supervisord pidfile;default supervisord.pid)
nodaemon=false              ; (start in foreground if true;default false)
minfds=1024                 ; (min. avail startup file descriptors;default 1024)
minprocs=200                ; (min. avail process descriptors;default 200)

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix:///run/supervisor/supervisor.sock ; use a unix:// URL  for a unix socket

[include]
files = supervisord.d/*.ini
CONF
mkdir -p /etc/supervisord.d /var/log/supervisor
chmod 0755 /etc/supervisord.d
echo 'D /run/supervisor 0775 root root -' >/usr/lib/tmpfiles.d/supervisor.conf
systemd-tmpfiles --create /usr/lib/tmpfiles.d/supervisor.conf

cat >/usr/lib/systemd/system/supervisord.service <<'UNIT'
[Unit]
Description=Process Monitoring and Control Daemon
After=rc-local.service nss-user-lookup.target

[Service]
Type=forking
ExecStart=/usr/bin/supervisord -c /etc/supervisord.conf

[Install]
WantedBy=multi-user.target
UNIT

# Auth's install guide on CentOS/Rocky: its supervisor.conf linked into supervisord.d as an .ini.
ln -sfn /home/allianceserver/myauth/supervisor.conf /etc/supervisord.d/myauth.ini

cat >/etc/os-release <<'OS'
NAME="Rocky Linux"
VERSION="9.5 (Blue Onyx)"
ID="rocky"
ID_LIKE="rhel centos fedora"
VERSION_ID="9.5"
PLATFORM_ID="platform:el9"
PRETTY_NAME="Rocky Linux 9.5 (Blue Onyx)"
OS
rm -f /usr/lib/os-release
echo 'Rocky Linux release 9.5 (Blue Onyx)' >/etc/redhat-release

# What `rpm -q` would answer after `dnf install epel-release supervisor` (queryformat NAME\tVERSION-RELEASE).
cat >/usr/local/bin/rpm <<'RPM'
#!/bin/sh
# Test-bed stand-in for rpm's database: EPEL's two packages are installed, nothing else.
[ "$1" = -q ] || { echo "rpm stand-in: only -q" >&2; exit 2; }
shift
[ "$1" = --queryformat ] && shift 2
missing=0
for name in "$@"; do
  case $name in
    supervisor) printf 'supervisor\t4.2.5-6.el9\n' ;;
    epel-release) printf 'epel-release\t9-8.el9\n' ;;
    *) echo "package $name is not installed"; missing=$((missing + 1)) ;;
  esac
done
exit $missing
RPM
chmod 0755 /usr/local/bin/rpm

systemctl daemon-reload
systemctl enable --now supervisord.service
