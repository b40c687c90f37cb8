# -*- coding: utf-8 -*-
# Copyright: authops.celery_tuning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    """How every module of the collection reaches supervisord (see supervisor_rpc.connection_argument_spec)."""

    DOCUMENTATION = r"""
options:
  socket:
    description:
      - Path of supervisord's unix socket (a C(unix:///path) or C(http://host:port) URL is accepted too).
      - Default is C([supervisorctl] serverurl) from O(config_file), read by supervisor's own C(ClientOptions)
        as C(supervisorctl -c) reads it (C(%(here\)s) and C(%(ENV_X\)s) expanded, C(http://localhost:9001) when
        the section has no C(serverurl)); C(/var/run/supervisor.sock) when the default O(config_file) does not
        exist.
    type: str
  config_file:
    description:
      - The daemon's config file, read for the server URL and credentials of its C([supervisorctl]) section
        when O(socket), O(username) or O(password) are not given.
      - A missing file is only an error when this option is set explicitly.
      - Defaults to the first that exists of C(/etc/supervisor/supervisord.conf) (Debian, Ubuntu) and
        C(/etc/supervisord.conf) (EPEL, on the RHEL family).
    type: path
  username:
    description:
      - User name for supervisord's HTTP basic authentication.
      - Default is C([supervisorctl] username) from O(config_file).
    type: str
  password:
    description:
      - Password for supervisord's HTTP basic authentication.
      - Default is C([supervisorctl] password) from O(config_file).
    type: str
  call_timeout:
    description:
      - Seconds one XML-RPC call may take before it fails (supervisor's own client has no timeout).
    type: float
    default: 30.0
"""
