"""An order item's files as the customer saves them: names that say order, item, product, part and copies, and
one "download all" archive per item.

Every file is served from the order's own copy only after its size and SHA-256 match the record made when it was
generated (:func:`verified_file`); the archive is built from the same checked handles, written beside the item's
files under a temporary name and renamed into place, so a reader never sees half an archive and a changed record
gives a new archive.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from ..models import Artifact, Order, OrderItem

ARCHIVE_PREFIX = ".download-all-"
"""Archives are kept beside the item's files as ``.download-all-<digest>.zip`` (hidden: never an artifact)."""


class CorruptFile(Exception):
    """An order's file no longer matches its record (size or SHA-256): it is never served under that record."""

    def __init__(self, path: Path, artifact: Artifact):
        super().__init__(f"{path} no longer matches its record ({artifact.bytes} bytes, {artifact.sha256})")
        self.path = path


def safe_piece(text: str) -> str:
    """``text`` as a piece of a file name: letters, digits, ``.``, ``-`` and ``_``."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.") or "file"


def item_stem(order: Order, item: OrderItem) -> str:
    """``order-1a2b3c4d_item-1_wall_shelf``: the order (its first 8 characters, as every page shows it), the item's
    position in the order and the product."""
    return f"order-{order.id[:8]}_item-{item.position}_{safe_piece(item.template)}"


def saved_name(order: Order, item: OrderItem, artifact: Artifact, copies: dict[str, int]) -> str:
    """The name a file is saved under: ``order-1a2b3c4d_item-1_wall_shelf_bracket_x4.stl`` (the part, and how
    many copies of it the item needs: the part's copies in one product times the quantity ordered)."""
    if artifact.format == "manifest":
        return f"{item_stem(order, item)}_manifest.json"
    suffix = artifact.filename.rpartition(".")[2] if "." in artifact.filename else artifact.format
    part = artifact.part or artifact.filename.rpartition(".")[0]
    count = copies.get(part)
    times = f"_x{count}" if count else ""
    return f"{item_stem(order, item)}_{safe_piece(part)}{times}.{safe_piece(suffix)}"


def archive_name(order: Order, item: OrderItem) -> str:
    return f"{item_stem(order, item)}.zip"


def verified_file(path: Path, size: int, sha256: str) -> IO[bytes] | None:
    """``path`` opened for reading if its bytes are the recorded ones (size, then SHA-256), else ``None``.
    The handle that was checked is the one served, so what is sent is what was checked."""
    handle = open(path, "rb")  # noqa: SIM115 - handed to the caller, which closes it
    try:
        if os.fstat(handle.fileno()).st_size != size:
            handle.close()
            return None
        digest = hashlib.sha256()
        while chunk := handle.read(1024 * 1024):
            digest.update(chunk)
        if digest.hexdigest() != sha256:
            handle.close()
            return None
        handle.seek(0)
        return handle
    except BaseException:
        handle.close()
        raise


def artifact_path(output_folder: str | Path, artifact: Artifact) -> Path | None:
    """Where the artifact is, if that is inside the output folder and a file."""
    root = Path(output_folder).resolve()
    path = (root / artifact.path).resolve()
    return path if path.is_relative_to(root) and path.is_file() else None


def open_checked(output_folder: str | Path, artifact: Artifact) -> IO[bytes] | None:
    """The artifact opened after its check; ``None`` when it is missing; :class:`CorruptFile` when it changed."""
    path = artifact_path(output_folder, artifact)
    if path is None:
        return None
    handle = verified_file(path, artifact.bytes, artifact.sha256)
    if handle is None:
        raise CorruptFile(path, artifact)
    return handle


def part_copies(output_folder: str | Path, item: OrderItem) -> dict[str, int]:
    """How many copies of each part the item needs (per product, from its checked manifest, times the quantity)."""
    record = next((a for a in item.artifacts if a.format == "manifest"), None)
    if record is None:
        return {}
    try:
        handle = open_checked(output_folder, record)
    except CorruptFile:
        return {}
    if handle is None:
        return {}
    with handle:
        try:
            manifest = json.loads(handle.read())
        except ValueError:
            return {}
    return {str(part["name"]): int(part.get("quantity", 1)) * item.quantity
            for part in manifest.get("parts", []) if isinstance(part, dict) and "name" in part}


@dataclass(frozen=True)
class Archive:
    """A built archive: where it is, the name it is saved under, its size and its ETag (the files' digest)."""

    path: Path
    name: str
    size: int
    etag: str


def _digest(artifacts: Iterable[Artifact], names: dict[int, str]) -> str:
    listing = sorted((names[a.id], a.sha256, a.bytes) for a in artifacts)
    return hashlib.sha256(json.dumps(listing).encode()).hexdigest()[:20]


def build_archive(output_folder: str | Path, order: Order, item: OrderItem) -> Archive | None:
    """The item's "download all" zip (every file and the manifest, under :func:`saved_name`, in one folder named by
    :func:`item_stem`); ``None`` when the item has no files. Built once per set of files: its name carries a digest
    of the files' names and SHA-256, and it is written to a temporary file and renamed into place. Every file is
    checked against its record as it is copied in (:class:`CorruptFile` if one changed)."""
    artifacts = [a for a in item.artifacts]
    paths = {a.id: artifact_path(output_folder, a) for a in artifacts}
    if not artifacts or any(path is None for path in paths.values()):
        return None
    copies = part_copies(output_folder, item)
    names = {a.id: saved_name(order, item, a, copies) for a in artifacts}
    folder = paths[artifacts[0].id].parent  # type: ignore[union-attr]
    target = folder / f"{ARCHIVE_PREFIX}{_digest(artifacts, names)}.zip"
    if not target.is_file():
        stem = item_stem(order, item)
        handle, temporary = tempfile.mkstemp(prefix=".download-all-", suffix=".part", dir=folder)
        try:
            with os.fdopen(handle, "wb") as raw, zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as archive:
                for artifact in artifacts:
                    source = open_checked(output_folder, artifact)
                    if source is None:
                        raise CorruptFile(paths[artifact.id] or Path(artifact.path), artifact)
                    with source, archive.open(f"{stem}/{names[artifact.id]}", "w") as entry:
                        shutil.copyfileobj(source, entry, 1024 * 1024)
                raw.flush()
                os.fsync(raw.fileno())
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        for stale in folder.glob(f"{ARCHIVE_PREFIX}*.zip"):
            if stale != target:
                stale.unlink(missing_ok=True)
    return Archive(target, archive_name(order, item), target.stat().st_size, target.stem[len(ARCHIVE_PREFIX):])
