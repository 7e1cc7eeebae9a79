"""concurrent.futures.thread for the wasmbuild sandbox.

CPython's WASI build ships none: WASI programs have one thread. This ThreadPoolExecutor
runs each call when it is submitted, in the caller's thread, and returns a future that is
already done (with its result or its exception). Code that fans work out to a pool and
collects the results gets them, serially; code that needs a task to run concurrently with
its caller (one waiting on the other) cannot work here.
"""

from concurrent.futures import _base

__all__ = ["BrokenThreadPool", "ThreadPoolExecutor"]


class BrokenThreadPool(_base.BrokenExecutor):
    """The initializer failed: no more work is taken."""


class ThreadPoolExecutor(_base.Executor):
    def __init__(self, max_workers=None, thread_name_prefix="", initializer=None, initargs=()):
        if max_workers is not None and max_workers <= 0:
            raise ValueError("max_workers must be greater than 0")
        if initializer is not None and not callable(initializer):
            raise TypeError("initializer must be a callable")
        self._max_workers = max_workers or 1
        self._thread_name_prefix = thread_name_prefix
        self._initializer = initializer
        self._initargs = initargs
        self._initialized = False
        self._broken = False
        self._shutdown = False

    def submit(self, fn, /, *args, **kwargs):
        if self._broken:
            raise BrokenThreadPool(self._broken)
        if self._shutdown:
            raise RuntimeError("cannot schedule new futures after shutdown")
        if not self._initialized and self._initializer is not None:
            try:
                self._initializer(*self._initargs)
            except BaseException:
                self._broken = "A thread initializer failed, the thread pool is not usable anymore"
                raise BrokenThreadPool(self._broken)
        self._initialized = True
        future = _base.Future()
        future.set_running_or_notify_cancel()
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            future.set_exception(exc)
        else:
            future.set_result(result)
        return future

    submit.__doc__ = _base.Executor.submit.__doc__

    def shutdown(self, wait=True, *, cancel_futures=False):
        self._shutdown = True

    shutdown.__doc__ = _base.Executor.shutdown.__doc__
