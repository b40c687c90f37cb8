# -*- coding: utf-8 -*-
# Copyright: authops.celery_tuning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""supervisord's errors as the collection reports them: the supervisor package (importable or not, and what to
do then), its XML-RPC fault codes, and :class:`SupervisorError` with the kind of each failure."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import traceback

from ansible.module_utils.basic import missing_required_lib

try:
    from supervisor.xmlrpc import Faults
    HAS_SUPERVISOR = True
    SUPERVISOR_IMPORT_ERROR = None
except ImportError:  # the modules report it with missing_supervisor_message()
    Faults = None
    HAS_SUPERVISOR = False
    SUPERVISOR_IMPORT_ERROR = traceback.format_exc()


def _fault(name):
    return getattr(Faults, name, None)


FAULT_SHUTDOWN_STATE = _fault('SHUTDOWN_STATE')
FAULT_BAD_NAME = _fault('BAD_NAME')
FAULT_NO_FILE = _fault('NO_FILE')
FAULT_NOT_EXECUTABLE = _fault('NOT_EXECUTABLE')
FAULT_SPAWN_ERROR = _fault('SPAWN_ERROR')
FAULT_ALREADY_STARTED = _fault('ALREADY_STARTED')
FAULT_NOT_RUNNING = _fault('NOT_RUNNING')
FAULT_SUCCESS = _fault('SUCCESS')

#: fault code -> name, e.g. 70 -> 'NOT_RUNNING', from the installed supervisor's ``Faults``.
FAULT_NAMES = dict((code, name) for name, code in vars(Faults).items()
                   if name.isupper() and isinstance(code, int)) if HAS_SUPERVISOR else {}


def missing_supervisor_message():
    """What to do when the ``supervisor`` package cannot be imported on the target."""
    return missing_required_lib(
        'supervisor', reason='to talk to supervisord (its own XML-RPC client)',
        url='https://supervisord.org') + (
        ' It comes with the supervisor package of Debian/Ubuntu for /usr/bin/python3; otherwise set '
        'ansible_python_interpreter to the Python that supervisord runs from.')


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
