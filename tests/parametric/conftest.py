"""Fixtures for the manufacturing tests: machine records, and real system tools or a loud skip.

Integration tests use PrusaSlicer, rs274, pdftotext and zbarimg for real. On a developer
machine without them a test skips and says how to install them; with ``CI=true`` a missing
tool is a failure, so CI cannot pass by skipping.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

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


# -- OctoPrint in its own venv, with its Virtual Printer ----------------------------------------

OCTOPRINT_HOME = Path(os.environ.get("PARAMETRIC_OCTOPRINT_HOME", Path.home() / ".cache" / "parametric-octoprint"))
OCTOPRINT_REQUIREMENT = "octoprint>=1.10,<2"
OCTOPRINT_DISABLED_PLUGINS = ["announcements", "softwareupdate", "tracking", "errortracking", "discovery",
                              "pi_support", "firmware_check", "pluginmanager", "health_check"]


def octoprint_executable() -> Path:
    """``octoprint`` from its own venv under ~/.cache, created on first use (about a minute)."""
    venv = OCTOPRINT_HOME / "venv"
    executable = venv / "bin" / "octoprint"
    if executable.exists():
        return executable
    OCTOPRINT_HOME.mkdir(parents=True, exist_ok=True)
    with open(OCTOPRINT_HOME / ".install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # parallel sessions: one installs, the others wait
        if not executable.exists():
            log = OCTOPRINT_HOME / "install.log"
            with open(log, "w") as output:
                done = subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], stdout=output,
                                      stderr=subprocess.STDOUT).returncode == 0
                done = done and subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet",
                                                OCTOPRINT_REQUIREMENT], stdout=output,
                                               stderr=subprocess.STDOUT).returncode == 0
            if not done:
                message = (f"OCTOPRINT COULD NOT BE INSTALLED into {venv} (pip install '{OCTOPRINT_REQUIREMENT}'); "
                           f"see {log}")
                if os.environ.get("CI", "").lower() == "true":
                    pytest.fail(message, pytrace=False)
                pytest.skip(message)
    return executable


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class OctoPrintServer:
    """One OctoPrint on loopback with a fresh base folder, an admin user and an application key."""

    def __init__(self, executable: Path, basedir: Path):
        self.executable = executable
        self.basedir = basedir
        self.port = free_port()
        self.api_key = secrets.token_hex(16)
        self.process: subprocess.Popen | None = None
        self.log = basedir / "serve.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def configure(self) -> None:
        """config.yaml and the app key file; written as JSON, which YAML reads as it is."""
        self.basedir.mkdir(parents=True, exist_ok=True)
        config = {
            "server": {"host": "127.0.0.1", "port": self.port, "firstRun": False, "onlineCheck": {"enabled": False},
                       "pluginBlacklist": {"enabled": False}, "pythonEolCheck": {"enabled": False}},
            "plugins": {"virtual_printer": {"enabled": True, "throttle": 0.001},
                        "_disabled": OCTOPRINT_DISABLED_PLUGINS},
            "serial": {"autoconnect": False},
        }
        (self.basedir / "config.yaml").write_text(json.dumps(config, indent=2))
        subprocess.run([str(self.executable), "--basedir", str(self.basedir), "user", "add", "--password",
                        secrets.token_hex(8), "--admin", "admin"], check=True, capture_output=True)
        keys = self.basedir / "data" / "appkeys"
        keys.mkdir(parents=True, exist_ok=True)
        (keys / "keys.yaml").write_text(json.dumps({"admin": [{"app_id": "parametric-tests",
                                                               "api_key": self.api_key}]}))

    def _call(self, method: str, path: str, document: dict | None = None) -> tuple[int, dict]:
        import urllib.error
        import urllib.request

        request = urllib.request.Request(self.url + path, method=method,
                                         data=json.dumps(document).encode() if document is not None else None)
        request.add_header("X-Api-Key", self.api_key)
        request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                body = response.read()
                return response.status, json.loads(body) if body.strip() else {}
        except urllib.error.HTTPError as error:
            return error.code, {}

    def start(self, timeout_s: float = 90.0) -> None:
        """Serve, wait for the API, and connect to the Virtual Printer."""
        import http.client

        output = open(self.log, "a")
        self.process = subprocess.Popen([str(self.executable), "serve", "--basedir", str(self.basedir),
                                         "--iknowwhatimdoing", "--port", str(self.port)],
                                        stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        output.close()
        try:
            deadline = time.monotonic() + timeout_s
            while True:
                if self.process.poll() is not None:
                    raise RuntimeError(f"octoprint serve exited {self.process.returncode}; see {self.log}")
                try:
                    if self._call("GET", "/api/version")[0] == 200:
                        break
                except (OSError, http.client.HTTPException):  # not listening yet, or answering half-started
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"OctoPrint did not answer within {timeout_s:g} s; see {self.log}")
                time.sleep(0.25)
            status, _ = self._call("POST", "/api/connection", {"command": "connect", "port": "VIRTUAL",
                                                               "baudrate": 115200, "printerProfile": "_default"})
            assert status == 204, f"connecting to the Virtual Printer answered {status}"
            while self._call("GET", "/api/job")[1].get("state") != "Operational":
                if time.monotonic() > deadline:
                    raise RuntimeError("the Virtual Printer did not become operational")
                time.sleep(0.25)
        except BaseException:  # never leave a half-started server behind
            self.stop()
            raise

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


@pytest.fixture(scope="session")
def octoprint(tmp_path_factory):
    """A running OctoPrint with its Virtual Printer connected; stopped at the end of the session."""
    server = OctoPrintServer(octoprint_executable(), tmp_path_factory.mktemp("octoprint"))
    server.configure()
    server.start()
    yield server
    server.stop()
