"""The one interface every machine host connector implements, and what it declares about itself.

A connector drives one protocol (a print host's API, a router's hot folder). Its class says what
it is: its ``protocol`` name, a ``label`` people read, the connection :class:`ConnectionField` s a machine
record must give it (the staff form is built from them), which machine kinds it drives, and its
:class:`Capability` s (the queue and the contract tests decide from them what to expect).

The queue calls the protocol-independent methods: :meth:`Connector.job` (where a job stands on
the host), :meth:`Connector.submit` (send and start a job at most once, found by its tag first)
and :meth:`Connector.follow`. Errors say whether to retry: :class:`HostUnreachable` and
:class:`PrinterBusy` are ``retryable`` (try again later, with backoff), :class:`HostRefused` is not
(a wrong API key, a file the host rejects, something the protocol cannot do).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar, Protocol

from ..errors import FieldError, ParametricError, ValidationError
from ..files import file_lock

JOB_TAG = "parametric_job"
"""The key a job id is kept under in an upload's metadata on hosts that keep metadata."""

STATES = ("absent", "uploaded", "printing", "paused", "taken", "done", "failed")
"""Where a job can stand on its host (see :class:`HostJob`)."""


class HostError(ParametricError):
    """Talking to a machine's host failed; ``retryable`` says whether trying again later can help."""

    retryable: ClassVar[bool] = False

    def __init__(self, host: str, reason: str):
        self.host = host
        self.reason = reason
        super().__init__(f"{host}: {reason}" + ("; will retry" if self.retryable else ""))


class HostUnreachable(HostError):
    """The host did not answer or cannot be written now (down, restarting, network, a missing mount): retry later."""

    retryable = True


class PrinterBusy(HostError):
    """The machine is printing, paused, offline or in error: retry when it is ready."""

    retryable = True


class HostRefused(HostError):
    """The host answered no (bad API key, rejected file or command), or the protocol cannot do it: a person must
    look."""

    retryable = False


def os_reason(error: OSError) -> str:
    """An OS error in plain words with its code: ``Not a directory (ENOTDIR)``."""
    code = errno.errorcode.get(error.errno or 0)
    return f"{error.strerror or error}" + (f" ({code})" if code else "")


# -- what a connector declares -----------------------------------------------------------------------

FIELD_KINDS = ("url", "path", "text")
"""What a connection field holds: a web address (``http://`` or ``https://``), a path on this server, or text."""


@dataclass(frozen=True)
class ConnectionField:
    """One connection setting a connector needs, as a machine record stores it under ``name``.

    ``label`` and ``help`` are for the staff form; ``missing`` is what a record without a required
    field is told; a ``secret`` (an API key) is stored but never shown back. ``form_name`` is the
    input's name on the staff form (default ``<protocol>_<name>``).
    """

    name: str
    label: str
    help: str = ""
    kind: str = "text"
    required: bool = True
    secret: bool = False
    form_name: str | None = None
    missing: str = "required"

    def clean(self, value: Any) -> str | None:
        """The value as stored (text, trimmed; a URL without its trailing slash), ``None`` when not given; raises
        ValueError with the reason when it will not do."""
        if value is None or (isinstance(value, str) and not value.strip()):
            if self.required:
                raise ValueError(self.missing)
            return None
        if not isinstance(value, str):
            raise ValueError("must be text")
        text = value.strip()
        if self.kind == "url":
            if not text.startswith(("http://", "https://")):
                raise ValueError("must start with http:// or https://")
            text = text.rstrip("/")
        return text


class Capability(StrEnum):
    """What a connector can do; the queue and the contract tests decide from these what to expect."""

    TAGGED_UPLOADS = "tagged_uploads"
    """An upload carries the job id and is found again by it (so a resend never sends a job twice)."""
    STARTS = "starts"
    """It starts a job itself; without it the machine takes the files when it is ready (a hot folder's sender)."""
    PROGRESS = "progress"
    """It reports a running job's progress."""
    REPORTS_END = "reports_end"
    """It reports the end of a job: done (printed to the end) or failed (cancelled, an error)."""
    CANCELS = "cancels"
    """It cancels a running job."""
    WITHDRAWS = "withdraws"
    """It takes back files that have not started."""
    SEES_TAKEN = "sees_taken"
    """It sees the machine take a job's files (then the job is in progress)."""
    CONNECTS = "connects"
    """It can have the host open its connection to the machine."""


CAPABILITY_TEXT = {
    Capability.TAGGED_UPLOADS: "uploads tagged with the job id",
    Capability.STARTS: "starts a job",
    Capability.PROGRESS: "reports progress",
    Capability.REPORTS_END: "reports the end of a job",
    Capability.CANCELS: "cancels a running job",
    Capability.WITHDRAWS: "takes back files not started",
    Capability.SEES_TAKEN: "sees the machine take the files",
    Capability.CONNECTS: "connects to the machine",
}
"""Each capability as the staff pages say it."""


# -- what a host tells ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Upload:
    """A job's files on the host, tagged with its id: ``path`` is the first (a print job has one), ``files`` all of
    them; ``taken`` are those the machine has taken; how often it was printed to the end or not."""

    path: str
    job_id: str | None
    successes: int = 0
    failures: int = 0
    uploaded_at: float | None = None
    files: tuple[str, ...] = ()
    taken: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.files:
            object.__setattr__(self, "files", (self.path,))


@dataclass(frozen=True)
class PrinterStatus:
    """The machine as its host sees it: ``state`` text, flags, the selected file and progress (0-100)."""

    state: str
    operational: bool
    printing: bool
    paused: bool
    error: bool
    file: str | None
    progress: float | None
    print_time_s: float | None
    print_time_left_s: float | None

    @property
    def ready(self) -> bool:
        """Operational and idle: a new job may start."""
        return self.operational and not (self.printing or self.paused or self.error)


@dataclass(frozen=True)
class HostJob:
    """One of our jobs as the host knows it.

    ``state``: ``absent`` (never uploaded), ``uploaded`` (on the host, not started), ``printing``,
    ``paused``, ``taken`` (the machine has taken its files; the host sees no further), ``done``
    (printed to the end), ``failed`` (stopped: cancelled or an error).
    """

    job_id: str
    state: str
    upload: Upload | None = None
    progress: float | None = None
    print_time_s: float | None = None
    print_time_left_s: float | None = None


@dataclass(frozen=True)
class Withdrawal:
    """What :meth:`Connector.withdraw` did: the files taken back, and those the machine had already taken."""

    withdrawn: tuple[str, ...] = ()
    taken: tuple[str, ...] = ()


# -- what a connector remembers ---------------------------------------------------------------------------


class Records(Protocol):
    """Where a connector keeps what its host cannot tell it about a job between calls (a hot folder: the files it
    wrote, their hashes and the folder's file system), one plain record per job id."""

    def get(self, job_id: str) -> dict[str, Any] | None: ...

    def put(self, job_id: str, record: dict[str, Any]) -> None: ...


class MemoryRecords:
    """Records kept in memory, for one process."""

    def __init__(self) -> None:
        self.records: dict[str, dict[str, Any]] = {}

    def get(self, job_id: str) -> dict[str, Any] | None:
        record = self.records.get(job_id)
        return json.loads(json.dumps(record)) if record is not None else None

    def put(self, job_id: str, record: dict[str, Any]) -> None:
        self.records[job_id] = json.loads(json.dumps(record))


class FileRecords:
    """Records kept in a JSON file under a file lock (the CLI's, which has no database), one section per machine."""

    def __init__(self, path: str | os.PathLike[str], section: str):
        self.path = Path(path)
        self.section = section

    def _read(self) -> dict[str, Any]:
        try:
            return dict(json.loads(self.path.read_text("utf-8")))
        except FileNotFoundError:
            return {}

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with file_lock(self.path.with_name(f".{self.path.name}.lock")):
            yield

    def get(self, job_id: str) -> dict[str, Any] | None:
        return self._read().get(self.section, {}).get(job_id)

    def put(self, job_id: str, record: dict[str, Any]) -> None:
        from ..files import atomic_write_json

        with self._locked():
            document = self._read()
            document.setdefault(self.section, {})[job_id] = record
            atomic_write_json(self.path, document)


def default_records_path() -> Path:
    """``$PARAMETRIC_HOST_RECORDS``, or ``host-records.json`` under the output folder (beside ``machines.json``)."""
    from ..cache import output_root

    configured = os.environ.get("PARAMETRIC_HOST_RECORDS")
    return Path(configured).resolve() if configured else output_root() / "host-records.json"


# -- the interface ------------------------------------------------------------------------------------------


def safe_tag(job_id: str) -> str:
    """A job id as it may appear in a file name: safe characters only, at most 80."""
    return (re.sub(r"[^A-Za-z0-9_.-]+", "_", job_id).strip("._") or "job")[:80]


def as_paths(files: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> list[Path]:
    """One file or several, as paths."""
    if isinstance(files, (str, os.PathLike)):
        return [Path(files)]
    return [Path(f) for f in files]


class Connector(ABC):
    """What the queue needs from any machine host. A subclass declares itself in its class attributes."""

    protocol: ClassVar[str]
    """The name machine records use (``host.kind``, ``delivery.method``) and the entry point is registered under."""
    label: ClassVar[str]
    """What people call it."""
    description: ClassVar[str] = ""
    """One line for the staff form: what it is for."""
    machine_kinds: ClassVar[tuple[str, ...]] = ("printer",)
    """The kinds of machine it drives (``printer``, ``router``)."""
    FIELDS: ClassVar[tuple[ConnectionField, ...]] = ()
    """Its connection settings."""
    CAPABILITIES: ClassVar[frozenset[Capability]] = frozenset()
    implied: ClassVar[bool] = False
    """A stored host without a protocol is one of these (records from before hosts named one)."""

    def __init__(self, settings: Mapping[str, Any], name: str = "machine", timeout_s: float = 10.0,
                 records: Records | None = None):
        cleaned, problems = self.read_settings(settings)
        if problems:
            raise ValidationError(problems)
        self.settings = cleaned
        self.name = name
        self.timeout_s = timeout_s
        self.records: Records = records if records is not None else MemoryRecords()

    # -- declarations -------------------------------------------------------------------------------------

    @classmethod
    def form_name(cls, setting: ConnectionField) -> str:
        """The name of a setting's input on the staff form."""
        return setting.form_name or f"{cls.protocol}_{setting.name}"

    @classmethod
    def read_settings(cls, raw: Mapping[str, Any]) -> tuple[dict[str, str], list[FieldError]]:
        """The settings a record gives, checked against the declared fields: (settings, problems named by field);
        settings not declared are problems too."""
        settings: dict[str, str] = {}
        problems: list[FieldError] = []
        names = [f.name for f in cls.FIELDS]
        for key in raw:
            if key not in names:
                problems.append(FieldError(key, f"unknown field; known fields: {', '.join(names) or 'none'}"))
        for setting in cls.FIELDS:
            try:
                value = setting.clean(raw.get(setting.name))
            except ValueError as error:
                problems.append(FieldError(setting.name, str(error)))
                continue
            if value is not None:
                settings[setting.name] = value
        return settings, problems

    @classmethod
    def secrets(cls) -> tuple[str, ...]:
        """The names of the settings never shown back."""
        return tuple(f.name for f in cls.FIELDS if f.secret)

    @classmethod
    def address_of(cls, settings: Mapping[str, Any]) -> str:
        """Where the host is, from its settings: its first URL or path setting."""
        for setting in cls.FIELDS:
            if setting.kind in ("url", "path") and settings.get(setting.name):
                return str(settings[setting.name])
        return ""

    @classmethod
    def describe_settings(cls, settings: Mapping[str, Any]) -> str:
        """The host in a few words, never its secrets: ``<label> at <address>``."""
        address = cls.address_of(settings)
        return f"{cls.label} at {address}" if address else cls.label

    @classmethod
    def can(cls, capability: Capability) -> bool:
        return capability in cls.CAPABILITIES

    @property
    def address(self) -> str:
        return self.address_of(self.settings)

    # -- the protocol ------------------------------------------------------------------------------------

    @abstractmethod
    def status(self) -> PrinterStatus:
        """The machine's state and the current job's progress."""

    @abstractmethod
    def find_upload(self, job_id: str) -> Upload | None:
        """The files uploaded for ``job_id``, found by its tag, or None."""

    @abstractmethod
    def upload(self, gcode: str | Path | Sequence[str | Path], job_id: str) -> Upload:
        """Upload ``gcode`` (a file, or several run in order) tagged with ``job_id`` without starting it."""

    def start(self, upload: Upload) -> None:
        """Select and print an uploaded job (the machine must be ready)."""
        raise HostRefused(self._where(), f"{self.label} cannot start a job: the machine takes it when it is ready")

    def cancel(self) -> None:
        """Cancel the running job."""
        raise HostRefused(self._where(), f"{self.label} cannot stop {self.name}: stop it on the machine")

    def withdraw(self, job_id: str) -> Withdrawal:
        """Take back the job's files that have not started."""
        raise HostRefused(self._where(), f"{self.label} cannot take files back")

    def connect(self, port: str = "AUTO", baudrate: int | None = None) -> None:
        """Have the host open its connection to the machine."""
        raise HostRefused(self._where(), f"{self.label} has no connection to open")

    # -- protocol-independent: what the queue calls -----------------------------------------------------

    def job(self, job_id: str) -> HostJob:
        """Where ``job_id`` stands on the host."""
        upload = self.find_upload(job_id)
        if upload is None:
            return HostJob(job_id, "absent")
        status = self.status()
        if status.file is not None and status.file == upload.path and (status.printing or status.paused):
            return HostJob(job_id, "paused" if status.paused else "printing", upload, status.progress,
                           status.print_time_s, status.print_time_left_s)
        if upload.successes:
            return HostJob(job_id, "done", upload, 100.0)
        if upload.failures:
            return HostJob(job_id, "failed", upload)
        if upload.taken:
            return HostJob(job_id, "taken", upload)
        return HostJob(job_id, "uploaded", upload)

    def submit(self, gcode: str | Path | Sequence[str | Path], job_id: str, *, reprint: bool = False) -> HostJob:
        """Send ``job_id`` and start it, at most once.

        The job is looked up by its tag first: a job printing, paused, taken or done is returned
        as it is, never uploaded or started again; an earlier upload is reused; a failed job is
        only started again with ``reprint=True``. Raises PrinterBusy when the machine is not
        ready, HostUnreachable when the host does not answer (both retryable).
        """
        current = self.job(job_id)
        if current.state in ("printing", "paused", "taken", "done") or (current.state == "failed" and not reprint):
            return current
        status = self.status()
        if not status.ready:
            raise PrinterBusy(self._where(), f"{self.name} is {status.state.lower()}"
                                             + (f" ({status.file})" if status.file and status.printing else ""))
        upload = current.upload or self.upload(gcode, job_id)
        if self.can(Capability.STARTS):
            self.start(upload)
        return self.job(job_id)

    def follow(self, job_id: str, *, on_progress: Callable[[HostJob], None] | None = None, poll_s: float = 2.0,
               timeout_s: float | None = None) -> HostJob:
        """Poll until ``job_id`` is done or failed (or ``timeout_s`` passes), telling ``on_progress`` each reading.
        A host that reports no end of a job is read once."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            current = self.job(job_id)
            if on_progress is not None:
                on_progress(current)
            if current.state in ("done", "failed", "absent") or not self.can(Capability.REPORTS_END):
                return current
            if deadline is not None and time.monotonic() > deadline:
                return current
            time.sleep(poll_s)

    def _where(self) -> str:
        return self.describe_settings(self.settings)
