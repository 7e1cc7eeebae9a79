"""wasmbuild's POSIX shims for CPython on WASI, imported at start-up (by sitecustomize; the
3.13 bundle's `main` imports them with or without `site`, its snapshot holds them).

The guest runs as the build user: root (uid 0, gid 0, home /root), as CodeBuild runs
builds. WASI has no users and no dup, so:

- os.getuid/geteuid/getgid/getegid/getgroups/getlogin answer as root, os.umask keeps a
  mask (022) it cannot apply, and `pwd` / `grp` stand-ins (used only if the interpreter
  has none) know that one user and group;
- os.dup(fd) is openat(fd, "."), which wasmbuild's sandbox answers, for a descriptor that
  is no directory, with a real duplicate (one open file: offset and flags shared), and
  os.dup2(fd, fd2) is linkat(fd, ".", fd2, "."), which the sandbox turns into dup2. So
  pytest's default fd capture and faulthandler work;
- modules the WASI build leaves out but code imports: `multiprocessing` (a package beside
  this file: importable, one process, starting another raises OSError(ENOSYS)) and
  `concurrent.futures.thread` (found by the finder below: a ThreadPoolExecutor that runs
  each call as it is submitted);
- `socket.gethostname` ($HOSTNAME, else localhost), added when socket is first imported;
- processes: `subprocess.Popen` (and so run, check_output, os.popen…) and `os.system`
  start sandboxed programs through wasmbuild's /dev/process (wasmbuild_subprocess.py),
  put in place when subprocess is first imported.
"""

import os as _os
import sys as _sys

_ROOT_HOME = "/root"


def _install_ids():
    def answer(name, value):
        def fn():
            return list(value) if isinstance(value, list) else value

        fn.__name__ = fn.__qualname__ = name
        fn.__module__ = "os"
        fn.__doc__ = "Return the build user's %s (wasmbuild: root)." % name[3:]
        return fn

    for name, value in (
        ("getuid", 0),
        ("geteuid", 0),
        ("getgid", 0),
        ("getegid", 0),
        ("getgroups", [0]),
        ("getlogin", "root"),
    ):
        if not hasattr(_os, name):
            setattr(_os, name, answer(name, value))
    if not hasattr(_os, "umask"):
        # WASI has no mode mask: files get the modes the host gives them. The value is
        # kept so that the usual "set, then restore" dance reads back what it set.
        mask = [0o022]

        def umask(new, /):
            """Set the current numeric umask and return the previous umask."""
            old, mask[0] = mask[0], new & 0o777
            return old

        umask.__module__ = "os"
        _os.umask = umask


class _Struct(tuple):
    """A tuple with named fields, as the C modules' struct sequences."""

    __slots__ = ()
    _fields = ()

    def __new__(cls, values):
        values = tuple(values)
        if len(values) != len(cls._fields):
            raise TypeError(
                "%s takes a %d-sequence (%d-sequence given)"
                % (cls.__name__, len(cls._fields), len(values))
            )
        return tuple.__new__(cls, values)

    def __repr__(self):
        inner = ", ".join("%s=%r" % (f, v) for f, v in zip(self._fields, self))
        return "%s.%s(%s)" % (self._module, type(self).__name__, inner)

    def __reduce__(self):
        return (type(self), (tuple(self),))


def _struct(module, name, fields):
    namespace = {"__slots__": (), "_fields": fields, "_module": module}
    for i, field in enumerate(fields):
        namespace[field] = property(lambda self, i=i: self[i])
    cls = type(name, (_Struct,), namespace)
    cls.__module__ = module
    cls.n_fields = cls.n_sequence_fields = len(fields)
    cls.n_unnamed_fields = 0
    return cls


def _module(name, doc, attrs):
    import importlib.machinery

    module = type(_sys)(name, doc)
    module.__spec__ = importlib.machinery.ModuleSpec(name, None, origin="wasmbuild")
    module.__dict__.update(attrs)
    _sys.modules[name] = module


def _install_pwd():
    try:
        import pwd  # noqa: F401
    except ImportError:
        pass
    else:
        return
    struct_passwd = _struct(
        "pwd",
        "struct_passwd",
        ("pw_name", "pw_passwd", "pw_uid", "pw_gid", "pw_gecos", "pw_dir", "pw_shell"),
    )
    root = struct_passwd(("root", "x", 0, 0, "root", _ROOT_HOME, "/bin/sh"))

    def getpwuid(uid):
        if uid == 0:
            return root
        raise KeyError("getpwuid(): uid not found: %r" % (uid,))

    def getpwnam(name):
        if not isinstance(name, str):
            raise TypeError("getpwnam(): argument must be str, not %s" % type(name).__name__)
        if name == "root":
            return root
        raise KeyError("getpwnam(): name not found: %r" % (name,))

    def getpwall():
        return [root]

    _module(
        "pwd",
        "The password database (wasmbuild: the build user, root, only).",
        {
            "struct_passwd": struct_passwd,
            "getpwuid": getpwuid,
            "getpwnam": getpwnam,
            "getpwall": getpwall,
        },
    )


def _install_grp():
    try:
        import grp  # noqa: F401
    except ImportError:
        pass
    else:
        return
    struct_group = _struct("grp", "struct_group", ("gr_name", "gr_passwd", "gr_gid", "gr_mem"))
    root = struct_group(("root", "x", 0, []))

    def getgrgid(gid):
        if gid == 0:
            return root
        raise KeyError("getgrgid(): gid not found: %r" % (gid,))

    def getgrnam(name):
        if name == "root":
            return root
        raise KeyError("getgrnam(): name not found: %r" % (name,))

    def getgrall():
        return [root]

    _module(
        "grp",
        "The group database (wasmbuild: root only).",
        {
            "struct_group": struct_group,
            "getgrgid": getgrgid,
            "getgrnam": getgrnam,
            "getgrall": getgrall,
        },
    )


def _install_dup():
    # The interpreter keeps its standard library in wasi-vfs, which gives descriptors
    # numbers of its own: the requests name descriptors as descriptors (dir_fd), never as
    # /dev/fd/<n> paths, so wasi-vfs hands the sandbox its numbers.
    from errno import EBADF

    def _fd(fd):
        fd = fd.__index__()
        if fd < 0:
            raise OSError(EBADF, _os.strerror(EBADF))
        return fd

    def dup(fd, /):
        """Return a duplicate of a file descriptor."""
        try:
            return _os.open(".", _os.O_RDONLY, dir_fd=_fd(fd))
        except OSError as e:
            raise OSError(e.errno, _os.strerror(e.errno)) from None

    def dup2(fd, fd2, inheritable=True):
        """Duplicate file descriptor fd to fd2, closing fd2 first if open."""
        fd, fd2 = _fd(fd), _fd(fd2)
        try:
            if fd == fd2:
                _os.fstat(fd)
            else:
                _os.link(".", ".", src_dir_fd=fd, dst_dir_fd=fd2)
        except OSError as e:
            raise OSError(e.errno, _os.strerror(e.errno)) from None
        return fd2

    dup.__module__ = dup2.__module__ = "os"
    _os.dup = dup
    _os.dup2 = dup2


class _LeftOutModules:
    """Finds modules of packages CPython's WASI build has but leaves out of them
    (`concurrent.futures.thread`): the shim beside this file. Last on sys.meta_path, so it
    is asked only when the interpreter has no such module."""

    _shims = {"concurrent.futures.thread": "wasmbuild_futures_thread"}

    @classmethod
    def find_spec(cls, name, path=None, target=None):
        shim = cls._shims.get(name)
        if shim is None:
            return None
        import importlib.util

        found = importlib.util.find_spec(shim)
        if found is None:
            return None
        return importlib.util.spec_from_file_location(name, found.origin)


def _patch_socket(module):
    """socket.gethostname, which the WASI build lacks (coverage.py names its data files
    with it): $HOSTNAME, else "localhost". Nothing reaches a network."""
    if not hasattr(module, "gethostname"):

        def gethostname():
            """Return the current host name (wasmbuild: $HOSTNAME or localhost)."""
            return _os.environ.get("HOSTNAME") or "localhost"

        gethostname.__module__ = "socket"
        module.gethostname = gethostname


def _patch_subprocess(module):
    """subprocess.Popen over /dev/process (see wasmbuild_subprocess). When subprocess is
    first imported by wasmbuild_subprocess itself (os.system), that module installs its
    Popen once it is complete."""
    shim = _sys.modules.get("wasmbuild_subprocess")
    if shim is not None and not hasattr(shim, "install"):
        return
    import wasmbuild_subprocess

    wasmbuild_subprocess.install(module)


def _system(command):
    """Run the command in a subshell (wasmbuild: the build shell, its programs sandboxed)."""
    import wasmbuild_subprocess

    return wasmbuild_subprocess.system(command)


class _Patching:
    """Completes modules of the WASI build when they are first imported (importing them
    at start-up would cost every program the time): finds the module as the interpreter
    would, then runs the patch after the module's own code."""

    _patches = {"socket": _patch_socket, "subprocess": _patch_subprocess}

    def __init__(self, loader, patch):
        self._loader = loader
        self._patch = patch

    @classmethod
    def find_spec(cls, name, path=None, target=None):
        patch = cls._patches.get(name)
        if patch is None:
            return None
        for finder in _sys.meta_path:
            find = getattr(finder, "find_spec", None)
            if finder is cls or find is None:
                continue
            spec = find(name, path, target)
            if spec is not None:
                if spec.loader is not None:
                    spec.loader = cls(spec.loader, patch)
                return spec
        return None

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        self._patch(module)

    def __getattr__(self, name):
        return getattr(self._loader, name)


def _install_executable():
    """sys.executable, which the WASI build leaves empty: this bundle's python3, beside
    the lib/ holding this file (so `subprocess.run([sys.executable, …])` works)."""
    # (Not set at all while the 3.13 snapshot is made: its start-up sets it later.)
    if not getattr(_sys, "executable", None):
        bundle = _os.path.dirname(_os.path.dirname(_os.path.abspath(__file__)))
        _sys.executable = bundle + "/bin/python3"
        if not getattr(_sys, "_base_executable", None):
            _sys._base_executable = _sys.executable


def start():
    """What each process needs of the shims, also when they were imported before its
    start-up finished (the 3.13 bundle's snapshot holds them imported; the start-up then
    emptied `sys.executable` and put the path finder after the finders below)."""
    if _sys.platform != "wasi":
        return
    _install_executable()
    if _Patching not in _sys.meta_path:
        _sys.meta_path.insert(0, _Patching)
    if _LeftOutModules in _sys.meta_path:
        _sys.meta_path.remove(_LeftOutModules)
    _sys.meta_path.append(_LeftOutModules)


if _sys.platform == "wasi":
    start()
    _install_ids()
    _install_pwd()
    _install_grp()
    if not hasattr(_os, "system"):
        _system.__name__ = "system"
        _system.__module__ = "os"
        _os.system = _system
    if _os.open in _os.supports_dir_fd and _os.link in _os.supports_dir_fd:
        _install_dup()
