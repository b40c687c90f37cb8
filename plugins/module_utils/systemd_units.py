# -*- coding: utf-8 -*-
# Copyright: authops.celery_tuning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""systemd units: a service's unit name and whether the unit is enabled and active, and whether systemd
must re-read its files.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


def unit_name(service_name):
    """systemd's name for a service: ``supervisor`` is ``supervisor.service``."""
    return service_name if "." in service_name else service_name + ".service"


ENABLED = ("enabled", "enabled-runtime", "alias")
NOT_ENABLED = ("disabled", "masked", "masked-runtime", "static", "indirect", "linked", "linked-runtime")


def service_state(run_command, get_bin_path, name):
    """Whether systemd has the unit enabled (None when it cannot say) and active, and whether its files
    changed since systemd read them (``need_daemon_reload``: a drop-in written by a run that died before
    ``daemon-reload``); all None without systemctl. One ``systemctl show``, as supervisor_ops asks for the
    unit's LoadState."""
    systemctl = get_bin_path("systemctl")
    if not systemctl:
        return dict(name=name, enabled=None, active=None, active_state=None, need_daemon_reload=None)
    rc, out, dummy = run_command([systemctl, "show", "--property=UnitFileState,ActiveState,NeedDaemonReload",
                                  unit_name(name)])
    props = dict(line.partition("=")[::2] for line in (out or "").splitlines() if "=" in line)
    state = props.get("UnitFileState", "").strip() if rc == 0 else ""
    enabled = True if state in ENABLED else False if state in NOT_ENABLED else None
    reload_needed = props.get("NeedDaemonReload", "").strip()
    active_state = props.get("ActiveState", "").strip() if rc == 0 else ""
    return dict(name=name, enabled=enabled, active=active_state == "active", active_state=active_state or None,
                need_daemon_reload=None if rc != 0 or not reload_needed else reload_needed == "yes")
