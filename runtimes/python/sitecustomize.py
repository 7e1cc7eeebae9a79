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


# wasmbuild: CPython made a relative script path absolute against `/` before the step above
# (the 3.12 bundle's `__main__.__file__` was `//sub/x.py`; 3.13's `main` moves to $PWD
# first). Code that finds its data beside `__file__` needs the real path: CPython keeps a
# `__file__` that `__main__` already has when it runs the script. (`sys.path[0]`, added
# after this, stays relative on 3.12: `sub`, right while the directory is not changed.)
def _wasmbuild_main_file():
    import os
    import sys

    script = sys.argv[0] if sys.argv else ""
    main = sys.modules.get("__main__")
    if not script or script.startswith("-") or os.path.isabs(script) or main is None:
        return
    if hasattr(main, "__file__"):
        return
    path = os.path.normpath(os.path.join(os.getcwd(), script))
    if not os.path.isfile(path):
        return
    main.__file__ = path


_wasmbuild_main_file()
del _wasmbuild_main_file

# /dev, dup/dup2 and the build user (uid 0, root): see wasmbuild_posix.py. (3.13's are
# imported already, maybe before this process started: `start` does its part.)
import wasmbuild_posix  # noqa: E402

wasmbuild_posix.start()

# wasmbuild: packages installed by `pip install` (the host installs them into the per-build
# home). addsitedir also runs their .pth files (editable installs, namespace packages).
def _wasmbuild_user_site():
    import os
    import sys

    if sys.flags.no_user_site:
        return
    site_packages = "/root/.local/lib/python%d.%d/site-packages" % sys.version_info[:2]
    if os.path.isdir(site_packages) and site_packages not in sys.path:
        import site

        site.addsitedir(site_packages)


_wasmbuild_user_site()
del _wasmbuild_user_site

# wasmbuild: a virtual environment made by `python -m venv` (wasmbuild's own, see
# src/python/venv.rs) adds its site-packages when VIRTUAL_ENV names it, or when the
# program is a script of its bin/ (a console script installed there).
def _wasmbuild_venv():
    import os
    import site
    import sys

    env = os.environ.get("VIRTUAL_ENV")
    if not env and sys.argv and sys.argv[0]:
        candidate = os.path.dirname(os.path.dirname(os.path.abspath(sys.argv[0])))
        if os.path.isfile(os.path.join(candidate, "pyvenv.cfg")):
            env = candidate
    if env and os.path.isfile(os.path.join(env, "pyvenv.cfg")):
        packages = os.path.join(env, "lib", "python%d.%d" % sys.version_info[:2], "site-packages")
        if os.path.isdir(packages):
            site.addsitedir(packages)
            sys.path.remove(packages)
            sys.path.insert(1, packages)
        sys.prefix = sys.exec_prefix = env


_wasmbuild_venv()
del _wasmbuild_venv
