"""The errors the core raises, each carrying what a person needs to fix the request."""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class FieldError:
    """One problem with one input field: its dotted name and a plain-language message."""

    field: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


class ParametricError(Exception):
    """Base of every error the core raises on purpose."""


class ValidationError(ParametricError):
    """The request was refused before any geometry was built; lists every bad field."""

    def __init__(self, errors: list[FieldError]):
        self.errors = list(errors)
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in self.errors))

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.errors,))

    def prefixed(self, prefix: str) -> ValidationError:
        """The same errors with their field names under ``prefix`` (e.g. ``items[0].params``)."""
        return ValidationError([FieldError(f"{prefix}.{e.field}" if e.field else prefix, e.message)
                                for e in self.errors])


class GeometryError(ParametricError):
    """The geometry kernel failed, or built something unfit, for accepted input."""

    def __init__(self, template: str, params: dict[str, Any], reason: str):
        self.template = template
        self.params = params
        self.reason = reason
        super().__init__(
            f"template {template!r} could not be built with parameters "
            f"{json.dumps(params, sort_keys=True)}: {reason}"
        )

    def __reduce__(self) -> tuple[Any, ...]:  # a render in a child process sends it back whole
        return (type(self), (self.template, self.params, self.reason))


class Problems(list[FieldError]):
    """Every problem of one request, gathered from several checks so all are reported at once."""

    def check(self, function: Callable[..., T], *args: Any) -> T | None:
        """``function(*args)``; if it raises :class:`ValidationError`, keep its errors and give ``None``."""
        try:
            return function(*args)
        except ValidationError as error:
            self.extend(error.errors)
            return None


CUSTOMER_FAULT_MESSAGE = "we can't prepare files right now, please try again shortly"
"""What a customer reads of any fault of ours (a full disk, a read-only folder, a timeout): never the detail."""

_FAULT_ERRNOS = {
    errno.ENOSPC: ("disk_full", "the disk is full"),
    errno.EDQUOT: ("disk_full", "the disk quota is used up"),
    errno.EFBIG: ("disk_full", "a file grew past the size this process may write"),
    errno.EROFS: ("read_only", "the output folder is on a read-only file system"),
    errno.EACCES: ("no_access", "the output folder cannot be written (permission denied)"),
    errno.EPERM: ("no_access", "the output folder cannot be written (operation not permitted)"),
    errno.EIO: ("io_error", "the disk reported an input/output error"),
    errno.EMFILE: ("no_resources", "the process ran out of file handles"),
    errno.ENFILE: ("no_resources", "the system ran out of file handles"),
    errno.ENOMEM: ("no_resources", "the machine ran out of memory"),
}


class InfrastructureError(ParametricError):
    """Our fault, not the customer's: a full disk, a read-only or unwritable folder, a missing tool, a timeout.

    ``kind`` names it (``disk_full``, ``read_only``, ``no_access``, ``missing_tool``, ``timeout``, ...),
    ``reason`` is the detail for staff (it may name server paths: log it, never show it to a customer),
    ``retry_after_s`` how long a client should wait. ``counts_as_attempt``: whether a retry of the work
    uses up one of its bounded attempts (a timeout does, since the same input may time out again; a full
    disk does not: the work is retried, without limit, until the fault clears).
    """

    customer_message = CUSTOMER_FAULT_MESSAGE

    def __init__(self, kind: str, reason: str, *, retry_after_s: int = 30, counts_as_attempt: bool = False):
        self.kind = kind
        self.reason = reason
        self.retry_after_s = retry_after_s
        self.counts_as_attempt = counts_as_attempt
        super().__init__(reason)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_infrastructure_error,
                (type(self), self.kind, self.reason, self.retry_after_s, self.counts_as_attempt))


class TimeoutFault(InfrastructureError):
    """A render, slicer or interpreter run took longer than its configured limit and was stopped."""

    def __init__(self, what: str, seconds: float, reason: str = ""):
        self.what = what
        self.seconds = seconds
        super().__init__("timeout", reason or f"{what} took longer than {seconds:g} s and was stopped",
                         retry_after_s=60, counts_as_attempt=True)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.what, self.seconds, self.reason))


class ToolMissing:
    """Mixin for an error of an external tool (rs274, PrusaSlicer) that is not installed here: a fault of the
    machine (:func:`infrastructure_fault`), retried once it is installed."""

    infrastructure_kind = "missing_tool"


class ToolTimeout:
    """Mixin for an error of an external tool that ran longer than its time limit (:func:`time_limit`) and was
    killed: a fault of ours that uses up an attempt, since the same input may time out again."""

    infrastructure_kind = "timeout"
    counts_as_attempt = True


def not_installed(tool: str, package: str) -> str:
    """What a :class:`ToolMissing` error says: the tool, its Debian package and how to install it."""
    return f"{tool} is not installed (Debian package {package}; run scripts/install-system-deps.sh)"


def overran(tool: str, limit_s: float, what: str = "") -> str:
    """What a :class:`ToolTimeout` error says: the tool, its limit and (optionally) what it was working on."""
    return f"{tool} took longer than {limit_s:g} s{f' on {what}' if what else ''} and was stopped"


def time_limit(env_name: str, default_s: float) -> float | None:
    """An external tool's time limit per run in seconds: ``$env_name`` (0 for none), else ``default_s``."""
    value = float(os.environ.get(env_name, default_s))
    return value if value > 0 else None


def _rebuild_infrastructure_error(cls: type[InfrastructureError], kind: str, reason: str, retry_after_s: int,
                                  counts_as_attempt: bool) -> InfrastructureError:
    return cls(kind, reason, retry_after_s=retry_after_s, counts_as_attempt=counts_as_attempt)


def infrastructure_fault(error: BaseException) -> InfrastructureError | None:
    """The :class:`InfrastructureError` ``error`` is (or is caused by), or ``None`` when it is something else.

    The one place that tells our faults from the customer's: an ``OSError`` of a full disk, a read-only
    or unwritable file system, an I/O error or exhausted resources is ours, wherever it was raised
    (also when a library wrapped it in its own exception: the chain is followed).
    """
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, InfrastructureError):
            return current
        kind = getattr(current, "infrastructure_kind", None)  # e.g. a SlicerError for a slicer not installed
        if kind:
            fault = InfrastructureError(kind, str(current),
                                        counts_as_attempt=bool(getattr(current, "counts_as_attempt", False)))
            fault.__cause__ = current
            return fault
        if isinstance(current, OSError) and current.errno in _FAULT_ERRNOS:
            kind, words = _FAULT_ERRNOS[current.errno]
            where = f" ({current.filename})" if current.filename else ""
            fault = InfrastructureError(kind, f"{words}{where}: {current.strerror or current}")
            fault.__cause__ = current
            return fault
        current = current.__cause__ or current.__context__
    return None
