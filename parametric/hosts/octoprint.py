"""The OctoPrint connector: OctoPrint's REST API (1.x), standard library only.

Uploads go to ``local`` storage as ``job-<id>.gcode`` with the job id kept in the file's
``userdata`` (:data:`~parametric.hosts.base.JOB_TAG`), so a job is found again by its tag after a
restart of either side. OctoPrint keeps no queue of its own (uploading with ``print=true`` to a busy
printer just does not print), so the queue is the caller's.
"""

from __future__ import annotations

import http.client
import json
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .base import (
    JOB_TAG,
    Capability,
    ConnectionField,
    Connector,
    HostRefused,
    HostUnreachable,
    PrinterBusy,
    PrinterStatus,
    Upload,
    Withdrawal,
    as_paths,
    safe_tag,
)


def upload_name(job_id: str) -> str:
    """The file name a job's G-code gets on OctoPrint: ``job-<id>.gcode``, safe characters only."""
    return f"job-{safe_tag(job_id)}.gcode"


class OctoPrintConnector(Connector):
    """OctoPrint's REST API (1.x): ``X-Api-Key`` header, files on ``local`` storage, ``/api/job`` for progress."""

    protocol = "octoprint"
    label = "OctoPrint"
    description = "a printer driven by OctoPrint: jobs are uploaded, started and followed through its API"
    machine_kinds = ("printer",)
    implied = True  # printer hosts were all OctoPrint before records named their protocol
    FIELDS = (
        ConnectionField("url", "OctoPrint URL", "the host's base URL, e.g. http://octopi.local", kind="url"),
        # the staff form called it api_key before hosts had protocols
        ConnectionField("api_key", "API key", "an application key from OctoPrint's settings", secret=True,
                        form_name="api_key"),
    )
    CAPABILITIES = frozenset({Capability.TAGGED_UPLOADS, Capability.STARTS, Capability.PROGRESS,
                              Capability.REPORTS_END, Capability.CANCELS, Capability.WITHDRAWS,
                              Capability.CONNECTS})

    def _request(self, method: str, path: str, *, body: bytes | None = None, content_type: str | None = None,
                 expect: tuple[int, ...] = (200, 201, 204), missing_ok: bool = False) -> Any:
        url = self.settings["url"] + path
        request = urllib.request.Request(url, data=body, method=method)
        request.add_header("X-Api-Key", self.settings["api_key"])
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

    def upload(self, gcode: str | Path | Sequence[str | Path], job_id: str) -> Upload:
        files = as_paths(gcode)
        if len(files) != 1:
            raise HostRefused(self._where(), f"a print job is one G-code file, not {len(files)}")
        name = upload_name(job_id)
        boundary = f"----parametric{uuid.uuid4().hex}"
        fields = [("userdata", json.dumps({JOB_TAG: job_id})), ("select", "false"), ("print", "false")]
        body = bytearray()
        for key, value in fields:
            body += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{key}\"\r\n\r\n{value}\r\n").encode()
        body += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n"
                 "Content-Type: application/octet-stream\r\n\r\n").encode()
        body += files[0].read_bytes() + f"\r\n--{boundary}--\r\n".encode()
        answer = self._request("POST", "/api/files/local", body=bytes(body),
                               content_type=f"multipart/form-data; boundary={boundary}")
        local = (answer or {}).get("files", {}).get("local", {})
        return Upload(path=local.get("path") or name, job_id=job_id, uploaded_at=time.time())

    def start(self, upload: Upload) -> None:
        self._json("POST", f"/api/files/local/{urllib.parse.quote(upload.path)}", {"command": "select",
                                                                                    "print": True})

    def cancel(self) -> None:
        self._json("POST", "/api/job", {"command": "cancel"})

    def withdraw(self, job_id: str) -> Withdrawal:
        """Delete the job's upload unless it is printing or was printed (then it counts as taken)."""
        upload = self.find_upload(job_id)
        if upload is None:
            return Withdrawal()
        status = self.status()
        if upload.successes or upload.failures or (status.file == upload.path and (status.printing or status.paused)):
            return Withdrawal(taken=(upload.path,))
        self._request("DELETE", f"/api/files/local/{urllib.parse.quote(upload.path)}", missing_ok=True)
        return Withdrawal(withdrawn=(upload.path,))

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
