# -*- coding: utf-8 -*-
# Copyright: authops.celery_tuning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import socket
import xmlrpc.client as xmlrpc_client

import pytest

from ansible_collections.authops.celery_tuning.plugins.module_utils import supervisor_errors as errors
from ansible_collections.authops.celery_tuning.plugins.module_utils import supervisor_rpc as rpc


CONF = """\
; Debian style config
[unix_http_server]
file=%(here)s/run/supervisor.sock   ; (the path to the socket file)
chmod=0700                       ; socket file mode (default 0700)
username=admin
password={SHA}e5e9fa1ba31ecd1ae84f75caaa474f3a663f05f4

[supervisord]
logfile=/var/log/supervisor/supervisord.log

[supervisorctl]
serverurl=unix:///var/run/other.sock ; use a unix:// URL for a unix socket
username=admin
password=plain # inline comment
"""


@pytest.fixture
def conf(tmp_path):
    path = tmp_path / 'supervisord.conf'
    path.write_text(CONF)
    return str(path)


def test_config_is_read_as_supervisorctl_reads_it(conf):
    """[supervisorctl] serverurl/username/password, inline comments stripped by supervisor's parser."""
    data = rpc.read_client_config(conf)
    assert data == dict(serverurl='unix:///var/run/other.sock', username='admin', password='plain')


def test_here_and_env_expansion(tmp_path, monkeypatch):
    monkeypatch.setenv('SOCKDIR', '/srv/x')
    path = tmp_path / 'c.conf'
    path.write_text('[supervisorctl]\nserverurl=unix://%(ENV_SOCKDIR)s/s.sock\nusername=%(ENV_SOCKDIR)s\n')
    data = rpc.read_client_config(str(path))
    assert data['serverurl'] == 'unix:///srv/x/s.sock' and data['username'] == '/srv/x'
    path.write_text('[supervisorctl]\nserverurl=unix://%(here)s/s.sock\n')
    assert rpc.read_client_config(str(path))['serverurl'] == 'unix://%s/s.sock' % tmp_path


def test_section_without_serverurl_gets_supervisorctl_default(tmp_path):
    path = tmp_path / 'c.conf'
    path.write_text('[supervisorctl]\n')
    assert rpc.read_client_config(str(path))['serverurl'] == 'http://localhost:9001'


def test_missing_default_config_is_fine_but_explicit_is_an_error(tmp_path):
    missing = str(tmp_path / 'nope.conf')
    assert rpc.read_client_config(missing) is None
    with pytest.raises(rpc.SupervisorError) as err:
        rpc.read_client_config(missing, required=True)
    assert 'could not find config file' in err.value.msg and 'set config_file' in err.value.msg
    assert err.value.kind == rpc.KIND_CONFIG


def test_config_without_supervisorctl_section_says_what_to_add(tmp_path):
    path = tmp_path / 'c.conf'
    path.write_text('[unix_http_server]\nfile=/run/s.sock\n')
    with pytest.raises(rpc.SupervisorError) as err:
        rpc.read_client_config(str(path))
    assert '[supervisorctl] section with serverurl=' in err.value.msg and 'socket option' in err.value.msg


def test_unparsable_config(tmp_path):
    path = tmp_path / 'bad.conf'
    path.write_text('no section header\n')
    with pytest.raises(rpc.SupervisorError) as err:
        rpc.read_client_config(str(path))
    assert 'Cannot parse' in err.value.msg


def test_resolve_endpoint_order(conf, tmp_path):
    ep = rpc.resolve_endpoint(config_file=conf)
    assert ep['serverurl'] == 'unix:///var/run/other.sock' and ep['socket_path'] == '/var/run/other.sock'
    assert (ep['username'], ep['password']) == ('admin', 'plain')
    assert ep['source'] == '[supervisorctl] serverurl in %s' % conf
    ep = rpc.resolve_endpoint(socket_path='/x/y.sock', username='u', password='p', config_file=conf)
    assert (ep['serverurl'], ep['username'], ep['password'], ep['source']) == ('unix:///x/y.sock', 'u', 'p', 'option')
    ep = rpc.resolve_endpoint(socket_path='unix:///x/../y.sock', config_file=conf)
    assert ep['serverurl'] == 'unix:///y.sock' and ep['username'] == 'admin'
    ep = rpc.resolve_endpoint(socket_path='http://127.0.0.1:9001', config_file=str(tmp_path / 'none'))
    assert ep['serverurl'] == 'http://127.0.0.1:9001' and ep['socket_path'] is None
    ep = rpc.resolve_endpoint(config_file=str(tmp_path / 'none'))
    assert ep['serverurl'] == 'unix:///var/run/supervisor.sock' and ep['username'] is None


def test_relative_serverurl_is_normalised_like_supervisorctl(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / 'c.conf'
    path.write_text('[supervisorctl]\nserverurl=unix://rel.sock\n')
    assert rpc.resolve_endpoint(config_file=str(path))['serverurl'] == 'unix://' + str(tmp_path / 'rel.sock')


def test_fault_codes_come_from_supervisor():
    from supervisor.xmlrpc import Faults
    assert errors.FAULT_BAD_NAME == Faults.BAD_NAME and errors.FAULT_NOT_RUNNING == Faults.NOT_RUNNING
    assert errors.FAULT_NAMES[Faults.SPAWN_ERROR] == 'SPAWN_ERROR'
    assert None not in (errors.FAULT_SHUTDOWN_STATE, errors.FAULT_NO_FILE, errors.FAULT_NOT_EXECUTABLE,
                        errors.FAULT_ALREADY_STARTED, errors.FAULT_SUCCESS)


def test_no_private_method_of_supervisor_is_overridden():
    """TimeoutTransport may override public xmlrpc.client.Transport API only."""
    # __firstlineno__ and __static_attributes__: Python 3.13 adds them to every class
    own = set(vars(rpc.TimeoutTransport)) - {'__module__', '__doc__', '__dict__', '__weakref__', '__qualname__',
                                             '__firstlineno__', '__static_attributes__'}
    assert own == {'__init__', 'request'}


def test_timeout_applies_to_supervisors_own_socket(tmp_path):
    """A daemon that accepts and never answers: the call fails after call_timeout instead of hanging."""
    path = str(tmp_path / 'mute.sock')
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)
    try:
        client = rpc.SupervisorClient('unix://' + path, timeout=0.3)
        with pytest.raises(rpc.SupervisorError) as err:
            client.get_state()
        assert err.value.kind == rpc.KIND_TIMEOUT and 'within 0.3s' in err.value.msg
        assert socket.getdefaulttimeout() is None  # restored
    finally:
        server.close()


def _client():
    return rpc.SupervisorClient('unix:///run/s.sock', 'admin', 'pw', source='[unix_http_server] file in /etc/x.conf')


@pytest.mark.parametrize('exc, kind, words', [
    (FileNotFoundError(errno.ENOENT, 'No such file'), rpc.KIND_SOCKET_MISSING, ['does not exist', '/run/s.sock', 'supervisord running']),
    (PermissionError(errno.EACCES, 'Permission denied'), rpc.KIND_PERMISSION, ['Permission denied', 'become: true']),
    (ConnectionRefusedError(errno.ECONNREFUSED, 'refused'), rpc.KIND_REFUSED, ['nothing listens']),
    (socket.timeout('timed out'), rpc.KIND_TIMEOUT, ['did not answer']),
    (xmlrpc_client.ProtocolError('localhost/RPC2', 401, 'Unauthorized', {}), rpc.KIND_AUTH,
     ['rejected the credentials', '401', "username 'admin'", 'username and password options']),
    (xmlrpc_client.ProtocolError('localhost/RPC2', 500, 'Oops', {}), rpc.KIND_PROTOCOL, ['HTTP 500']),
    (xmlrpc_client.Fault(10, 'BAD_NAME: myauth'), rpc.KIND_BAD_NAME, ["'myauth'", 'supervisorctl reread']),
    (xmlrpc_client.Fault(6, 'SHUTDOWN_STATE'), rpc.KIND_CONNECTION, ['shutting down']),
    (xmlrpc_client.Fault(30, 'FAILED: x'), rpc.KIND_FAULT, ['FAILED']),
])
def test_translate(exc, kind, words):
    err = _client().translate(exc, 'supervisor.stopProcessGroup', ('myauth', False))
    assert err.kind == kind
    for word in words:
        assert word in err.msg
    assert 'pw' not in err.msg.replace('/run', '')  # password never in messages


class _RaisingProxy(object):
    def __init__(self, exc):
        self.exc = exc
        self.calls = []

    def __getattr__(self, name):
        return _RaisingMethod(self, name)


class _RaisingMethod(object):
    def __init__(self, proxy, name):
        self.proxy, self.name = proxy, name

    def __getattr__(self, name):
        return _RaisingMethod(self.proxy, self.name + '.' + name)

    def __call__(self, *args):
        self.proxy.calls.append((self.name, args))
        if self.proxy.exc:
            raise self.proxy.exc
        return {'statename': 'RUNNING'}


def test_call_translates_and_drops_connection(monkeypatch):
    client = _client()
    proxy = _RaisingProxy(PermissionError(errno.EACCES, 'denied'))
    monkeypatch.setattr(client, '_make_proxy', lambda: proxy)
    with pytest.raises(rpc.SupervisorError) as err:
        client.get_state()
    assert err.value.kind == rpc.KIND_PERMISSION and err.value.is_connection_error is False
    assert client._proxy is None  # reconnect next time
    proxy.exc = None
    assert client.get_state() == {'statename': 'RUNNING'}
    assert proxy.calls[-1] == ('supervisor.getState', ())


def test_call_reraises_unknown_errors(monkeypatch):
    client = _client()
    monkeypatch.setattr(client, '_make_proxy', lambda: _RaisingProxy(ValueError('bug')))
    with pytest.raises(ValueError):
        client.get_pid()


def test_optional_log_reads_tolerate_faults(monkeypatch):
    client = _client()
    monkeypatch.setattr(client, '_make_proxy', lambda: _RaisingProxy(xmlrpc_client.Fault(20, 'NO_FILE')))
    assert client.read_main_log_tail() == ''
    assert client.tail_process_log('x') == ''


def test_unsupported_url():
    with pytest.raises(rpc.SupervisorError):
        rpc.SupervisorClient('ftp://x')


def test_missing_socket_is_a_connection_error(tmp_path):
    client = rpc.SupervisorClient('unix://' + str(tmp_path / 'none.sock'))
    with pytest.raises(rpc.SupervisorError) as err:
        client.get_state()
    assert err.value.kind == rpc.KIND_SOCKET_MISSING and err.value.is_connection_error


def test_without_supervisor_the_message_says_what_to_install(monkeypatch):
    monkeypatch.setattr(rpc, 'HAS_SUPERVISOR', False)
    with pytest.raises(rpc.SupervisorError) as err:
        rpc.SupervisorClient('unix:///run/s.sock')
    assert 'supervisor' in err.value.msg and 'ansible_python_interpreter' in err.value.msg


def test_socket_identity(tmp_path):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    path = str(tmp_path / 's.sock')
    sock.bind(path)
    try:
        ident = rpc.socket_identity(path)
        assert ident and len(ident) == 2
    finally:
        sock.close()
    assert rpc.socket_identity(str(tmp_path / 'missing')) is None
    assert rpc.socket_identity(None) is None


def test_a_regular_file_is_not_called_a_stale_socket(tmp_path):
    from ansible_collections.authops.celery_tuning.plugins.module_utils.supervisor_rpc import (
        SupervisorError as Error,
        connect_from_params as connect,
    )

    path = tmp_path / "supervisor.sock"
    path.write_text("not a socket")
    with pytest.raises(Error) as err:
        connect(socket_path=str(path)).get_state()
    assert "is not a socket (a regular file)" in err.value.msg and "stale" not in err.value.msg


def test_visibly_absent(tmp_path):
    assert rpc.visibly_absent(str(tmp_path / 'none.sock')) is True
    sock = tmp_path / 'there.sock'
    sock.write_text('')
    assert rpc.visibly_absent(str(sock)) is False
    assert rpc.visibly_absent('http://127.0.0.1:9001') is False
    conf = tmp_path / 'supervisord.conf'
    conf.write_text('[supervisorctl]\n')
    assert rpc.visibly_absent(None, str(conf)) is False
