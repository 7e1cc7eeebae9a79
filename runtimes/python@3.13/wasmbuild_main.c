/* The `python` program of wasmbuild's CPython 3.13 bundle, in place of Programs/python.c.
 *
 * It is CPython's own `main` plus an export, `wizer-initialize`, that wasmbuild calls once
 * when it builds the bundle and then snapshots (wasmtime-wizer): the memory of a process
 * whose interpreter core is already up. A run of the snapshot skips that work; `main`
 * then finishes initialisation from this run's argv and environment with CPython's own
 * two-phase start-up (PEP 587: `_init_main = 0`, then `Py_InitializeFromConfig` completes
 * it, as `Py_BytesMain` would; the POSIX shims are started before `Py_RunMain`), so
 * options, `PYTHON*` variables, standard streams, `sys.path` and `site` are this run's,
 * as in a cold start. What the core fixes at snapshot time is what wasmbuild checks
 * before choosing the snapshot (the hash seed, the allocator, dev mode: see
 * `python::snapshot` in wasmbuild).
 *
 * The same module started without the snapshot behaves as plain CPython; built for the
 * build machine (the cross build's own python), this file is Programs/python.c.
 */
#include "Python.h"
#include "pycore_object.h"  /* _Py_SetImmortalUntracked: CPython's own, internal */

#ifndef __wasi__
int main(int argc, char **argv) {
    return Py_BytesMain(argc, argv);
}
#else
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <wchar.h>

/* wasi-libc's start-up. The snapshot's initialisation runs only what CPython needs of it;
 * the constructors (`__wasm_call_ctors`) are left to each run's `_start`, which runs them
 * once: mimalloc's, run twice, writes a stray newline to stderr. */
void __wasilibc_reset_preopens(void);
void __wasilibc_populate_preopens(void);
void __wasilibc_deinitialize_environ(void);
void __wasilibc_initialize_environ(void);

extern char **environ;

static int from_snapshot = 0;

/* Where the bundle keeps the standard library (configure's --prefix is the bundle's
 * mount point). */
#define WASMBUILD_PREFIX "/opt/runtimes/python"
#define WASMBUILD_STDLIB_ZIP WASMBUILD_PREFIX "/lib/python313.zip"
/* The bundle's own modules (`sitecustomize`, the POSIX shims). */
#define WASMBUILD_LIB WASMBUILD_PREFIX "/lib"
/* What the main phase sets `sys._stdlib_dir` to: frozen modules take their `__file__`
 * from it. */
#define WASMBUILD_STDLIB_DIR WASMBUILD_PREFIX "/lib/python3.13"

/* Modules a start-up and common programs import, frozen into the binary or read from the
 * standard library zip, imported here so the snapshot holds them; and the zip's directory,
 * parsed in Python by zipimport, kept in its cache. The path machinery the main phase
 * installs (and `sys.path`, which the core does not have) is set up for this and taken
 * away again, so the main phase finds the state it expects. None of these modules keeps anything of its process but `os.environ`
 * (which `main` refills); modules that do (`site`, `warnings` with its `-W` options,
 * `random` with its seed, `locale`) must not be imported, and a snapshot that imported
 * one is refused when it is made. */
static const char warm_paths[] =
    "import sys, zipimport, _frozen_importlib as _bootstrap\n"
    "_bootstrap._install_external_importers()\n"
    "import _frozen_importlib_external as _external\n"
    "sys.path_hooks.insert(0, zipimport.zipimporter)\n"
    "sys.path = ['" WASMBUILD_STDLIB_ZIP "']\n"
    "sys._stdlib_dir = '" WASMBUILD_STDLIB_DIR "'\n";

static const char warm_modules[] =
    /* What the main phase sets (`init_set_builtins_open`), and modules capture. */
    "import builtins, io\n"
    "builtins.open = io.open\n"
    "for _name in ('codecs', 'io', 'abc', 'stat', 'posixpath', 'genericpath', 'os',\n"
    "        '_collections_abc', '_sitebuiltins', 'encodings', 'encodings.aliases',\n"
    "        'encodings.utf_8', 'encodings.utf_8_sig', 'linecache', 're', 'enum',\n"
    "        'functools', 'collections', 'types', 'operator', 'keyword', 'contextlib',\n"
    "        'reprlib', 'runpy', 'importlib.util', 'importlib.machinery', 'tokenize',\n"
    "        'token', 'copyreg', 'weakref', 'textwrap', 'string', 'dataclasses',\n"
    "        'inspect', 'typing', 'fnmatch', 'shutil', 'ast', 'dis', 'json',\n"
    "        'struct', 'datetime', 'base64', 'hashlib'):\n"
    "    __import__(_name)\n"
    /* The POSIX shims (runtimes/python/wasmbuild_posix.py): what `main` would import in
     * each run (a millisecond of a `python -c pass`). Their per-run part is `start()`. */
    "sys.path.append('" WASMBUILD_LIB "')\n"
    /* Loading a module from a file asks for what the main phase sets. */
    "_unset = [n for n in ('pycache_prefix', 'dont_write_bytecode') if not hasattr(sys, n)]\n"
    "for _n in _unset:\n"
    "    setattr(sys, _n, True if _n == 'dont_write_bytecode' else None)\n"
    "import wasmbuild_posix\n"
    /* And `sitecustomize` (runtimes/python/sitecustomize.py), which `site` imports in
     * each run: imported with the flag that makes it start nothing; `main` calls its
     * `start()` in the runs where `site` finds it (`keep_sitecustomize`). */
    "sys._wasmbuild_warm_up = True\n"
    "import sitecustomize\n"
    "del sys._wasmbuild_warm_up\n"
    "for _n in _unset:\n"
    "    delattr(sys, _n)\n"
    "_kept = {'site', 'warnings', 'random', 'locale'} & set(sys.modules)\n"
    "if _kept:\n"
    "    raise SystemError(f'the snapshot would keep {sorted(_kept)}')\n"
    "del sys.path\n"
    "sys.path_hooks[:] = []\n"
    "sys.meta_path[:] = [f for f in sys.meta_path if f is not _external.PathFinder]\n"
    "sys.path_importer_cache.clear()\n"
    /* Everything above lives as long as the process: the collector need not look at it
     * again (it would, at every full collection and twice at exit). */
    "import gc\n"
    "gc.collect()\n"
    "gc.freeze()\n";

/* Every object the warm-up left, made immortal (PEP 683): a run never writes their
 * reference counts (so never copies the snapshot's pages for that) and never frees them,
 * at exit least of all, where CPython would otherwise take the whole heap apart object by
 * object. They are also frozen (`gc.freeze()`, above), so no collection walks them. What a
 * run creates lives and dies as usual. The collector's objects are visited, with what
 * each refers to (strings, numbers, untracked tuples and dicts hold no cycles and are not
 * on the collector's lists); an object only reachable through one of those is left
 * mortal, and is never freed either, as what refers to it is not. */
static int immortalize_referent(PyObject *op, void *arg) {
    (void)arg;
    if (op != NULL) {
        _Py_SetImmortalUntracked(op);
    }
    return 0;
}

static int immortalize(PyObject *op, void *arg) {
    _Py_SetImmortalUntracked(op);
    traverseproc traverse = Py_TYPE(op)->tp_traverse;
    if (traverse != NULL) {
        traverse(op, immortalize_referent, arg);
    }
    return 1;
}

/* CPython's own, internal: the codec registry, which the main phase starts (build.sh makes
 * a second start a no-op), and which the modules above need. It imports `encodings`. */
PyStatus _PyCodec_InitRegistry(PyInterpreterState *interp);

/* Runs the warm-up in a namespace of its own (not `__main__`'s). */
static int warm(void) {
    PyObject *globals = PyDict_New();
    if (globals == NULL || PyDict_SetItemString(globals, "__builtins__", PyEval_GetBuiltins()) < 0) {
        Py_XDECREF(globals);
        return -1;
    }
    int result = -1;
    PyObject *done = PyRun_String(warm_paths, Py_file_input, globals, globals);
    if (done != NULL) {
        Py_DECREF(done);
        PyStatus status = _PyCodec_InitRegistry(PyInterpreterState_Get());
        if (PyStatus_Exception(status)) {
            Py_DECREF(globals);
            Py_ExitStatusException(status);
        }
        done = PyRun_String(warm_modules, Py_file_input, globals, globals);
        if (done != NULL) {
            Py_DECREF(done);
            result = 0;
        }
    }
    Py_DECREF(globals);
    return result;
}

__attribute__((export_name("wizer-initialize")))
void wasmbuild_initialize(void) {
    __wasilibc_populate_preopens();
    __wasilibc_initialize_environ();
    PyConfig config;
    PyConfig_InitPythonConfig(&config);
    config.parse_argv = 0;
    config._init_main = 0;
    PyStatus status = Py_InitializeFromConfig(&config);
    PyConfig_Clear(&config);
    if (PyStatus_Exception(status)) {
        Py_ExitStatusException(status);
    }
    if (warm() < 0) {
        PyErr_Print();
        exit(70);
    }
    PyUnstable_GC_VisitObjects(immortalize, NULL);
    from_snapshot = 1;
}

/* `os.environ` was made from the snapshot's environment: refill it from this run's. */
static int refill_os_environ(void) {
    PyObject *os = PyImport_ImportModule("os");
    if (os == NULL) {
        return -1;
    }
    PyObject *os_environ = PyObject_GetAttrString(os, "environ");
    Py_DECREF(os);
    if (os_environ == NULL) {
        return -1;
    }
    PyObject *data = PyObject_GetAttrString(os_environ, "_data");
    Py_DECREF(os_environ);
    if (data == NULL) {
        return -1;
    }
    PyDict_Clear(data);
    int result = 0;
    for (char **entry = environ; entry != NULL && *entry != NULL; entry++) {
        const char *eq = strchr(*entry, '=');
        if (eq == NULL) {
            continue;
        }
        PyObject *key = PyBytes_FromStringAndSize(*entry, eq - *entry);
        PyObject *value = PyBytes_FromString(eq + 1);
        if (key == NULL || value == NULL || PyDict_SetItem(data, key, value) < 0) {
            result = -1;
        }
        Py_XDECREF(key);
        Py_XDECREF(value);
        if (result < 0) {
            break;
        }
    }
    Py_DECREF(data);
    return result;
}

/* Calls `module.start()` (the per-process part of a module the snapshot may hold imported)
 * and lets go of `module`; -1, with the error set, when it raised or `module` is NULL. */
static int call_start(PyObject *module) {
    if (module == NULL) {
        return -1;
    }
    PyObject *done = PyObject_CallMethod(module, "start", NULL);
    Py_DECREF(module);
    if (done == NULL) {
        return -1;
    }
    Py_DECREF(done);
    return 0;
}

/* The POSIX shims are part of this interpreter, with `site` or without (`-S`, `-I`): the
 * snapshot holds them imported, a cold start imports them here (from the bundle's lib/,
 * which `sys.path` has only through PYTHONPATH), and either way `start()` does what each
 * process needs (`sys.executable`, the import hooks' places). */
static int start_shims(void) {
    PyObject *name = PyUnicode_FromString("wasmbuild_posix");
    if (name == NULL) {
        return -1;
    }
    PyObject *shims = PyImport_GetModule(name);
    Py_DECREF(name);
    if (shims == NULL && !PyErr_Occurred()) {
        PyObject *path = PySys_GetObject("path");
        PyObject *lib = PyUnicode_FromString(WASMBUILD_LIB);
        if (path == NULL || lib == NULL || PyList_Insert(path, 0, lib) < 0) {
            Py_XDECREF(lib);
            return -1;
        }
        shims = PyImport_ImportModule("wasmbuild_posix");
        /* Taken off the path again, with an import error kept aside meanwhile (no call
         * into Python while one is set). */
        PyObject *error = PyErr_GetRaisedException();
        Py_ssize_t at = PySequence_Index(path, lib);
        if (at < 0 || PySequence_DelItem(path, at) < 0) {
            PyErr_Clear();
        }
        PyErr_SetRaisedException(error);
        Py_DECREF(lib);
    }
    return call_start(shims);
}

/* Whether `site` would import the bundle's `sitecustomize` in this run (`config` read): it
 * imports the first on `sys.path`, which has the bundle's lib/ only through PYTHONPATH
 * (ignored under -E and -I). When it would, the snapshot's stays imported, so `site` finds
 * it there rather than searching `sys.path` and reading it again (a third of a millisecond
 * of every start); `main` then calls its `start()`. Otherwise it is taken out of
 * `sys.modules`, and `site` (if any) searches as in a cold start. */
static int keep_sitecustomize(const PyConfig *config) {
    static const wchar_t lib[] = L"" WASMBUILD_LIB;
    const size_t length = sizeof(lib) / sizeof(lib[0]) - 1;
    const wchar_t *path = config->pythonpath_env;
    int keep = config->site_import && path != NULL && wcsncmp(path, lib, length) == 0 &&
               (path[length] == L'\0' || path[length] == L':');
    if (!keep && PyDict_DelItemString(PyImport_GetModuleDict(), "sitecustomize") < 0) {
        PyErr_Clear();
    }
    return keep;
}

/* What `sitecustomize` does in each process (see `keep_sitecustomize`). */
static int start_sitecustomize(void) {
    return call_start(PyImport_ImportModule("sitecustomize"));
}

int main(int argc, char **argv) {
    if (from_snapshot) {
        __wasilibc_reset_preopens();
        __wasilibc_populate_preopens();
        __wasilibc_deinitialize_environ();
        __wasilibc_initialize_environ();
        if (refill_os_environ() < 0) {
            PyErr_Print();
            return 70;
        }
    }
    /* WASI has no working directory: wasi-libc starts every program at `/`. The shell
     * passes the real one in `PWD`; start there, as the toolbox does, so that what CPython
     * makes absolute at start-up (the script's `__file__`, `sys.path[0]`) is right. */
    const char *pwd = getenv("PWD");
    if (pwd != NULL && pwd[0] == '/') {
        (void)chdir(pwd);
    }
    /* Py_BytesMain, with the shims started between start-up and the program (CPython's
     * documented split of it: Py_InitializeFromConfig, then Py_RunMain). */
    PyConfig config;
    PyConfig_InitPythonConfig(&config);
    PyStatus status = PyConfig_SetBytesArgv(&config, argc, argv);
    int sitecustomize_kept = 0;
    if (from_snapshot && !PyStatus_Exception(status)) {
        /* Options and environment only: the paths are computed by the initialisation. */
        status = PyConfig_Read(&config);
        if (!PyStatus_Exception(status)) {
            sitecustomize_kept = keep_sitecustomize(&config);
        }
    }
    if (!PyStatus_Exception(status)) {
        status = Py_InitializeFromConfig(&config);
    }
    PyConfig_Clear(&config);
    if (PyStatus_IsExit(status)) {
        return status.exitcode;
    }
    if (PyStatus_Exception(status)) {
        Py_ExitStatusException(status);
    }
    if (start_shims() < 0) {
        PyErr_Print();
    }
    if (sitecustomize_kept && start_sitecustomize() < 0) {
        PyErr_Print();
    }
    return Py_RunMain();
}
#endif
