"""Print hosts: one small connector class per protocol behind one interface.

A connector uploads G-code tagged with our job id, starts it, reports the printer's state
and the job's progress, and cancels. Print hosts keep no queue of their own (OctoPrint
uploading with ``print=true`` to a busy printer just does not print), so the queue is the
caller's; a connector's part is to make sending idempotent: :meth:`PrinterConnector.submit`
first looks the job up by its tag on the host and never uploads or prints a job twice.

Errors say whether to retry: :class:`HostUnreachable` and :class:`PrinterBusy` are
``retryable`` (try again later, with backoff), :class:`HostRefused` is not (a wrong API key,
a file the host rejects). The connectors use only the standard library.
"""

from __future__ import annotations

import http.client
import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from .errors import ParametricError
from .machines import Host, Printer

JOB_TAG = "parametric_job"
"""The key our job id is kept under in an upload's metadata on the host."""


class HostError(ParametricError):
    """Talking to a print host failed; ``retryable`` says whether trying again later can help."""

    retryable: ClassVar[bool] = False

    def __init__(self, host: str, reason: str):
        self.host = host
        self.reason = reason
        super().__init__(f"{host}: {reason}" + ("; will retry" if self.retryable else ""))


class HostUnreachable(HostError):
    """The host did not answer (down, restarting, network): retry later."""

    retryable = True


class PrinterBusy(HostError):
    """The printer is printing, paused, offline or in error: retry when it is ready."""

    retryable = True


class HostRefused(HostError):
    """The host answered no (bad API key, rejected file or command): a person must look."""

    retryable = False


@dataclass(frozen=True)
class Upload:
    """A G-code file on the host, tagged with our job id, and how often it was printed to the end or not."""

    path: str
    job_id: str | None
    successes: int = 0
    failures: int = 0
    uploaded_at: float | None = None


@dataclass(frozen=True)
class PrinterStatus:
    """The printer as its host sees it: ``state`` text, flags, the selected file and progress (0-100)."""

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
    ``paused``, ``done`` (printed to the end), ``failed`` (stopped: cancelled or an error).
    """

    job_id: str
    state: str
    upload: Upload | None = None
    progress: float | None = None
    print_time_s: float | None = None
    print_time_left_s: float | None = None


class PrinterConnector(ABC):
    """What the queue needs from any print host."""

    protocol: ClassVar[str]

    def __init__(self, host: Host, name: str = "printer", timeout_s: float = 10.0):
        self.host = host
        self.name = name
        self.timeout_s = timeout_s

    @abstractmethod
    def status(self) -> PrinterStatus:
        """The printer's state and the current job's progress."""

    @abstractmethod
    def find_upload(self, job_id: str) -> Upload | None:
        """The file uploaded for ``job_id``, found by its tag, or None."""

    @abstractmethod
    def upload(self, gcode: str | Path, job_id: str) -> Upload:
        """Upload ``gcode`` tagged with ``job_id`` without starting it."""

    @abstractmethod
    def start(self, upload: Upload) -> None:
        """Select and print an uploaded file (the printer must be ready)."""

    @abstractmethod
    def cancel(self) -> None:
        """Cancel the running print."""

    @abstractmethod
    def connect(self, port: str = "AUTO", baudrate: int | None = None) -> None:
        """Have the host open its connection to the printer."""

    # -- protocol-independent: what the queue calls -------------------------------------

    def job(self, job_id: str) -> HostJob:
        """Where ``job_id`` stands on the host."""
        upload = self.find_upload(job_id)
        if upload is None:
            return HostJob(job_id, "absent")
        status = self.status()
        if status.file == upload.path and (status.printing or status.paused):
            return HostJob(job_id, "paused" if status.paused else "printing", upload, status.progress,
                           status.print_time_s, status.print_time_left_s)
        if upload.successes:
            return HostJob(job_id, "done", upload, 100.0)
        if upload.failures:
            return HostJob(job_id, "failed", upload)
        return HostJob(job_id, "uploaded", upload)

    def submit(self, gcode: str | Path, job_id: str, *, reprint: bool = False) -> HostJob:
        """Send ``job_id`` and start it, at most once.

        The job is looked up by its tag first: a job printing, paused or done is returned
        as it is, never uploaded or started again; an earlier upload is reused; a failed
        job is only started again with ``reprint=True``. Raises PrinterBusy when the printer
        is not ready, HostUnreachable when the host does not answer (both retryable).
        """
        current = self.job(job_id)
        if current.state in ("printing", "paused", "done") or (current.state == "failed" and not reprint):
            return current
        status = self.status()
        if not status.ready:
            raise PrinterBusy(self._where(), f"{self.name} is {status.state.lower()}"
                                             + (f" ({status.file})" if status.file and status.printing else ""))
        upload = current.upload or self.upload(gcode, job_id)
        self.start(upload)
        return self.job(job_id)

    def follow(self, job_id: str, *, on_progress: Callable[[HostJob], None] | None = None, poll_s: float = 2.0,
               timeout_s: float | None = None) -> HostJob:
        """Poll until ``job_id`` is done or failed (or ``timeout_s`` passes), telling ``on_progress`` each reading."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            current = self.job(job_id)
            if on_progress is not None:
                on_progress(current)
            if current.state in ("done", "failed", "absent"):
                return current
            if deadline is not None and time.monotonic() > deadline:
                return current
            time.sleep(poll_s)

    def _where(self) -> str:
        return f"{self.protocol} at {self.host.url}"


def upload_name(job_id: str) -> str:
    """The file name a job's G-code gets on a host: ``job-<id>.gcode``, safe characters only."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", job_id).strip("._") or "job"
    return f"job-{safe[:80]}.gcode"


class OctoPrintConnector(PrinterConnector):
    """OctoPrint's REST API (1.x): ``X-Api-Key`` header, files on ``local`` storage, ``/api/job`` for progress."""

    protocol = "octoprint"

    def _request(self, method: str, path: str, *, body: bytes | None = None, content_type: str | None = None,
                 expect: tuple[int, ...] = (200, 201, 204), missing_ok: bool = False) -> Any:
        url = self.host.url.rstrip("/") + path
        request = urllib.request.Request(url, data=body, method=method)
        request.add_header("X-Api-Key", self.host.api_key)
        if content_type:
            request.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                payload = response.read()
                status = response.status
        except urllib.error.HTTPError as error:
            detail = _error_text(error)
            if missing_ok and error.code == 404:
                return None
            if error.code in (401, 403):
                raise HostRefused(self._where(), f"the API key was refused ({error.code}): {detail}") from None
            if error.code == 409:
                raise PrinterBusy(self._where(), f"{self.name}: {detail}") from None
            if error.code >= 500:
                raise HostUnreachable(self._where(), f"host error {error.code}: {detail}") from None
            raise HostRefused(self._where(), f"{method} {path} refused ({error.code}): {detail}") from None
        except (urllib.error.URLError, ConnectionError, TimeoutError, http.client.HTTPException) as error:
            reason = getattr(error, "reason", error)
            raise HostUnreachable(self._where(), f"no answer ({reason})") from None
        if status not in expect:
            raise HostRefused(self._where(), f"{method} {path} answered {status}")
        return json.loads(payload) if payload.strip() else None

    def _json(self, method: str, path: str, document: dict[str, Any], **kwargs: Any) -> Any:
        return self._request(method, path, body=json.dumps(document).encode(), content_type="application/json",
                             **kwargs)

    def status(self) -> PrinterStatus:
        job = self._request("GET", "/api/job")
        try:
            printer = self._request("GET", "/api/printer", missing_ok=True)
        except PrinterBusy:  # 409: the host has no connection to the printer
            printer = None
        flags = (printer or {}).get("state", {}).get("flags", {}) if printer else {}
        state = job.get("state") or "Unknown"
        progress = job.get("progress") or {}
        file = (job.get("job") or {}).get("file") or {}
        return PrinterStatus(
            state=state, operational=bool(flags.get("operational", state == "Operational")),
            printing=bool(flags.get("printing", state.startswith("Printing"))) or state in ("Starting", "Finishing"),
            paused=bool(flags.get("paused") or flags.get("pausing")), error=bool(flags.get("error")),
            file=file.get("path"), progress=progress.get("completion"), print_time_s=progress.get("printTime"),
            print_time_left_s=progress.get("printTimeLeft"))

    def _upload_of(self, entry: dict[str, Any]) -> Upload:
        prints = entry.get("prints") or {}
        userdata = entry.get("userdata") or {}
        return Upload(path=entry.get("path") or entry["name"], job_id=userdata.get(JOB_TAG),
                      successes=int(prints.get("success") or 0), failures=int(prints.get("failure") or 0),
                      uploaded_at=entry.get("date"))

    def find_upload(self, job_id: str) -> Upload | None:
        entry = self._request("GET", f"/api/files/local/{urllib.parse.quote(upload_name(job_id))}", missing_ok=True)
        if entry is not None and (entry.get("userdata") or {}).get(JOB_TAG) == job_id:
            return self._upload_of(entry)
        listing = self._request("GET", "/api/files/local?recursive=true")
        for found in _walk(listing.get("files", [])):
            if (found.get("userdata") or {}).get(JOB_TAG) == job_id:
                return self._upload_of(found)
        return None

    def upload(self, gcode: str | Path, job_id: str) -> Upload:
        name = upload_name(job_id)
        boundary = f"----parametric{uuid.uuid4().hex}"
        fields = [("userdata", json.dumps({JOB_TAG: job_id})), ("select", "false"), ("print", "false")]
        body = bytearray()
        for key, value in fields:
            body += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{key}\"\r\n\r\n{value}\r\n").encode()
        body += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n"
                 "Content-Type: application/octet-stream\r\n\r\n").encode()
        body += Path(gcode).read_bytes() + f"\r\n--{boundary}--\r\n".encode()
        answer = self._request("POST", "/api/files/local", body=bytes(body),
                               content_type=f"multipart/form-data; boundary={boundary}")
        local = (answer or {}).get("files", {}).get("local", {})
        return Upload(path=local.get("path") or name, job_id=job_id, uploaded_at=time.time())

    def start(self, upload: Upload) -> None:
        self._json("POST", f"/api/files/local/{urllib.parse.quote(upload.path)}", {"command": "select",
                                                                                    "print": True})

    def cancel(self) -> None:
        self._json("POST", "/api/job", {"command": "cancel"})

    def connect(self, port: str = "AUTO", baudrate: int | None = None) -> None:
        command: dict[str, Any] = {"command": "connect", "port": port, "printerProfile": "_default"}
        if baudrate:
            command["baudrate"] = baudrate
        self._json("POST", "/api/connection", command)


def _walk(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found = []
    for entry in entries:
        if entry.get("type") == "folder":
            found.extend(_walk(entry.get("children", [])))
        else:
            found.append(entry)
    return found


def _error_text(error: urllib.error.HTTPError) -> str:
    try:
        payload = json.loads(error.read() or b"{}")
        return str(payload.get("error") or payload)
    except (ValueError, OSError):
        return error.reason if isinstance(error.reason, str) else str(error.code)


CONNECTORS: dict[str, type[PrinterConnector]] = {"octoprint": OctoPrintConnector}
"""Connector class per host protocol; a new host type is one class and one entry."""


def connector_for(printer: Printer, timeout_s: float = 10.0) -> PrinterConnector:
    """The connector that drives ``printer``'s host."""
    if printer.host is None:
        raise HostRefused(printer.name, "this printer has no host to send jobs to; add one with --octoprint URL "
                                        "--api-key KEY")
    try:
        connector = CONNECTORS[printer.host.kind]
    except KeyError:
        raise HostRefused(printer.name, f"no connector for hosts of kind {printer.host.kind!r}; known: "
                                        f"{', '.join(CONNECTORS)}") from None
    return connector(printer.host, printer.name, timeout_s)
