"""multiprocessing.process for the wasmbuild sandbox: the one process there is, and a
BaseProcess whose start() raises OSError(ENOSYS) (WASI cannot start processes)."""

import errno as _errno
import itertools as _itertools
import os as _os

__all__ = ["BaseProcess", "current_process", "active_children", "parent_process"]

_counter = _itertools.count(1)


class BaseProcess:
    _start_method = None

    def __init__(self, group=None, target=None, name=None, args=(), kwargs={}, *, daemon=None):
        assert group is None, "group argument must be None for now"
        count = next(_counter)
        self._identity = (count,)
        self._target = target
        self._args = tuple(args)
        self._kwargs = dict(kwargs)
        self._name = name or "%s-%d" % (type(self).__name__, count)
        self._daemonic = bool(daemon)
        self._popen = None
        self._config = {}

    def run(self):
        if self._target:
            self._target(*self._args, **self._kwargs)

    def start(self):
        raise OSError(
            _errno.ENOSYS,
            "multiprocessing.Process.start: WASI cannot start processes (wasmbuild sandbox)",
        )

    def _bootstrap(self, parent_sentinel=None):
        self.run()
        return 0

    def join(self, timeout=None):
        assert self._popen is not None, "can only join a started process"

    def is_alive(self):
        return self is _current_process

    def terminate(self):
        pass

    def kill(self):
        pass

    def close(self):
        pass

    @property
    def name(self):
        return self._name

    @name.setter
    def name(self, name):
        self._name = name

    @property
    def daemon(self):
        return self._daemonic

    @daemon.setter
    def daemon(self, daemonic):
        self._daemonic = bool(daemonic)

    @property
    def authkey(self):
        return self._config.get("authkey", b"")

    @property
    def exitcode(self):
        return None

    @property
    def ident(self):
        return _os.getpid() if self is _current_process else None

    pid = ident

    @property
    def sentinel(self):
        raise ValueError("process not started")

    def __repr__(self):
        status = "started" if self is _current_process else "initial"
        return "<%s name=%r %s>" % (type(self).__name__, self._name, status)


class _MainProcess(BaseProcess):
    def __init__(self):
        self._identity = ()
        self._name = "MainProcess"
        self._daemonic = False
        self._popen = None
        self._target = None
        self._args = ()
        self._kwargs = {}
        self._config = {"authkey": b"", "semprefix": "/mp"}

    def close(self):
        pass


_current_process = _MainProcess()


def current_process():
    return _current_process


def parent_process():
    return None


def active_children():
    return []
