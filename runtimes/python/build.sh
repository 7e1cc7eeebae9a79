#!/bin/sh
# Builds CPython 3.13 for wasm32-wasip1, optimised (-O3, ThinLTO), from the upstream release tarball
# (as Debian's archive carries it) with zig's clang, zlib, bzip2, liblzma (xz-utils),
# SQLite and coverage's C tracers linked in. SQLite's single-file source is generated from
# its source tree by a tclsh built here for that alone. Run by `wasmbuild runtime build`
# on the host, in an empty directory, with the recipe's pinned inputs in $WASMBUILD_INPUTS;
# it leaves the bundle's files in $WASMBUILD_OUT:
#   python.wasm              the interpreter (with the `wizer-initialize` export)
#   lib/python313.zip        the standard library, compiled to bytecode
# Everything that reaches the output is independent of where and when it was built: paths
# are mapped to /build, dates come from SOURCE_DATE_EPOCH, zip entries are sorted and dated
# 1980-01-01, bytecode is hash-based.
set -eu

work=$PWD
inputs=$WASMBUILD_INPUTS
recipe=$WASMBUILD_RECIPE_DIR
out=$WASMBUILD_OUT
jobs=${WASMBUILD_JOBS:-2}
# Where the bundle is mounted in a guest: CPython finds its standard library from there.
prefix=/opt/runtimes/python
export LC_ALL=C TZ=UTC SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-0}"
unset PYTHONPATH PYTHONHOME CFLAGS LDFLAGS CPPFLAGS MAKEFLAGS

step() { echo "build.sh: $*"; }

# The host gives sh and its POSIX tools (tar with gzip and xz among them); every compiler
# and make come from the inputs: zig (its wheel unpacked by wasmbuild) compiles for wasm32
# and for this machine (linked to the host's C library, with zig's own headers), and GNU
# make is built from its source with it. Host compilers and makes are never used: $work/bin
# comes first on PATH and configure scripts are told CC.
zig=$(echo "$inputs"/ziglang-*/ziglang/zig)
export ZIG_GLOBAL_CACHE_DIR="$work/zig-cache" ZIG_LOCAL_CACHE_DIR="$work/zig-cache"
mkdir bin
tool() {
    printf '#!/bin/sh\nexec "%s" %s "$@"\n' "$zig" "$2" >"bin/$1"
    chmod +x "bin/$1"
}
tool wasi-cc "cc -target wasm32-wasi -ffile-prefix-map=$work=/build"
tool wasi-c++ "c++ -target wasm32-wasi -ffile-prefix-map=$work=/build"
tool wasi-ar ar
tool wasi-ranlib ranlib
tool cc cc
tool ar ar
tool ranlib ranlib
# configure scripts look for a linker of their own (make's does).
tool ld ld.lld
export PATH="$work/bin:$PATH"
export CC="$work/bin/cc" CC_FOR_BUILD="$work/bin/cc" BUILD_CC="$work/bin/cc"

step "building make"
tar -xJf "$inputs"/make-dfsg_*.orig.tar.xz
(
    cd make-[0-9]*
    # Debian's tarball leaves out the manual, which configure still lists.
    mkdir -p doc && : >doc/Makefile.in
    ./configure --disable-nls --without-guile --disable-dependency-tracking \
        >configure.log 2>&1 \
        || { tail -40 configure.log; exit 1; }
    sh build.sh >build.log 2>&1 || { tail -40 build.log; exit 1; }
    cp make "$work/bin/make"
)

cc_wasi="$work/bin/wasi-cc"
sysroot="$work/sysroot"
mkdir -p "$sysroot/include" "$sysroot/lib"

step "building zlib"
tar -xzf "$inputs"/zlib_*.orig.tar.gz
(
    cd zlib-*
    for c in adler32 compress crc32 deflate gzclose gzlib gzread gzwrite infback inffast \
        inflate inftrees trees uncompr zutil; do
        "$cc_wasi" -O3 -D_LARGEFILE64_SOURCE=1 -c "$c.c" -o "$c.o"
    done
    "$work/bin/wasi-ar" rcs "$sysroot/lib/libz.a" ./*.o
    cp zlib.h zconf.h "$sysroot/include/"
)

step "building bzip2"
tar -xzf "$inputs"/bzip2_*.orig.tar.gz
(
    cd bzip2-*
    for c in blocksort huffman crctable randtable compress decompress bzlib; do
        "$cc_wasi" -O3 -D_FILE_OFFSET_BITS=64 -c "$c.c" -o "$c.o"
    done
    "$work/bin/wasi-ar" rcs "$sysroot/lib/libbz2.a" ./*.o
    cp bzlib.h "$sysroot/include/"
)

# liblzma's build and SQLite's compile are mostly one process at a time (a configure script,
# one large file): each runs in the background beside the next steps, which wait for them
# before CPython's configure.
step "building liblzma (in the background)"
tar -xJf "$inputs"/xz-utils_*.orig.tar.xz
xz=$(echo "$work"/xz-[0-9]*)
mkdir xz-build
(
    cd xz-build
    # Only the library: no tools, no threads (WASI has none), no shared library.
    CC="$cc_wasi" AR="$work/bin/wasi-ar" RANLIB="$work/bin/wasi-ranlib" CFLAGS="-O3" \
    "$xz/configure" --host=wasm32-wasi --build="$(sh "$xz/build-aux/config.guess")" \
        --prefix=/nonexistent --disable-shared --enable-static --disable-threads \
        --disable-xz --disable-xzdec --disable-lzmadec --disable-lzmainfo \
        --disable-lzma-links --disable-scripts --disable-doc --disable-nls \
        --disable-sandbox --disable-dependency-tracking \
        >configure.log 2>&1 || { tail -40 configure.log; exit 1; }
    make -j"$jobs" -C src/liblzma liblzma.la >make.log 2>&1 || { tail -60 make.log; exit 1; }
    cp src/liblzma/.libs/liblzma.a "$sysroot/lib/"
    cp -R "$xz/src/liblzma/api/lzma.h" "$xz/src/liblzma/api/lzma" "$sysroot/include/"
) &
liblzma_job=$!

# SQLite's source tree generates its single-file source (sqlite3.c, sqlite3.h) with Tcl
# scripts: a tclsh for the build machine, unoptimised (it only runs those).
step "building tclsh"
tar -xzf "$inputs"/tcl8.6_*.orig.tar.gz
tcl=$(echo "$work"/tcl8.6.*)
(
    cd "$tcl/unix"
    CFLAGS=-O0 ./configure --prefix=/nonexistent --disable-shared --disable-load \
        >configure.log 2>&1 || { tail -40 configure.log; exit 1; }
    make -j"$jobs" tclsh >make.log 2>&1 || { tail -60 make.log; exit 1; }
)

step "generating SQLite's sqlite3.c"
tar -xJf "$inputs"/sqlite3_*.orig.tar.xz
sqlite=$(echo "$work"/sqlite3-[0-9]*)
mkdir sqlite-build
(
    cd sqlite-build
    # Configured for the build machine only to generate sqlite3.c; its generators take no
    # dates or paths into it.
    TCLSH_CMD="$tcl/unix/tclsh" "$sqlite/configure" --disable-tcl \
        >configure.log 2>&1 || { tail -40 configure.log; exit 1; }
    TCL_LIBRARY="$tcl/library" make TCLSH_CMD="$tcl/unix/tclsh" sqlite3.c \
        >make.log 2>&1 || { tail -60 make.log; exit 1; }
)

step "compiling SQLite (in the background)"
(
    cd sqlite-build
    # Under __wasi__ sqlite3.h itself defines SQLITE_OMIT_WAL (no shared memory),
    # SQLITE_OMIT_LOAD_EXTENSION (no dlopen), SQLITE_THREADSAFE=0 (no threads), and its unix
    # VFS leaves out mmap and locks files with a `DB.lock` directory ("unix-dotfile"), WASI
    # having no fcntl locks: processes of a build sharing a database exclude each other
    # (readers too: the busy timeout waits), a killed one leaves a stale lock directory. The
    # options said here again, for the reader; the features are those of CPython's own
    # installers (FTS3/4/5, R*Tree) and SQLite's configure (math functions). Temporary
    # tables and indices stay in memory: a guest may have no writable temporary directory.
    "$cc_wasi" -O3 -DNDEBUG \
        -DSQLITE_OMIT_WAL -DSQLITE_OMIT_LOAD_EXTENSION -DSQLITE_THREADSAFE=0 \
        -DSQLITE_DEFAULT_UNIX_VFS='"unix-dotfile"' -DSQLITE_TEMP_STORE=2 \
        -DSQLITE_ENABLE_FTS4 -DSQLITE_ENABLE_FTS5 -DSQLITE_ENABLE_RTREE \
        -DSQLITE_ENABLE_MATH_FUNCTIONS \
        -c sqlite3.c -o sqlite3.o
    "$work/bin/wasi-ar" rcs "$sysroot/lib/libsqlite3.a" sqlite3.o
    cp sqlite3.h sqlite3ext.h "$sysroot/include/"
) &
sqlite_job=$!

step "building the name-service stubs"
"$cc_wasi" -O2 -c "$recipe/wasi_netdb.c" -o wasi_netdb.o
"$work/bin/wasi-ar" rcs "$sysroot/lib/libwasinetdb.a" wasi_netdb.o

step "unpacking CPython"
tar -xJf "$inputs"/python3.13_*.orig.tar.xz
src=$(echo "$work"/Python-3.13.*)
# zig's wasi-libc declares pthread_exit `_Noreturn void`; CPython's WASI stubs say `int`.
sed -i 's/^PyAPI_FUNC(int) pthread_exit(/PyAPI_FUNC(void) pthread_exit(/' \
    "$src/Include/cpython/pthread_stubs.h"
sed -i '/^int$/{N;s/^int\npthread_exit(/void\npthread_exit(/}' "$src/Python/thread_pthread_stubs.h"
# zig's linker has no --stack-first.
sed -i 's/ -Wl,--stack-first//' "$src/configure"
# getaddrinfo's fallback names SOCK_RAW, which WASI lacks.
{ printf '#ifndef SOCK_RAW\n#define SOCK_RAW 3\n#endif\n'; cat "$src/Modules/getaddrinfo.c"; } >getaddrinfo.c
mv getaddrinfo.c "$src/Modules/getaddrinfo.c"
# No build date in the binary (zig's clang also refuses __DATE__).
{ printf '#define DATE "Jan  1 1980"\n#define TIME "00:00:00"\n'; cat "$src/Modules/getbuildinfo.c"; } >getbuildinfo.c
mv getbuildinfo.c "$src/Modules/getbuildinfo.c"
# The snapshot starts the codec registry in the core phase (wasmbuild_main.c); the main
# phase then finds it started.
sed -i 's/^    interp->codecs.search_path = PyList_New(0);$/    if (interp->codecs.initialized) {\n        return PyStatus_Ok();\n    }\n&/' \
    "$src/Python/codecs.c"
grep -q "if (interp->codecs.initialized)" "$src/Python/codecs.c"
# The standard library is only a zip, which getpath's landmarks (lib/python3.13/os.py, the
# lib-dynload directory) do not count: it would warn at every start, then use PREFIX, which
# is right.
sed -i "s/^\( *\)warn('Could not find platform \(in\)\{0,1\}dependent libraries <\(exec_\)\{0,1\}prefix>')$/\1pass/" \
    "$src/Modules/getpath.py"
if grep -q "Could not find platform" "$src/Modules/getpath.py"; then exit 1; fi
# For the same reason `sys._stdlib_dir` would name lib/python3.13, which does not exist:
# frozen modules (`os`, `site`, …) would take their `__file__` from there, and coverage,
# which finds the standard library beside `os.__file__`, would measure the zip's modules as
# the program's. The zip it is, as for modules imported from it.
sed -i "s/^config\['stdlib_dir'\] = stdlib_dir or ''$/if stdlib_dir and not isdir(stdlib_dir) and isfile(joinpath(prefix, ZIP_LANDMARK)):\n    stdlib_dir = joinpath(prefix, ZIP_LANDMARK)\n&/" \
    "$src/Modules/getpath.py"
grep -q "^    stdlib_dir = joinpath(prefix, ZIP_LANDMARK)$" "$src/Modules/getpath.py"
# At exit CPython marks every interned string "not interned" again, for a later start of the
# runtime in the same process (which never comes here): a write to each of the thousands of
# strings the snapshot holds, so every run copied some 100 pages of it for nothing. Only the
# mortal ones, which clearing the interned dict then frees, need it.
sed -i 's/^        if (!shared) {$/        if (!shared \&\& PyUnicode_CHECK_INTERNED(s) == SSTATE_INTERNED_MORTAL) {/' \
    "$src/Objects/unicodeobject.c"
grep -q "^        if (!shared && PyUnicode_CHECK_INTERNED(s) == SSTATE_INTERNED_MORTAL) {$" \
    "$src/Objects/unicodeobject.c"
# The program: CPython's main plus the snapshot's entry point.
cp "$recipe/wasmbuild_main.c" "$src/Programs/python.c"

# A cross build runs a Python of the same release on the build machine.
step "building the build machine's python"
mkdir native
(
    cd native
    "$src/configure" --prefix="$work/native-prefix" --disable-test-modules \
        --without-ensurepip >configure.log 2>&1 || { tail -40 configure.log; exit 1; }
    make -j"$jobs" all >make.log 2>&1 || { tail -60 make.log; exit 1; }
)

wait "$liblzma_job" || { echo "build.sh: liblzma failed" >&2; exit 1; }
wait "$sqlite_job" || { echo "build.sh: SQLite failed" >&2; exit 1; }

# coverage's C tracers are compiled against this build's pyconfig.h, after configure;
# configure links its probes with an empty archive in their place.
"$work/bin/wasi-ar" rcs "$sysroot/lib/libwasmcoverage.a"

step "configuring CPython for wasm32-wasip1"
mkdir wasi
(
    cd wasi
    # WASI's config.site, plus what zig's wasi-libc headers make configure believe in.
    cat "$src/Tools/wasm/config.site-wasm32-wasi" - >config.site <<'EOF'
ac_cv_func_epoll_create=no
ac_cv_func_epoll_create1=no
ac_cv_header_sys_epoll_h=no
ac_cv_func_timerfd_create=no
ac_cv_header_sys_timerfd_h=no
ac_cv_header_libintl_h=no
ac_cv_func_setgroups=no
ac_cv_func_getgroups=no
ac_cv_func_mmap=no
EOF
    # The source directory is given relative: configure's paths end up in the binary
    # (getpath's VPATH).
    # The interpreter is compiled for link-time optimisation (ThinLTO: wasm-ld optimises
    # across its objects; the CPU-bound bench script runs some 5 % faster). The link itself
    # is not told -flto: zig then builds its wasi-libc for LTO too, and with that libc
    # `import time` fails (EOVERFLOW from its time zone set-up), and zipimport with it.
    CONFIG_SITE=$PWD/config.site \
    PKG_CONFIG_LIBDIR=/nonexistent \
    OPT="-DNDEBUG -O3 -Wall -flto=thin" \
    CC="$cc_wasi" CPP="$cc_wasi -E" AR="$work/bin/wasi-ar" RANLIB="$work/bin/wasi-ranlib" \
    CXX="$work/bin/wasi-c++" INSTALL="install -c" MKDIR_P="mkdir -p" \
    ZLIB_CFLAGS="-I$sysroot/include" ZLIB_LIBS="-L$sysroot/lib -lz" \
    BZIP2_CFLAGS="-I$sysroot/include" BZIP2_LIBS="-L$sysroot/lib -lbz2" \
    LIBLZMA_CFLAGS="-I$sysroot/include" LIBLZMA_LIBS="-L$sysroot/lib -llzma" \
    LIBSQLITE3_CFLAGS="-I$sysroot/include" LIBSQLITE3_LIBS="-L$sysroot/lib -lsqlite3" \
    LIBS="-L$sysroot/lib -lwasinetdb -lwasmcoverage" \
    "../${src##*/}/configure" --host=wasm32-wasip1 --build="$("$src/config.guess")" \
        --with-build-python="$work/native/python" --prefix="$prefix" \
        --disable-test-modules --without-ensurepip --with-pymalloc \
        >configure.log 2>&1 || { tail -40 configure.log; exit 1; }
)

# One tracer per coverage release among the inputs, from its sdist's coverage/ctracer:
# its global symbols (those its headers declare, and the module's init function) renamed
# after the release, so that several link side by side; a symbol the headers do not
# declare would fail the link, not pass unnoticed. wasmbuild_coverage.h lists them for
# wasmbuild_main.c, which offers each to its own release only.
step "compiling coverage's C tracers"
mkdir coverage
table="$src/Programs/wasmbuild_coverage.h"
echo "/* Generated by build.sh: coverage's C tracers in this interpreter. */" >"$table"
entries=""
for sdist in "$inputs"/coverage-*.tar.gz; do
    release=${sdist##*/coverage-}
    release=${release%.tar.gz}
    tar -xzf "$sdist" -C coverage "coverage-$release/coverage/ctracer"
    ctracer="$work/coverage/coverage-$release/coverage/ctracer"
    tag=$(echo "$release" | tr -c 'A-Za-z0-9\n' _)
    renames="-DPyInit_tracer=PyInit_wasmbuild_coverage_$tag"
    for symbol in $(sed -n -E \
        -e 's/^extern [^;]*[ *]([A-Za-z_][A-Za-z0-9_]*);$/\1/p' \
        -e 's/^[A-Za-z_][A-Za-z0-9_ *]*[ *]([A-Za-z_][A-Za-z0-9_]*)\(.*\);$/\1/p' \
        "$ctracer"/*.h | sort -u); do
        renames="$renames -D$symbol=wasmbuild_coverage_${tag}_$symbol"
    done
    for c in "$ctracer"/*.c; do
        # shellcheck disable=SC2086
        "$cc_wasi" -O3 -DNDEBUG $renames -I"$src/Include" -I"$work/wasi" \
            -c "$c" -o "coverage/${tag}_$(basename "$c" .c).o"
    done
    echo "PyObject *PyInit_wasmbuild_coverage_$tag(void);" >>"$table"
    entries="$entries    {\"$release\", PyInit_wasmbuild_coverage_$tag},\n"
done
printf 'static const struct coverage_tracer {\n    const char *release;\n    PyObject *(*init)(void);\n} coverage_tracers[] = {\n%b    {NULL, NULL},\n};\n' \
    "$entries" >>"$table"
rm "$sysroot/lib/libwasmcoverage.a"
"$work/bin/wasi-ar" rcs "$sysroot/lib/libwasmcoverage.a" coverage/*.o

step "building CPython for wasm32-wasip1"
(
    cd wasi
    make -j"$jobs" all >make.log 2>&1 || { tail -60 make.log; exit 1; }
    for module in zlib _bz2 _lzma _sqlite3 _socket _decimal pyexpat _elementtree _sha2 _json \
        _datetime; do
        grep -q "^MODULE_$(echo "$module" | tr a-z A-Z)_STATE=yes" Makefile ||
            { echo "build.sh: module $module was not built" >&2; exit 1; }
    done
)

step "collecting the bundle's files"
mkdir -p "$out/lib"
# No debug information: the snapshot and the code cache want a small module.
"$work/native/python" - "$work/wasi/python.wasm" "$out/python.wasm" <<'EOF'
import sys
# Drop custom sections (names, DWARF, producers): the module's code stays byte for byte.
data = open(sys.argv[1], "rb").read()
assert data[:8] == b"\0asm\1\0\0\0", "not a wasm module"
def leb(buf, pos):
    result = shift = 0
    while True:
        byte = buf[pos]; pos += 1
        result |= (byte & 0x7F) << shift; shift += 7
        if byte < 0x80:
            return result, pos
out, pos = bytearray(data[:8]), 8
while pos < len(data):
    start = pos
    section_id = data[pos]; pos += 1
    size, pos = leb(data, pos)
    if section_id != 0:
        out += data[start:pos + size]
    pos += size
open(sys.argv[2], "wb").write(out)
EOF

"$work/native/python" - "$src/Lib" "$work/wasi" "$out/lib/python313.zip" "$prefix" <<'EOF'
import glob, importlib.util, os, sys, zipfile
import importlib._bootstrap_external as external
lib, build, target, prefix = sys.argv[1:]
zip_path = f"{prefix}/lib/python313.zip"
skip = {"test", "idlelib", "tkinter", "turtledemo", "ensurepip", "lib2to3", "__phello__",
        "venv", "site-packages"}
# Left out as CPython's own WASI build leaves it out (Tools/wasm/wasm_assets.py): it starts
# threads. The bundle's shim (a pool that runs each call as it is submitted) takes its place.
omit = {"concurrent/futures/thread.py"}
entries = {}
for directory, dirs, files in os.walk(lib):
    rel = os.path.relpath(directory, lib)
    if rel.split(os.sep)[0] in skip:
        dirs[:] = []
        continue
    dirs[:] = [d for d in dirs if d != "__pycache__"]
    for name in files:
        rel = os.path.relpath(os.path.join(directory, name), lib)
        if name.endswith(".py") and rel.replace(os.sep, "/") not in omit:
            entries[rel] = os.path.join(directory, name)
# The configuration of this build, as sysconfig reads it, with the build's paths mapped.
sysconfigdata = glob.glob(os.path.join(build, "build", "lib.*", "_sysconfigdata_*.py"))
assert len(sysconfigdata) == 1, sysconfigdata
entries[os.path.basename(sysconfigdata[0])] = sysconfigdata[0]
work = os.path.dirname(build)
with zipfile.ZipFile(target, "w", zipfile.ZIP_STORED) as archive:
    for rel in sorted(entries):
        source = open(entries[rel], "rb").read().replace(work.encode(), b"/build")
        rel = rel.replace(os.sep, "/")
        if rel == "sysconfig/__init__.py":
            # The standard library is the zip: its scheme path says so (coverage, pydoc
            # and others tell the standard library's modules by it).
            stdlib = b"'stdlib': '{installed_base}/{platlibdir}/{implementation_lower}"
            old, new = b"{py_version_short}{abi_thread}'", b"{py_version_nodot}{abi_thread}.zip'"
            assert source.count(stdlib + old) == 2, "sysconfig's posix schemes changed"
            source = source.replace(stdlib + old, stdlib + new)
        info = lambda name: zipfile.ZipInfo(name, (1980, 1, 1, 0, 0, 0))
        archive.writestr(info(rel), source)
        try:
            code = compile(source, f"{zip_path}/{rel}", "exec", dont_inherit=True)
        except SyntaxError:
            continue
        pyc = external._code_to_hash_pyc(code, importlib.util.source_hash(source), checked=False)
        archive.writestr(info(rel[:-3] + ".pyc"), bytes(pyc))
EOF
if grep -q "$work" "$out/python.wasm" "$out/lib/python313.zip"; then
    echo "build.sh: the output names the build directory $work" >&2
    exit 1
fi
# Nor where the host keeps its tools: configure records what it found (`install`, `mkdir`)
# in the build's sysconfig data unless told (above). The Makefile's SHELL is /bin/sh on
# every host.
sysconfigdata=$(echo "$work"/wasi/build/lib.*/_sysconfigdata_*.py)
old_ifs=$IFS
IFS=:
for dir in $PATH; do
    [ -n "$dir" ] && [ "$dir" != "$work/bin" ] || continue
    if grep -F "'$dir/" "$sysconfigdata" | grep -qv "^ *'SHELL': '/bin/sh -e',$"; then
        echo "build.sh: the output names the host's $dir" >&2
        exit 1
    fi
done
IFS=$old_ifs
step "done"
