"""The content-addressed artifact cache.

An entry is keyed by a hash of (template id, template version, canonical parameters in mm,
export settings, exporter generation). Its folder holds the exported files and
``entry.json``, written last, which lists them: an entry without ``entry.json`` (a crash
mid-write) is simply not there. Looking an entry up reads JSON only; it never imports the
CAD kernel. Writers of one key take a file lock, so two processes never build it twice.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from .files import atomic_write_json, file_lock

EXPORTER_GENERATION = 4
"""Bump when an exporter changes the bytes it writes or an entry records more, so old entries are not
served (3: each part's grain; 4: printed parts' STL and 3MF in their print pose)."""


def output_root() -> Path:
    """Where generated files go: ``$PARAMETRIC_OUTPUT`` or ``./output``."""
    return Path(os.environ.get("PARAMETRIC_OUTPUT", "output")).resolve()


def cache_key(template_id: str, version: str, params: dict[str, Any], export_settings: dict[str, Any]) -> str:
    """The SHA-256 hex digest identifying one configuration's files."""
    document = {"template": template_id, "version": version, "params": params, "export": export_settings,
                "generation": EXPORTER_GENERATION}
    encoded = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(encoded.encode("ascii")).hexdigest()


class Cache:
    """A folder of entries, one per cache key."""

    def __init__(self, root: Path | None = None):
        self.root = Path(root) if root is not None else output_root() / "cache"

    def folder(self, key: str) -> Path:
        return self.root / key[:2] / key

    def lookup(self, key: str, formats: Iterable[str]) -> dict[str, Any] | None:
        """The entry for ``key`` if it holds every requested format and its files, else ``None``."""
        folder = self.folder(key)
        try:
            entry = json.loads((folder / "entry.json").read_text("utf-8"))
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        if not set(formats) <= set(entry.get("formats", ())):
            return None
        if not all((folder / record["filename"]).is_file() for record in entry["files"]):
            return None
        entry["folder"] = str(folder)
        return entry

    @contextlib.contextmanager
    def locked(self, key: str) -> Iterator[Path]:
        """Hold the key's lock while building; yields the entry folder."""
        folder = self.folder(key)
        folder.mkdir(parents=True, exist_ok=True)
        with file_lock(folder.parent / f".{key}.lock"):
            yield folder

    def commit(self, key: str, entry: dict[str, Any]) -> None:
        """Publish an entry (call while holding the lock, after its files are written)."""
        atomic_write_json(self.folder(key) / "entry.json", {k: v for k, v in entry.items() if k != "folder"})


def file_record(folder: Path, format_: str, part: str, filename: str) -> dict[str, Any]:
    """What the manifest says of one file: format, part, name, size and SHA-256."""
    data = (folder / filename).read_bytes()
    return {"format": format_, "part": part, "filename": filename, "bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest()}
