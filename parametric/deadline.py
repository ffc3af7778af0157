"""Running work under a time limit that the CAD kernel cannot ignore.

OCCT cannot be interrupted inside a thread: a build stuck in the kernel holds the worker for
good. :func:`within` runs the work in a forked child of this process (it shares everything the
parent has loaded, the kernel and the template registry included, so it starts in milliseconds)
and kills it when the limit passes. The child's return value, or its exception, comes back
pickled through a pipe; the files it wrote are where it wrote them. Where ``fork`` does not exist,
or with no limit, the work runs in this process.
"""

from __future__ import annotations

import os
import pickle
import select
import signal
import time
from collections.abc import Callable
from typing import TypeVar

from .errors import InfrastructureError, TimeoutFault

T = TypeVar("T")

DEFAULT_RENDER_TIMEOUT_S = 600.0


def render_timeout_s() -> float | None:
    """The render time limit: ``$PARAMETRIC_RENDER_TIMEOUT_SECONDS`` (0 for none), else 600 s."""
    value = float(os.environ.get("PARAMETRIC_RENDER_TIMEOUT_SECONDS", DEFAULT_RENDER_TIMEOUT_S))
    return value if value > 0 else None


def within(seconds: float | None, what: str, work: Callable[[], T]) -> T:
    """``work()``, stopped with :class:`TimeoutFault` if it takes longer than ``seconds``.

    A child that dies without an answer (killed, or a crash in the kernel) is an
    :class:`InfrastructureError` (``crashed``) that counts as an attempt.
    """
    if seconds is None or seconds <= 0 or not hasattr(os, "fork"):
        return work()
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: do the work, send the outcome, leave without running the parent's exit handlers
        code = 0
        try:
            os.close(reader)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            try:
                outcome = ("value", work())
            except BaseException as error:  # noqa: BLE001 - every failure goes back to the parent
                outcome = ("error", error)
            try:
                payload = pickle.dumps(outcome)
            except Exception as error:  # an exception that cannot be pickled goes back as its text
                payload = pickle.dumps(("error", RuntimeError(f"{type(outcome[1]).__name__}: {outcome[1]} "
                                                              f"(not picklable: {error})")))
            with os.fdopen(writer, "wb") as out:
                out.write(payload)
        except BaseException:  # noqa: BLE001
            code = 1
        finally:
            os._exit(code)
    os.close(writer)
    chunks: list[bytes] = []
    deadline = time.monotonic() + seconds
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutFault(what, seconds)
            ready, _, _ = select.select([reader], [], [], remaining)
            if not ready:
                continue
            chunk = os.read(reader, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
    except BaseException:
        _kill(pid)
        raise
    finally:
        os.close(reader)
    _, status = os.waitpid(pid, 0)
    if not chunks:
        raise InfrastructureError("crashed", f"{what} stopped without an answer "
                                             f"({_describe_status(status)})", counts_as_attempt=True)
    kind, value = pickle.loads(b"".join(chunks))
    if kind == "error":
        raise value
    return value


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass


def _describe_status(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by signal {os.WTERMSIG(status)}"
    return f"exit status {os.WEXITSTATUS(status)}"
