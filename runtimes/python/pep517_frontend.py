# wasmbuild's PEP 517 frontend, run in the sandbox by the guest's python:
#     python3 pep517_frontend.py REQUEST.json
# The host (src/python/frontend.rs) writes the request, installs the build requirements
# into the build environment and reads the result this script writes (JSON).
#
# request: {"project": DIR, "backend": "mod[:obj]", "backend_path": [...],
#           "build_env": DIR or null, "action": "build" | "metadata",
#           "kind": "wheel" | "editable" | "sdist", "out_dir": DIR,
#           "check_requires": bool, "config_settings": {...}, "result": FILE}
# result:  {"ok": true, "file": NAME} | {"ok": true, "metadata": TEXT}
#        | {"ok": true, "missing": [REQ, ...]}          (build requirements to install first)
#        | {"ok": false, "native": REASON} | {"ok": false, "error": REASON}
import json
import os
import sys
import traceback


def _write(path, value):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(value, f)


class _Native(Exception):
    """The build needs a C compiler (or another native tool) the sandbox does not have."""


_native_reasons = []


def _native_error_class():
    """An error the distutils machinery treats as a compiler failure, so that optional
    extensions (`Extension(optional=True)`, projects falling back to pure Python) still
    build; when it escapes, the frontend reports it as needing native code."""
    bases = []
    # (`distutils` is setuptools' copy once setuptools is imported; importing
    # `setuptools._distutils.*` by that name would load a second, unpatched copy.)
    for name in ("distutils.errors",):
        try:
            mod = __import__(name, fromlist=["CompileError"])
        except Exception:
            continue
        for cls in (getattr(mod, "CompileError", None), getattr(mod, "DistutilsPlatformError", None)):
            if cls is not None and cls not in bases:
                bases.append(cls)
        break
    return type("WasmbuildNeedsNative", tuple(bases) + (_Native,), {})


def _patch_setuptools():
    """Compiling extensions fails at once with a clear reason (there is no compiler)."""
    if "setuptools" not in sys.modules:
        return
    error = _native_error_class()
    for name in ("setuptools.command.build_ext", "distutils.command.build_ext"):
        try:
            mod = __import__(name, fromlist=["build_ext"])
        except Exception:
            continue
        cls = getattr(mod, "build_ext", None)
        if cls is None or getattr(cls, "_wasmbuild_patched", False):
            continue

        def build_extension(self, ext, _error=error):
            reason = "it compiles the C extension module %s and the sandbox has no C compiler" % ext.name
            _native_reasons.append(reason)
            raise _error(reason)

        cls.build_extension = build_extension
        cls._wasmbuild_patched = True
    for name in ("distutils.command.build_clib",):
        try:
            mod = __import__(name, fromlist=["build_clib"])
        except Exception:
            continue
        cls = getattr(mod, "build_clib", None)
        if cls is None:
            continue

        def build_libraries(self, libraries, _error=error):
            if libraries:
                reason = "it compiles C libraries (%s) and the sandbox has no C compiler" % ", ".join(
                    lib[0] for lib in libraries)
                _native_reasons.append(reason)
                raise _error(reason)

        cls.build_libraries = build_libraries


def _load_backend(spec, backend_path, project):
    if backend_path:
        for entry in reversed(backend_path):
            sys.path.insert(0, os.path.normpath(os.path.join(project, entry)))
    module_name, _, obj = spec.partition(":")
    backend = __import__(module_name, fromlist=["_"])
    for part in filter(None, obj.split(".")):
        backend = getattr(backend, part)
    return backend


def _requirement_name(req):
    import re
    m = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", req)
    return m.group(1) if m else None


def _missing(requires):
    """The requirements the build environment does not satisfy yet."""
    try:
        from importlib import metadata
    except ImportError:
        return list(requires)
    try:
        from packaging.requirements import Requirement
    except Exception:
        Requirement = None
    missing = []
    for req in requires:
        if Requirement is not None:
            try:
                parsed = Requirement(req)
                if parsed.marker is not None and not parsed.marker.evaluate():
                    continue
                version = metadata.version(parsed.name)
                if parsed.specifier and not parsed.specifier.contains(version, prereleases=True):
                    missing.append(req)
                continue
            except metadata.PackageNotFoundError:
                missing.append(req)
                continue
            except Exception:
                pass
        name = _requirement_name(req)
        try:
            metadata.version(name)
        except Exception:
            missing.append(req)
    return missing


def _metadata_from_wheel(path):
    import zipfile
    with zipfile.ZipFile(path) as z:
        for name in z.namelist():
            parts = name.split("/")
            if len(parts) == 2 and parts[0].endswith(".dist-info") and parts[1] == "METADATA":
                return z.read(name).decode("utf-8")
    raise RuntimeError("the built wheel has no METADATA")


def main():
    request_path = sys.argv[1]
    with open(request_path, encoding="utf-8") as f:
        request = json.load(f)
    result_path = request["result"]
    project = request["project"]
    os.chdir(project)
    if request.get("build_env"):
        import site
        site.addsitedir(request["build_env"])
    config = request.get("config_settings") or None
    kind = request.get("kind", "wheel")
    action = request.get("action", "build")
    try:
        backend = _load_backend(request["backend"], request.get("backend_path"), project)
        if request.get("check_requires"):
            hook = {
                "wheel": "get_requires_for_build_wheel",
                "editable": "get_requires_for_build_editable",
                "sdist": "get_requires_for_build_sdist",
            }[kind if action == "build" else "wheel"]
            get = getattr(backend, hook, None)
            requires = list(get(config)) if get is not None else []
            missing = _missing(requires)
            if missing:
                _write(result_path, {"ok": True, "missing": missing})
                return 0
        _patch_setuptools()
        out_dir = request["out_dir"]
        os.makedirs(out_dir, exist_ok=True)
        if action == "metadata":
            prepare = getattr(backend, "prepare_metadata_for_build_wheel", None)
            if prepare is not None:
                name = prepare(out_dir, config)
                with open(os.path.join(out_dir, name, "METADATA"), encoding="utf-8") as f:
                    _write(result_path, {"ok": True, "metadata": f.read()})
                return 0
            name = backend.build_wheel(out_dir, config)
            _write(result_path, {"ok": True, "metadata": _metadata_from_wheel(os.path.join(out_dir, name))})
            return 0
        if kind == "wheel":
            name = backend.build_wheel(out_dir, config)
        elif kind == "editable":
            build = getattr(backend, "build_editable", None)
            if build is None:
                _write(result_path, {"ok": False, "error": "the build backend %s does not support editable installs (PEP 660)" % request["backend"]})
                return 1
            name = build(out_dir, config)
        else:
            name = backend.build_sdist(out_dir, config)
        _write(result_path, {"ok": True, "file": name})
        return 0
    except BaseException as e:  # noqa: BLE001 - every failure becomes a one-line reason
        if isinstance(e, SystemExit) and not e.code:
            e = RuntimeError("the build backend exited early")
        traceback.print_exc()
        if isinstance(e, _Native) or _native_reasons:
            reason = _native_reasons[0] if _native_reasons else str(e)
            _write(result_path, {"ok": False, "native": reason})
            return 1
        if isinstance(e, SystemExit):
            message = str(e.code) if not isinstance(e.code, int) else "exit status %d" % e.code
        else:
            message = "%s: %s" % (type(e).__name__, e) if str(e) else type(e).__name__
        _write(result_path, {"ok": False, "error": message.strip().splitlines()[-1] if message.strip() else type(e).__name__})
        return 1


if __name__ == "__main__":
    sys.exit(main())
