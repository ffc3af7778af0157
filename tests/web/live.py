"""Real processes for end-to-end tests: ``parametric serve`` and ``parametric worker`` on loopback.

Each process gets its own session (process group), so a test can SIGKILL one worker with
its children, and teardown can stop everything it started, by process id.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


def service_unavailable(service: str, error: object) -> None:
    """Skip loudly when a service is missing; on CI (CI=true) a missing service fails the run."""
    message = (f"{service} is not reachable ({error}). The integration tests need it: PostgreSQL on "
               f"127.0.0.1:5432 (trust auth) and Redis on 127.0.0.1:6379, or PARAMETRIC_TEST_POSTGRES / "
               f"PARAMETRIC_TEST_REDIS pointing elsewhere.")
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true and {message}", pytrace=False)
    warnings.warn(message, stacklevel=2)
    pytest.skip(f"SKIPPED LOUDLY: {message}")


POSTGRES_CANDIDATES = [url for url in (os.environ.get("PARAMETRIC_TEST_POSTGRES"),
                                       "postgresql://postgres@127.0.0.1:5432/test",
                                       "postgresql://root@127.0.0.1:5432/test") if url]


@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    """The URL of a database of its own on the PostgreSQL server (never the shared ``test`` one), dropped
    afterwards; skips loudly (fails under CI=true) when no server answers."""
    import psycopg
    from sqlalchemy.engine import make_url

    connection, problems, admin = None, [], ""
    for candidate in POSTGRES_CANDIDATES:
        try:
            connection = psycopg.connect(candidate, autocommit=True, connect_timeout=3)
            admin = candidate
            break
        except psycopg.Error as error:
            problems.append(f"{make_url(candidate).render_as_string(hide_password=True)}: {error}".strip())
    if connection is None:
        service_unavailable("PostgreSQL", "; ".join(problems))
    name = f"parametric_test_{uuid.uuid4().hex[:12]}"
    connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(admin).set(drivername="postgresql+psycopg", database=name).render_as_string(False)
    finally:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Stack:
    """A server and workers sharing one configuration (given as environment variables)."""

    def __init__(self, folder: Path, env: dict[str, str]):
        self.folder = folder
        self.env = {**os.environ, **env}
        self.processes: list[tuple[str, subprocess.Popen[bytes], Path]] = []
        self.port: int | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = self.folder / f"{name}.log"
        with open(log, "wb") as handle:
            process = subprocess.Popen([sys.executable, "-m", "parametric.cli", *args], env=self.env,
                                       stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)
        self.processes.append((name, process, log))
        return process

    def start_server(self, *extra: str, timeout: float = 60) -> subprocess.Popen[bytes]:
        self.port = free_port()
        process = self._start("serve", "serve", "--port", str(self.port), "--threads", "24", *extra)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise AssertionError(f"serve exited with {process.returncode}:\n{self.logs()}")
            try:
                if self.get("/api/v1/templates")[0] == 200:
                    return process
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"serve did not answer within {timeout}s:\n{self.logs()}")

    def start_worker(self, name: str, workers: int = 1) -> subprocess.Popen[bytes]:
        return self._start(name, "worker", "--workers", str(workers))

    def wait_for_log(self, name: str, text: str, timeout: float = 60) -> None:
        log = next(path for label, _, path in self.processes if label == name)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in log.read_text(errors="replace"):
                return
            time.sleep(0.1)
        raise AssertionError(f"{name} never logged {text!r}:\n{self.logs()}")

    def request(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None,
                timeout: float = 30) -> tuple[int, Any, dict[str, str]]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data=data, method=method,
                                         headers={"Content-Type": "application/json", **(headers or {})})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                raw, status, got = response.read(), response.status, dict(response.headers)
        except urllib.error.HTTPError as error:
            raw, status, got = error.read(), error.code, dict(error.headers)
        kind = got.get("Content-Type", "")
        return status, json.loads(raw) if kind.startswith("application/json") else raw, got

    def get(self, path: str, **kwargs: Any) -> tuple[int, Any, dict[str, str]]:
        return self.request("GET", path, **kwargs)

    def logs(self, tail: int = 4000) -> str:
        return "\n".join(f"--- {name} (pid {process.pid}, exit {process.poll()}) ---\n"
                         f"{path.read_text(errors='replace')[-tail:]}" for name, process, path in self.processes)

    def stop(self) -> None:
        """SIGINT each process group (graceful), then SIGKILL what is left."""
        for _, process, _ in self.processes:
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGINT)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 30
        for _, process, _ in self.processes:
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)  # the leader is not reaped yet: the group is still ours
                process.wait()
