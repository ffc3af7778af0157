"""Shared fixtures: a private output/cache folder for the whole test session; ``require_module`` for a
dependency a test cannot run without."""

from __future__ import annotations

import importlib
import os
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import HealthCheck, settings

_SESSION_OUTPUT = Path(tempfile.mkdtemp(prefix="parametric-tests-"))
os.environ["PARAMETRIC_OUTPUT"] = str(_SESSION_OUTPUT)

settings.register_profile("dev", max_examples=10, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
settings.register_profile("ci", max_examples=20, deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


def require_module(name: str) -> ModuleType:
    """``import name`` for a dependency of the project (pyproject's dependencies or its dev extras), in place
    of ``pytest.importorskip``: a missing one skips loudly on a developer machine and fails under CI=true, so
    CI cannot pass by skipping (as ``tests/parametric/conftest.py``'s ``require`` does for system tools)."""
    try:
        return importlib.import_module(name)
    except (ImportError, OSError) as error:  # OSError: a system library it loads is missing (WeasyPrint: pango)
        message = (f"MISSING PYTHON PACKAGE: {name} ({error}); it is a dependency of the project: "
                   f"`make setup` (pip install -e '.[dev]' and scripts/install-system-deps.sh) installs it")
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true and {message}", pytrace=False)
        warnings.warn(message, stacklevel=2)
        pytest.skip(f"SKIPPED LOUDLY: {message}", allow_module_level=True)


@pytest.fixture(scope="session")
def output_root() -> Path:
    """The session's output folder (its ``cache/`` is shared by every test, so builds are reused)."""
    return _SESSION_OUTPUT


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    """A fresh folder for one test's rendered files."""
    return tmp_path / "out"


class SmallDisk:
    """A real small file system (tmpfs) mounted for one test: filled to its limit, freed, made read-only.

    A full disk here is the kernel's own ENOSPC, and a read-only one its EROFS: nothing is patched."""

    def __init__(self, path: Path, size: str):
        self.path = path
        self.size = size
        self._filler = path / "filler.bin"

    def _mount(self, *options: str) -> None:
        import subprocess

        subprocess.run(["mount", "-t", "tmpfs", "-o", ",".join(options), "tmpfs", str(self.path)],
                       check=True, capture_output=True, text=True)

    def fill(self) -> int:
        """Write a file until the disk refuses (ENOSPC); the bytes written."""
        import errno

        written = 0
        block = b"\0" * (64 * 1024)
        with open(self._filler, "ab") as filler:
            try:
                while True:
                    filler.write(block)
                    filler.flush()
                    written += len(block)
            except OSError as error:
                assert error.errno == errno.ENOSPC, error
        assert self.free_bytes() < 64 * 1024
        return written

    def free(self) -> None:
        """Free the space :meth:`fill` took."""
        self._filler.unlink(missing_ok=True)

    def free_bytes(self) -> int:
        stats = os.statvfs(self.path)
        return stats.f_bavail * stats.f_frsize

    def read_only(self, on: bool = True) -> None:
        """Remount the disk read-only (or writable again)."""
        import subprocess

        subprocess.run(["mount", "-o", f"remount,{'ro' if on else 'rw'}", str(self.path)], check=True,
                       capture_output=True, text=True)

    def used_paths(self) -> list[str]:
        """Every path on the disk but the filler, relative to it."""
        return sorted(str(p.relative_to(self.path)) for p in self.path.rglob("*") if p != self._filler)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[SmallDisk]:
    """A 24 MB tmpfs mounted at ``tmp_path / "disk"`` for the test (needs root or CAP_SYS_ADMIN: it skips loudly
    without, and fails under CI=true, whose machines have it)."""
    import subprocess

    disk = SmallDisk(tmp_path / "disk", "24m")
    disk.path.mkdir()
    try:
        disk._mount(f"size={disk.size}", "mode=0755")
    except (subprocess.CalledProcessError, FileNotFoundError) as error:
        message = f"CANNOT MOUNT A SMALL FILE SYSTEM (tmpfs) for a real full disk: {getattr(error, 'stderr', error)}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true and {message}", pytrace=False)
        warnings.warn(message, stacklevel=2)
        pytest.skip(f"SKIPPED LOUDLY: {message}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk.path)], check=False, capture_output=True)
