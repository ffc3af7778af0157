"""Fixtures for the manufacturing tests: machine records, and real system tools or a loud skip.

Integration tests use PrusaSlicer, rs274, pdftotext and zbarimg for real. On a developer
machine without them a test skips and says how to install them; with ``CI=true`` a missing
tool is a failure, so CI cannot pass by skipping.
"""

from __future__ import annotations

import os
import shutil

import pytest

from parametric.machines import Printer, Router, default_feeds, machine_from_dict

INSTALL_HINT = "run scripts/install-system-deps.sh (or `make setup`) as root"


def require(command: str, package: str) -> str:
    """The path of ``command``; skip loudly (fail under CI=true) when it is missing."""
    found = shutil.which(command)
    if found:
        return found
    message = f"MISSING SYSTEM TOOL: {command} (Debian package {package}); {INSTALL_HINT}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def prusa_slicer() -> str:
    return require("prusa-slicer", "prusa-slicer")


@pytest.fixture(scope="session")
def rs274() -> str:
    return require("rs274", "linuxcnc-uspace")


@pytest.fixture(scope="session")
def pdftotext() -> str:
    return require("pdftotext", "poppler-utils")


@pytest.fixture(scope="session")
def zbarimg() -> str:
    return require("zbarimg", "zbar-tools")


def feeds_for(material: str, diameter: float, flutes: int, tool_type: str = "endmill") -> dict[str, float]:
    feeds = default_feeds(material, diameter, flutes, tool_type)
    return {"feed_mm_min": feeds.feed_mm_min, "plunge_mm_min": feeds.plunge_mm_min,
            "spindle_rpm": feeds.spindle_rpm, "stepdown_mm": feeds.stepdown_mm}


SHEET_MATERIALS = ("birch_plywood", "mdf", "oak", "pine")


def router_record(dialect: str = "grbl", name: str = "shop-router") -> dict:
    """A router like a small shop's: a 6 mm and a 3 mm end mill, a 5 mm drill, 12 to 22 mm sheets."""
    return {
        "kind": "router", "name": name, "bed_mm": [2500, 1250], "dialect": dialect, "safe_height_mm": 5,
        "rapid_mm_min": 5000,
        "tools": [
            {"number": 1, "diameter_mm": 6, "type": "endmill", "flutes": 2, "flute_length_mm": 25,
             "feeds": {m: feeds_for(m, 6, 2) for m in SHEET_MATERIALS}},
            {"number": 2, "diameter_mm": 5, "type": "drill", "flutes": 2, "flute_length_mm": 40,
             "feeds": {m: feeds_for(m, 5, 2, "drill") for m in SHEET_MATERIALS}},
            {"number": 3, "diameter_mm": 3, "type": "endmill", "flutes": 2, "flute_length_mm": 12,
             "feeds": {m: feeds_for(m, 3, 2) for m in SHEET_MATERIALS}},
        ],
        "stock": [{"material": m, "thickness_mm": t, "size_mm": [2500, 1250]}
                  for m in SHEET_MATERIALS for t in (12, 15, 18, 19, 22)],
        "delivery": {"method": "download"},
    }


@pytest.fixture(scope="session")
def make_router():
    """A factory of router records (plain dicts) by dialect and name."""
    return router_record


@pytest.fixture
def router() -> Router:
    machine = machine_from_dict(router_record())
    assert isinstance(machine, Router)
    return machine


@pytest.fixture
def linuxcnc_router() -> Router:
    machine = machine_from_dict(router_record("linuxcnc", "mill-linuxcnc"))
    assert isinstance(machine, Router)
    return machine


@pytest.fixture
def printer() -> Printer:
    return Printer(name="mk3", build_volume_mm=(250, 210, 210), nozzle_diameter_mm=0.4,
                   materials=["pla", "petg", "tpu"])
