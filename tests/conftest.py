"""Shared fixtures: a private output/cache folder for the whole test session; ``require_module`` for a
dependency a test cannot run without."""

from __future__ import annotations

import importlib
import os
import tempfile
import warnings
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
