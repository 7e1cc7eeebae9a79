# wasmbuild start-up step: WASI preview1 has no working directory, so every program starts
# at "/". The shell passes the real one in $PWD; move there before user code runs.
import os as _os

_pwd = _os.environ.get("PWD")
if _pwd and _pwd.startswith("/"):
    try:
        _os.chdir(_pwd)
    except OSError:
        pass
del _os, _pwd

# /dev, dup/dup2 and the build user (uid 0, root): see wasmbuild_posix.py.
import wasmbuild_posix  # noqa: E402,F401
