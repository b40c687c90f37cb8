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
      - Default is C([unix_http_server] file) from O(config_file), then C([supervisorctl] serverurl), then
        C(/var/run/supervisor.sock).
    type: str
  config_file:
    description:
      - The daemon's config file, read for the socket path and credentials when O(socket), O(username) or
        O(password) are not given.
      - A missing file is only an error when this option is set explicitly.
    type: path
  username:
    description:
      - User name for supervisord's HTTP basic authentication.
      - Default is C([supervisorctl] username), then C([unix_http_server] username) from O(config_file).
    type: str
  password:
    description:
      - Password for supervisord's HTTP basic authentication.
      - Default is C([supervisorctl] password), then C([unix_http_server] password) (unless it is a C({SHA}) hash).
    type: str
  call_timeout:
    description:
      - Seconds one XML-RPC call may take before it fails.
    type: float
    default: 30.0
"""
