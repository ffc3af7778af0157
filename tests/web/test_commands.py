"""``parametric serve``, ``worker`` and ``users`` as real processes on the embedded defaults (SQLite, SQLite queue)."""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from parametric.cli import build_parser
from web.config import load_config
from web.db import Database
from web.models import OrderItem, utcnow
from web.staff.auth import verify

from .conftest import order_body
from .live import Stack


def embedded_env(folder: Path) -> dict[str, str]:
    """Only the instance and output folders: everything else is the embedded default."""
    env = {"PARAMETRIC_INSTANCE": str(folder / "instance"), "PARAMETRIC_OUTPUT": str(folder / "output")}
    for name in ("DATABASE_URL", "REDIS_URL"):  # a developer's own settings must not leak in
        if os.environ.get(name):
            env[name] = ""
    return env


def cli(*args: str, env: dict[str, str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "parametric.cli", *args], env={**os.environ, **env}, input=stdin,
                          capture_output=True, text=True, timeout=120)


def test_the_core_cli_finds_the_web_commands_through_entry_points():
    parser = build_parser()
    assert "serve" not in parser.format_help()  # the core alone does not know them
    from parametric.cli import _extensions

    help_text = build_parser(_extensions()).format_help()
    for command in ("serve", "worker", "users"):
        assert command in help_text


def _modules_after(code: str) -> set[str]:
    result = subprocess.run([sys.executable, "-c", f"{code}\nimport sys\nprint(' '.join(sys.modules))"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return {name.split(".")[0] for name in result.stdout.split()}


def test_the_core_never_imports_the_web_layer():
    loaded = _modules_after("import parametric, parametric.cli, parametric.render, parametric.cache, "
                            "parametric.gallery\nparametric.templates()")
    assert not loaded & {"web", "flask", "werkzeug", "huey", "sqlalchemy", "alembic", "redis", "psycopg"}


def test_the_cli_loads_the_web_commands_without_the_web_stack():
    loaded = _modules_after("from parametric.cli import _extensions, build_parser\nbuild_parser(_extensions())")
    assert "web" in loaded  # found through the parametric.commands entry points
    assert not loaded & {"flask", "huey", "sqlalchemy", "alembic", "cadquery"}


def test_users_add_creates_a_hashed_account(tmp_path):
    env = embedded_env(tmp_path)
    made = cli("users", "add", "ada", "--password", "correct horse battery", env=env)
    assert made.returncode == 0, made.stderr
    piped = cli("users", "add", "grace", env=env, stdin="another fine secret\n")
    assert piped.returncode == 0, piped.stderr
    again = cli("users", "add", "ada", "--password", "correct horse battery", env=env)
    assert again.returncode == 2 and "already" in again.stderr
    short = cli("users", "add", "linus", "--password", "short", env=env)
    assert short.returncode == 2 and "at least" in short.stderr
    database = Database(f"sqlite:///{tmp_path / 'instance' / 'parametric.db'}")
    assert verify(database, "ada", "correct horse battery") and verify(database, "grace", "another fine secret")
    assert not verify(database, "ada", "wrong")


def test_serve_with_its_embedded_worker_takes_an_order_to_ready(tmp_path):
    stack = Stack(tmp_path, embedded_env(tmp_path))
    try:
        server = stack.start_server()
        status, order, _ = stack.request("POST", "/api/v1/orders", order_body(
            {"template": "wall_shelf", "params": {"width": 655.55}, "material": "pla"}))
        assert status == 201, order
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            status, shown, _ = stack.get(f"/api/v1/orders/{order['id']}?token={order['token']}")
            if shown["status"] == "ready":
                break
            time.sleep(0.25)
        assert shown["status"] == "ready", stack.logs()
        stl = next(f for f in shown["items"][0]["files"] if f["format"] == "stl")
        status, data, _ = stack.get(stl["url"])
        assert status == 200 and hashlib.sha256(data).hexdigest() == stl["sha256"]
        assert (tmp_path / "instance" / "parametric.db").is_file() and (tmp_path / "instance" / "queue.db").is_file()
        worker_pid = int(re.search(r"embedded worker started \(pid (\d+)", stack.logs(tail=10**7)).group(1))
        os.kill(server.pid, signal.SIGTERM)
        assert server.wait(60) == 0
        with pytest.raises(ProcessLookupError):  # serve stopped its worker before exiting
            os.kill(worker_pid, 0)
    finally:
        stack.stop()


def test_serve_requeues_what_a_dead_worker_left_at_start(tmp_path):
    env = embedded_env(tmp_path)
    os.environ.update(env)
    try:
        config = load_config()
    finally:
        for name in env:
            os.environ.pop(name, None)
    from web import create_app

    app = create_app({**config, "TESTING": True})
    services = app.extensions["parametric"]
    services.database.upgrade()
    order = app.test_client().post("/api/v1/orders", json=order_body(
        {"template": "wall_shelf", "params": {"width": 677.75}})).get_json()
    item_id = 1
    assert services.generation.claim(item_id) is not None  # a worker took it ... and died
    with services.database.transaction() as session:
        session.execute(update(OrderItem).values(lease_expires_at=utcnow() - timedelta(seconds=5)))
    services.queue.huey.flush()  # and the task it had taken is gone from the queue
    services.database.dispose()

    stack = Stack(tmp_path, {**env, "PARAMETRIC_REAP_INTERVAL_SECONDS": "3600"})
    try:
        stack.start_server("--no-worker")
        assert "re-queued at start: {'requeued': [1]" in stack.logs(tail=10**7)
        # the item once (the catalog's prices and pictures are queued beside it, for the workers to build)
        assert [t.name for t in services.queue.huey.pending()].count("render_item") == 1
        stack.start_worker("worker")
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            shown = stack.get(f"/api/v1/orders/{order['id']}?token={order['token']}")[1]
            if shown["status"] == "ready":
                break
            time.sleep(0.25)
        assert shown["status"] == "ready" and shown["items"][0]["attempts"] == 2, stack.logs()
    finally:
        stack.stop()


def test_worker_refuses_nonsense_counts(tmp_path):
    result = cli("worker", "--workers", "0", env=embedded_env(tmp_path))
    assert result.returncode == 2 and "at least 1" in result.stderr


@pytest.mark.integration  # the warm-up's job sheet is a PDF (WeasyPrint, pango)
def test_a_worker_process_warms_up_the_kernel_and_the_job_sheet_then_freezes_its_startup_objects(tmp_path):
    """What each worker process runs before its first task: a render and a job sheet (first-use costs paid
    there, not by a customer's order), then gc.freeze() so full collections skip the startup objects."""
    script = ("import gc, sys\n"
              "from web.commands import _warm_up\n"
              "_warm_up(['stl', 'svg'])\n"
              "print(gc.get_freeze_count(), 'weasyprint' in sys.modules, 'OCP' in sys.modules)\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            env={**os.environ, "PARAMETRIC_OUTPUT": str(tmp_path / "output")})
    assert result.returncode == 0, result.stderr
    frozen, sheet_loaded, kernel_loaded = result.stdout.split()
    assert int(frozen) > 50_000  # the modules, WeasyPrint's and the kernel's Python objects (about 87,000)
    # the kernel itself runs in the render's kernel process (parametric.deadline), not in the worker
    assert (sheet_loaded, kernel_loaded) == ("True", "False")
    assert "warm-up" not in result.stderr  # neither the render nor the job sheet failed
