# wasmbuild's start-up steps, in `start()`, which this module's import runs. The 3.13
# bundle's snapshot holds the module imported (it was imported with
# `sys._wasmbuild_warm_up` set, and started nothing); that bundle's `main` calls `start()`
# itself once `site` has run.


# WASI preview1 has no working directory, so every program starts at "/". The shell passes
# the real one in $PWD; move there before user code runs.
def _wasmbuild_chdir():
    import os

    pwd = os.environ.get("PWD")
    if pwd and pwd.startswith("/"):
        try:
            os.chdir(pwd)
        except OSError:
            pass


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


# wasmbuild: the standard library is a zip (the 3.12 bundle's /usr/local/lib/python312.zip,
# bytecode only), but sysconfig names lib/python3.12 as its place: coverage, which tells the
# standard library by sysconfig's paths, measured the zip's modules as the program's and
# then failed its report ("No source for code"). Once `sysconfig` is imported, its schemes
# name the zip. (The 3.13 bundle's zip is `sys._stdlib_dir` and its sysconfig says so.)
def _wasmbuild_sysconfig():
    import sys

    zip_path = "%s/lib/python%d%d.zip" % (sys.base_prefix, *sys.version_info[:2])
    if getattr(sys, "_stdlib_dir", None) == zip_path or zip_path not in sys.path:
        return
    stdlib = "{installed_base}/{platlibdir}/python%d%d.zip" % sys.version_info[:2]

    def patch(sysconfig):
        schemes = getattr(sysconfig, "_INSTALL_SCHEMES", {})
        for name in ("posix_prefix", "posix_venv"):
            if name in schemes:
                schemes[name]["stdlib"] = stdlib

    if "sysconfig" in sys.modules:
        patch(sys.modules["sysconfig"])
        return

    class Loader:
        def __init__(self, loader):
            self._loader = loader

        def __getattr__(self, name):
            return getattr(self._loader, name)

        def create_module(self, spec):
            return self._loader.create_module(spec)

        def exec_module(self, module):
            self._loader.exec_module(module)
            patch(module)

    class Finder:
        @staticmethod
        def find_spec(fullname, path=None, target=None):
            if fullname != "sysconfig":
                return None
            sys.meta_path.remove(Finder)
            from importlib.machinery import PathFinder

            spec = PathFinder.find_spec(fullname, path)
            if spec is not None and spec.loader is not None:
                spec.loader = Loader(spec.loader)
            return spec

    sys.meta_path.insert(0, Finder)


def start():
    """What each process needs: its directory, `__main__`'s file, the POSIX shims (/dev,
    dup/dup2 and the build user, uid 0: see wasmbuild_posix.py; 3.13's are imported
    already, maybe before this process started: their `start` does its part), the
    packages `pip install` put in the home, and the virtual environment."""
    _wasmbuild_chdir()
    _wasmbuild_main_file()
    import wasmbuild_posix

    wasmbuild_posix.start()
    _wasmbuild_user_site()
    _wasmbuild_venv()
    _wasmbuild_sysconfig()


def _wasmbuild_imported():
    import sys

    if not getattr(sys, "_wasmbuild_warm_up", False):
        start()


_wasmbuild_imported()
del _wasmbuild_imported
