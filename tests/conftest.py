"""Shared fixtures: a private output/cache folder for the whole test session."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

_SESSION_OUTPUT = Path(tempfile.mkdtemp(prefix="parametric-tests-"))
os.environ["PARAMETRIC_OUTPUT"] = str(_SESSION_OUTPUT)

settings.register_profile("dev", max_examples=10, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
settings.register_profile("ci", max_examples=20, deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


@pytest.fixture(scope="session")
def output_root() -> Path:
    """The session's output folder (its ``cache/`` is shared by every test, so builds are reused)."""
    return _SESSION_OUTPUT


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    """A fresh folder for one test's rendered files."""
    return tmp_path / "out"
