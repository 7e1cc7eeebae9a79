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

# wasmbuild: packages installed by `pip install` (the host installs them into the per-build
# home). addsitedir also runs their .pth files (editable installs, namespace packages).
def _wasmbuild_user_site():
    import os
    import sys

    if sys.flags.no_user_site:
        return
    site_packages = "/root/.local/lib/python3.12/site-packages"
    if os.path.isdir(site_packages) and site_packages not in sys.path:
        import site

        site.addsitedir(site_packages)


_wasmbuild_user_site()
del _wasmbuild_user_site
