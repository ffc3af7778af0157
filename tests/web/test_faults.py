"""Faults of ours, seen from the shop: a damaged render cache, a full disk (a real small tmpfs filled to its
limit), a read-only output folder, a render over its time limit. Each is a 503 with Retry-After in plain
words, or an order that waits and completes once the fault clears; no server path reaches a customer. Each runs on
SQLite (database and queue) and on PostgreSQL + Redis (a database of its own, a queue of its own)."""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import os
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from parametric.cache import Cache
from parametric.errors import CUSTOMER_FAULT_MESSAGE
from parametric.registry import _REGISTRY, Template, register
from parametric.schema import Mm, TemplateParams, length, number
from web import create_app
from web.models import Artifact, OrderItem
from web.orders.generation import GAVE_UP_MESSAGE
from web.shop.catalog import Catalog
from web.staff.auth import add_user

from .conftest import STAFF, order_body, run_queue, services, test_config
from .live import postgres_database, service_unavailable

_sizes = itertools.count(1)


class BlockParams(TemplateParams):
    size: Mm = length(20, ge=5, le=200, description="Edge length of the block.")
    pause_s: float = number(0, ge=0, le=120, unit="s", description="The build waits this long first (time limits).")


class Block(Template):
    """A real template that builds in milliseconds (and, with ``pause_s``, as slowly as a test needs)."""

    id, version, name = "test_fault_block", "1.0.0", "Block (test)"
    family, process, materials = "home", ("fdm",), ("pla",)
    description = "A block."
    Params = BlockParams
    presets: dict[str, Any] = {}

    def build(self, p: Any) -> Any:
        import cadquery as cq

        time.sleep(p.pause_s)
        return cq.Workplane().box(p.size, p.size, p.size / 2)


@pytest.fixture(autouse=True)
def block() -> Iterator[str]:
    register(Block)
    yield Block.id
    _REGISTRY.pop(Block.id, None)


REDIS = os.environ.get("PARAMETRIC_TEST_REDIS", "redis://127.0.0.1:6379/0")


@pytest.fixture(params=["sqlite", pytest.param("postgresql+redis", marks=pytest.mark.integration)])
def backend(request: pytest.FixtureRequest) -> Iterator[dict[str, Any]]:
    """The storage settings of the app under test: SQLite files (the default), or a PostgreSQL database and a
    Redis queue of its own."""
    if request.param == "sqlite":
        yield {}
        return
    import redis

    try:
        redis.Redis.from_url(REDIS, socket_connect_timeout=3).ping()
    except redis.RedisError as error:
        service_unavailable("Redis", error)
    name = f"parametric-faults-{uuid.uuid4().hex[:12]}"
    with postgres_database() as url:
        yield {"DATABASE_URL": url, "REDIS_URL": REDIS, "HUEY_NAME": name}
    client = redis.Redis.from_url(REDIS)
    for key in client.scan_iter(match=f"*{name}*"):
        client.delete(key)


def make_app(tmp_path: Path, folder: Path, **overrides: Any) -> Flask:
    """An app whose output folder and render cache are in ``folder`` (database and queue stay in tmp_path)."""
    # a 1 MiB reserve: a page asking for a build on a full disk is answered at once (the build runs on a worker)
    config = test_config(tmp_path, folder / "cache", OUTPUT_FOLDER=str(folder / "output"),
                         CACHE_MIN_FREE_BYTES=1024 * 1024, FAULT_RETRY_SECONDS=1, **overrides)
    app = create_app(config)
    services(app).database.upgrade()
    return app


def line(size: float, **params: Any) -> dict[str, Any]:
    return {"template": Block.id, "params": {"size": size, **params}, "quantity": 1, "material": "pla"}


def unique_size() -> float:
    return 30 + next(_sizes) + 0.5


def run_due(app: Flask, limit: int = 20) -> int:
    """Execute the tasks due now (not the retries scheduled for later); how many ran."""
    huey = services(app).queue.huey
    for ran in range(limit):
        task = huey.dequeue()
        if task is None:
            return ran
        huey.execute(task)
    raise AssertionError(f"more than {limit} tasks were due")


def stored_item(app: Flask, order_id: str) -> OrderItem:
    with services(app).database.session() as session:
        return session.scalars(select(OrderItem).where(OrderItem.order_id == order_id)).one()


def show(client: Any, placed: dict[str, Any]) -> dict[str, Any]:
    return client.get(f"/api/v1/orders/{placed['id']}", headers={"X-Order-Token": placed["token"]}).get_json()


def staff_header(app: Flask) -> dict[str, str]:
    add_user(services(app).database, *STAFF)
    return {"Authorization": "Basic " + base64.b64encode(":".join(STAFF).encode()).decode()}


def assert_plain_503(response: Any, *server_words: str) -> None:
    assert response.status_code == 503, response.data[:300]
    assert int(response.headers["Retry-After"]) >= 1
    text = response.get_data(as_text=True)
    assert CUSTOMER_FAULT_MESSAGE in text.lower()
    assert "cannot be built" not in text
    for word in ("Errno", "OSError", "No space left", "Read-only file system", "Traceback", *server_words):
        assert word not in text, word


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_damage_to_the_cache_never_reaches_a_delivered_file_nor_a_new_order(backend, tmp_path):
    app = make_app(tmp_path, tmp_path, **backend)
    client = app.test_client()
    size = unique_size()
    first = client.post("/api/v1/orders", json=order_body(line(size))).get_json()
    run_queue(app)
    stl = next(f for f in show(client, first)["items"][0]["files"] if f["format"] == "stl")
    delivered = client.get(stl["url"])
    original = delivered.data
    assert delivered.headers["ETag"].strip('"') == sha256(original) == stl["sha256"] and len(original) == stl["bytes"]

    key = stored_item(app, first["id"]).cache_key
    cached = Cache(tmp_path / "cache").folder(key) / stl["filename"]
    with open(cached, "r+b") as damaged:  # root writes through the read-only mode, as a faulty disk would
        damaged.truncate(len(original) // 3)

    again = client.get(stl["url"])
    assert again.status_code == 200 and again.data == original
    assert again.headers["ETag"].strip('"') == sha256(again.data)
    assert next(f for f in show(client, first)["items"][0]["files"] if f["format"] == "stl")["bytes"] \
        == len(again.data)

    second = client.post("/api/v1/orders", json=order_body(line(size))).get_json()
    assert second["items"][0]["state"] == "queued"  # never marked ready at once with the broken file
    run_queue(app)
    rebuilt = next(f for f in show(client, second)["items"][0]["files"] if f["format"] == "stl")
    served = client.get(rebuilt["url"])
    assert sha256(served.data) == rebuilt["sha256"] == served.headers["ETag"].strip('"')
    assert len(served.data) == rebuilt["bytes"] == len(original) and served.data == original
    assert cached.stat().st_size == len(original)  # the cache entry itself was rebuilt

    with services(app).database.session() as session:
        relative = session.scalar(select(Artifact.path).where(Artifact.item_id == stored_item(app, first["id"]).id,
                                                              Artifact.format == "stl"))
    own_copy = tmp_path / "output" / relative
    with open(own_copy, "r+b") as damaged:  # the customer's own copy changed on disk: refused, not served
        damaged.truncate(10)
    refused = client.get(stl["url"])
    assert_plain_503(refused, str(tmp_path))


def test_a_full_disk_answers_503_leaves_no_partial_entry_and_orders_complete_once_space_is_freed(backend, tmp_path,
                                                                                                small_disk):
    app = make_app(tmp_path, small_disk.path, **backend)
    client = app.test_client()
    size = unique_size()
    small_disk.fill()

    assert_plain_503(client.post("/api/v1/quotes", json=line(size)), str(small_disk.path))
    preview = client.get(f"/configure/{Block.id}/preview?params.size={size}&quantity=1&material=pla",
                         headers={"Accept": "application/json"})
    assert_plain_503(preview, str(small_disk.path))
    assert preview.get_json()["errors"][0]["message"]
    left = [p for p in small_disk.used_paths() if not p.endswith(".lock")]
    assert not [p for p in left if ".build-" in p or re.search(r"/[0-9a-f]{64}(/|$)", p)], left

    placed = client.post("/api/v1/orders", json=order_body(line(size)))
    assert placed.status_code == 201  # the order stands; its price is asked for again once there is space
    placed = placed.get_json()
    [missing] = placed["total"]["missing"]
    assert placed["total"]["state"] == "pending" and missing["reason"].startswith("its price cannot be worked out")
    assert str(small_disk.path) not in json.dumps(placed)
    for _ in range(3):  # more tries than RENDER_ATTEMPTS: a full disk never fails the order for good
        run_due(app)
        run_queue_due_retries(app)
    item = stored_item(app, placed["id"])
    assert item.state == "queued" and item.attempts == 0 and item.reason is None
    assert item.last_error.startswith("disk_full")
    tracking = client.get(f"/track/{placed['id']}?token={placed['token']}")
    assert tracking.status_code == 200 and str(small_disk.path) not in tracking.get_data(as_text=True)
    assert "No space left" not in tracking.get_data(as_text=True)
    staff = client.get(f"/api/v1/staff/orders/{placed['id']}", headers=staff_header(app)).get_json()
    assert "disk_full" in staff["items"][0]["last_error"]

    with app.app_context():
        catalog = Catalog(services(app))
        template = _REGISTRY[Block.id]
        assert catalog.from_prices([template])[Block.id] is None
        assert catalog.settle(30)
        assert catalog.from_prices([template])[Block.id] is None  # not kept as "cannot be priced"

        small_disk.free()
        time.sleep(1.1)  # FAULT_RETRY_SECONDS
        run_queue(app)
        assert show(client, placed)["items"][0]["state"] == "ready"
        assert client.post("/api/v1/quotes", json=line(size)).status_code == 202  # asked for, on a worker now
        run_queue(app)
        assert client.post("/api/v1/quotes", json=line(size)).status_code == 200
        assert show(client, placed)["total"]["state"] == "final"  # the order's price, asked for again with space
        catalog.from_prices([template])
        for _ in range(120):  # the catalog's price is built by the queue too
            run_queue(app)
            if catalog.settle(0.5):
                break
        price = catalog.from_prices([template])[Block.id]
        assert price is not None and price.total > 0  # recovered without a restart


def run_queue_due_retries(app: Flask) -> None:
    """Move the retries scheduled so far into the queue (as the scheduler does when they fall due) and run them."""
    huey = services(app).queue.huey
    from datetime import UTC, datetime, timedelta

    for task in huey.read_schedule(datetime.now(UTC).replace(tzinfo=None) + timedelta(days=1)):
        huey.enqueue(task)
    run_due(app)


def test_a_read_only_output_folder_answers_503_and_no_server_path_reaches_the_tracking_page(backend, tmp_path,
                                                                                             small_disk):
    app = make_app(tmp_path, small_disk.path, **backend)
    client = app.test_client()
    placed = client.post("/api/v1/orders", json=order_body(line(unique_size()))).get_json()
    small_disk.read_only()

    assert_plain_503(client.post("/api/v1/quotes", json=line(unique_size())), str(small_disk.path))
    for _ in range(4):
        run_due(app)
        run_queue_due_retries(app)
    item = stored_item(app, placed["id"])
    assert item.state == "queued" and item.reason is None and item.last_error.startswith("read_only")
    for page in (f"/track/{placed['id']}?token={placed['token']}",
                 f"/orders/{placed['id']}/confirmation?token={placed['token']}",
                 f"/api/v1/orders/{placed['id']}?token={placed['token']}"):
        text = client.get(page).get_data(as_text=True)
        for word in (str(small_disk.path), "Errno", "OSError", "Read-only file system", "read_only"):
            assert word not in text, (page, word)

    small_disk.read_only(False)
    time.sleep(1.1)
    run_queue(app)
    assert show(client, placed)["items"][0]["state"] == "ready"


def test_a_render_over_its_time_limit_is_tried_a_bounded_number_of_times_then_failed_plainly(backend, tmp_path):
    app = make_app(tmp_path, tmp_path, RENDER_TIMEOUT_SECONDS=1.0, RENDER_ATTEMPTS=2, **backend)
    client = app.test_client()
    placed = client.post("/api/v1/orders", json=order_body(line(unique_size(), pause_s=60))).get_json()
    started = time.monotonic()
    run_queue(app)
    # two attempts of its files and two of the measurements that price it, about a second each (and the kernel
    # process started again after each), not two minutes each
    assert time.monotonic() - started < 60
    item = stored_item(app, placed["id"])
    assert item.state == "failed" and item.attempts == 2
    assert item.reason == GAVE_UP_MESSAGE and item.last_error.startswith("timeout")
    customer = show(client, placed)["items"][0]
    assert customer["state"] == "failed" and customer["reason"] == GAVE_UP_MESSAGE
    staff = client.get(f"/api/v1/staff/orders/{placed['id']}", headers=staff_header(app)).get_json()
    assert "took longer than 1 s" in staff["items"][0]["last_error"]
    assert not [p for p in (tmp_path / "cache").rglob(".build-*")]
