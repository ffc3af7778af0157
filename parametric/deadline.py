"""Running kernel work under a time limit that the CAD kernel cannot ignore.

OCCT cannot be interrupted inside a thread: a build stuck in the kernel holds its worker for
good. Nor can a process that has built once fork a child to build (the kernel's thread pool,
started by CadQuery's parallel booleans, is not there in the child, which then waits for it
forever). So :func:`within` hands the work to a *kernel process* of its own: a fresh Python
started once per process (``python -c ...``, never forked from this one), which imports the
kernel, then runs one piece of work at a time and sends back its value or its exception. When
the limit passes, the kernel process is killed and the next call starts a new one. The work is
a module-level function and picklable arguments (a template is pickled by its class, so the
kernel process imports the module that defines it). With no limit, the work runs here.
"""

from __future__ import annotations

import os
import pickle
import select
import signal
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from .errors import InfrastructureError, TimeoutFault

T = TypeVar("T")

DEFAULT_RENDER_TIMEOUT_S = 600.0
STARTUP_TIMEOUT_S = 120.0
"""How long a new kernel process may take to import the kernel (not counted in a render's limit)."""

_HEADER = struct.Struct("!Q")


def render_timeout_s() -> float | None:
    """The render time limit: ``$PARAMETRIC_RENDER_TIMEOUT_SECONDS`` (0 for none), else 600 s."""
    value = float(os.environ.get("PARAMETRIC_RENDER_TIMEOUT_SECONDS", DEFAULT_RENDER_TIMEOUT_S))
    return value if value > 0 else None


def within(seconds: float | None, what: str, function: Callable[..., T], *args: Any) -> T:
    """``function(*args)`` in this process's kernel process, stopped with :class:`TimeoutFault` after ``seconds``.

    A kernel process that dies without an answer (a crash in the kernel) is an :class:`InfrastructureError`
    (``crashed``) that counts as an attempt. With ``seconds`` ``None`` or 0 the work runs in this process.
    """
    if not seconds or seconds <= 0:
        return function(*args)
    with _lock:
        return _kernel_process().call(seconds, what, function, args)


class KernelProcess:
    """A fresh Python process holding the kernel, fed work through a pipe (one piece at a time)."""

    def __init__(self) -> None:
        to_child_read, self._to_child = os.pipe()
        self._from_child, from_child_write = os.pipe()
        code = "import sys; from parametric.deadline import serve; serve(int(sys.argv[1]), int(sys.argv[2]))"
        self.process = subprocess.Popen([sys.executable, "-c", code, str(to_child_read), str(from_child_write)],
                                        pass_fds=(to_child_read, from_child_write), stdin=subprocess.DEVNULL,
                                        env={**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)})
        os.close(to_child_read)
        os.close(from_child_write)
        self.pid = os.getpid()  # the process that started it: a forked child must start its own
        try:
            kind, value = self._receive(STARTUP_TIMEOUT_S, "starting the kernel process")
        except BaseException:
            self.stop()
            raise
        if kind != "ready":
            self.stop()
            raise InfrastructureError("crashed", f"the kernel process did not start: {value}")

    def call(self, seconds: float, what: str, function: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        payload = pickle.dumps((function, args))
        try:
            os.write(self._to_child, _HEADER.pack(len(payload)))
            view = memoryview(payload)
            while view:
                view = view[os.write(self._to_child, view):]
            kind, value = self._receive(seconds, what)
        except BaseException:
            self.stop()
            raise
        if kind == "error":
            raise value
        return value

    def _receive(self, seconds: float, what: str) -> tuple[str, Any]:
        deadline = time.monotonic() + seconds
        header = self._read(_HEADER.size, deadline, seconds, what)
        return pickle.loads(self._read(_HEADER.unpack(header)[0], deadline, seconds, what))

    def _read(self, size: int, deadline: float, seconds: float, what: str) -> bytes:
        chunks, got = [], 0
        while got < size:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutFault(what, seconds)
            ready, _, _ = select.select([self._from_child], [], [], remaining)
            if not ready:
                continue
            chunk = os.read(self._from_child, min(size - got, 1 << 20))
            if not chunk:
                self.process.wait()
                raise InfrastructureError("crashed", f"{what}: the kernel process stopped without an answer "
                                                     f"(exit {self.process.returncode})", counts_as_attempt=True)
            chunks.append(chunk)
            got += len(chunk)
        return b"".join(chunks)

    def alive(self) -> bool:
        return self.pid == os.getpid() and self._to_child >= 0 and self.process.poll() is None

    def stop(self) -> None:
        """Kill the kernel process (whatever it is doing) and close its pipes, once (a second call does
        nothing: closing the pipes' numbers again could close files opened since under the same numbers)."""
        if self.pid == os.getpid() and self.process.poll() is None:
            try:
                self.process.send_signal(signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.process.wait()
        if self.pid == os.getpid():
            for fd in (self._to_child, self._from_child):
                if fd >= 0:
                    try:
                        os.close(fd)
                    except OSError:
                        pass
        self._to_child = self._from_child = -1


_lock = threading.Lock()
_current: KernelProcess | None = None


def _kernel_process() -> KernelProcess:
    global _current
    if _current is not None and not _current.alive():
        _current.stop()  # only once per process: it closes nothing a second time, nor a parent's pipes
        _current = None
    if _current is None:
        _current = KernelProcess()
    return _current


def kernel_process_pid() -> int | None:
    """The pid of this process's kernel process while one runs (for staff tools and tests), else ``None``."""
    with _lock:
        return _current.process.pid if _current is not None and _current.alive() else None


def _send(fd: int, message: tuple[str, Any]) -> None:
    try:
        payload = pickle.dumps(message)
    except Exception as error:  # an exception that cannot be pickled goes back as its text
        payload = pickle.dumps(("error", RuntimeError(f"{type(message[1]).__name__}: {message[1]} "
                                                      f"(not picklable: {error})")))
    data = _HEADER.pack(len(payload)) + payload
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _read_exactly(fd: int, size: int) -> bytes | None:
    chunks, got = [], 0
    while got < size:
        chunk = os.read(fd, size - got)
        if not chunk:
            return None
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def serve(requests: int, replies: int) -> None:
    """The kernel process: import the kernel, say ready, then run each request until the pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C reaches the parent, which stops this one
    try:
        import cadquery  # noqa: F401

        from . import export, geometry, part  # noqa: F401
    except Exception as error:  # noqa: BLE001
        _send(replies, ("failed", f"{type(error).__name__}: {error}"))
        return
    _send(replies, ("ready", None))
    while True:
        header = _read_exactly(requests, _HEADER.size)
        if header is None:
            return
        body = _read_exactly(requests, _HEADER.unpack(header)[0])
        if body is None:
            return
        try:
            function, args = pickle.loads(body)
            reply: tuple[str, Any] = ("value", function(*args))
        except BaseException as error:  # noqa: BLE001 - every failure goes back to the parent
            reply = ("error", error)
        _send(replies, reply)
