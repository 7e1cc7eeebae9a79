"""multiprocessing for the wasmbuild sandbox.

CPython's WASI build ships no multiprocessing: WASI cannot start processes. Code that only
imports it (coverage.py, pytest-cov, many libraries) or asks about the one process there is
works with this package; starting a process, a pool or a manager raises OSError(ENOSYS)
naming the reason. Locks, events, semaphores and conditions are threading's: in one process
they are the same thing.
"""

import errno as _errno
import os as _os
import threading as _threading

from . import process
from .process import (
    BaseProcess,
    active_children,
    current_process,
    parent_process,
)

__all__ = [
    "Array", "AuthenticationError", "Barrier", "BoundedSemaphore", "BufferTooShort",
    "Condition", "Event", "JoinableQueue", "Lock", "Manager", "Pipe", "Pool", "Process",
    "ProcessError", "Queue", "RLock", "Semaphore", "SimpleQueue", "TimeoutError", "Value",
    "active_children", "allow_connection_pickling", "cpu_count", "current_process",
    "freeze_support", "get_all_start_methods", "get_context", "get_logger",
    "get_start_method", "parent_process", "set_executable", "set_forkserver_preload",
    "set_start_method",
]


class ProcessError(Exception):
    pass


class BufferTooShort(ProcessError):
    pass


class TimeoutError(ProcessError):
    pass


class AuthenticationError(ProcessError):
    pass


def _refuse(what):
    return OSError(
        _errno.ENOSYS,
        "%s: WASI cannot start processes (wasmbuild sandbox)" % what,
    )


class Process(BaseProcess):
    pass


def cpu_count():
    return _os.cpu_count() or 1


def freeze_support():
    pass


def get_all_start_methods():
    return ["spawn"]


def get_start_method(allow_none=False):
    return "spawn"


def set_start_method(method, force=False):
    if method not in (None, "spawn"):
        raise ValueError("cannot find context for %r" % method)


def set_executable(executable):
    pass


def set_forkserver_preload(module_names):
    pass


def allow_connection_pickling():
    pass


def get_logger():
    import logging

    return logging.getLogger("multiprocessing")


Lock = _threading.Lock
RLock = _threading.RLock
Event = _threading.Event
Semaphore = _threading.Semaphore
BoundedSemaphore = _threading.BoundedSemaphore
Condition = _threading.Condition
Barrier = _threading.Barrier


def _needs_processes(name):
    def refuse(*args, **kwargs):
        raise _refuse("multiprocessing.%s" % name)

    refuse.__name__ = refuse.__qualname__ = name
    return refuse


Pool = _needs_processes("Pool")
Manager = _needs_processes("Manager")
Pipe = _needs_processes("Pipe")
Queue = _needs_processes("Queue")
JoinableQueue = _needs_processes("JoinableQueue")
SimpleQueue = _needs_processes("SimpleQueue")
Value = _needs_processes("Value")
Array = _needs_processes("Array")


class _Context:
    """What get_context returns: this module's functions, one start method."""

    Process = Process
    ProcessError = ProcessError
    BufferTooShort = BufferTooShort
    TimeoutError = TimeoutError
    AuthenticationError = AuthenticationError

    def __init__(self):
        for name in __all__:
            if not hasattr(type(self), name):
                setattr(self, name, globals()[name])

    def get_context(self, method=None):
        return get_context(method)


def get_context(method=None):
    if method not in (None, "spawn"):
        raise ValueError("cannot find context for %r" % method)
    return _Context()
