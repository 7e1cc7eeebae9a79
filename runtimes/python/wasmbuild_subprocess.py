"""Processes for CPython on WASI, through wasmbuild's /dev/process device.

WASI preview 1 cannot start a process; wasmbuild's sandbox can, for its guests: a request
written to /dev/process/spawn starts a child (a program of the build's bundles, a script,
`sh -c`, all sandboxed) and answers its number N; /dev/process/N/{stdin,stdout,stderr} are
the parent's ends of its pipes, /dev/process/N/status waits for it, /dev/process/N/poll
asks, /dev/process/N/kill stops it, /dev/process/timeout bounds the waits that follow.

`install()` (run when `subprocess` is first imported) replaces subprocess.Popen with
`Popen` below, which keeps the standard class's interface and its other methods
(`communicate`, context manager, `__repr__`), so run, call, check_call, check_output,
getoutput and os.popen work as documented. os.system is added to `os`.
"""

import errno
import io
import os
import subprocess
import sys
import time

_DEVICE = "/dev/process"


def _fields(argv, env, cwd, stdio):
    env_items = ["%s=%s" % (k, v) for k, v in env.items()]
    fields = ["spawn", str(len(argv)), *argv, str(len(env_items)), *env_items, cwd, *stdio]
    return b"".join(os.fsencode(f) + b"\0" for f in fields)


def _spawn(argv, env, cwd, stdio):
    """Starts argv; the child's number. OSError as execve would give it."""
    fd = os.open(_DEVICE + "/spawn", os.O_RDWR)
    try:
        os.write(fd, _fields(argv, env, cwd, stdio))
        try:
            answer = os.read(fd, 4096)
        except OSError as e:
            raise OSError(e.errno, os.strerror(e.errno), argv[0]) from None
    finally:
        os.close(fd)
    return int(answer)


def _read_file(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.read(fd, 4096).decode()
    finally:
        os.close(fd)


def _write_file(path, text):
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def _returncode(answer):
    """`exit S` or `signal N` as Popen.returncode (S, or -N)."""
    kind, _, value = answer.strip().partition(" ")
    return -int(value) if kind == "signal" else int(value)


class _Timeout:
    """Bounds the device's blocking calls in the block (None: no bound)."""

    def __init__(self, endtime):
        self._endtime = endtime

    def __enter__(self):
        if self._endtime is not None:
            ms = max(0, int((self._endtime - time.monotonic()) * 1000))
            _write_file(_DEVICE + "/timeout", str(ms))
        return self

    def __exit__(self, *exc):
        if self._endtime is not None:
            _write_file(_DEVICE + "/timeout", "-")
        return False


_STAGES = {"stdin": 0, "stdout": 1, "stderr": 2}


def _stage(fd, name):
    """Names descriptor `fd` for the child's stream `name`: linked to /dev/process/NAME,
    which passes the descriptor itself (this interpreter's numbers are its own)."""
    os.link(".", "%s/%s" % (_DEVICE, name), src_dir_fd=fd)
    return "staged"


def _stream_spec(value, name):
    if value is None:
        try:
            return _stage(_STAGES[name], name)
        except OSError:
            return "null"
    if value == subprocess.PIPE:
        return "pipe"
    if value == subprocess.DEVNULL:
        return "null"
    if value == subprocess.STDOUT:
        if name != "stderr":
            raise ValueError("STDOUT can only be used for stderr")
        return "stdout"
    if isinstance(value, int):
        if value < 0:
            raise ValueError("bad file descriptor %d" % value)
        return _stage(value, name)
    flush = getattr(value, "flush", None)
    if flush is not None and name != "stdin":
        flush()
    return _stage(value.fileno(), name)


class Popen(subprocess.Popen):
    """subprocess.Popen over wasmbuild's /dev/process (see the module's doc)."""

    def __init__(self, args, bufsize=-1, executable=None, stdin=None, stdout=None,
                 stderr=None, preexec_fn=None, close_fds=True, shell=False, cwd=None,
                 env=None, universal_newlines=None, startupinfo=None, creationflags=0,
                 restore_signals=True, start_new_session=False, pass_fds=(), *,
                 user=None, group=None, extra_groups=None, encoding=None, errors=None,
                 text=None, umask=-1, pipesize=-1, process_group=None):
        self._child_created = False
        self._input = None
        self._communication_started = False
        self.args = args
        self.stdin = self.stdout = self.stderr = None
        self.pid = None
        self.returncode = None
        self.encoding = encoding
        self.errors = errors
        self.pipesize = pipesize
        self._sigint_wait_secs = 0.25
        self._closed_child_pipe_fds = False
        self._fileobj2output = None
        self._waitpid_lock = subprocess.threading.Lock()
        if bufsize is None:
            bufsize = -1
        if not isinstance(bufsize, int):
            raise TypeError("bufsize must be an integer")
        if preexec_fn is not None:
            raise subprocess.SubprocessError(
                "preexec_fn is not supported in wasmbuild's sandbox")
        if (text is not None and universal_newlines is not None
                and bool(universal_newlines) != bool(text)):
            raise subprocess.SubprocessError(
                "Cannot disambiguate when both text and universal_newlines are supplied "
                "but different. Pass one or the other.")
        self.text_mode = encoding or errors or text or universal_newlines
        if self.text_mode and encoding is None:
            self.encoding = encoding = subprocess._text_encoding()
        if bufsize == 1 and not self.text_mode:
            bufsize = -1

        if isinstance(args, (str, bytes, os.PathLike)):
            argv = [args]
        else:
            argv = list(args)
        argv = [os.fsdecode(a) for a in argv]
        if shell:
            argv = ["sh", "-c", *argv]
        if executable is not None:
            argv[0] = os.fsdecode(executable)
        if not argv:
            raise IndexError("list index out of range")
        if env is None:
            env = os.environ
        env = {os.fsdecode(k): os.fsdecode(v) for k, v in env.items()}
        cwd = os.path.abspath(os.fsdecode(cwd)) if cwd is not None else os.getcwd()
        if not os.path.isdir(cwd):
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), cwd)
        stdio = [
            _stream_spec(stdin, "stdin"),
            _stream_spec(stdout, "stdout"),
            _stream_spec(stderr, "stderr"),
        ]
        self._n = _spawn(argv, env, cwd, stdio)
        self._child_created = True
        self.pid = self._n
        base = "%s/%d/" % (_DEVICE, self._n)
        if stdin == subprocess.PIPE:
            self.stdin = io.open(os.open(base + "stdin", os.O_WRONLY), "wb", bufsize)
            if self.text_mode:
                self.stdin = io.TextIOWrapper(self.stdin, write_through=True,
                                              line_buffering=bufsize == 1,
                                              encoding=encoding, errors=errors)
        if stdout == subprocess.PIPE:
            self.stdout = io.open(os.open(base + "stdout", os.O_RDONLY), "rb", bufsize)
            if self.text_mode:
                self.stdout = io.TextIOWrapper(self.stdout, encoding=encoding, errors=errors)
        if stderr == subprocess.PIPE:
            self.stderr = io.open(os.open(base + "stderr", os.O_RDONLY), "rb", bufsize)
            if self.text_mode:
                self.stderr = io.TextIOWrapper(self.stderr, encoding=encoding, errors=errors)

    def _internal_poll(self, _deadstate=None, _waitpid=None, _WNOHANG=None, _ECHILD=None):
        if self.returncode is None and self._child_created:
            try:
                answer = _read_file("%s/%d/poll" % (_DEVICE, self._n))
            except OSError:
                if _deadstate is not None:
                    self.returncode = _deadstate
                return self.returncode
            if answer.strip() != "running":
                self.returncode = _returncode(answer)
        return self.returncode

    def _wait(self, timeout):
        if self.returncode is not None:
            return self.returncode
        if timeout is None:
            self.returncode = _returncode(_read_file("%s/%d/status" % (_DEVICE, self._n)))
            return self.returncode
        endtime = time.monotonic() + timeout
        try:
            with _Timeout(endtime):
                answer = _read_file("%s/%d/status" % (_DEVICE, self._n))
        except TimeoutError:
            raise subprocess.TimeoutExpired(self.args, timeout) from None
        self.returncode = _returncode(answer)
        return self.returncode

    def _communicate(self, input, endtime, orig_timeout):
        if self.stdin and not self._communication_started:
            try:
                self.stdin.flush()
            except BrokenPipeError:
                pass
            if not input:
                try:
                    self.stdin.close()
                except BrokenPipeError:
                    pass
        if self._fileobj2output is None:
            self._fileobj2output = {}
            if self.stdout:
                self._fileobj2output[self.stdout] = []
            if self.stderr:
                self._fileobj2output[self.stderr] = []
            if self.stdin and input:
                self._input = input
                if self.text_mode:
                    self._input = self._input.encode(self.stdin.encoding,
                                                     self.stdin.errors)
                self._input_offset = 0
        try:
            with _Timeout(endtime):
                if self.stdin and self._input is not None and not self.stdin.closed:
                    fd = self.stdin.fileno()
                    while self._input_offset < len(self._input):
                        try:
                            self._input_offset += os.write(
                                fd, self._input[self._input_offset:self._input_offset + 65536])
                        except BrokenPipeError:
                            break
                    self.stdin.close()
                for stream, chunks in self._fileobj2output.items():
                    if stream.closed:
                        continue
                    fd = stream.fileno()
                    while True:
                        chunk = os.read(fd, 65536)
                        if not chunk:
                            break
                        chunks.append(chunk)
                    stream.close()
        except TimeoutError:
            raise subprocess.TimeoutExpired(self.args, orig_timeout) from None
        try:
            self.wait(timeout=self._remaining_time(endtime))
        except subprocess.TimeoutExpired:
            raise subprocess.TimeoutExpired(self.args, orig_timeout) from None
        stdout = stderr = None
        if self.stdout:
            stdout = b"".join(self._fileobj2output[self.stdout])
        if self.stderr:
            stderr = b"".join(self._fileobj2output[self.stderr])
        if self.text_mode:
            if stdout is not None:
                stdout = self._translate_newlines(stdout, self.stdout.encoding,
                                                  self.stdout.errors)
            if stderr is not None:
                stderr = self._translate_newlines(stderr, self.stderr.encoding,
                                                  self.stderr.errors)
        return (stdout, stderr)

    def send_signal(self, sig):
        self.poll()
        if self.returncode is not None or not sig:
            return
        try:
            _write_file("%s/%d/kill" % (_DEVICE, self._n), str(int(sig)))
        except OSError as e:
            if e.errno != errno.ECHILD:
                raise

    def terminate(self):
        self.send_signal(15)

    def kill(self):
        self.send_signal(9)


def system(command):
    """Run the command in a subshell (wasmbuild: the build shell, sandboxed); the exit
    status encoded as wait() does."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (AttributeError, OSError, ValueError):
            pass
    try:
        stdio = [_stream_spec(None, name) for name in ("stdin", "stdout", "stderr")]
        n = _spawn(["sh", "-c", os.fsdecode(command)], os.environ, os.getcwd(), stdio)
    except OSError:
        return 127 << 8
    code = _returncode(_read_file("%s/%d/status" % (_DEVICE, n)))
    return -code if code < 0 else code << 8


def install(module=subprocess):
    """Puts Popen in `subprocess` (run by wasmbuild_posix when it is first imported)."""
    module.Popen = Popen
    module._can_fork_exec = True


system.__module__ = "os"

if subprocess.Popen is not Popen:
    # subprocess was first imported by this module (see wasmbuild_posix._patch_subprocess).
    install()
