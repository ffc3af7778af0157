"""Atomic file writes: a reader sees the old file or the whole new one, never half of one."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import secrets
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def atomic_target(path: str | os.PathLike[str]) -> Iterator[Path]:
    """A temporary path beside ``path`` to write to; it replaces ``path`` only if the block succeeds."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{final.stem}-", suffix=final.suffix, dir=final.parent)
    os.close(handle)
    temporary_path = Path(temporary)
    try:
        yield temporary_path
        with open(temporary_path, "rb") as written:
            os.fsync(written.fileno())
        os.replace(temporary_path, final)
    finally:
        temporary_path.unlink(missing_ok=True)


def atomic_write(path: str | os.PathLike[str], data: bytes | str) -> Path:
    """Write ``data`` to ``path`` atomically and return the path."""
    payload = data.encode("utf-8") if isinstance(data, str) else data
    with atomic_target(path) as temporary:
        temporary.write_bytes(payload)
    return Path(path)


def atomic_write_json(path: str | os.PathLike[str], value: Any) -> Path:
    return atomic_write(path, json.dumps(value, indent=2, sort_keys=False) + "\n")


FICLONE = 0x40049409
"""Linux ioctl cloning a whole file (a reflink: shared extents, copy on write) on btrfs, XFS, bcachefs."""


def copy_file(source: str | os.PathLike[str], target: str | os.PathLike[str]) -> str:
    """Copy ``source``'s bytes to the new file ``target``: a reflink where the file system can (btrfs, XFS),
    else an in-kernel copy (``os.copy_file_range``), else a plain one. Returns which was used. Either way
    ``target`` is a file of its own: changing ``source`` later never changes it (unlike a hard link)."""
    with open(source, "rb") as reading, open(target, "xb") as writing:
        try:
            fcntl.ioctl(writing.fileno(), FICLONE, reading.fileno())
            return "reflink"
        except OSError:
            pass
        size = os.fstat(reading.fileno()).st_size
        copied = 0
        try:
            while copied < size:
                sent = os.copy_file_range(reading.fileno(), writing.fileno(), size - copied)
                if sent == 0:
                    break
                copied += sent
            if copied == size:
                return "copy_file_range"
        except OSError as error:
            if error.errno not in (errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EBADF):
                raise
        reading.seek(0)
        writing.seek(0)
        writing.truncate()
        shutil.copyfileobj(reading, writing, 1024 * 1024)
        return "copy"


class ContentMismatch(Exception):
    """A copied file is not the one its record describes (its source changed or was damaged)."""


def place(source: Path, target: Path, *, read_only: bool = True, size: int | None = None,
          sha256: str | None = None) -> None:
    """Put a copy of ``source`` at ``target`` atomically (a reflink where the file system allows, never a
    hard link: ``target`` is the receiver's own file, which no later change to ``source`` alters).

    With ``size`` and ``sha256`` the copy is checked before it replaces ``target``; a copy that does not
    match raises :class:`ContentMismatch` and leaves ``target`` as it was."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        copy_file(source, temporary)
        with open(temporary, "rb") as written:
            os.fsync(written.fileno())
        if size is not None or sha256 is not None:
            found_size, found_sha256 = sha256_file(temporary)
            if (size is not None and found_size != size) or (sha256 is not None and found_sha256 != sha256):
                raise ContentMismatch(f"{source} is {found_size} bytes with SHA-256 {found_sha256}; its record "
                                      f"says {size} bytes, {sha256}")
        if read_only:
            make_read_only(temporary)
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)


def make_read_only(path: str | os.PathLike[str]) -> None:
    """Take every write permission off ``path`` (generated files are never edited in place)."""
    mode = os.stat(path).st_mode
    os.chmod(path, mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def sha256_file(path: str | os.PathLike[str]) -> tuple[int, str]:
    """(size in bytes, SHA-256 hex digest) of the file at ``path``, read in chunks."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as reading:
        while chunk := reading.read(1024 * 1024):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


@contextlib.contextmanager
def file_lock(path: str | os.PathLike[str], blocking: bool = True) -> Iterator[bool]:
    """Hold an exclusive lock on the file ``path`` (made if missing) across processes for the block.

    Yields ``True`` once held; with ``blocking=False`` it yields ``False`` at once (holding nothing) when
    another process has the lock."""
    lock_path = Path(path)
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX if blocking else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
