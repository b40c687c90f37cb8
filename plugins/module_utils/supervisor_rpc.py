# -*- coding: utf-8 -*-
# Copyright: authops.celery_tuning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""All XML-RPC I/O with supervisord for the ``supervisor_group`` module.

* :func:`read_daemon_config` reads the socket path and credentials from the daemon's config file.
* :func:`resolve_endpoint` merges module options with that config.
* :class:`SupervisorClient` calls the XML-RPC API over the unix socket (or an ``http://`` URL),
  with supervisor's own ``SupervisorTransport`` when the ``supervisor`` package is importable and
  a small ``http.client`` based transport otherwise.  Every failure becomes a
  :class:`SupervisorError` whose message tells the user what to do.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import errno
import os
import re
import socket
import stat

import configparser
import http.client as http_client
import xmlrpc.client as xmlrpc_client

try:
    from supervisor.xmlrpc import SupervisorTransport as _SupervisorTransport
    from supervisor.xmlrpc import UnixStreamHTTPConnection as _SupervisorUnixConnection
    HAS_SUPERVISOR = True
except Exception:  # pylint: disable=broad-except
    _SupervisorTransport = None
    _SupervisorUnixConnection = None
    HAS_SUPERVISOR = False


DEFAULT_CONFIG_FILE = '/etc/supervisor/supervisord.conf'
DEFAULT_SOCKET = '/var/run/supervisor.sock'
DEFAULT_CALL_TIMEOUT = 30.0

# supervisor.xmlrpc.Faults
FAULT_SHUTDOWN_STATE = 6
FAULT_BAD_NAME = 10
FAULT_NO_FILE = 20
FAULT_NOT_EXECUTABLE = 21
FAULT_SPAWN_ERROR = 50
FAULT_ALREADY_STARTED = 60
FAULT_NOT_RUNNING = 70
FAULT_SUCCESS = 80

FAULT_NAMES = {
    1: 'UNKNOWN_METHOD', 2: 'INCORRECT_PARAMETERS', 3: 'BAD_ARGUMENTS', 4: 'SIGNATURE_UNSUPPORTED',
    6: 'SHUTDOWN_STATE', 10: 'BAD_NAME', 11: 'BAD_SIGNAL', 20: 'NO_FILE', 21: 'NOT_EXECUTABLE',
    30: 'FAILED', 40: 'ABNORMAL_TERMINATION', 50: 'SPAWN_ERROR', 60: 'ALREADY_STARTED',
    70: 'NOT_RUNNING', 80: 'SUCCESS', 90: 'ALREADY_ADDED', 91: 'STILL_RUNNING', 92: 'CANT_REREAD',
}

# Error kinds carried by SupervisorError.kind
KIND_CONFIG = 'config'
KIND_SOCKET_MISSING = 'socket_missing'
KIND_REFUSED = 'connection_refused'
KIND_PERMISSION = 'permission_denied'
KIND_AUTH = 'bad_credentials'
KIND_TIMEOUT = 'timeout'
KIND_CONNECTION = 'connection'
KIND_PROTOCOL = 'protocol'
KIND_FAULT = 'fault'
KIND_BAD_NAME = 'bad_name'

CONNECTION_KINDS = (KIND_SOCKET_MISSING, KIND_REFUSED, KIND_TIMEOUT, KIND_CONNECTION)


class SupervisorError(Exception):
    """A failure talking to (or reported by) supervisord.

    ``phase`` names the step of the module run that failed; the RPC layer leaves it ``None`` and
    the caller (``supervisor_ops``) fills it in.  ``kind`` classifies the error (``KIND_*``),
    ``fault_code`` holds the XML-RPC fault code for faults.
    """

    def __init__(self, msg, phase=None, kind=None, fault_code=None, details=None):
        super(SupervisorError, self).__init__(msg)
        self.msg = msg
        self.phase = phase
        self.kind = kind
        self.fault_code = fault_code
        self.details = details or {}

    def __str__(self):
        return self.msg

    @property
    def is_connection_error(self):
        """True when the daemon could not be reached at all (down, restarting, timed out)."""
        return self.kind in CONNECTION_KINDS


# --------------------------------------------------------------------------------------------
# Config file
# --------------------------------------------------------------------------------------------

_EXPAND_RE = re.compile(r'%\(([^)]+)\)s')


def _expand(value, here):
    """Expand supervisor's ``%(here)s`` and ``%(ENV_NAME)s`` in a config value."""
    if value is None:
        return None

    def repl(match):
        key = match.group(1)
        if key == 'here':
            return here
        if key.startswith('ENV_'):
            return os.environ.get(key[4:], '')
        return match.group(0)

    return _EXPAND_RE.sub(repl, value)


def read_daemon_config(path, required=False):
    """Read socket path, server URL and credentials from a supervisord config file.

    Returns a dict with keys ``path``, ``exists``, ``unix_file``, ``unix_username``,
    ``unix_password``, ``ctl_serverurl``, ``ctl_username``, ``ctl_password`` (values may be
    ``None``).  A missing/unreadable file is an error only when ``required`` is true (the user
    named it explicitly).
    """
    result = dict(path=path, exists=False, unix_file=None, unix_username=None, unix_password=None,
                  ctl_serverurl=None, ctl_username=None, ctl_password=None)
    if not path:
        return result
    try:
        with open(path, 'r') as handle:
            text = handle.read()
    except (IOError, OSError) as exc:
        if required or getattr(exc, 'errno', None) not in (errno.ENOENT, errno.ENOTDIR):
            if required:
                if getattr(exc, 'errno', None) == errno.EACCES:
                    hint = 'run the task with become: true or pass socket/username/password explicitly'
                else:
                    hint = 'set config_file to the supervisord config, or pass socket explicitly'
                raise SupervisorError('Cannot read supervisord config file %s: %s; %s.'
                                      % (path, exc, hint), kind=KIND_CONFIG)
        return result
    parser = configparser.RawConfigParser(inline_comment_prefixes=(';', '#'), strict=False)
    try:
        parser.read_string(text, source=path)
    except configparser.Error as exc:
        raise SupervisorError('Cannot parse supervisord config file %s: %s' % (path, exc),
                              kind=KIND_CONFIG)
    here = os.path.dirname(os.path.abspath(path))

    def get(section, key):
        if parser.has_section(section) and parser.has_option(section, key):
            value = parser.get(section, key).strip()
            return _expand(value, here) if value != '' else None
        return None

    result.update(
        exists=True,
        unix_file=get('unix_http_server', 'file'),
        unix_username=get('unix_http_server', 'username'),
        unix_password=get('unix_http_server', 'password'),
        ctl_serverurl=get('supervisorctl', 'serverurl'),
        ctl_username=get('supervisorctl', 'username'),
        ctl_password=get('supervisorctl', 'password'),
    )
    return result


def _normalize_url(value, base_dir=None):
    value = value.strip()
    if value.startswith('unix://'):
        path = value[len('unix://'):]
    elif value.startswith('http://') or value.startswith('https://'):
        return value
    else:
        path = value
    if base_dir and not os.path.isabs(path):
        path = os.path.join(base_dir, path)
    return 'unix://' + os.path.normpath(path)


def resolve_endpoint(socket_path=None, username=None, password=None, config_file=None,
                     config_file_required=False):
    """Work out the server URL and credentials to use.

    Order: explicit options; then the daemon config's ``[unix_http_server] file`` (where the daemon
    really listens), then ``[supervisorctl] serverurl``; then ``/var/run/supervisor.sock``.
    Credentials: options, then ``[supervisorctl] username/password``, then ``[unix_http_server]``
    ones unless the password there is a ``{SHA}`` hash.

    Returns dict(serverurl, username, password, socket_path, source, config).
    """
    conf = read_daemon_config(config_file, required=config_file_required)
    here = os.path.dirname(os.path.abspath(config_file)) if config_file else None
    if socket_path:
        serverurl, source = _normalize_url(socket_path), 'option'
    elif conf['unix_file']:
        serverurl, source = _normalize_url(conf['unix_file'], here), '[unix_http_server] file in %s' % config_file
    elif conf['ctl_serverurl'] and conf['ctl_serverurl'].strip().upper() != 'AUTO':
        serverurl, source = _normalize_url(conf['ctl_serverurl'], here), '[supervisorctl] serverurl in %s' % config_file
    else:
        serverurl, source = 'unix://' + DEFAULT_SOCKET, 'default'

    if username is None and password is None:
        if conf['ctl_username'] is not None or conf['ctl_password'] is not None:
            username, password = conf['ctl_username'], conf['ctl_password']
        elif conf['unix_username'] is not None and not (conf['unix_password'] or '').upper().startswith('{SHA}'):
            username, password = conf['unix_username'], conf['unix_password']
    sock = serverurl[len('unix://'):] if serverurl.startswith('unix://') else None
    return dict(serverurl=serverurl, username=username, password=password, socket_path=sock,
                source=source, config=conf)


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
# Transports
# --------------------------------------------------------------------------------------------

class UnixHTTPConnection(http_client.HTTPConnection):
    """``HTTPConnection`` over an AF_UNIX socket, with a timeout."""

    def __init__(self, socket_path, timeout=DEFAULT_CALL_TIMEOUT):
        http_client.HTTPConnection.__init__(self, 'localhost', timeout=timeout)
        self.socket_path = socket_path

    def connect(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.socket_path)
        except Exception:
            sock.close()
            raise
        self.sock = sock


def _basic_auth(username, password):
    raw = ('%s:%s' % (username, password)).encode('utf-8')
    return 'Basic ' + base64.b64encode(raw).decode('ascii')


class UnixTransport(xmlrpc_client.Transport):
    """Fallback xmlrpc transport (no ``supervisor`` package on the target)."""

    def __init__(self, socket_path=None, username=None, password=None, timeout=DEFAULT_CALL_TIMEOUT):
        xmlrpc_client.Transport.__init__(self)
        self.socket_path = socket_path
        self.username = username
        self.password = password
        self.timeout = timeout

    def make_connection(self, host):
        if self._connection and self._connection[0] == host:
            return self._connection[1]
        if self.socket_path:
            conn = UnixHTTPConnection(self.socket_path, timeout=self.timeout)
        else:
            conn = http_client.HTTPConnection(host, timeout=self.timeout)
        self._connection = host, conn
        self._extra_headers = []
        if self.username is not None and self.password is not None:
            self._extra_headers = [('Authorization', _basic_auth(self.username, self.password))]
        return conn


if HAS_SUPERVISOR:
    class _TimeoutUnixStreamHTTPConnection(_SupervisorUnixConnection):
        """supervisor's unix connection, plus a socket timeout."""

        def connect(self):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(self.timeout)
            try:
                sock.connect(self.socketfile)
            except Exception:
                sock.close()
                raise
            self.sock = sock

    class TimeoutSupervisorTransport(_SupervisorTransport):
        """``supervisor.xmlrpc.SupervisorTransport`` with a socket timeout on unix sockets."""

        def __init__(self, username=None, password=None, serverurl=None, timeout=DEFAULT_CALL_TIMEOUT):
            super(TimeoutSupervisorTransport, self).__init__(username, password, serverurl)
            if serverurl.startswith('unix://'):
                def get_connection(path=serverurl[len('unix://'):], timeout=timeout):
                    conn = _TimeoutUnixStreamHTTPConnection('localhost', timeout=timeout)
                    conn.socketfile = path
                    return conn
                self._get_connection = get_connection
else:  # pragma: no cover
    TimeoutSupervisorTransport = None


# --------------------------------------------------------------------------------------------
# Client
# --------------------------------------------------------------------------------------------

class SupervisorClient(object):
    """Thin, error-translating wrapper around supervisord's XML-RPC API."""

    def __init__(self, serverurl, username=None, password=None, timeout=DEFAULT_CALL_TIMEOUT,
                 use_supervisor_transport=None, source=None):
        if not (serverurl.startswith('unix://') or serverurl.startswith('http://')):
            raise SupervisorError('Unsupported supervisord server URL %r: use a unix socket path, '
                                  'unix:///path or http://host:port.' % serverurl, kind=KIND_CONFIG)
        self.serverurl = serverurl
        self.username = username
        self.password = password
        self.timeout = timeout
        self.source = source
        if use_supervisor_transport is None:
            use_supervisor_transport = HAS_SUPERVISOR
        self.use_supervisor_transport = bool(use_supervisor_transport and HAS_SUPERVISOR)
        self._proxy = None

    @property
    def socket_path(self):
        return self.serverurl[len('unix://'):] if self.serverurl.startswith('unix://') else None

    @property
    def transport_name(self):
        return 'supervisor.xmlrpc.SupervisorTransport' if self.use_supervisor_transport else 'builtin'

    def _make_proxy(self):
        if self.use_supervisor_transport:
            transport = TimeoutSupervisorTransport(self.username, self.password, self.serverurl,
                                                   timeout=self.timeout)
            # host part is ignored by the unix transport
            return xmlrpc_client.ServerProxy('http://127.0.0.1', transport=transport)
        if self.socket_path:
            transport = UnixTransport(self.socket_path, self.username, self.password, self.timeout)
            return xmlrpc_client.ServerProxy('http://localhost/RPC2', transport=transport)
        url = self.serverurl.rstrip('/') + '/RPC2'
        transport = UnixTransport(None, self.username, self.password, self.timeout)
        return xmlrpc_client.ServerProxy(url, transport=transport)

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
                        config_file_required=False, timeout=DEFAULT_CALL_TIMEOUT, use_supervisor_transport=None):
    """Build a :class:`SupervisorClient` from module-style parameters."""
    ep = resolve_endpoint(socket_path, username, password, config_file, config_file_required)
    return SupervisorClient(ep['serverurl'], ep['username'], ep['password'], timeout=timeout,
                            use_supervisor_transport=use_supervisor_transport, source=ep['source'])


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
                               params['config_file'] or DEFAULT_CONFIG_FILE,
                               config_file_required=params['config_file'] is not None,
                               timeout=params['call_timeout'])
