# -*- coding: utf-8 -*-
# Copyright: authops.celery_tuning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""All XML-RPC I/O with supervisord, through supervisor's own client code.

* :func:`resolve_endpoint` finds the server URL and credentials the way ``supervisorctl -c FILE`` does:
  supervisor's ``ClientOptions`` reads the ``[supervisorctl]`` section (``%(here)s`` and ``%(ENV_X)s``
  expansion, the ``http://localhost:9001`` default), and explicit module options win, as ``-s``/``-u``/``-p``
  do for supervisorctl.
* :class:`SupervisorClient` calls the XML-RPC API with supervisor's ``SupervisorTransport`` (unix socket or
  ``http://``), wrapped in :class:`TimeoutTransport` for a per-call timeout, and turns every failure into a
  :class:`SupervisorError` whose message tells the user what to do.  Fault codes come from
  ``supervisor.xmlrpc.Faults``.

The ``supervisor`` package is the one the daemon itself runs from (Debian and Ubuntu install it for
``/usr/bin/python3`` with the ``supervisor`` package).  Without it the modules fail with
:func:`missing_supervisor_message`.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import os
import socket
import stat

import http.client as http_client
import xmlrpc.client as xmlrpc_client

from ansible_collections.authops.celery_tuning.plugins.module_utils.supervisor_errors import (
    FAULT_BAD_NAME,
    FAULT_NAMES,
    FAULT_SHUTDOWN_STATE,
    HAS_SUPERVISOR,
    KIND_AUTH,
    KIND_BAD_NAME,
    KIND_CONFIG,
    KIND_CONNECTION,
    KIND_FAULT,
    KIND_PERMISSION,
    KIND_PROTOCOL,
    KIND_REFUSED,
    KIND_SOCKET_MISSING,
    KIND_TIMEOUT,
    SupervisorError,
    missing_supervisor_message,
)
from ansible_collections.authops.celery_tuning.plugins.module_utils.supervisor_layout import LAYOUTS

try:  # without supervisor the modules fail with missing_supervisor_message() (HAS_SUPERVISOR)
    from supervisor.options import ClientOptions
    from supervisor.xmlrpc import SupervisorTransport
except ImportError:
    ClientOptions = None
    SupervisorTransport = object

# Where the OS families' packages put supervisord's config and socket (the supervisor location contract):
# without a config_file option the first config that exists is read, as supervisorctl searches for one.
DEFAULT_CONFIG_FILES = tuple(LAYOUTS[family]['config'] for family in sorted(LAYOUTS))
DEFAULT_SOCKETS = tuple(LAYOUTS[family]['socket'] for family in sorted(LAYOUTS))
DEFAULT_CONFIG_FILE = LAYOUTS['Debian']['config']
DEFAULT_SOCKET = LAYOUTS['Debian']['socket']


def default_config_file():
    """The first of the families' supervisord configs that exists (Debian's when none does)."""
    for path in DEFAULT_CONFIG_FILES:
        if os.path.exists(path):
            return path
    return DEFAULT_CONFIG_FILE


DEFAULT_CALL_TIMEOUT = 30.0


def visibly_absent(socket_path=None, config_file=None):
    """True when no supervisord can be running here: neither its socket nor its config exists.

    Lets ``missing_ok`` callers tell "supervisor is not installed yet" (no ``supervisor`` package, as on a
    host the supervisor role has not reached) from "installed where this Python cannot import it".
    """
    if socket_path:
        url = _url_from_option(socket_path)
        return url.startswith('unix://') and not os.path.exists(url[len('unix://'):])
    configs = [config_file] if config_file else DEFAULT_CONFIG_FILES
    return not any(os.path.exists(path) for path in tuple(configs) + DEFAULT_SOCKETS)


# --------------------------------------------------------------------------------------------
# Endpoint
# --------------------------------------------------------------------------------------------

def _url_from_option(value):
    """The ``socket`` option: a unix socket path, ``unix:///path`` or ``http://host:port``."""
    value = value.strip()
    if value.startswith('http://') or value.startswith('https://'):
        return value
    if value.startswith('unix://'):
        value = value[len('unix://'):]
    return 'unix://' + os.path.normpath(os.path.abspath(value))


def read_client_config(path, required=False):
    """``[supervisorctl]`` serverurl, username and password of ``path``, read by supervisor's ``ClientOptions``.

    Returns ``None`` when ``path`` does not exist and was not ``required`` (the default path on a host
    without a config).  Raises :class:`SupervisorError` (``KIND_CONFIG``) when it cannot be used.
    """
    if not HAS_SUPERVISOR:
        raise SupervisorError(missing_supervisor_message(), kind=KIND_CONFIG)
    if not required and not os.path.exists(path):
        return None
    options = ClientOptions()
    try:
        section = options.read_config(path)
    except ValueError as exc:
        if 'supervisorctl section' in str(exc):
            hint = ('add a [supervisorctl] section with serverurl=unix:///path/to/the.sock (as Debian\'s '
                    'file has), or set the socket option')
        elif os.path.exists(path) and not os.access(path, os.R_OK):
            hint = 'run the task with become: true, or pass socket/username/password explicitly'
        else:
            hint = 'set config_file to the supervisord config, or pass socket explicitly'
        raise SupervisorError('Cannot use supervisord config file %s: %s; %s.' % (path, exc, hint),
                              kind=KIND_CONFIG)
    except Exception as exc:  # pylint: disable=broad-except
        # configparser errors, bad %(...)s expansions: what supervisorctl -c would also stop on
        raise SupervisorError('Cannot parse supervisord config file %s: %s' % (path, exc), kind=KIND_CONFIG)
    return dict(serverurl=section.serverurl, username=section.username, password=section.password)


def resolve_endpoint(socket_path=None, username=None, password=None, config_file=None,
                     config_file_required=False):
    """Server URL and credentials, as ``supervisorctl -c config_file [-s socket] [-u ...] [-p ...]`` would use.

    Returns dict(serverurl, username, password, socket_path, source).
    """
    conf = read_client_config(config_file, required=config_file_required) if config_file else None
    if socket_path:
        serverurl, source = _url_from_option(socket_path), 'option'
    elif conf is not None:
        serverurl, source = conf['serverurl'], '[supervisorctl] serverurl in %s' % config_file
    else:
        serverurl, source = 'unix://' + DEFAULT_SOCKET, 'default'
    if username is None and password is None and conf is not None:
        username, password = conf['username'], conf['password']
    sock = serverurl[len('unix://'):] if serverurl.startswith('unix://') else None
    return dict(serverurl=serverurl, username=username, password=password, socket_path=sock, source=source)


def socket_identity(path):
    """(inode, ctime_ns) of a unix socket file, or None.  supervisord re-creates its socket on restart."""
    if not path:
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, getattr(st, 'st_ctime_ns', int(st.st_ctime * 1e9)))


# --------------------------------------------------------------------------------------------
# Transport
# --------------------------------------------------------------------------------------------

class TimeoutTransport(SupervisorTransport):
    """supervisor's ``SupervisorTransport`` with a timeout on every call.

    supervisor opens its sockets without a timeout, so a daemon that accepts the connection but never
    answers (stopped, or stuck) would hang the module for ever.  This subclass overrides only
    ``request``, the public method of ``xmlrpc.client.Transport``: around supervisor's own ``request`` it
    sets the process' default socket timeout, which the socket that supervisor creates inside it (a
    ``UnixStreamHTTPConnection`` or an ``http.client.HTTPConnection``) takes on, and keeps for the persistent
    connection.  Nothing private of supervisor is touched.
    """

    def __init__(self, username=None, password=None, serverurl=None, timeout=DEFAULT_CALL_TIMEOUT):
        SupervisorTransport.__init__(self, username, password, serverurl)
        self.timeout = timeout

    def request(self, host, handler, request_body, verbose=False):
        previous = socket.getdefaulttimeout()
        socket.setdefaulttimeout(self.timeout)
        try:
            return SupervisorTransport.request(self, host, handler, request_body, verbose)
        finally:
            socket.setdefaulttimeout(previous)


# --------------------------------------------------------------------------------------------
# Client
# --------------------------------------------------------------------------------------------

class SupervisorClient(object):
    """Thin, error-translating wrapper around supervisord's XML-RPC API."""

    def __init__(self, serverurl, username=None, password=None, timeout=DEFAULT_CALL_TIMEOUT, source=None):
        if not (serverurl.startswith('unix://') or serverurl.startswith('http://')):
            raise SupervisorError('Unsupported supervisord server URL %r: use a unix socket path, '
                                  'unix:///path or http://host:port.' % serverurl, kind=KIND_CONFIG)
        if not HAS_SUPERVISOR:
            raise SupervisorError(missing_supervisor_message(), kind=KIND_CONFIG)
        self.serverurl = serverurl
        self.username = username
        self.password = password
        self.timeout = timeout
        self.source = source
        self._proxy = None

    @property
    def socket_path(self):
        return self.serverurl[len('unix://'):] if self.serverurl.startswith('unix://') else None

    def _make_proxy(self):
        """What ``ClientOptions.getServerProxy`` builds, with :class:`TimeoutTransport` for its transport."""
        transport = TimeoutTransport(self.username, self.password, self.serverurl, timeout=self.timeout)
        # ServerProxy needs an http URL; the transport connects to its own serverurl.
        return xmlrpc_client.ServerProxy('http://127.0.0.1', transport=transport)

    def close(self):
        if self._proxy is not None:
            try:
                self._proxy('close')()
            except Exception:  # pylint: disable=broad-except
                pass
            self._proxy = None

    # -- error translation -----------------------------------------------------------------
    def _where(self):
        where = self.socket_path or self.serverurl
        if self.source and self.source != 'option':
            where = '%s (from %s)' % (where, self.source)
        return where

    def translate(self, exc, method, args=()):
        """Turn a low level exception into a SupervisorError."""
        where = self._where()
        if isinstance(exc, xmlrpc_client.Fault):
            code = exc.faultCode
            fname = FAULT_NAMES.get(code, str(code))
            if code == FAULT_BAD_NAME:
                msg = ("supervisord does not know %r (BAD_NAME in %s): check the group/program name; "
                       "if it was just added to the config run 'supervisorctl reread && supervisorctl update'."
                       % (args[0] if args else exc.faultString, method))
                return SupervisorError(msg, kind=KIND_BAD_NAME, fault_code=code)
            if code == FAULT_SHUTDOWN_STATE:
                return SupervisorError('supervisord at %s is shutting down or restarting (SHUTDOWN_STATE on %s).'
                                       % (where, method), kind=KIND_CONNECTION, fault_code=code)
            return SupervisorError('supervisord call %s%s failed: %s (%s)'
                                   % (method, tuple(args) if args else '()', fname, exc.faultString),
                                   kind=KIND_FAULT, fault_code=code)
        if isinstance(exc, xmlrpc_client.ProtocolError):
            if exc.errcode == 401:
                user = 'no username' if self.username is None else 'username %r' % self.username
                msg = ('supervisord at %s rejected the credentials (HTTP 401 Unauthorized, %s): set the '
                       'username and password options to the values of [unix_http_server] username/password, '
                       'or put them in the [supervisorctl] section of the config file.' % (where, user))
                return SupervisorError(msg, kind=KIND_AUTH)
            return SupervisorError('supervisord at %s answered HTTP %s %s to %s.'
                                   % (where, exc.errcode, exc.errmsg, method), kind=KIND_PROTOCOL)
        if isinstance(exc, socket.timeout):
            return SupervisorError('supervisord at %s did not answer %s within %ss.'
                                   % (where, method, self.timeout), kind=KIND_TIMEOUT)
        err = getattr(exc, 'errno', None)
        if isinstance(exc, (IOError, OSError)) and err is not None:
            if err in (errno.ENOENT, errno.ENOTDIR):
                msg = ('supervisord socket %s does not exist: is supervisord running '
                       '(systemctl status supervisor)? Otherwise set the socket option or config_file '
                       'to where [unix_http_server] file points.' % where)
                return SupervisorError(msg, kind=KIND_SOCKET_MISSING)
            if err in (errno.EACCES, errno.EPERM):
                msg = ('Permission denied connecting to supervisord socket %s: the socket is usually mode 0700 '
                       'owned by root; run the task with become: true, or adjust chmod/chown in '
                       '[unix_http_server].' % where)
                return SupervisorError(msg, kind=KIND_PERMISSION)
            if err == errno.ECONNREFUSED:
                return SupervisorError(_refused_message(where, self.socket_path), kind=KIND_REFUSED)
            return SupervisorError('Cannot talk to supervisord at %s (%s): %s' % (where, method, exc),
                                   kind=KIND_CONNECTION)
        if isinstance(exc, (http_client.HTTPException, EOFError, socket.error)):
            return SupervisorError('Connection to supervisord at %s broke during %s: %r' % (where, method, exc),
                                   kind=KIND_CONNECTION)
        if isinstance(exc, xmlrpc_client.ResponseError) or exc.__class__.__name__ == 'ExpatError':
            return SupervisorError('supervisord at %s sent an unreadable answer to %s: %s'
                                   % (where, method, exc), kind=KIND_PROTOCOL)
        return None

    def call(self, method, *args):
        """Call ``method`` (e.g. ``'supervisor.getState'``); raise SupervisorError on failure."""
        if self._proxy is None:
            self._proxy = self._make_proxy()
        func = self._proxy
        for part in method.split('.'):
            func = getattr(func, part)
        try:
            return func(*args)
        except Exception as exc:  # pylint: disable=broad-except
            translated = self.translate(exc, method, args)
            if translated is None:
                raise
            if not isinstance(exc, xmlrpc_client.Fault):
                # drop the (possibly broken) persistent connection
                self._proxy = None
            raise translated

    # -- API -------------------------------------------------------------------------------
    def get_state(self):
        return self.call('supervisor.getState')

    def get_pid(self):
        return self.call('supervisor.getPID')

    def get_all_process_info(self):
        return self.call('supervisor.getAllProcessInfo')

    def get_all_config_info(self):
        return self.call('supervisor.getAllConfigInfo')

    def stop_process_group(self, name, wait=False):
        return self.call('supervisor.stopProcessGroup', name, wait)

    def start_process_group(self, name, wait=False):
        return self.call('supervisor.startProcessGroup', name, wait)

    def stop_process(self, name, wait=False):
        return self.call('supervisor.stopProcess', name, wait)

    def start_process(self, name, wait=False):
        return self.call('supervisor.startProcess', name, wait)

    def restart(self):
        return self.call('supervisor.restart')

    def reload_config(self):
        """``[added, changed, removed]`` group names after supervisord re-read its files (changes nothing)."""
        return self.call('supervisor.reloadConfig')[0]

    def add_process_group(self, name):
        return self.call('supervisor.addProcessGroup', name)

    def remove_process_group(self, name):
        return self.call('supervisor.removeProcessGroup', name)

    def read_main_log_tail(self, nbytes=65536):
        """Last ``nbytes`` of the daemon's main log ('' when not available)."""
        try:
            return self.call('supervisor.readLog', -int(nbytes), 0)
        except SupervisorError as exc:
            if exc.kind in (KIND_FAULT, KIND_BAD_NAME):
                return ''
            raise

    def tail_process_log(self, name, nbytes=2048):
        """Tail of a process' stderr log, falling back to stdout (redirect_stderr=true)."""
        text = ''
        for method in ('supervisor.tailProcessStderrLog', 'supervisor.tailProcessStdoutLog'):
            try:
                res = self.call(method, name, 0, int(nbytes))
            except SupervisorError as exc:
                if exc.kind in (KIND_FAULT, KIND_BAD_NAME):
                    continue
                raise
            text = res[0] if isinstance(res, (list, tuple)) and res else ''
            if text:
                return text
        return text


def connect_from_params(socket_path=None, username=None, password=None, config_file=None,
                        config_file_required=False, timeout=DEFAULT_CALL_TIMEOUT):
    """Build a :class:`SupervisorClient` from module-style parameters."""
    ep = resolve_endpoint(socket_path, username, password, config_file, config_file_required)
    return SupervisorClient(ep['serverurl'], ep['username'], ep['password'], timeout=timeout, source=ep['source'])


def _refused_message(where, path):
    """Why a connection was refused, from what is at the socket's path."""
    try:
        mode = os.stat(path).st_mode if path else None
    except OSError:
        mode = None
    if mode is not None and not stat.S_ISSOCK(mode):
        return ('Connection refused at %s: %s is not a socket (a %s); check [unix_http_server] file= and the '
                'socket option' % (where, path, 'directory' if stat.S_ISDIR(mode) else 'regular file'))
    return ('Connection refused on supervisord socket %s: the socket file exists but nothing listens on it '
            '(supervisord stopped or restarting, or a stale socket left by a daemon that died).' % where)


def connection_argument_spec():
    """The options every module uses to reach supervisord (documented in the ``connection`` doc fragment)."""
    return dict(
        socket=dict(type='str'),
        config_file=dict(type='path'),
        username=dict(type='str'),
        password=dict(type='str', no_log=True),
        call_timeout=dict(type='float', default=DEFAULT_CALL_TIMEOUT),
    )


def connect_from_module_params(params):
    """A client from a module's connection options (see :func:`connection_argument_spec`)."""
    return connect_from_params(params['socket'], params['username'], params['password'],
                               params['config_file'] or default_config_file(),
                               config_file_required=params['config_file'] is not None,
                               timeout=params['call_timeout'])
