"""The content-addressed artifact cache.

An entry is keyed by a hash of (template id, template version, canonical parameters in mm,
export settings, exporter generation). Its folder holds the exported files and ``entry.json``,
which lists each file with its size and SHA-256. An entry is built in a temporary folder beside
it (``.build-<key>-...``) and renamed into place whole, its files made read-only first: a build
interrupted by a crash, a full disk or a timeout leaves no entry, and its temporary folder is
removed (at once, or by :meth:`Cache.sweep`). Looking an entry up reads JSON and stats files
only; it never imports the CAD kernel. Writers of one key take a file lock, so two processes
never build it twice.

Entries are checked: every lookup compares each file's size with the record, and a lookup that
hands files out (``verify=True``, or a copy into an order's folder) compares SHA-256 too. A bad
entry is removed and rebuilt, never served. With ``max_bytes`` the cache is kept under a size:
the least recently used entries go first, never one built or used in the last ``min_age_s``
seconds, one being built, or one the ``protected`` callback names (work still waiting for it).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import secrets
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import InfrastructureError
from .files import atomic_write_json, file_lock, make_read_only, sha256_file

EXPORTER_GENERATION = 4
"""Bump when an exporter changes the bytes it writes or an entry records more, so old entries are not
served (3: each part's grain; 4: printed parts' STL and 3MF in their print pose)."""

EVICT_EVERY_S = 30.0
"""After a build the cache's size is checked (and entries evicted) at most this often per process."""

TOUCH_EVERY_S = 60.0
"""A hit refreshes its entry's last-used time (the folder's mtime) at most this often."""

_TEMPORARY = re.compile(r"^\.(build|old|bad)-([0-9a-f]{64})-")
_SIZE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([kmgt]?i?b?)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "m": 1000**2, "mb": 1000**2, "g": 1000**3, "gb": 1000**3,
          "t": 1000**4, "tb": 1000**4, "kib": 1024, "mib": 1024**2, "gib": 1024**3, "tib": 1024**4}

log = logging.getLogger(__name__)


def output_root() -> Path:
    """Where generated files go: ``$PARAMETRIC_OUTPUT`` or ``./output``."""
    return Path(os.environ.get("PARAMETRIC_OUTPUT", "output")).resolve()


def parse_size(value: int | float | str | None) -> int | None:
    """A size in bytes from a number (bytes) or text such as ``"20GB"``, ``"500 MB"``, ``"1.5GiB"``;
    ``None``, ``""`` or ``0`` mean no limit."""
    if value is None or value == "" or value == 0:
        return None
    if isinstance(value, int | float):
        return int(value)
    match = _SIZE.match(value)
    if match is None or match.group(2).lower() not in _UNITS:
        raise ValueError(f"{value!r} is not a size; write bytes or a number with KB, MB, GB (or KiB, MiB, GiB)")
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()]) or None


def cache_key(template_id: str, version: str, params: dict[str, Any], export_settings: dict[str, Any]) -> str:
    """The SHA-256 hex digest identifying one configuration's files."""
    document = {"template": template_id, "version": version, "params": params, "export": export_settings,
                "generation": EXPORTER_GENERATION}
    encoded = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(encoded.encode("ascii")).hexdigest()


@dataclass(frozen=True)
class Usage:
    """One entry's place in the cache: its size on disk and when it was last used (epoch seconds)."""

    key: str
    folder: Path
    bytes: int
    last_used: float


class Cache:
    """A folder of entries, one per cache key.

    ``max_bytes`` (or ``$PARAMETRIC_CACHE_MAX_BYTES``, e.g. ``20GB``): the size the cache is kept under
    after each build; ``None`` for no limit. ``min_age_s``: an entry used more recently is never evicted.
    ``protected``: a callable giving the keys that work still waits for (the web app's unfinished orders).
    ``min_free_bytes``: a build is refused at once (a ``disk_full`` fault) when the disk has less free.
    """

    def __init__(self, root: Path | None = None, *, max_bytes: int | str | None = None, min_age_s: float = 600.0,
                 protected: Callable[[], Iterable[str]] | None = None, min_free_bytes: int = 0):
        self.root = Path(root) if root is not None else output_root() / "cache"
        self.max_bytes = parse_size(max_bytes if max_bytes is not None
                                    else os.environ.get("PARAMETRIC_CACHE_MAX_BYTES"))
        self.min_age_s = float(min_age_s)
        self.protected = protected
        self.min_free_bytes = int(min_free_bytes)
        self._held = threading.local()  # keys whose lock this thread holds (flock does not nest on a new fd)
        self._next_evict = 0.0

    def folder(self, key: str) -> Path:
        return self.root / key[:2] / key

    def _lock_path(self, key: str) -> Path:
        return self.root / key[:2] / f".{key}.lock"

    # -- reading ------------------------------------------------------------------------------

    def lookup(self, key: str, formats: Iterable[str], *, verify: bool = False) -> dict[str, Any] | None:
        """The entry for ``key`` if it holds every requested format and its files, else ``None``.

        Every file's size is compared with its record; with ``verify`` the SHA-256 of the requested
        formats' files too (files about to be handed out; every file when no format is named). A file
        that does not match makes the whole entry bad: it is removed (and so rebuilt by the next
        render), never returned.
        """
        wanted = set(formats)
        folder = self.folder(key)
        try:
            entry = json.loads((folder / "entry.json").read_text("utf-8"))
        except (FileNotFoundError, NotADirectoryError, json.JSONDecodeError, UnicodeDecodeError):
            return None
        if not wanted <= set(entry.get("formats", ())):
            return None
        for record in entry["files"]:
            problem = self._problem(folder, record, verify and (not wanted or record["format"] in wanted))
            if problem:
                self.discard(key, f"{record['filename']}: {problem}")
                return None
        self._touch(folder)
        entry["folder"] = str(folder)
        return entry

    @staticmethod
    def _problem(folder: Path, record: dict[str, Any], digest: bool) -> str:
        """What is wrong with one recorded file (``""`` when nothing is)."""
        path = folder / record["filename"]
        try:
            size = path.stat().st_size
        except OSError as error:
            return f"cannot be read ({error.strerror})"
        if "bytes" in record and size != record["bytes"]:
            return f"is {size} bytes, its record says {record['bytes']}"
        if digest and "sha256" in record:
            _, found = sha256_file(path)
            if found != record["sha256"]:
                return f"its SHA-256 is {found}, its record says {record['sha256']}"
        return ""

    def _touch(self, folder: Path) -> None:
        """Mark the entry used now (for least-recently-used eviction); a read-only disk just skips it."""
        try:
            if time.time() - folder.stat().st_mtime > TOUCH_EVERY_S:
                os.utime(folder)
        except OSError:
            pass

    def discard(self, key: str, reason: str) -> bool:
        """Remove a bad entry (logged for staff with ``reason``) so it is rebuilt; ``False`` if it was gone."""
        log.error("render cache entry %s is bad and is removed, to be rebuilt: %s", key, reason)
        if key in self._held_keys():  # found bad while this thread builds it: the lock is ours already
            return self._remove(key, "bad")
        with file_lock(self._lock_path(key)):
            return self._remove(key, "bad")

    def _held_keys(self) -> set[str]:
        if not hasattr(self._held, "keys"):
            self._held.keys = set()
        return self._held.keys

    def _remove(self, key: str, why: str) -> bool:
        """Move the entry aside (one rename: readers see it whole or not at all), then delete it. Hold the lock."""
        folder = self.folder(key)
        aside = folder.with_name(f".{why}-{key}-{secrets.token_hex(4)}")
        try:
            os.rename(folder, aside)
        except FileNotFoundError:
            return False
        shutil.rmtree(aside, ignore_errors=True)
        return True

    # -- writing --------------------------------------------------------------------------------

    @contextlib.contextmanager
    def locked(self, key: str) -> Iterator[Path]:
        """Hold the key's lock while building; yields the entry folder (which may not exist yet)."""
        held = self._held_keys()
        with file_lock(self._lock_path(key)):
            held.add(key)
            try:
                yield self.folder(key)
            finally:
                held.discard(key)

    def require_space(self) -> None:
        """Refuse a build at once when the cache's disk is read-only or has less than ``min_free_bytes`` free."""
        self.root.mkdir(parents=True, exist_ok=True)
        stats = os.statvfs(self.root)
        if stats.f_flag & os.ST_RDONLY:
            raise InfrastructureError("read_only", f"the render cache {self.root} is on a read-only file system")
        free = stats.f_bavail * stats.f_frsize
        if free < self.min_free_bytes:
            raise InfrastructureError("disk_full", f"the render cache's disk has {free} bytes free, less than the "
                                                   f"{self.min_free_bytes} kept in reserve ({self.root})")

    @contextlib.contextmanager
    def staging(self, key: str) -> Iterator[Path]:
        """A fresh temporary folder beside the entry to build it in (hold the lock); removed when the block
        ends, so a failed or interrupted build leaves nothing behind (:meth:`publish` moves it into place)."""
        parent = self.root / key[:2]
        for leftover in parent.glob(f".build-{key}-*"):  # an earlier builder of this key died mid-build
            shutil.rmtree(leftover, ignore_errors=True)
        parent.mkdir(parents=True, exist_ok=True)
        folder = parent / f".build-{key}-{os.getpid()}-{secrets.token_hex(4)}"
        folder.mkdir()
        try:
            yield folder
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def publish(self, key: str, staging: Path, entry: dict[str, Any]) -> Path:
        """Make the staged files read-only, write ``entry.json`` and rename the folder into place, replacing
        an older entry of the key whole (hold the lock). Returns the entry folder."""
        for path in staging.iterdir():
            make_read_only(path)
        make_read_only(atomic_write_json(staging / "entry.json", {k: v for k, v in entry.items() if k != "folder"}))
        final = self.folder(key)
        if final.exists():
            self._remove(key, "old")
        os.rename(staging, final)
        if time.monotonic() >= self._next_evict:  # a scan of the whole cache: at most every EVICT_EVERY_S
            self._next_evict = time.monotonic() + EVICT_EVERY_S
            self.evict()
        return final

    # -- housekeeping -------------------------------------------------------------------------------

    def usage(self) -> list[Usage]:
        """Every published entry with its size on disk and last-used time."""
        found = []
        if not self.root.is_dir():
            return found
        for parent in self.root.iterdir():
            if not parent.is_dir() or len(parent.name) != 2:
                continue
            for folder in parent.iterdir():
                if folder.name.startswith(".") or not folder.is_dir():
                    continue
                try:
                    size = sum(path.stat().st_size for path in folder.iterdir())
                    found.append(Usage(folder.name, folder, size, folder.stat().st_mtime))
                except OSError:
                    continue
        return found

    def evict(self, max_bytes: int | None = None) -> list[str]:
        """Remove least recently used entries until the cache is under ``max_bytes`` (default: its limit).

        Never removes an entry used within ``min_age_s``, one whose key is being built (its lock is held),
        or one the ``protected`` callback names. Returns the keys removed."""
        limit = max_bytes if max_bytes is not None else self.max_bytes
        if limit is None:
            return []
        entries = self.usage()
        total = sum(entry.bytes for entry in entries)
        if total <= limit:
            return []
        keep = set(self.protected()) if self.protected is not None else set()
        now = time.time()
        removed = []
        for entry in sorted(entries, key=lambda e: e.last_used):
            if total <= limit:
                break
            if entry.key in keep or now - entry.last_used < self.min_age_s:
                continue
            with file_lock(self._lock_path(entry.key), blocking=False) as held:
                if held and self._remove(entry.key, "old"):
                    total -= entry.bytes
                    removed.append(entry.key)
        if total > limit:
            log.warning("render cache is %d bytes, over its limit of %d: the rest is recent or still needed",
                        total, limit)
        elif removed:
            log.info("render cache: evicted %d least recently used entries", len(removed))
        return removed

    def sweep(self) -> list[Path]:
        """Remove what interrupted builds left: temporary build folders and entry folders without
        ``entry.json`` (from before entries were built aside), each only when nobody holds its key's lock."""
        removed = []
        if not self.root.is_dir():
            return removed
        for parent in self.root.iterdir():
            if not parent.is_dir() or len(parent.name) != 2:
                continue
            for folder in parent.iterdir():
                match = _TEMPORARY.match(folder.name)
                key = match.group(2) if match else folder.name
                if not folder.is_dir() or (match is None and (folder / "entry.json").exists()):
                    continue
                if match is None and not re.fullmatch(r"[0-9a-f]{64}", folder.name):
                    continue
                with file_lock(self._lock_path(key), blocking=False) as held:
                    if held and folder.exists() and (match or not (folder / "entry.json").exists()):
                        shutil.rmtree(folder, ignore_errors=True)
                        removed.append(folder)
        if removed:
            log.warning("render cache: removed %d folders left by interrupted builds", len(removed))
        return removed


def file_record(folder: Path, format_: str, part: str, filename: str) -> dict[str, Any]:
    """What the manifest says of one file: format, part, name, size and SHA-256."""
    size, digest = sha256_file(folder / filename)
    return {"format": format_, "part": part, "filename": filename, "bytes": size, "sha256": digest}
