"""One harness per host connector for the contract suite (``test_contract.py``): how to make the connector on a
working host, on one that is down, on one that refuses, what a job's files are, and how the machine takes or
runs a job. A new connector joins the suite with one harness here and one entry in ``HARNESSES``.

OctoPrint runs for real with its Virtual Printer (the session fixture of ``tests/parametric/conftest.py``,
skipped loudly when it cannot be installed, a failure under CI=true); the hot folder is real directories.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from parametric import render
from parametric.fdm import slice_manifest
from parametric.hosts import Connector, MemoryRecords, Records
from parametric.hosts.base import safe_tag
from parametric.hosts.hot_folder import HotFolderConnector
from parametric.hosts.octoprint import OctoPrintConnector
from parametric.machines import Printer
from tests.parametric.conftest import free_port


@pytest.fixture(scope="session")
def tiny_gcode(prusa_slicer, tmp_path_factory) -> Path:
    """A small real print: a leg cap for a 12 mm leg, sliced by PrusaSlicer for a PLA printer."""
    folder = tmp_path_factory.mktemp("tiny")
    manifest = render("leg_cap", {"leg_diameter": 12, "sleeve_depth": 5, "sole_thickness": 2,
                                  "wall_thickness": 1.2}, out_dir=folder, formats=["stl"])
    printer = Printer("virtual", (200, 200, 200), materials=["pla", "tpu"])
    return slice_manifest(manifest, printer, "pla", folder, process="fdm")[0].gcode


def new_job_id(prefix: str = "ORD") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}/item-1"


class Harness:
    """What the contract suite needs to drive one connector against its real host."""

    cls: type[Connector]

    def connector(self, records: Records | None = None) -> Connector:
        """The connector on a working host."""
        raise NotImplementedError

    def unreachable(self) -> list[Connector]:
        """Connectors on hosts that are down or cannot be written (each must raise a retryable error)."""
        raise NotImplementedError

    def refusal(self) -> Callable[[], Any]:
        """Something the host refuses (a wrong key; what the protocol cannot do): it must not be retryable."""
        raise NotImplementedError

    def files(self) -> list[Path]:
        """The files of one job."""
        raise NotImplementedError

    def sent_count(self, connector: Connector, job_id: str) -> int:
        """How many times the job's files were put on the host (not how many the connector says)."""
        raise NotImplementedError

    def fingerprint(self, connector: Connector, job_id: str) -> Any:
        """What changes when the job's files are put on the host again."""
        raise NotImplementedError

    def machine_takes(self, connector: Connector, job_id: str) -> None:
        """What the machine does with a job that waits: a hot folder's sender takes its files."""

    def idle(self, connector: Connector) -> None:
        """Wait until the machine can take a job (an earlier test's print may still be stopping)."""


class HotFolderHarness(Harness):
    cls = HotFolderConnector

    def __init__(self, tmp_path: Path):
        self.root = tmp_path
        self.folder = tmp_path / "hot"
        self.folder.mkdir()
        self.taken = tmp_path / "sender"
        self.taken.mkdir()
        self.writes: dict[str, int] = {}

    def connector(self, records: Records | None = None) -> Connector:
        return HotFolderConnector({"path": str(self.folder)}, "shop-router", records=records or MemoryRecords())

    def unreachable(self) -> list[Connector]:
        blocker = self.root / "share"
        blocker.write_text("a file where the mount should be")
        return [HotFolderConnector({"path": str(blocker / "hot")}, "shop-router"),  # a path under a file
                HotFolderConnector({"path": str(self.root / "never-mounted")}, "shop-router")]  # a missing mount

    def refusal(self) -> Callable[[], Any]:
        return self.connector().cancel  # a folder cannot stop the router

    def files(self) -> list[Path]:
        folder = self.root / f"job-{uuid.uuid4().hex[:8]}"
        folder.mkdir()
        programs = []
        for tool in (1, 2):  # GRBL: one program per tool
            path = folder / f"door-T{tool}.nc"
            path.write_text(f"(tool {tool})\nG21 G90\nG0 X0 Y0\nG1 Z-1 F300\nM30\n")
            programs.append(path)
        return programs

    def sent_count(self, connector: Connector, job_id: str) -> int:
        """Copies of the job's first program in the folder and with the sender (a write after the sender took it
        would make two)."""
        name = f"{safe_tag(job_id)}-door-T1.nc"
        return sum((folder / name).exists() for folder in (self.folder, self.taken))

    def fingerprint(self, connector: Connector, job_id: str) -> Any:
        """What changes when the job's files are written again: their inodes and times."""
        prefix = f"{safe_tag(job_id)}-"
        return sorted((p.name, p.stat().st_ino, p.stat().st_mtime_ns) for p in self.folder.iterdir()
                      if p.name.startswith(prefix))

    def machine_takes(self, connector: Connector, job_id: str) -> None:
        upload = connector.find_upload(job_id)
        assert upload is not None
        first = upload.files[0]
        shutil.move(self.folder / first, self.taken / first)


class OctoPrintHarness(Harness):
    cls = OctoPrintConnector

    def __init__(self, octoprint: Any, gcode: Path):
        self.octoprint = octoprint
        self.gcode = gcode

    def connector(self, records: Records | None = None) -> Connector:
        return OctoPrintConnector({"url": self.octoprint.url, "api_key": self.octoprint.api_key}, "virtual",
                                  timeout_s=5, records=records)

    def unreachable(self) -> list[Connector]:
        return [OctoPrintConnector({"url": f"http://127.0.0.1:{free_port()}", "api_key": "k"}, "virtual",
                                   timeout_s=2)]  # a port nothing listens on

    def refusal(self) -> Callable[[], Any]:
        wrong = OctoPrintConnector({"url": self.octoprint.url, "api_key": "not-the-key"}, "virtual", timeout_s=5)
        return lambda: wrong.job("ORD-refused/item-1")

    def files(self) -> list[Path]:
        return [self.gcode]

    def _tagged(self, connector: Connector, job_id: str) -> list[dict[str, Any]]:
        from parametric.hosts import JOB_TAG

        listing = connector._request("GET", "/api/files/local?recursive=true")["files"]  # type: ignore[attr-defined]
        return [f for f in listing if (f.get("userdata") or {}).get(JOB_TAG) == job_id]

    def sent_count(self, connector: Connector, job_id: str) -> int:
        return len(self._tagged(connector, job_id))

    def fingerprint(self, connector: Connector, job_id: str) -> Any:
        return sorted((f["path"], f.get("date"), f.get("hash")) for f in self._tagged(connector, job_id))

    def idle(self, connector: Connector) -> None:
        deadline = time.monotonic() + 240
        while not connector.status().ready:
            assert time.monotonic() < deadline, "the virtual printer never became idle"
            time.sleep(1)


HARNESSES = ("hot_folder", pytest.param("octoprint", marks=pytest.mark.integration))


@pytest.fixture(params=HARNESSES)
def harness(request, tmp_path) -> Harness:
    """Each connector's harness in turn; OctoPrint's starts (or reuses) the real OctoPrint of the session."""
    if request.param == "hot_folder":
        return HotFolderHarness(tmp_path)
    octoprint = request.getfixturevalue("octoprint")
    return OctoPrintHarness(octoprint, request.getfixturevalue("tiny_gcode"))


@pytest.fixture
def hot(tmp_path) -> HotFolderHarness:
    return HotFolderHarness(tmp_path)


def device_of(path: Path) -> int:
    return os.stat(path).st_dev
