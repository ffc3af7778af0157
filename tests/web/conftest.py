"""Fixtures for the web layer, flaskr-style: an app with a fresh database, queue and output folder per test.

The core's cache is the session's (tests/conftest.py), so a configuration is built once per
run; tests that need a real build use parameters no other test uses.
"""

from __future__ import annotations

import base64
import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from parametric.registry import _REGISTRY, Preset, Template, register
from parametric.schema import Mm, TemplateParams, length
from web import create_app
from web.services import Services
from web.staff.auth import add_user

STAFF = ("ada", "correct horse battery")
_unique = itertools.count(1)


def test_config(tmp_path: Path, cache_folder: Path, **overrides: Any) -> dict[str, Any]:
    """A configuration on private SQLite files; environment storage settings are overridden on purpose."""
    return {
        "TESTING": True, "INSTANCE_FOLDER": str(tmp_path / "instance"), "OUTPUT_FOLDER": str(tmp_path / "output"),
        "CACHE_FOLDER": str(cache_folder), "DATABASE_URL": None, "REDIS_URL": None, "HUEY_FILE": None,
        "HUEY_NAME": "parametric-test", "RENDER_RETRY_DELAY": 0, **overrides,
    }


test_config.__test__ = False  # a helper, not a test


@pytest.fixture
def cache_folder(output_root: Path) -> Path:
    return output_root / "cache"


@pytest.fixture
def app(tmp_path: Path, cache_folder: Path) -> Iterator[Flask]:
    app = create_app(test_config(tmp_path, cache_folder))
    services(app).database.upgrade()
    yield app
    services(app).database.dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def services(app: Flask) -> Services:
    return app.extensions["parametric"]


@pytest.fixture
def staff(app: Flask) -> dict[str, str]:
    """The Authorization header of a staff account made for the test."""
    add_user(services(app).database, *STAFF)
    return {"Authorization": "Basic " + base64.b64encode(":".join(STAFF).encode()).decode()}


def run_queue(app: Flask, limit: int = 50) -> list[Any]:
    """Execute what the app put in its (real, SQLite) huey queue, here, including scheduled retries."""
    huey = services(app).queue.huey
    results = []
    for _ in range(limit):
        for task in huey.read_schedule(datetime.now(UTC).replace(tzinfo=None) + timedelta(days=1)):
            huey.enqueue(task)
        task = huey.dequeue()
        if task is None:
            return results
        results.append(huey.execute(task))
    raise AssertionError(f"the queue still had tasks after {limit}")


def unique_width() -> float:
    """A wall shelf width no other test in this run uses, so its render is a real build: on the width's 10 mm
    step (API orders and quotes snap to it) and never a round hundred (410 to 490, 510 to 590, ...). There are 99
    such widths up to the template's 1500 mm: a test that needs more shelves takes :func:`unique_shelf`."""
    count = next(_unique)
    width = 400 + 10 * (count + (count - 1) // 9)
    assert width < 1500, "unique_width ran out of wall shelf widths: use unique_shelf()"
    return width


_unique_shelves = itertools.count(0)


def unique_shelf() -> dict[str, float]:
    """Wall shelf parameters no other test in this run uses (a real build): a width of its own (410 to 1490 mm, no
    round hundreds, none of :func:`unique_width`'s, which are all at the default depth) at depths of 205 to 395 mm
    in 10 mm steps, so the combinations (1980) outlast any run."""
    count = next(_unique_shelves)
    widths = [w for w in range(410, 1500, 10) if w % 100]
    width, depth = widths[count % len(widths)], 205 + 10 * (count // len(widths))
    assert depth <= 395, "unique_shelf ran out of wall shelves"
    return {"width": float(width), "depth": float(depth)}


def order_body(*items: dict[str, Any], name: str = "Ada Lovelace", email: str = "ada@example.com") -> dict[str, Any]:
    return {"customer": {"name": name, "email": email},
            "items": list(items) or [{"template": "wall_shelf", "params": {"width": 600}, "quantity": 1,
                                      "material": "pla"}]}


class FilletTooLargeParams(TemplateParams):
    size: Mm = length(20, ge=10, le=40, description="Edge length of the cube.")


class FilletTooLarge(Template):
    """A template whose build really fails in OCCT: a fillet as large as the cube's edge."""

    id, version, name = "test_fillet_too_large", "1.0.0", "Broken cube (test)"
    family, process, materials = "home", ("fdm",), ("pla",)
    description = "Fails in the kernel on purpose."
    Params = FilletTooLargeParams
    presets = {"small": Preset("Small", {"size": 12})}

    def build(self, p: Any) -> Any:
        import cadquery as cq

        return cq.Workplane().box(p.size, p.size, p.size).edges().fillet(p.size)


@pytest.fixture
def broken_template() -> Iterator[str]:
    """Register the failing template for one test, then take it out of the registry again."""
    register(FilletTooLarge)
    yield FilletTooLarge.id
    _REGISTRY.pop(FilletTooLarge.id, None)


def answered(app: Flask, client: FlaskClient, method: str, url: str, rounds: int = 5, **kwargs: Any) -> Any:
    """The answer to a request that may first be 202 "preparing" (a preview, quote or picture the workers
    build): while it is, run the real queue here and ask again."""
    for _ in range(rounds):
        response = client.open(url, method=method, **kwargs)
        if response.status_code != 202:
            return response
        assert response.headers.get("Retry-After"), "a 202 says when to ask again"
        run_queue(app)
    raise AssertionError(f"{method} {url} was still being prepared after {rounds} rounds")
