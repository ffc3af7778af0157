"""The hot folder connector: G-code written into the folder a router's sender watches.

Each program of a job is written there once, as ``<tag>-<program>`` (``job-7-door-T1.nc``), whole:
under a ``.partial`` name the sender's pattern does not match, then renamed. What was written, its
SHA-256 and the folder's file system id are kept in the connector's records, so a resend writes
nothing twice (a file already there is found by name and hash even when the record was lost), a
folder on another file system than the one written to is refused (a share not mounted: its empty
mount point must not look like a sender that took everything), and a program gone from the folder
is known to be taken by the sender. A folder that cannot be read is an error, never "empty"; one
that cannot be written is retried (:class:`~parametric.hosts.base.HostUnreachable`). A missing folder
is never created.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .base import (
    Capability,
    ConnectionField,
    Connector,
    HostJob,
    HostUnreachable,
    PrinterStatus,
    Upload,
    Withdrawal,
    as_paths,
    os_reason,
    safe_tag,
)


def delivered_name(job_id: str, program: str | os.PathLike[str]) -> str:
    """A job's program in a hot folder: the job's tag, then the program's own name."""
    return f"{safe_tag(job_id)}-{Path(program).name}"


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class HotFolderConnector(Connector):
    """A folder on this server that a router's G-code sender watches and takes programs out of."""

    protocol = "hot_folder"
    label = "Hot folder"
    description = "Written into a hot folder the router's sender watches"
    machine_kinds = ("router",)
    FIELDS = (
        ConnectionField("path", "Hot folder", "the folder's path on this server, for hot folder delivery",
                        kind="path", form_name="hot_folder", missing="a hot folder delivery needs the folder's path"),
    )
    CAPABILITIES = frozenset({Capability.TAGGED_UPLOADS, Capability.SEES_TAKEN, Capability.WITHDRAWS})

    # -- the folder --------------------------------------------------------------------------------------

    def _record(self, job_id: str) -> dict[str, Any]:
        return dict(self.records.get(job_id) or {})

    def _folder(self, record: dict[str, Any]) -> Path:
        """The folder a job was delivered to (kept when the router's setting changes since), else the setting's."""
        return Path(record.get("folder") or self.settings["path"])

    def _where_folder(self, folder: Path) -> str:
        return f"hot folder {folder}"

    def _listing(self, folder: Path, record: dict[str, Any] | None = None) -> tuple[set[str], int]:
        """The names in the folder and its file system's id. A folder that cannot be read is an error, never
        "empty", and so is one on another file system than the job's record says."""
        try:
            names, device = set(os.listdir(folder)), os.stat(folder).st_dev
        except OSError as error:
            raise HostUnreachable(self._where_folder(folder), os_reason(error)) from None
        if record and record.get("device") is not None and device != record["device"]:
            raise HostUnreachable(self._where_folder(folder), "not the file system the job was delivered to "
                                                              "(is the share mounted?)")
        return names, device

    def _ours(self, job_id: str, record: dict[str, Any], present: set[str]) -> list[str]:
        """The job's names: those written (in order), then any other there with its tag (a write not recorded)."""
        written = list(record.get("programs") or {})
        prefix = f"{safe_tag(job_id)}-"
        return written + sorted(n for n in present if n.startswith(prefix) and n not in written)

    def _write(self, source: Path, target: Path) -> None:
        partial = target.with_name(f".{target.name}.partial")
        try:
            shutil.copyfile(source, partial)
            with open(partial, "rb") as written:
                os.fsync(written.fileno())
            os.replace(partial, target)
        except FileNotFoundError as error:
            if not source.is_file():
                raise  # the job's own file is missing, not the folder
            raise HostUnreachable(self._where_folder(target.parent), os_reason(error)) from None
        except OSError as error:
            with contextlib.suppress(OSError):
                partial.unlink(missing_ok=True)
            raise HostUnreachable(self._where_folder(target.parent), os_reason(error)) from None

    # -- the interface -------------------------------------------------------------------------------------

    def status(self) -> PrinterStatus:
        """Ready whenever the folder can be read (the sender keeps its own queue of the files there)."""
        self._listing(Path(self.settings["path"]))
        return PrinterStatus(state="Ready", operational=True, printing=False, paused=False, error=False, file=None,
                             progress=None, print_time_s=None, print_time_left_s=None)

    def find_upload(self, job_id: str) -> Upload | None:
        record = self._record(job_id)
        present, _ = self._listing(self._folder(record), record)
        ours = self._ours(job_id, record, present)
        if not ours:
            return None
        taken = tuple(name for name in ours if name not in present)
        return Upload(path=ours[0], job_id=job_id, files=tuple(ours), taken=taken)

    def upload(self, gcode: str | Path | Sequence[str | Path], job_id: str) -> Upload:
        """Write each program not written before, whole; one already there with the same hash is kept as it is.
        Raises FileNotFoundError when a program to write is missing here."""
        record = self._record(job_id)
        folder = self._folder(record)
        present, device = self._listing(folder, record)
        written: dict[str, str] = dict(record.get("programs") or {})
        for source in as_paths(gcode):
            name = delivered_name(job_id, source)
            if name in written:
                continue  # delivered before: waiting there or taken by the sender, never written twice
            digest = sha256(source)
            try:
                already = name in present and sha256(folder / name) == digest
            except FileNotFoundError:
                already = True  # it was there (a write not yet recorded) and the sender has just taken it
            except OSError as error:
                raise HostUnreachable(self._where_folder(folder), os_reason(error)) from None
            if not already:
                self._write(source, folder / name)
            written[name] = digest
            self.records.put(job_id, {"folder": str(folder), "device": device, "programs": written})
        upload = self.find_upload(job_id)
        assert upload is not None
        return upload

    def submit(self, gcode: str | Path | Sequence[str | Path], job_id: str, *, reprint: bool = False) -> HostJob:
        """Write what is not written yet (each program at most once), then where the job stands: ``uploaded`` while
        its programs wait, ``taken`` once the sender has taken one. ``reprint`` writes the job again."""
        if reprint:
            record = self._record(job_id)
            self.records.put(job_id, {**record, "programs": {}})
        self.upload(gcode, job_id)
        return self.job(job_id)

    def withdraw(self, job_id: str) -> Withdrawal:
        """Take the job's programs still waiting out of the folder. A folder that cannot be reached is an error
        when something was written there (a program left there would still be cut), else nothing to do."""
        record = self._record(job_id)
        folder = self._folder(record)
        recorded = list(record.get("programs") or {})
        try:
            present, _ = self._listing(folder, record)
        except HostUnreachable:
            if not recorded:
                return Withdrawal()  # nothing was ever written there (a wrong path, a share never mounted)
            raise
        withdrawn: list[str] = []
        for name in self._ours(job_id, record, present):
            for candidate in (f".{name}.partial", name):
                if candidate not in present:
                    continue
                try:
                    (folder / candidate).unlink()
                except FileNotFoundError:
                    continue  # the sender took it just now
                except OSError as error:
                    raise HostUnreachable(self._where_folder(folder), os_reason(error)) from None
                if candidate == name:
                    withdrawn.append(name)
        if record and any(name in record.get("programs", {}) for name in withdrawn):  # no longer delivered
            self.records.put(job_id, {**record, "programs": {name: digest for name, digest in record["programs"].items()
                                                             if name not in withdrawn}})
        return Withdrawal(withdrawn=tuple(withdrawn), taken=tuple(n for n in recorded if n not in withdrawn))
