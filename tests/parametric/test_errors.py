"""The external tools' shared fault wording and time limits (rs274 and PrusaSlicer alike)."""

from __future__ import annotations

import pytest

from parametric.cnc.verify import InterpreterMissing, InterpreterTimeout, interpreter_timeout_s
from parametric.errors import infrastructure_fault, not_installed, overran, time_limit
from parametric.fdm.prusaslicer import SlicerMissing, SlicerTimeout, slicer_timeout_s


def test_time_limit_reads_the_environment_and_zero_means_none(monkeypatch):
    monkeypatch.delenv("PARAMETRIC_TEST_LIMIT", raising=False)
    assert time_limit("PARAMETRIC_TEST_LIMIT", 42) == 42
    monkeypatch.setenv("PARAMETRIC_TEST_LIMIT", "2.5")
    assert time_limit("PARAMETRIC_TEST_LIMIT", 42) == 2.5
    monkeypatch.setenv("PARAMETRIC_TEST_LIMIT", "0")
    assert time_limit("PARAMETRIC_TEST_LIMIT", 42) is None


def test_both_tools_read_their_limits_through_it(monkeypatch):
    monkeypatch.delenv("PARAMETRIC_RS274_TIMEOUT_SECONDS", raising=False)
    monkeypatch.delenv("PARAMETRIC_SLICER_TIMEOUT_SECONDS", raising=False)
    assert (interpreter_timeout_s(), slicer_timeout_s()) == (120, 600)
    monkeypatch.setenv("PARAMETRIC_RS274_TIMEOUT_SECONDS", "0")
    monkeypatch.setenv("PARAMETRIC_SLICER_TIMEOUT_SECONDS", "7")
    assert (interpreter_timeout_s(), slicer_timeout_s()) == (None, 7)


@pytest.mark.parametrize("error, kind, attempt", [
    (InterpreterMissing("job.ngc", not_installed("rs274", "linuxcnc-uspace")), "missing_tool", False),
    (SlicerMissing(not_installed("PrusaSlicer", "prusa-slicer")), "missing_tool", False),
    (InterpreterTimeout("job.ngc", overran("rs274", 120)), "timeout", True),
    (SlicerTimeout(overran("PrusaSlicer", 600, "plate-1")), "timeout", True),
])
def test_missing_and_timed_out_tools_are_faults_of_ours_in_the_same_words(error, kind, attempt):
    fault = infrastructure_fault(error)
    assert fault is not None and (fault.kind, fault.counts_as_attempt) == (kind, attempt)
    words = str(error)
    assert ("is not installed (Debian package " in words and "run scripts/install-system-deps.sh" in words
            if kind == "missing_tool" else "took longer than" in words and "and was stopped" in words)
