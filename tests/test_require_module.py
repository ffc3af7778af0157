"""``require_module``: a missing dependency skips loudly on a developer machine and fails under CI=true."""

from __future__ import annotations

import json

import pytest

from .conftest import require_module

MISSING = "parametric_no_such_dependency"


def test_a_present_dependency_is_imported():
    assert require_module("json") is json


def test_a_missing_dependency_fails_under_ci(monkeypatch):
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=f"CI=true and MISSING PYTHON PACKAGE: {MISSING}"):
        require_module(MISSING)


def test_a_missing_dependency_skips_loudly_elsewhere(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    with pytest.warns(UserWarning, match=f"MISSING PYTHON PACKAGE: {MISSING}"), \
            pytest.raises(pytest.skip.Exception, match="SKIPPED LOUDLY"):
        require_module(MISSING)
